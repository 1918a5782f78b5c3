//! A seccomp filter for bubblewrap, as a classic BPF program generated here.
//!
//! bwrap installs a program it is given (`--seccomp FD`: a file of
//! `struct sock_filter`, read from the descriptor) just before it runs the
//! command. The program denies what runc's profile denies, from the same list
//! ([`DENIED_SYSCALLS`]), with `EPERM`:
//!
//! 1. load `seccomp_data.arch`; any architecture but the native one (the
//!    32-bit compatibility ABIs, through which a deny could be bypassed) is
//!    denied outright;
//! 2. load `seccomp_data.nr`; on x86_64 every x32 call (`nr` with
//!    `__X32_SYSCALL_BIT`) is denied;
//! 3. a denied number returns `SECCOMP_RET_ERRNO | EPERM`; anything else is
//!    allowed.
//!
//! System call numbers are those of the kernel's tables for x86_64
//! (`arch/x86/entry/syscalls/syscall_64.tbl`) and aarch64 (the generic
//! `include/uapi/asm-generic/unistd.h`); a name an architecture does not
//! have is skipped, as libseccomp skips it for runc. On other architectures
//! there is no program ([`program`] returns `None`) and the outcome's notes
//! say so.
//!
//! The program goes to bwrap in a memfd created without `MFD_CLOEXEC`, so
//! that it survives the `exec` of `prlimit` and of bwrap (std cannot hand a
//! child a descriptor otherwise without `unsafe`); it is closed once bwrap
//! has started.

use std::io::{Seek as _, SeekFrom, Write as _};
use std::os::fd::{AsRawFd, OwnedFd};

use super::runc::DENIED_SYSCALLS;

/// `AUDIT_ARCH_X86_64`.
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// `AUDIT_ARCH_AARCH64`.
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
/// `__X32_SYSCALL_BIT`.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const EPERM: u32 = 1;

// Classic BPF opcodes (`linux/bpf_common.h`).
const BPF_LD: u16 = 0x00;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_JEQ: u16 = 0x10;
const BPF_JGE: u16 = 0x30;
const BPF_K: u16 = 0x00;
#[allow(clippy::identity_op, clippy::eq_op)]
const BPF_LD_W_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
#[allow(clippy::identity_op)]
const BPF_JMP_JEQ_K: u16 = BPF_JMP | BPF_JEQ | BPF_K;
#[allow(clippy::identity_op)]
const BPF_JMP_JGE_K: u16 = BPF_JMP | BPF_JGE | BPF_K;
#[allow(clippy::identity_op)]
const BPF_RET_K: u16 = BPF_RET | BPF_K;

/// Offsets in `struct seccomp_data`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

/// One `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub(crate) code: u16,
    pub(crate) jt: u8,
    pub(crate) jf: u8,
    pub(crate) k: u32,
}

/// An architecture the filter is generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// This machine's, if the filter knows it.
    pub(crate) fn native() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// The number of `name` on this architecture, if it has the call.
    pub(crate) fn number(self, name: &str) -> Option<u32> {
        let table: &[(&str, u32)] = match self {
            Arch::X86_64 => X86_64,
            Arch::Aarch64 => AARCH64,
        };
        table.iter().find(|(n, _)| *n == name).map(|(_, nr)| *nr)
    }
}

/// x86_64 numbers of the calls in [`DENIED_SYSCALLS`] (`syscall_64.tbl`).
const X86_64: &[(&str, u32)] = &[
    ("mount", 165),
    ("umount2", 166),
    ("pivot_root", 155),
    ("chroot", 161),
    ("fsopen", 430),
    ("fsconfig", 431),
    ("fsmount", 432),
    ("fspick", 433),
    ("move_mount", 429),
    ("open_tree", 428),
    ("mount_setattr", 442),
    ("unshare", 272),
    ("setns", 308),
    ("kexec_load", 246),
    ("kexec_file_load", 320),
    ("init_module", 175),
    ("finit_module", 313),
    ("delete_module", 176),
    ("create_module", 174),
    ("reboot", 169),
    ("swapon", 167),
    ("swapoff", 168),
    ("acct", 163),
    ("syslog", 103),
    ("iopl", 172),
    ("ioperm", 173),
    ("vhangup", 153),
    ("quotactl", 179),
    ("quotactl_fd", 443),
    ("lookup_dcookie", 212),
    ("nfsservctl", 180),
    ("uselib", 134),
    ("_sysctl", 156),
    ("sysfs", 139),
    ("ustat", 136),
    ("get_kernel_syms", 177),
    ("query_module", 178),
    ("bpf", 321),
    ("perf_event_open", 298),
    ("keyctl", 250),
    ("add_key", 248),
    ("request_key", 249),
    ("ptrace", 101),
    ("process_vm_readv", 310),
    ("process_vm_writev", 311),
    ("kcmp", 312),
    ("pidfd_getfd", 438),
    ("open_by_handle_at", 304),
    ("name_to_handle_at", 303),
    ("userfaultfd", 323),
    ("settimeofday", 164),
    ("clock_settime", 227),
    ("clock_adjtime", 305),
    ("adjtimex", 159),
];

