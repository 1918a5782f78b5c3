//! What a job is: the submitted spec, checked strictly, and its idempotency key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest string field a spec accepts.
const MAX_FIELD: usize = 4096;

/// The work a job asks for, as submitted (`POST /v1/jobs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum JobSpec {
    /// Rebuild `source` at `rev` in `toolchain` and judge it against `reference`.
    Verify(VerifySpec),
    /// Audit every Go binary of an image.
    Audit(AuditSpec),
    /// Build `source` at `rev` twice under varied conditions.
    Check(CheckSpec),
    /// Nothing: a load-testing aid, accepted only when the server enables it
    /// ([`JobSpec::parse_with`]); executors return the verdict `noop` at once.
    Noop(NoopSpec),
}

/// A verify job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VerifySpec {
    /// A clone URL or a path on the server.
    pub source: String,
    /// A commit id, tag or branch.
    pub rev: String,
    /// An absolute path on the server, `oci://IMAGE@sha256:…#/PATH`, `sha256:…`, or an
    /// `https://` URL (`http://` to a loopback host where the server allows it).
    pub reference: String,
    /// The toolchain image, pinned by digest.
    pub toolchain: String,
    /// The keys of `reprove.toml`'s `[build]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub recipe: BTreeMap<String, Value>,
    /// Infer the recipe from the reference's build info, below `recipe`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_reference: bool,
    /// The `[[watch]]` that submitted the job (not part of the idempotency key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<String>,
    /// The commit `rev` named when the job was submitted (set by the server, never by the
    /// submitter): part of the key, and what the job builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The SHA-256 (`sha256:…`) of a reference given as a path or a URL, read (downloaded)
    /// when the job was submitted (set by the server), or given with a URL by the
    /// submitter (then the worker downloads it and checks it): part of the key in place of
    /// the path or URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_digest: Option<String>,
}

/// An audit job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSpec {
    /// The image, pinned by digest.
    pub image: String,
    /// Only these platforms of an index (`os/arch[/variant]`); empty: every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// Push the signed image VSA to the image's repository (the server needs a key).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub push: bool,
    /// The `[[watch]]` that submitted the job (not part of the idempotency key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<String>,
}

/// A check job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CheckSpec {
    /// A clone URL or a path on the server.
    pub source: String,
    /// A commit id, tag or branch.
    pub rev: String,
    /// The toolchain image, pinned by digest.
    pub toolchain: String,
    /// The keys of `reprove.toml`'s `[build]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub recipe: BTreeMap<String, Value>,
    /// The commit `rev` named when the job was submitted (set by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// A no-op job: `n` only tells one from another (each `n` is other work).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoopSpec {
    /// Any number.
    pub n: u64,
}

/// Why a submitted spec was refused (a 400 or 422 answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Not JSON, or not an object.
    #[error("the body is not a JSON object: {0}")]
    Malformed(String),
    /// `kind` missing or unknown.
    #[error("kind {0:?}: expected \"verify\", \"audit\" or \"check\"")]
    Kind(String),
    /// A field unknown, missing or of the wrong type.
    #[error("{0}")]
    Fields(String),
    /// A field's value is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl SpecError {
    /// A short stable code for the answer and the metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SpecError::Malformed(_) => "malformed-json",
            SpecError::Kind(_) => "unknown-kind",
            SpecError::Fields(_) => "invalid-fields",
            SpecError::Invalid { field: "toolchain", .. } => "unpinned-toolchain",
            SpecError::Invalid { field: "image", .. } => "unpinned-image",
            SpecError::Invalid { field: "reference", .. } => "invalid-reference",
            SpecError::Invalid { field: "recipe", .. } => "invalid-recipe",
            SpecError::Invalid { .. } => "invalid-field",
        }
    }
}

impl JobSpec {
    /// Parses and checks a submitted body (no-op jobs refused as an unknown kind).
    pub fn parse(body: &[u8]) -> Result<JobSpec, SpecError> {
        JobSpec::parse_with(body, false)
    }

