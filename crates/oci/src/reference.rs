//! Image references (`[registry/]name[:tag][@sha256:…]`), digests and platforms.
//!
//! Parsing follows Docker's rules (`github.com/distribution/reference`): the
//! first path component is a registry host when it contains `.` or `:` or is
//! `localhost`; otherwise the registry is Docker Hub and a one-component name
//! gets the `library/` namespace. Only `sha256` digests are accepted.

use std::fmt;
use std::str::FromStr;

use super::ToolchainError;

/// Docker's default registry for short names (a naming convention, not a host we contact in tests).
const DEFAULT_REGISTRY: &str = "docker.io";
const DEFAULT_NAMESPACE: &str = "library";

/// A `sha256:<64 lowercase hex>` content digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest { hex: stdx::sha256_hex(bytes) }
    }

    /// A digest from a finished SHA-256 hasher.
    pub(crate) fn from_hasher(hasher: sha2::Sha256) -> Digest {
        use sha2::Digest as _;
        Digest { hex: hex::encode(hasher.finalize()) }
    }

    /// The 64 hex digits, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = ToolchainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid =
            |reason: &str| ToolchainError::InvalidDigest { digest: s.to_string(), reason: reason.to_string() };
        let (algorithm, hex) = s.split_once(':').ok_or_else(|| invalid("expected algorithm:hex"))?;
        if algorithm != "sha256" {
            return Err(invalid("only sha256 digests are supported"));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(invalid("expected 64 lowercase hex digits"));
        }
        Ok(Digest { hex: hex.to_string() })
    }
}

/// A parsed image reference: registry, repository, optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// The registry host (with port), e.g. `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, e.g. `library/golang`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference has one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same name and tag, pinned to `digest`.
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef { digest: Some(digest), ..self.clone() }
    }

    /// The same name with `tag` and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, ToolchainError> {
        check_tag(&self.to_string(), tag)?;
        Ok(ImageRef { tag: Some(tag.to_string()), digest: None, ..self.clone() })
    }

    /// The reference as oci-client wants it.
    pub(crate) fn to_oci(&self) -> oci_client::Reference {
        let (registry, repository) = (self.registry.clone(), self.repository.clone());
        match (&self.tag, &self.digest) {
            (Some(tag), Some(digest)) => {
                oci_client::Reference::with_tag_and_digest(registry, repository, tag.clone(), digest.to_string())
            }
            (None, Some(digest)) => oci_client::Reference::with_digest(registry, repository, digest.to_string()),
            (Some(tag), None) => oci_client::Reference::with_tag(registry, repository, tag.clone()),
            (None, None) => oci_client::Reference::with_tag(registry, repository, "latest".to_string()),
        }
    }

    /// The host part of the registry, without port or IPv6 brackets.
    pub(crate) fn registry_host(&self) -> &str {
        registry_host(&self.registry)
    }
}

/// The host of `registry` (`host`, `host:port`, `[v6]:port`).
pub(crate) fn registry_host(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(h, _)| h)
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn check_tag(reference: &str, tag: &str) -> Result<(), ToolchainError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ToolchainError::InvalidReference {
            reference: reference.to_string(),
            reason: format!("invalid tag {tag:?}"),
        })
    }
}

fn check_path_component(c: &str) -> bool {
    // [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    if b.iter().any(|x| x.is_ascii_uppercase()) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

impl FromStr for ImageRef {
    type Err = ToolchainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid =
            |reason: &str| ToolchainError::InvalidReference { reference: s.to_string(), reason: reason.to_string() };
        if s.is_empty() {
            return Err(invalid("empty reference"));
        }
        let (rest, digest) = match s.rsplit_once('@') {
            Some((rest, digest)) => (rest, Some(digest.parse::<Digest>()?)),
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if let Some(tag) = &tag {
            check_tag(s, tag)?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, remainder)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_string(), remainder.to_string())
            }
            Some(_) => (DEFAULT_REGISTRY.to_string(), name.to_string()),
            None => (DEFAULT_REGISTRY.to_string(), format!("{DEFAULT_NAMESPACE}/{name}")),
        };
        let registry = if registry == "index.docker.io" { DEFAULT_REGISTRY.to_string() } else { registry };
        if registry.bytes().any(|b| !(b.is_ascii_alphanumeric() || b".-:[]".contains(&b))) {
            return Err(invalid("invalid registry host"));
        }
        if !repository.split('/').all(check_path_component) {
            return Err(invalid("repository path components must be lowercase letters, digits and separators"));
        }
        if repository.len() + registry.len() + 1 > 255 {
            return Err(invalid("name longer than 255 characters"));
        }
        Ok(ImageRef { registry, repository, tag, digest })
    }
}

