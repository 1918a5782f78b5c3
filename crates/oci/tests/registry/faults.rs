//! A registry that misbehaves: a fault-injecting proxy on 127.0.0.1 in front of
//! a real `docker-registry` answers 500s (retried), breaks a download half-way
//! (resumed with a range request), truncates a blob or serves wrong bytes
//! (refused, nothing left in the cache).

use crate::registry;

use oci::build::Image;
use oci::{ImageRef, PullOptions, PulledImage, Store, ToolchainError};
use registry::{push_tars, refused, tree, Fault, FaultProxy, Registry, TarBuilder};

struct Setup {
    registry: Registry,
    image: Image,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
        let mut content = Vec::new();
        for i in 0..20_000u32 {
            content
                .extend_from_slice(format!("line {i} of a file that makes the layer span several reads\n").as_bytes());
        }
        let l1 = TarBuilder::new().dir("usr/", 0o755).file("usr/data", 0o644, &content).finish();
        let l2 = TarBuilder::new().file("usr/second", 0o644, b"second layer").finish();
        let reference = registry.reference("faulty/go:1");
        let image = push_tars(&registry, &reference, &[l1, l2]);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        Setup { registry, image, dir }
    }

    fn pull_via(&self, proxy: &FaultProxy) -> Result<PulledImage, ToolchainError> {
        let reference: ImageRef = format!("{}/faulty/go@{}", proxy.addr, self.image.manifest_digest)
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(self.dir.path().join("cache")).unwrap_or_else(|e| panic!("{e}"));
        store.pull_blocking(
            &registry::io(),
            &reference,
            &PullOptions { registry: self.registry.options(), ..PullOptions::default() },
        )
    }

    fn layer_hex(&self) -> String {
        self.image.layers[0].blob.digest.hex().to_string()
    }

    fn assert_nothing_cached(&self) {
        let cache = self.dir.path().join("cache");
        assert_eq!(tree(&cache.join("images/sha256")), Vec::<String>::new(), "a refused image is in the cache");
        assert_eq!(tree(&cache.join("tmp")), Vec::<String>::new(), "temporary directories left behind");
    }
}

#[test]
fn server_errors_are_retried() {
    let s = Setup::new();
    let proxy = FaultProxy::start(&s.registry.addr, &s.layer_hex(), Fault::ServerErrors { count: 2 })
        .unwrap_or_else(|e| panic!("{e}"));
    let image = s.pull_via(&proxy).unwrap_or_else(|e| panic!("500s were not retried: {e}"));
    assert!(image.rootfs.join("usr/data").is_file());
    assert!(proxy.hits.load(std::sync::atomic::Ordering::Relaxed) >= 3);
}

#[test]
fn persistent_server_errors_fail_cleanly() {
    let s = Setup::new();
    let proxy = FaultProxy::start(&s.registry.addr, &s.layer_hex(), Fault::ServerErrors { count: 1000 })
        .unwrap_or_else(|e| panic!("{e}"));
    let err = refused(s.pull_via(&proxy), "pull succeeded against a broken registry");
    assert!(matches!(err, ToolchainError::Registry { .. }), "{err}");
    assert!(err.to_string().contains("500"), "{err}");
    s.assert_nothing_cached();
}

#[test]
fn a_broken_download_is_resumed() {
    let s = Setup::new();
    let proxy = FaultProxy::start(&s.registry.addr, &s.layer_hex(), Fault::BreakOnce).unwrap_or_else(|e| panic!("{e}"));
    let image = s.pull_via(&proxy).unwrap_or_else(|e| panic!("a broken download was not resumed: {e}"));
    assert!(image.rootfs.join("usr/data").is_file());
    assert!(proxy.hits.load(std::sync::atomic::Ordering::Relaxed) >= 2);
}

#[test]
fn a_truncated_blob_is_refused() {
    let s = Setup::new();
    let proxy = FaultProxy::start(&s.registry.addr, &s.layer_hex(), Fault::Truncate).unwrap_or_else(|e| panic!("{e}"));
    let err = refused(s.pull_via(&proxy), "truncated blob accepted");
    assert!(matches!(err, ToolchainError::SizeMismatch { .. }), "{err}");
    s.assert_nothing_cached();
}

#[test]
fn a_wrong_layer_blob_is_refused() {
    let s = Setup::new();
    let proxy = FaultProxy::start(&s.registry.addr, &s.layer_hex(), Fault::WrongBlob).unwrap_or_else(|e| panic!("{e}"));
    let err = refused(s.pull_via(&proxy), "wrong blob accepted");
    match &err {
        ToolchainError::DigestMismatch { expected, actual, .. } => {
            assert_eq!(*expected, s.image.layers[0].blob.digest.to_string());
            assert_ne!(expected, actual);
        }
        _ => panic!("expected a digest mismatch, got {err}"),
    }
    s.assert_nothing_cached();
}

#[test]
fn a_wrong_config_is_refused() {
    let s = Setup::new();
    let proxy = FaultProxy::start(&s.registry.addr, s.image.config.digest.hex(), Fault::WrongBlob)
        .unwrap_or_else(|e| panic!("{e}"));
    let err = refused(s.pull_via(&proxy), "wrong config accepted");
    assert!(matches!(err, ToolchainError::DigestMismatch { .. }), "{err}");
    s.assert_nothing_cached();
}

#[test]
fn a_wrong_manifest_is_refused() {
    let s = Setup::new();
    let proxy = FaultProxy::start(&s.registry.addr, "/manifests/", Fault::WrongBlob).unwrap_or_else(|e| panic!("{e}"));
    let err = refused(s.pull_via(&proxy), "wrong manifest accepted");
    assert!(matches!(err, ToolchainError::DigestMismatch { .. }), "{err}");
    s.assert_nothing_cached();
}