    /// [`JobSpec::parse`], with no-op jobs accepted when `noop` is set.
    pub fn parse_with(body: &[u8], noop: bool) -> Result<JobSpec, SpecError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| SpecError::Malformed(e.to_string()))?;
        let Value::Object(mut map) = value else {
            return Err(SpecError::Malformed("expected an object".into()));
        };
        let kind = match map.remove("kind") {
            Some(Value::String(k)) => k,
            Some(other) => return Err(SpecError::Kind(other.to_string())),
            None => return Err(SpecError::Kind(String::new())),
        };
        let fields = |e: serde_json::Error| SpecError::Fields(e.to_string());
        let spec = match kind.as_str() {
            "verify" => JobSpec::Verify(serde_json::from_value(Value::Object(map)).map_err(fields)?),
            "audit" => JobSpec::Audit(serde_json::from_value(Value::Object(map)).map_err(fields)?),
            "check" => JobSpec::Check(serde_json::from_value(Value::Object(map)).map_err(fields)?),
            "noop" if noop => JobSpec::Noop(serde_json::from_value(Value::Object(map)).map_err(fields)?),
            _ => return Err(SpecError::Kind(kind)),
        };
        let server_set = match &spec {
            JobSpec::Verify(v) if v.commit.is_some() => Some("commit is set by the server (what rev named at submission)"),
            // A URL's digest may be given (a release's checksum): the download then moves
            // to the worker, which checks it. A path's is always read by the server.
            JobSpec::Verify(v) if v.reference_digest.is_some() && !crate::fetch::is_url(&v.reference) => {
                Some("referenceDigest is set by the server for a reference path (its content at submission); give it only with an https:// reference")
            }
            JobSpec::Check(c) if c.commit.is_some() => Some("commit is set by the server (what rev named at submission)"),
            _ => None,
        };
        if let Some(message) = server_set {
            return Err(SpecError::Fields(message.to_string()));
        }
        spec.check()?;
        Ok(spec)
    }

    /// Checks a spec made in code as [`JobSpec::parse`] checks a submitted one.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.check()
    }

    fn check(&self) -> Result<(), SpecError> {
        match self {
            JobSpec::Verify(v) => {
                source_rev(&v.source, &v.rev)?;
                check_commit(v.commit.as_deref())?;
                if v.reference_digest.as_deref().is_some_and(|d| !valid_digest(d)) {
                    return Err(SpecError::Invalid {
                        field: "referenceDigest",
                        message: "expected sha256: and 64 hexadecimal digits".into(),
                    });
                }
                pinned("toolchain", &v.toolchain)?;
                check_reference(&v.reference)?;
                check_watch(v.watch.as_deref())?;
                check_recipe(&v.recipe)
            }
            JobSpec::Audit(a) => {
                pinned("image", &a.image)?;
                if a.platforms.len() > 64 {
                    return Err(SpecError::Invalid { field: "platforms", message: "more than 64".into() });
                }
                for p in &a.platforms {
                    text("platforms", p)?;
                    let parts = p.split('/').count();
                    if !(2..=3).contains(&parts) || p.split('/').any(str::is_empty) {
                        return Err(SpecError::Invalid {
                            field: "platforms",
                            message: format!("{p:?}: expected os/arch or os/arch/variant"),
                        });
                    }
                }
                check_watch(a.watch.as_deref())
            }
            JobSpec::Check(c) => {
                source_rev(&c.source, &c.rev)?;
                check_commit(c.commit.as_deref())?;
                pinned("toolchain", &c.toolchain)?;
                check_recipe(&c.recipe)
            }
            JobSpec::Noop(_) => Ok(()),
        }
    }

    /// `verify`, `audit`, `check` or `noop`.
    pub fn kind(&self) -> &'static str {
        match self {
            JobSpec::Verify(_) => "verify",
            JobSpec::Audit(_) => "audit",
            JobSpec::Check(_) => "check",
            JobSpec::Noop(_) => "noop",
        }
    }

    /// The image the job is about (the reference's image, the audited image), if any.
    pub fn image(&self) -> Option<String> {
        match self {
            JobSpec::Verify(v) => {
                v.reference.strip_prefix("oci://").and_then(|r| r.split_once('#')).map(|(i, _)| i.into())
            }
            JobSpec::Audit(a) => Some(a.image.clone()),
            JobSpec::Check(_) | JobSpec::Noop(_) => None,
        }
    }

    /// The `[[watch]]` that submitted the job, if one did.
    pub fn watch(&self) -> Option<&str> {
        match self {
            JobSpec::Verify(v) => v.watch.as_deref(),
            JobSpec::Audit(a) => a.watch.as_deref(),
            JobSpec::Check(_) | JobSpec::Noop(_) => None,
        }
    }

    /// The digest (`sha256:…`) of [`JobSpec::image`].
    pub fn image_digest(&self) -> Option<String> {
        self.image().and_then(|i| i.rsplit_once('@').map(|(_, d)| d.to_string()))
    }

    /// The idempotency key: SHA-256 of the canonical JSON of what determines the result
    /// (kind, source and commit, reference, recipe, toolchain digest; the image digest
    /// of an audit, and its platforms when it names some). Object keys are sorted, so key
    /// order in the body does not matter. Who submitted it (`watch`) and whether the
    /// result is pushed are not part of it: the same work is one job.
    ///
    /// The commit is the one `rev` named at submission ([`VerifySpec::commit`], set by
    /// the server): a tag and its commit are one job, a branch that moved is another. A
    /// reference given as a path or a URL counts by its content
    /// ([`VerifySpec::reference_digest`]): the same URL serving new content is new work,
    /// the same content at another URL the same work.
    /// A spec made in code without them is keyed by `rev` and `reference` as written.
    pub fn key(&self) -> String {
        let digest = |image: &str| image.rsplit_once('@').map_or(image, |(_, d)| d).to_string();
        let commit = |commit: &Option<String>, rev: &str| commit.clone().unwrap_or_else(|| rev.to_string());
        let canonical = match self {
            JobSpec::Verify(v) => serde_json::json!({
                "kind": "verify", "source": v.source, "commit": commit(&v.commit, &v.rev),
                "reference": v.reference_digest.as_ref().unwrap_or(&v.reference),
                "toolchain": digest(&v.toolchain), "recipe": v.recipe, "fromReference": v.from_reference,
            }),
            JobSpec::Audit(a) if a.platforms.is_empty() => {
                serde_json::json!({"kind": "audit", "image": digest(&a.image)})
            }
            JobSpec::Audit(a) => {
                let platforms: std::collections::BTreeSet<&String> = a.platforms.iter().collect();
                serde_json::json!({"kind": "audit", "image": digest(&a.image), "platforms": platforms})
            }
            JobSpec::Check(c) => serde_json::json!({
                "kind": "check", "source": c.source, "commit": commit(&c.commit, &c.rev), "toolchain": digest(&c.toolchain), "recipe": c.recipe,
            }),
            JobSpec::Noop(n) => serde_json::json!({"kind": "noop", "n": n.n}),
        };
        stdx::sha256_hex(canonical.to_string().as_bytes())
    }

    /// The commit the job builds: the one `rev` named at submission, else `rev`.
    pub fn commit(&self) -> Option<&str> {
        match self {
            JobSpec::Verify(v) => Some(v.commit.as_deref().unwrap_or(&v.rev)),
            JobSpec::Check(c) => Some(c.commit.as_deref().unwrap_or(&c.rev)),
            JobSpec::Audit(_) | JobSpec::Noop(_) => None,
        }
    }

    /// The job id of this spec: the first 32 hex digits of its key.
    pub fn id(&self) -> String {
        self.key()[..32].to_string()
    }
}

