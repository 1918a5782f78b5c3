//! Hostile layers against the unpacker, each as a crafted image pushed to a real
//! registry on 127.0.0.1 and pulled with `oci::Store`.
//!
//! Every case points at a real "victim" directory outside the cache (by its
//! absolute host path), so a naive unpacker would really escape; each test
//! checks the victim is untouched, and refused images leave nothing in the cache.

use crate::registry;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use oci::{ImageRef, PullOptions, PulledImage, Store, ToolchainError};
use registry::{push_tars, refused, tree, Registry, TarBuilder};

struct Setup {
    registry: Registry,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::Builder::new().prefix("rp").tempdir().unwrap_or_else(|e| panic!("{e}"));
        let victim = dir.path().join("victim");
        std::fs::create_dir(&victim).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(victim.join("secret"), "original").unwrap_or_else(|e| panic!("{e}"));
        Setup { registry, dir }
    }

    fn victim(&self) -> PathBuf {
        self.dir.path().join("victim")
    }

    /// The victim's absolute path without the leading `/`.
    fn victim_rel(&self) -> String {
        self.victim().display().to_string().trim_start_matches('/').to_string()
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn push(&self, name: &str, tars: &[Vec<u8>]) -> ImageRef {
        let r = self.registry.reference(&format!("{name}:1"));
        let image = push_tars(&self.registry, &r, tars);
        r.with_digest(image.manifest_digest)
    }

    fn pull_with(&self, r: &ImageRef, max: Option<u64>) -> Result<PulledImage, ToolchainError> {
        let store = Store::open(self.cache()).unwrap_or_else(|e| panic!("{e}"));
        let options =
            PullOptions { registry: self.registry.options(), max_unpacked_size: max, ..PullOptions::default() };
        store.pull_blocking(&registry::io(), r, &options)
    }

    fn pull(&self, r: &ImageRef) -> Result<PulledImage, ToolchainError> {
        self.pull_with(r, None)
    }

    fn assert_victim_untouched(&self) {
        let victim = self.victim();
        assert_eq!(tree(&victim), vec!["secret".to_string()], "something was written into the victim directory");
        assert_eq!(std::fs::read_to_string(victim.join("secret")).unwrap_or_default(), "original");
        let meta = std::fs::metadata(victim.join("secret")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta.nlink(), 1, "the victim file got a hardlink");
        assert_eq!(tree(&self.cache().join("tmp")), Vec::<String>::new(), "temporary directories left behind");
    }

    fn assert_nothing_cached(&self) {
        assert_eq!(tree(&self.cache().join("images/sha256")), Vec::<String>::new(), "a refused image is in the cache");
        self.assert_victim_untouched();
    }
}

fn ok(r: Result<PulledImage, ToolchainError>) -> PulledImage {
    r.unwrap_or_else(|e| panic!("pull failed: {e}"))
}

fn lexists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

#[test]
fn dotdot_and_absolute_paths_stay_inside() {
    let s = Setup::new();
    let v = s.victim_rel();
    let tar = TarBuilder::new()
        .file(&format!("../../../../../../../../../{v}/dotdot"), 0o644, b"x")
        .file(&format!("/{v}/absolute"), 0o644, b"y")
        .file("a/../../../b", 0o644, b"z")
        .finish();
    let image = ok(s.pull(&s.push("dotdot", &[tar])));
    assert!(image.rootfs.join(&v).join("dotdot").is_file());
    assert!(image.rootfs.join(&v).join("absolute").is_file());
    assert!(image.rootfs.join("b").is_file());
    s.assert_victim_untouched();
}

#[test]
fn symlink_then_write_through_it_stays_inside() {
    let s = Setup::new();
    let v = s.victim_rel();
    let victim_abs = s.victim().display().to_string();
    let tar = TarBuilder::new()
        .symlink("escape", &victim_abs)
        .file("escape/pwned", 0o644, b"x")
        .file("escape/secret", 0o644, b"overwritten")
        .symlink("up", "../../../../../../../../../../..")
        .file(&format!("up/{v}/pwned2"), 0o644, b"y")
        .symlink("file-link", &format!("{victim_abs}/secret"))
        .file("file-link", 0o644, b"replaces the link, not the target")
        .finish();
    let image = ok(s.pull(&s.push("symlink", &[tar])));
    assert!(image.rootfs.join(&v).join("pwned").is_file());
    assert!(image.rootfs.join(&v).join("pwned2").is_file());
    assert_eq!(std::fs::read_to_string(image.rootfs.join(&v).join("secret")).unwrap_or_default(), "overwritten");
    let fl = std::fs::symlink_metadata(image.rootfs.join("file-link")).unwrap_or_else(|e| panic!("{e}"));
    assert!(fl.is_file(), "file-link should now be a regular file");
    s.assert_victim_untouched();
}

#[test]
fn directory_turned_into_symlink_by_a_later_layer_stays_inside() {
    let s = Setup::new();
    let v = s.victim_rel();
    let l1 = TarBuilder::new().dir("d/", 0o755).file("d/f", 0o644, b"lower").finish();
    let l2 = TarBuilder::new().symlink("d", &s.victim().display().to_string()).finish();
    let l3 = TarBuilder::new().file("d/pwned", 0o644, b"x").file("d/secret", 0o644, b"nope").finish();
    let image = ok(s.pull(&s.push("dirlink", &[l1, l2, l3])));
    assert!(std::fs::symlink_metadata(image.rootfs.join("d")).map(|m| m.file_type().is_symlink()).unwrap_or(false));
    assert!(image.rootfs.join(&v).join("pwned").is_file());
    s.assert_victim_untouched();
}