/// An image reference that carries a digest: the only kind accepted where pinning matters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PinnedImage {
    reference: ImageRef,
}

impl PinnedImage {
    /// Pins `reference`, or says that it has no digest.
    pub fn new(reference: ImageRef) -> Result<PinnedImage, ToolchainError> {
        if reference.digest.is_none() {
            return Err(ToolchainError::NotPinned { reference: reference.to_string() });
        }
        Ok(PinnedImage { reference })
    }

    /// The digest the image is pinned to.
    pub fn digest(&self) -> &Digest {
        match &self.reference.digest {
            Some(d) => d,
            // The constructor refuses references without a digest.
            None => unreachable!("PinnedImage without a digest"),
        }
    }

    /// The full reference.
    pub fn reference(&self) -> &ImageRef {
        &self.reference
    }
}

impl FromStr for PinnedImage {
    type Err = ToolchainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PinnedImage::new(s.parse()?)
    }
}

impl fmt::Display for PinnedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.reference.fmt(f)
    }
}

/// An OCI platform: `os/architecture[/variant]`, in Go's names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, ….
    pub architecture: String,
    /// `v7`, `v8`, … when the architecture has variants.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this process runs on, with Linux as the OS (toolchain images are Linux images).
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform {
            os: "linux".to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// Whether an index entry's platform matches this one. A missing variant
    /// on either side matches (arm64's `v8` is often omitted).
    pub(crate) fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.architecture == architecture
            && match (self.variant.as_deref(), variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = ToolchainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => {
                Ok(Platform { os: os.to_string(), architecture: arch.to_string(), variant: None })
            }
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => {
                Ok(Platform { os: os.to_string(), architecture: arch.to_string(), variant: Some(variant.to_string()) })
            }
            _ => Err(ToolchainError::InvalidPlatform { platform: s.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(s: &str) -> ImageRef {
        match s.parse() {
            Ok(r) => r,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn docker_defaults() {
        let r = parse("golang");
        assert_eq!((r.registry(), r.repository(), r.tag()), ("docker.io", "library/golang", None));
        assert_eq!(r.to_string(), "docker.io/library/golang");
        let r = parse("golang:1.22.5");
        assert_eq!((r.repository(), r.tag()), ("library/golang", Some("1.22.5")));
        let r = parse("user/img:tag");
        assert_eq!((r.registry(), r.repository()), ("docker.io", "user/img"));
        let r = parse("index.docker.io/library/golang");
        assert_eq!(r.registry(), "docker.io");
    }

    #[test]
    fn registries_tags_digests() {
        let r = parse(&format!("127.0.0.1:5000/go/toolchain:1.22@{D}"));
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.registry_host(), "127.0.0.1");
        assert_eq!(r.repository(), "go/toolchain");
        assert_eq!(r.tag(), Some("1.22"));
        assert_eq!(r.digest().map(ToString::to_string).as_deref(), Some(D));
        let r = parse(&format!("localhost/x@{D}"));
        assert_eq!((r.registry(), r.tag()), ("localhost", None));
        assert_eq!(registry_host("[::1]:5000"), "::1");
        assert_eq!(parse("localhost:5000/a").registry(), "localhost:5000");
    }

    #[test]
    fn invalid_references() {
        for bad in ["", "UPPER/case", "a/b:", "a@sha256:12", "a@md5:00", "a//b", "a/b:-x", "a/-b"] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn pinned_requires_digest() {
        let err = "golang:1.22".parse::<PinnedImage>();
        assert!(matches!(err, Err(ToolchainError::NotPinned { .. })));
        let p: PinnedImage = match format!("golang:1.22@{D}").parse() {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(p.digest().to_string(), D);
    }

    #[test]
    fn platforms() {
        let p: Platform =
            "linux/arm/v7".parse().map_err(|e: ToolchainError| e.to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.variant.as_deref(), Some("v7"));
        assert!(p.matches("linux", "arm", Some("v7")));
        assert!(!p.matches("linux", "arm", Some("v6")));
        assert!("linux".parse::<Platform>().is_err());
        assert_eq!(Platform::host().os, "linux");
    }
}