/// Why a reference file could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct FileDigestError {
    /// The file.
    pub path: String,
    /// What is wrong (missing, not a regular file, too large, unreadable).
    pub reason: String,
}

/// `sha256:` and the hex SHA-256 of the regular file at `path`, read streaming, at most
/// `max` bytes: what a reference given as a path is keyed by.
pub fn file_digest(path: &std::path::Path, max: u64) -> Result<String, FileDigestError> {
    use std::io::Read as _;
    let fail = |reason: String| FileDigestError { path: path.display().to_string(), reason };
    use std::os::unix::fs::OpenOptionsExt as _;
    // Non-blocking: opening a FIFO the path names must not hang the request (a regular
    // file ignores the flag); what is not a regular file is refused below.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| fail(e.to_string()))?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let too_large = || fail(format!("larger than the {max} bytes the server reads"));
    if meta.len() > max {
        return Err(too_large());
    }
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let mut reader = file.take(max.saturating_add(1));
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > max {
            return Err(too_large());
        }
        sha2::Digest::update(&mut hasher, &buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(sha2::Digest::finalize(hasher))))
}

/// Whether `id` has the shape of a job id (32 lowercase hex digits); anything else,
/// a path included, is refused before it reaches the queue.
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `sha256:` and 64 lowercase hex digits.
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

