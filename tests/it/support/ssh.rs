//! A real OpenSSH server and agent on 127.0.0.1 for the ssh clone tests:
//! `sshd -D` with a generated ed25519 host key and an authorized_keys file in
//! a temporary directory, and `ssh-agent -D` on a socket there. Both are
//! children of the test, stopped on drop. `ci/setup` installs openssh-server
//! and openssh-client; a missing tool is an error, not a skip.

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::RUN_SETUP;

const SSHD: &str = "/usr/sbin/sshd";

/// Generates an ed25519 key pair at `path` (and `path.pub`); returns the public key line.
pub(crate) fn keygen(path: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "reprove-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running ssh-keygen: {e}; {RUN_SETUP}"));
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap_or_else(|e| panic!("{e}"));
    public.trim().to_string()
}

/// `SHA256:…` of a public key file, as `ssh-keygen -l` prints it.
pub(crate) fn fingerprint(public: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public)
        .output()
        .unwrap_or_else(|e| panic!("running ssh-keygen: {e}; {RUN_SETUP}"));
    assert!(out.status.success(), "ssh-keygen -l: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace().nth(1).unwrap_or_default().to_string()
}

/// The user the tests log in as: this process's user.
pub(crate) fn user() -> String {
    if let Some(u) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        return u;
    }
    let out = Command::new("id").arg("-un").output().unwrap_or_else(|e| panic!("id -un: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An `sshd -D` on 127.0.0.1.
pub(crate) struct Sshd {
    child: Child,
    /// The port it listens on.
    pub(crate) port: u16,
    /// Its host key's public key file.
    pub(crate) host_key_pub: PathBuf,
    log: PathBuf,
}

impl Sshd {
    /// Starts sshd in `dir` (which must exist) accepting the keys in `authorized_keys`.
    pub(crate) fn start(dir: &Path, authorized_keys: &Path) -> Sshd {
        assert!(Path::new(SSHD).is_file(), "{SSHD} is missing; {RUN_SETUP}");
        // The privilege separation directory sshd insists on.
        if !Path::new("/run/sshd").is_dir() {
            std::fs::create_dir_all("/run/sshd")
                .unwrap_or_else(|e| panic!("sshd needs /run/sshd: {e} (create it as root, or {RUN_SETUP})"));
        }
        let host_key = dir.join("ssh_host_ed25519_key");
        if !host_key.exists() {
            keygen(&host_key);
        }
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nUsePAM no\nPermitRootLogin yes\n\
                 StrictModes no\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nAuthenticationMethods publickey\n\
                 AuthorizedKeysFile {}\nLogLevel VERBOSE\n",
                host_key.display(),
                authorized_keys.display()
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let log = dir.join("sshd.log");
        let mut last = String::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or_else(|e| panic!("{e}"));
            let log_file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}"));
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .args(["-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {SSHD}: {e}; {RUN_SETUP}"));
            if wait_for_banner(port, &mut child) {
                return Sshd { child, port, host_key_pub: host_key.with_extension("pub"), log };
            }
            let _ = child.kill();
            let _ = child.wait();
            last = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("sshd did not start:\n{last}");
    }

    /// The known_hosts line of its host key.
    pub(crate) fn known_hosts_line(&self) -> String {
        let public = std::fs::read_to_string(&self.host_key_pub).unwrap_or_else(|e| panic!("{e}"));
        let mut fields = public.split_whitespace();
        let (kind, key) = (fields.next().unwrap_or_default(), fields.next().unwrap_or_default());
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }

    /// Its host key's `SHA256:…` fingerprint.
    pub(crate) fn fingerprint(&self) -> String {
        fingerprint(&self.host_key_pub)
    }

    /// What sshd logged so far (for failure messages).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the port answers with an SSH banner, or the child exits.
fn wait_for_banner(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut banner = [0u8; 4];
            if conn.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// An `ssh-agent -D` listening on a socket in a directory.
pub(crate) struct Agent {
    child: Child,
    /// Its socket (the value of SSH_AUTH_SOCK).
    pub(crate) sock: PathBuf,
}

impl Agent {
    /// Starts an agent with the private key `key` loaded.
    pub(crate) fn start(dir: &Path, key: &Path) -> Agent {
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting ssh-agent: {e}; {RUN_SETUP}"));
        let agent = Agent { child, sock };
        let deadline = Instant::now() + Duration::from_secs(10);
        // The socket file appears at bind(), a moment before listen():
        // connecting in between is refused, so wait for a connection.
        while std::os::unix::net::UnixStream::connect(&agent.sock).is_err() {
            assert!(Instant::now() < deadline, "ssh-agent did not listen on {}", agent.sock.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = Command::new("ssh-add")
            .arg("-q")
            .arg(key)
            .env("SSH_AUTH_SOCK", &agent.sock)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running ssh-add: {e}; {RUN_SETUP}"));
        assert!(out.status.success(), "ssh-add: {}", String::from_utf8_lossy(&out.stderr));
        agent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