#[test]
fn hardlinks_to_outside_are_refused() {
    let s = Setup::new();
    let victim_abs = s.victim().display().to_string();
    let tar = TarBuilder::new().hardlink("hl", &format!("{victim_abs}/secret")).finish();
    let err = refused(s.pull(&s.push("hardlink-abs", &[tar])), "hardlink to a host file accepted");
    assert!(matches!(err, ToolchainError::Layer { .. }), "{err}");
    assert!(err.to_string().contains("hl"), "{err}");
    s.assert_nothing_cached();

    let tar = TarBuilder::new()
        .symlink("s", &victim_abs)
        .hardlink("hl2", "s/secret")
        .hardlink("hl3", "../../../../../../../../../../../etc/hostname")
        .finish();
    assert!(s.pull(&s.push("hardlink-via-symlink", &[tar])).is_err());
    s.assert_nothing_cached();
}

#[test]
fn device_nodes_are_skipped_and_setuid_bits_stripped() {
    let s = Setup::new();
    let tar = TarBuilder::new()
        .dir("dev/", 0o755)
        .device("dev/evil")
        .dir("bin/", 0o755)
        .file("bin/su", 0o4755, b"#!/bin/sh\n")
        .file("bin/sg", 0o2755, b"#!/bin/sh\n")
        .fifo("pipe")
        .finish();
    let image = ok(s.pull(&s.push("devices", &[tar])));
    assert!(!lexists(&image.rootfs.join("dev/evil")), "a device node was created");
    assert!(image.warnings.iter().any(|w| w.contains("device node")), "{:?}", image.warnings);
    assert!(image.warnings.iter().any(|w| w.contains("setuid")), "{:?}", image.warnings);
    for f in ["bin/su", "bin/sg"] {
        let mode = std::fs::metadata(image.rootfs.join(f)).unwrap_or_else(|e| panic!("{e}")).permissions().mode();
        assert_eq!(mode & 0o7777, 0o755, "{f}");
    }
    s.assert_victim_untouched();
}

#[test]
fn decompression_bomb_is_bounded() {
    let s = Setup::new();
    let tar = TarBuilder::new().zeros("bomb", 64 << 20).finish();
    let r = s.push("bomb", &[tar]);
    let err = refused(s.pull_with(&r, Some(16 << 20)), "bomb accepted");
    assert!(matches!(err, ToolchainError::TooLarge { .. }), "{err}");
    s.assert_nothing_cached();
    // The same image under a bound it fits in.
    ok(s.pull_with(&r, Some(128 << 20)));
}

#[test]
fn whiteouts_cannot_reach_outside() {
    let s = Setup::new();
    let victim_abs = s.victim().display().to_string();
    let v = s.victim_rel();
    let l1 = TarBuilder::new().file("keep", 0o644, b"k").finish();
    let l2 = TarBuilder::new()
        .symlink("w", &victim_abs)
        .file("w/.wh.secret", 0o644, b"")
        .file(&format!("../../../../../../../{v}/.wh.secret"), 0o644, b"")
        .file(".wh..", 0o644, b"")
        .file(".wh...", 0o644, b"")
        .finish();
    let image = ok(s.pull(&s.push("whiteout", &[l1, l2])));
    assert!(image.rootfs.join("keep").is_file());
    s.assert_victim_untouched();
}

#[test]
fn layer_semantics_whiteouts_links_permissions() {
    let s = Setup::new();
    let l1 = TarBuilder::new()
        .dir("usr/", 0o755)
        .dir("usr/bin/", 0o755)
        .file("usr/bin/tool", 0o755, b"#!/bin/sh\necho hi\n")
        .hardlink("usr/bin/tool2", "usr/bin/tool")
        .symlink("bin", "usr/bin")
        .file("gone", 0o644, b"deleted later")
        .dir("opq/", 0o755)
        .file("opq/old", 0o644, b"hidden by an opaque whiteout")
        .dir("ro/", 0o555)
        .file("ro/inside", 0o444, b"r")
        .dir("tmp/", 0o1777)
        .finish();
    let l2 = TarBuilder::new()
        .file(".wh.gone", 0o644, b"")
        .dir("opq/", 0o755)
        .file("opq/.wh..wh..opq", 0o644, b"")
        .file("opq/new", 0o644, b"n")
        .file("ro/added", 0o644, b"a later layer writes into a read-only directory")
        .finish();
    let image = ok(s.pull(&s.push("semantics", &[l1, l2])));
    let root = &image.rootfs;
    let tool = std::fs::metadata(root.join("usr/bin/tool")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tool.permissions().mode() & 0o777, 0o755);
    assert_eq!(tool.nlink(), 2, "hardlink");
    assert_eq!(std::fs::read_link(root.join("bin")).unwrap_or_default(), PathBuf::from("usr/bin"));
    assert!(!lexists(&root.join("gone")), "whiteout");
    assert!(!lexists(&root.join("opq/old")), "opaque whiteout");
    assert!(root.join("opq/new").is_file());
    assert!(root.join("ro/added").is_file());
    let ro = std::fs::metadata(root.join("ro")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ro.permissions().mode() & 0o7777, 0o555);
    let tmp = std::fs::metadata(root.join("tmp")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    // gc can remove images with read-only directories.
    let store = Store::open(s.cache()).unwrap_or_else(|e| panic!("{e}"));
    let report = store.gc(&oci::GcOptions { all: true, ..Default::default() }).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.removed_images.len(), 1);
    assert!(!root.exists());
    s.assert_victim_untouched();
}