fn text(field: &'static str, v: &str) -> Result<(), SpecError> {
    let bad = |m: &str| Err(SpecError::Invalid { field, message: m.to_string() });
    if v.is_empty() {
        return bad("empty");
    }
    if v.len() > MAX_FIELD {
        return bad(&format!("longer than {MAX_FIELD} bytes"));
    }
    if v.chars().any(char::is_control) {
        return bad("contains control characters");
    }
    if v.starts_with('-') {
        return bad("starts with '-'");
    }
    Ok(())
}

/// A watch name: what `[[watch]]` accepts (letters, digits, `-`, `_`, `.`; at most 64).
pub fn valid_watch_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_watch(watch: Option<&str>) -> Result<(), SpecError> {
    match watch {
        Some(w) if !valid_watch_name(w) => Err(SpecError::Invalid {
            field: "watch",
            message: format!("{w:?}: letters, digits, '-', '_' and '.', at most 64"),
        }),
        _ => Ok(()),
    }
}

fn source_rev(source: &str, rev: &str) -> Result<(), SpecError> {
    text("source", source)?;
    text("rev", rev)?;
    if rev.chars().any(char::is_whitespace) {
        return Err(SpecError::Invalid { field: "rev", message: "contains whitespace".into() });
    }
    Ok(())
}

fn check_commit(commit: Option<&str>) -> Result<(), SpecError> {
    match commit {
        Some(c) if !is_full_commit(c) => Err(SpecError::Invalid {
            field: "commit",
            message: format!("{c:?}: expected a full commit id (40 lowercase hexadecimal digits)"),
        }),
        _ => Ok(()),
    }
}

/// Whether `rev` is a full commit id as the server stores it: 40 lowercase hex digits.
pub fn is_full_commit(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn pinned(field: &'static str, image: &str) -> Result<oci::PinnedImage, SpecError> {
    text(field, image)?;
    if !image.rsplit_once('@').is_some_and(|(_, d)| valid_digest(d)) {
        return Err(SpecError::Invalid {
            field,
            message: format!("{image:?} is not pinned: expected IMAGE@sha256: and 64 hexadecimal digits"),
        });
    }
    image.parse::<oci::PinnedImage>().map_err(|e| SpecError::Invalid { field, message: e.to_string() })
}

fn check_reference(reference: &str) -> Result<(), SpecError> {
    text("reference", reference)?;
    let bad = |m: String| Err(SpecError::Invalid { field: "reference", message: m });
    if let Some(rest) = reference.strip_prefix("oci://") {
        let Some((image, path)) = rest.split_once('#') else {
            return bad(format!("{reference:?}: expected oci://IMAGE@sha256:…#/PATH"));
        };
        pinned("reference", image)?;
        if !path.starts_with('/') || path.ends_with('/') {
            return bad(format!("{reference:?}: the path in the image must be absolute and name a file"));
        }
        Ok(())
    } else if reference.starts_with("sha256:") {
        if valid_digest(reference) {
            Ok(())
        } else {
            bad(format!("{reference:?}: expected sha256: and 64 hexadecimal digits"))
        }
    } else if reference.starts_with('/') {
        Ok(())
    } else if crate::fetch::is_url(reference) {
        crate::fetch::check_url(reference).map(|_| ()).or_else(|e| bad(e.0))
    } else {
        bad(format!(
            "{reference:?}: expected an absolute path, oci://IMAGE@sha256:…#/PATH, sha256:… or an https:// URL"
        ))
    }
}

/// The recipe must be a `[build]` table of `reprove.toml`: the same keys, the same checks.
fn check_recipe(recipe: &BTreeMap<String, Value>) -> Result<(), SpecError> {
    build_partial(recipe).map(|_| ())
}

/// The recipe of a job as a recipe layer (its values' origin: the job).
pub fn build_partial(recipe: &BTreeMap<String, Value>) -> Result<recipe::merge::Partial, SpecError> {
    let map: serde_json::Map<String, Value> = recipe.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let build: recipe::file::BuildEntry = serde_json::from_value(Value::Object(map))
        .map_err(|e| SpecError::Invalid { field: "recipe", message: e.to_string() })?;
    let file = recipe::RecipeFile { path: "job".into(), build, builds: BTreeMap::new() };
    file.partial(None).map_err(|e| SpecError::Invalid { field: "recipe", message: e.to_string() })
}