/// aarch64 numbers (the generic table; 64-bit, so no `*_time64` calls).
const AARCH64: &[(&str, u32)] = &[
    ("mount", 40),
    ("umount2", 39),
    ("pivot_root", 41),
    ("chroot", 51),
    ("fsopen", 430),
    ("fsconfig", 431),
    ("fsmount", 432),
    ("fspick", 433),
    ("move_mount", 429),
    ("open_tree", 428),
    ("mount_setattr", 442),
    ("unshare", 97),
    ("setns", 268),
    ("kexec_load", 104),
    ("kexec_file_load", 294),
    ("init_module", 105),
    ("finit_module", 273),
    ("delete_module", 106),
    ("reboot", 142),
    ("swapon", 224),
    ("swapoff", 225),
    ("acct", 89),
    ("syslog", 116),
    ("vhangup", 58),
    ("quotactl", 60),
    ("quotactl_fd", 443),
    ("lookup_dcookie", 18),
    ("nfsservctl", 42),
    ("bpf", 280),
    ("perf_event_open", 241),
    ("keyctl", 219),
    ("add_key", 217),
    ("request_key", 218),
    ("ptrace", 117),
    ("process_vm_readv", 270),
    ("process_vm_writev", 271),
    ("kcmp", 272),
    ("pidfd_getfd", 438),
    ("open_by_handle_at", 265),
    ("name_to_handle_at", 264),
    ("userfaultfd", 282),
    ("settimeofday", 170),
    ("clock_settime", 112),
    ("clock_adjtime", 266),
    ("adjtimex", 171),
];

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

/// The filter for `arch`: see the module docs for its shape.
pub(crate) fn program(arch: Arch) -> Vec<Insn> {
    let mut numbers: Vec<u32> = DENIED_SYSCALLS.iter().filter_map(|n| arch.number(n)).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let deny = insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM);
    let mut p = vec![
        insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
        // The native architecture skips the deny that follows.
        insn(BPF_JMP_JEQ_K, 1, 0, arch.audit()),
        deny,
        insn(BPF_LD_W_ABS, 0, 0, OFFSET_NR),
    ];
    // The checks jump forward to the final deny, after the allow.
    let checks = numbers.len() + usize::from(arch == Arch::X86_64);
    let mut remaining = checks;
    let mut jump_to_deny = |code: u16, k: u32| {
        // From check i (counting down), the deny is `remaining` instructions
        // ahead: the checks after it, then the allow.
        remaining -= 1;
        let jt = u8::try_from(remaining + 1).unwrap_or(u8::MAX);
        insn(code, jt, 0, k)
    };
    if arch == Arch::X86_64 {
        p.push(jump_to_deny(BPF_JMP_JGE_K, X32_SYSCALL_BIT));
    }
    for nr in numbers {
        p.push(jump_to_deny(BPF_JMP_JEQ_K, nr));
    }
    p.push(insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW));
    p.push(deny);
    p
}

/// The program as bwrap reads it: `struct sock_filter` in native byte order.
pub(crate) fn encode(program: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(program.len() * 8);
    for i in program {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// The filter for this machine in a memfd a child inherits (no
/// `MFD_CLOEXEC`), positioned at its start; `None` on an architecture the
/// filter does not know.
pub(crate) fn inheritable_program() -> std::io::Result<Option<OwnedFd>> {
    let Some(arch) = Arch::native() else { return Ok(None) };
    let fd = rustix::fs::memfd_create("reprove-seccomp", rustix::fs::MemfdFlags::empty())?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&encode(&program(arch)))?;
    file.seek(SeekFrom::Start(0))?;
    let fd = OwnedFd::from(file);
    debug_assert!(fd.as_raw_fd() > 2);
    Ok(Some(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program over `seccomp_data` {nr, arch} as the kernel would.
    fn eval(p: &[Insn], nr: u32, arch: u32) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            match i.code {
                BPF_LD_W_ABS => {
                    acc = match i.k {
                        OFFSET_NR => nr,
                        OFFSET_ARCH => arch,
                        other => panic!("load from offset {other}"),
                    }
                }
                BPF_JMP_JEQ_K | BPF_JMP_JGE_K => {
                    let taken = if i.code == BPF_JMP_JEQ_K { acc == i.k } else { acc >= i.k };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                BPF_RET_K => return i.k,
                other => panic!("opcode {other:#x}"),
            }
            pc += 1;
            assert!(pc < p.len(), "ran off the end");
        }
    }

    #[test]
    fn the_program_denies_the_list_and_foreign_abis_and_allows_the_rest() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let p = program(arch);
            assert!(p.len() < 256, "jumps are 8 bits");
            // The shape: load arch, check it, deny, load nr, …, allow, deny.
            assert_eq!(p[0], insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH));
            assert_eq!(p[1], insn(BPF_JMP_JEQ_K, 1, 0, arch.audit()));
            assert_eq!(p[2], insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM));
            assert_eq!(p[3], insn(BPF_LD_W_ABS, 0, 0, OFFSET_NR));
            assert_eq!(p[p.len() - 2], insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW));
            assert_eq!(p[p.len() - 1], insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM));
            let denied = SECCOMP_RET_ERRNO | EPERM;
            for name in ["ptrace", "mount", "unshare", "keyctl", "bpf", "add_key", "setns", "open_by_handle_at"] {
                let nr = arch.number(name).unwrap_or_else(|| panic!("{arch:?} has no {name}"));
                assert_eq!(eval(&p, nr, arch.audit()), denied, "{arch:?} {name}");
            }
            for name in DENIED_SYSCALLS {
                if let Some(nr) = arch.number(name) {
                    assert_eq!(eval(&p, nr, arch.audit()), denied, "{arch:?} {name}");
                }
            }
            // Everything else is allowed: read, write, openat, clone, execve…
            let allowed: &[u32] = match arch {
                Arch::X86_64 => &[0, 1, 257, 56, 59, 435, 60, 231],
                Arch::Aarch64 => &[63, 64, 56, 220, 221, 435, 93, 94],
            };
            for nr in allowed {
                assert_eq!(eval(&p, *nr, arch.audit()), SECCOMP_RET_ALLOW, "{arch:?} {nr}");
            }
            // The native read, from a foreign ABI: denied.
            for foreign in [0x4000_0003 /* i386 */, AUDIT_ARCH_X86_64 ^ AUDIT_ARCH_AARCH64 ^ arch.audit()] {
                assert_eq!(eval(&p, allowed[0], foreign), denied, "{arch:?} arch {foreign:#x}");
            }
        }
        // x32: read with the x32 bit, on the x86_64 architecture.
        let p = program(Arch::X86_64);
        assert_eq!(eval(&p, X32_SYSCALL_BIT, AUDIT_ARCH_X86_64), SECCOMP_RET_ERRNO | EPERM);
        assert_eq!(eval(&p, X32_SYSCALL_BIT | 101, AUDIT_ARCH_X86_64), SECCOMP_RET_ERRNO | EPERM);
    }

    #[test]
    fn every_name_is_in_runc_s_list_and_the_tables_agree_on_the_new_calls() {
        for (name, _) in X86_64.iter().chain(AARCH64) {
            assert!(DENIED_SYSCALLS.contains(name), "{name} is not in DENIED_SYSCALLS");
        }
        // Calls added since 5.x share numbers on every architecture.
        for name in ["fsopen", "open_tree", "mount_setattr", "pidfd_getfd", "quotactl_fd"] {
            assert_eq!(Arch::X86_64.number(name), Arch::Aarch64.number(name), "{name}");
        }
    }

    #[test]
    fn the_encoding_is_struct_sock_filter() {
        let bytes = encode(&[insn(BPF_JMP_JEQ_K, 3, 4, 0x0102_0304)]);
        assert_eq!(bytes.len(), 8);
        assert_eq!(&bytes[..2], &BPF_JMP_JEQ_K.to_ne_bytes());
        assert_eq!((bytes[2], bytes[3]), (3, 4));
        assert_eq!(&bytes[4..], &0x0102_0304u32.to_ne_bytes());
    }

    #[test]
    fn the_memfd_holds_the_program_from_its_start() {
        use std::io::Read as _;
        let Some(fd) = inheritable_program().unwrap_or_else(|e| panic!("{e}")) else { return };
        let flags = rustix::io::fcntl_getfd(&fd).unwrap_or_else(|e| panic!("{e}"));
        assert!(!flags.contains(rustix::io::FdFlags::CLOEXEC), "a child must inherit it");
        let mut bytes = Vec::new();
        std::fs::File::from(fd).read_to_end(&mut bytes).unwrap_or_else(|e| panic!("{e}"));
        let arch = Arch::native().unwrap_or(Arch::X86_64);
        assert_eq!(bytes, encode(&program(arch)));
    }
}
