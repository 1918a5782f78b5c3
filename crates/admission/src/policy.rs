//! The admission policy: a TOML file saying whose VSAs are trusted and what an image
//! needs to be admitted (`schemas/admission-policy.schema.json`, examples in
//! `examples/policies/admission-*.toml`).
//!
//! ```toml
//! version = 1
//! mode = "enforce"              # or "warn": denials are allowed with a warning
//! on_error = "deny"             # or "allow-with-warning": what a registry failure means
//! expiry_warning = "7d"         # warn about VSAs that expire within this
//!
//! [[verifiers]]                 # trusted verifiers: a key (cosign's PEM format) ...
//! name = "ci"
//! key = "keys/ci.pub"           # relative to the policy file
//! [[verifiers]]                 # ... or a certificate identity with its issuer
//! name = "auditor"
//! subject = "auditor@example.com"
//! issuer = "https://accounts.example.com"
//! trusted_root = "trusted_root.json"
//!
//! [default]                     # what every image needs unless a rule says otherwise
//! threshold = 1                 # PASSED VSAs from this many distinct verifiers
//! max_age = "30d"               # the oldest timeVerified accepted
//! coverage = "image"            # the audit's image VSA (every Go binary reproduced)
//!
//! [[rules]]                     # first match wins; unset keys come from [default]
//! namespaces = ["prod-*"]       # globs; absent: any namespace
//! images = ["registry.example/acme/*"]   # globs on registry/repository; absent: any
//! threshold = 2
//! paths = ["/usr/bin/app"]      # coverage by per-binary VSAs of these paths
//!
//! [[exemptions]]
//! image = "registry.example/legacy/*"
//! namespace = "legacy"          # optional glob
//! expires = "2027-01-01T00:00:00Z"
//! reason = "replaced by acme/app in Q1"
//! ```
//!
//! Unknown keys are errors with their line and column, as in `attest::policy`. Globs
//! are `attest::policy::glob_match`'s: `*` any run but `/`, `**` any run, `?` one
//! character but `/`.

use std::path::{Path, PathBuf};

use attest::cert_verify::SctCheck;
use attest::keys::PublicKey;
use attest::policy::{glob_match, IdentitySpec};
use attest::trust_root::TrustMaterial;
use attest::verify::{CertificateTrust, Signers, TrustedKeys};
use serde::{Deserialize, Serialize};

/// The only admission policy format version.
pub const POLICY_VERSION: u32 = 1;

/// Why an admission policy cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not TOML, or TOML of the wrong shape (unknown key, wrong type).
    #[error("policy line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A value that cannot be used.
    #[error("policy {rule}: {reason}")]
    Invalid {
        /// Where, as the file writes it (`rules[1].threshold`).
        rule: String,
        /// Why.
        reason: String,
    },
    /// A file the policy names cannot be read.
    #[error("policy {rule}: reading {}: {source}", path.display())]
    Read {
        /// Where the file is named.
        rule: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Whether a denial denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A denial denies.
    #[default]
    Enforce,
    /// A denial is allowed, with a warning.
    Warn,
}

/// What a registry failure (an outage, a refused request, a malformed answer) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// The image is denied (fail closed).
    #[default]
    Deny,
    /// The image is allowed, with a warning.
    AllowWithWarning,
}

/// Which binaries of an image the VSAs must cover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Coverage {
    /// The audit's image VSA: every Go binary of the image reproduced.
    Image,
    /// A per-binary VSA for each of these paths in the image.
    Paths(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum CoverageKind {
    Image,
    Paths,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    on_error: OnError,
    #[serde(default)]
    expiry_warning: Option<String>,
    #[serde(default)]
    verifiers: Vec<VerifierSpec>,
    #[serde(default)]
    default: Option<RequirementSpec>,
    #[serde(default)]
    rules: Vec<RuleSpec>,
    #[serde(default)]
    exemptions: Vec<ExemptionSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifierSpec {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    subject_regexp: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    issuer_regexp: Option<String>,
    #[serde(default)]
    trusted_root: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequirementSpec {
    #[serde(default)]
    threshold: Option<usize>,
    #[serde(default)]
    max_age: Option<String>,
    #[serde(default)]
    coverage: Option<CoverageKind>,
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default)]
    verifier_ids: Option<Vec<String>>,
    #[serde(default)]
    mode: Option<Mode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    threshold: Option<usize>,
    #[serde(default)]
    max_age: Option<String>,
    #[serde(default)]
    coverage: Option<CoverageKind>,
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default)]
    verifier_ids: Option<Vec<String>>,
    #[serde(default)]
    mode: Option<Mode>,
}

impl RuleSpec {
    fn requirement(&self) -> RequirementSpec {
        RequirementSpec {
            threshold: self.threshold,
            max_age: self.max_age.clone(),
            coverage: self.coverage,
            paths: self.paths.clone(),
            verifier_ids: self.verifier_ids.clone(),
            mode: self.mode,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExemptionSpec {
    image: String,
    #[serde(default)]
    namespace: Option<String>,
    expires: String,
    reason: String,
}

/// A trusted verifier: who may have signed a VSA.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Its name, for messages (`verifiers[0]` when the file gives none).
    pub name: String,
    /// How its signature is checked.
    pub signers: Signers,
}

/// The maximum age of a VSA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaxAge {
    /// As written (`30d`).
    pub text: String,
    /// In seconds.
    pub seconds: i64,
}

/// What an image needs, after `[default]` filled a rule's unset keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirements {
    /// Distinct trusted verifiers whose PASSED VSAs are needed.
    pub threshold: usize,
    /// The oldest `timeVerified` accepted.
    pub max_age: Option<MaxAge>,
    /// What the VSAs must cover.
    pub coverage: Coverage,
    /// Accepted `verifier.id`s of the VSA (empty: any).
    pub verifier_ids: Vec<String>,
    /// Enforce or warn.
    pub mode: Mode,
}

/// A rule: which images and namespaces, and what they need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `rules[N]` or `default`.
    pub name: String,
    /// Namespace globs (empty: any).
    pub namespaces: Vec<String>,
    /// Image globs on `registry/repository` (empty: any).
    pub images: Vec<String>,
    /// What a matching image needs.
    pub requirements: Requirements,
}

impl Rule {
    /// Whether the rule applies to the image `name` (`registry/repository`) in `namespace`.
    pub fn matches(&self, name: &str, namespace: &str) -> bool {
        (self.namespaces.is_empty() || self.namespaces.iter().any(|g| glob_match(g, namespace)))
            && (self.images.is_empty() || self.images.iter().any(|g| glob_match(g, name)))
    }
}

/// An exemption: images admitted without VSAs until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exemption {
    /// `exemptions[N]`.
    pub name: String,
    /// The image glob on `registry/repository`.
    pub image: String,
    /// The namespace glob, if any.
    pub namespace: Option<String>,
    /// When it stops applying (Unix seconds).
    #[serde(skip)]
    pub expires_unix: i64,
    /// When it stops applying, as written.
    pub expires: String,
    /// Why it exists.
    pub reason: String,
}

impl Exemption {
    /// Whether it names the image `name` in `namespace` (expired or not).
    pub fn matches(&self, name: &str, namespace: &str) -> bool {
        glob_match(&self.image, name) && self.namespace.as_ref().is_none_or(|g| glob_match(g, namespace))
    }
}

/// A parsed, checked admission policy with its keys and trust roots loaded.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Enforce or warn (a rule may say otherwise).
    pub mode: Mode,
    /// What a registry failure means.
    pub on_error: OnError,
    /// Warn about accepted VSAs that expire within this many seconds.
    pub expiry_warning_seconds: Option<i64>,
    /// The trusted verifiers.
    pub verifiers: Vec<Verifier>,
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// What an image no rule matches needs.
    pub default: Rule,
    /// The exemptions, in order.
    pub exemptions: Vec<Exemption>,
    /// SHA-256 of the policy text (hex), for caches keyed by policy.
    pub digest: String,
}

fn location(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn invalid(rule: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError::Invalid { rule: rule.to_owned(), reason: reason.into() }
}

/// Parses `YYYY-MM-DD` (the start of that day, UTC) or an RFC 3339 date-time.
fn parse_expiry(text: &str) -> Option<i64> {
    if text.len() == 10 {
        return stdx::time::parse_rfc3339(&format!("{text}T00:00:00Z"));
    }
    stdx::time::parse_rfc3339(text)
}

fn check_globs(rule: &str, globs: &[String]) -> Result<(), PolicyError> {
    if globs.iter().any(|g| g.trim().is_empty()) {
        return Err(invalid(rule, "an empty pattern"));
    }
    Ok(())
}

fn requirements(
    at: &str,
    spec: &RequirementSpec,
    base: Option<&Requirements>,
    verifiers: usize,
    mode: Mode,
) -> Result<Requirements, PolicyError> {
    let threshold = spec.threshold.or(base.map(|b| b.threshold)).unwrap_or(1);
    if threshold == 0 {
        return Err(invalid(&format!("{at}.threshold"), "must be at least 1"));
    }
    if threshold > verifiers {
        return Err(invalid(
            &format!("{at}.threshold"),
            format!("{threshold} distinct verifiers required, but the policy trusts {verifiers}"),
        ));
    }
    let max_age = match &spec.max_age {
        Some(text) => Some(MaxAge {
            text: text.clone(),
            seconds: stdx::time::parse_duration(text).ok_or_else(|| {
                invalid(&format!("{at}.max_age"), format!("{text:?} is not a duration such as \"30d\" or \"12h\""))
            })?,
        }),
        None => base.and_then(|b| b.max_age.clone()),
    };
    let coverage = match (spec.coverage, &spec.paths) {
        (Some(CoverageKind::Image), Some(_)) => {
            return Err(invalid(&format!("{at}.paths"), "coverage \"image\" takes no paths"));
        }
        (Some(CoverageKind::Image), None) => Coverage::Image,
        (Some(CoverageKind::Paths) | None, Some(paths)) => {
            if paths.is_empty() {
                return Err(invalid(&format!("{at}.paths"), "lists no path"));
            }
            if let Some(p) = paths.iter().find(|p| !p.starts_with('/')) {
                return Err(invalid(&format!("{at}.paths"), format!("{p:?} is not an absolute path in the image")));
            }
            Coverage::Paths(paths.clone())
        }
        (Some(CoverageKind::Paths), None) => {
            return Err(invalid(&format!("{at}.coverage"), "\"paths\" needs the paths (paths = [\"/usr/bin/app\"])"));
        }
        (None, None) => base.map_or(Coverage::Image, |b| b.coverage.clone()),
    };
    let verifier_ids = spec.verifier_ids.clone().or(base.map(|b| b.verifier_ids.clone())).unwrap_or_default();
    let mode = spec.mode.or(base.map(|b| b.mode)).unwrap_or(mode);
    Ok(Requirements { threshold, max_age, coverage, verifier_ids, mode })
}

fn verifier(at: &str, spec: &VerifierSpec, dir: &Path) -> Result<Verifier, PolicyError> {
    let read = |what: &str, file: &str| {
        let path = dir.join(file);
        std::fs::read(&path).map_err(|source| PolicyError::Read { rule: format!("{at}.{what}"), path, source })
    };
    let name = spec.name.clone().unwrap_or_else(|| at.to_owned());
    let identity = spec.subject.is_some()
        || spec.subject_regexp.is_some()
        || spec.issuer.is_some()
        || spec.issuer_regexp.is_some()
        || spec.trusted_root.is_some();
    let signers = match (&spec.key, identity) {
        (Some(_), true) => {
            return Err(invalid(at, "a verifier is a key or a certificate identity, not both"));
        }
        (None, false) => {
            return Err(invalid(at, "names neither a key nor a certificate identity (subject, issuer, trusted_root)"));
        }
        (Some(file), false) => {
            let bytes = read("key", file)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| invalid(&format!("{at}.key"), format!("{file}: not a PEM text file")))?;
            let key = PublicKey::from_pem(&text).map_err(|e| invalid(&format!("{at}.key"), format!("{file}: {e}")))?;
            let mut keys = TrustedKeys::default();
            keys.add(key).map_err(|e| invalid(&format!("{at}.key"), e.to_string()))?;
            Signers::Keys(keys)
        }
        (None, true) => {
            let rule = IdentitySpec {
                subject: spec.subject.clone(),
                subject_regexp: spec.subject_regexp.clone(),
                issuer: spec.issuer.clone(),
                issuer_regexp: spec.issuer_regexp.clone(),
            }
            .to_rule()
            .map_err(|e| invalid(at, e.to_string()))?;
            let Some(root) = &spec.trusted_root else {
                return Err(invalid(
                    &format!("{at}.trusted_root"),
                    "a certificate identity needs the trusted root (a Sigstore trusted_root.json) its certificates chain to",
                ));
            };
            let trust = TrustMaterial::from_trusted_root_json(&read("trusted_root", root)?)
                .map_err(|e| invalid(&format!("{at}.trusted_root"), format!("{root}: {e}")))?;
            Signers::Certificate(CertificateTrust {
                trust,
                identities: vec![rule],
                insecure_current_time: false,
                sct: SctCheck::Required,
                signed_timestamps: false,
            })
        }
    };
    Ok(Verifier { name, signers })
}

impl Policy {
    /// Reads the policy file at `path`; the files it names are relative to its directory.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let bytes = std::fs::read(path).map_err(|source| PolicyError::Read {
            rule: "file".to_owned(),
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| invalid("file", format!("not UTF-8 text: {e}")))?;
        Policy::from_toml(&text, path.parent().unwrap_or(Path::new(".")))
    }

    /// Parses and checks a policy; key and trust-root files are read relative to `dir`.
    pub fn from_toml(text: &str, dir: &Path) -> Result<Policy, PolicyError> {
        let file: File = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |span| location(text, span.start));
            PolicyError::Syntax { line, column, message: e.message().trim().to_owned() }
        })?;
        if file.version != POLICY_VERSION {
            return Err(invalid("version", format!("{} is not a known version (expected 1)", file.version)));
        }
        if file.verifiers.is_empty() {
            return Err(invalid("verifiers", "trusts no verifier: every image would be denied"));
        }
        let mut verifiers = Vec::with_capacity(file.verifiers.len());
        for (i, spec) in file.verifiers.iter().enumerate() {
            let v = verifier(&format!("verifiers[{i}]"), spec, dir)?;
            if verifiers.iter().any(|o: &Verifier| o.name == v.name) {
                return Err(invalid(&format!("verifiers[{i}].name"), format!("{:?} names two verifiers", v.name)));
            }
            if let Signers::Keys(keys) = &v.signers {
                let same = verifiers.iter().position(|o: &Verifier| match &o.signers {
                    Signers::Keys(other) => other.keys() == keys.keys(),
                    Signers::Certificate(_) => false,
                });
                if let Some(j) = same {
                    return Err(invalid(
                        &format!("verifiers[{i}].key"),
                        format!("the same key as verifiers[{j}]: distinct verifiers need distinct keys"),
                    ));
                }
            }
            verifiers.push(v);
        }
        let expiry_warning_seconds = match &file.expiry_warning {
            None => None,
            Some(text) => Some(
                stdx::time::parse_duration(text)
                    .ok_or_else(|| invalid("expiry_warning", format!("{text:?} is not a duration such as \"7d\"")))?,
            ),
        };
        let n = verifiers.len();
        let default_spec = file.default.unwrap_or_default();
        let default_requirements = requirements("default", &default_spec, None, n, file.mode)?;
        let mut rules = Vec::with_capacity(file.rules.len());
        for (i, spec) in file.rules.iter().enumerate() {
            let at = format!("rules[{i}]");
            check_globs(&format!("{at}.namespaces"), &spec.namespaces)?;
            check_globs(&format!("{at}.images"), &spec.images)?;
            rules.push(Rule {
                name: at.clone(),
                namespaces: spec.namespaces.clone(),
                images: spec.images.clone(),
                requirements: requirements(&at, &spec.requirement(), Some(&default_requirements), n, file.mode)?,
            });
        }
        let mut exemptions = Vec::with_capacity(file.exemptions.len());
        for (i, spec) in file.exemptions.iter().enumerate() {
            let at = format!("exemptions[{i}]");
            check_globs(&format!("{at}.image"), std::slice::from_ref(&spec.image))?;
            if let Some(ns) = &spec.namespace {
                check_globs(&format!("{at}.namespace"), std::slice::from_ref(ns))?;
            }
            if spec.reason.trim().is_empty() {
                return Err(invalid(&format!("{at}.reason"), "an exemption must say why it exists"));
            }
            let expires_unix = parse_expiry(&spec.expires).ok_or_else(|| {
                invalid(
                    &format!("{at}.expires"),
                    format!("{:?} is not an RFC 3339 date-time (2027-01-01T00:00:00Z) or date", spec.expires),
                )
            })?;
            exemptions.push(Exemption {
                name: at,
                image: spec.image.clone(),
                namespace: spec.namespace.clone(),
                expires_unix,
                expires: stdx::time::format_rfc3339(expires_unix),
                reason: spec.reason.clone(),
            });
        }
        Ok(Policy {
            mode: file.mode,
            on_error: file.on_error,
            expiry_warning_seconds,
            verifiers,
            rules,
            default: Rule {
                name: "default".to_owned(),
                namespaces: Vec::new(),
                images: Vec::new(),
                requirements: default_requirements,
            },
            exemptions,
            digest: stdx::sha256_hex(text.as_bytes()),
        })
    }

    /// The rule for the image `name` (`registry/repository`) in `namespace`: the first
    /// that matches, else the default.
    pub fn rule_for(&self, name: &str, namespace: &str) -> &Rule {
        self.rules.iter().find(|r| r.matches(name, namespace)).unwrap_or(&self.default)
    }

    /// The exemptions that name the image, in order (expired ones too: the decision
    /// says that they no longer apply).
    pub fn exemptions_for<'a>(&'a self, name: &'a str, namespace: &'a str) -> impl Iterator<Item = &'a Exemption> {
        self.exemptions.iter().filter(move |e| e.matches(name, namespace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7Ht5Tl9bM0a0D6hqGv4ZpDBC8d4Z\nqfDMw6w1xTPFu1Mh0tN9Kq2NwG7v0Vq1yY6cHdvJY8JkX0Xo8ZQGJ1q+Ww==\n-----END PUBLIC KEY-----\n";

    fn with_keys(n: usize) -> Result<tempfile::TempDir, std::io::Error> {
        let dir = tempfile::tempdir()?;
        for i in 0..n {
            let (signer, _) = attest::keys::KeySigner::generate(attest::keys::Algorithm::EcdsaP256Sha256)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let key = attest::keys::Signer::public_key(&signer);
            std::fs::write(dir.path().join(format!("k{i}.pub")), key.to_pem())?;
        }
        Ok(dir)
    }

    fn parse(text: &str, dir: &Path) -> Result<Policy, PolicyError> {
        Policy::from_toml(text, dir)
    }

    #[test]
    fn rules_first_match_wins_and_inherit_the_default() -> Result<(), Box<dyn std::error::Error>> {
        let dir = with_keys(2)?;
        let policy = parse(
            r#"version = 1
[[verifiers]]
key = "k0.pub"
[[verifiers]]
name = "second"
key = "k1.pub"
[default]
max_age = "30d"
[[rules]]
namespaces = ["prod-*"]
images = ["reg.example/acme/*"]
threshold = 2
[[rules]]
namespaces = ["prod-*"]
paths = ["/usr/bin/app"]
mode = "warn"
[[rules]]
images = ["reg.example/**"]
max_age = "1d"
"#,
            dir.path(),
        )?;
        assert_eq!(policy.verifiers[0].name, "verifiers[0]");
        assert_eq!(policy.verifiers[1].name, "second");
        let r = policy.rule_for("reg.example/acme/app", "prod-eu");
        assert_eq!((r.name.as_str(), r.requirements.threshold), ("rules[0]", 2));
        assert_eq!(r.requirements.max_age.as_ref().map(|m| m.seconds), Some(30 * 86_400));
        let r = policy.rule_for("reg.example/acme/sub/app", "prod-eu");
        assert_eq!(r.name, "rules[1]");
        assert_eq!(r.requirements.coverage, Coverage::Paths(vec!["/usr/bin/app".into()]));
        assert_eq!((r.requirements.mode, r.requirements.threshold), (Mode::Warn, 1));
        let r = policy.rule_for("reg.example/acme/app", "dev");
        assert_eq!(r.name, "rules[2]");
        assert_eq!(r.requirements.max_age.as_ref().map(|m| m.text.as_str()), Some("1d"));
        let r = policy.rule_for("other.example/x", "dev");
        assert_eq!((r.name.as_str(), &r.requirements.coverage), ("default", &Coverage::Image));
        assert_eq!(policy.mode, Mode::Enforce);
        assert_eq!(policy.on_error, OnError::Deny);
        Ok(())
    }

    #[test]
    fn exemptions_match_images_and_namespaces() -> Result<(), Box<dyn std::error::Error>> {
        let dir = with_keys(1)?;
        let policy = parse(
            r#"version = 1
on_error = "allow-with-warning"
[[verifiers]]
key = "k0.pub"
[[exemptions]]
image = "reg.example/legacy/*"
namespace = "legacy"
expires = "2027-01-01"
reason = "migrating"
"#,
            dir.path(),
        )?;
        assert_eq!(policy.on_error, OnError::AllowWithWarning);
        let e: Vec<&Exemption> = policy.exemptions_for("reg.example/legacy/db", "legacy").collect();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].expires, "2027-01-01T00:00:00Z");
        assert_eq!(policy.exemptions_for("reg.example/legacy/db", "prod").count(), 0);
        assert_eq!(policy.exemptions_for("reg.example/legacy/a/b", "legacy").count(), 0);
        Ok(())
    }

    #[test]
    fn errors_name_their_line_or_rule() -> Result<(), Box<dyn std::error::Error>> {
        let dir = with_keys(2)?;
        let head = "version = 1\n[[verifiers]]\nkey = \"k0.pub\"\n";
        let syntax = [
            (format!("{head}[default]\nthreshhold = 1\n"), 5, "unknown field `threshhold`"),
            ("version = 1\nmode = \"audit\"\n".to_owned(), 2, "unknown variant `audit`"),
            (format!("{head}[[rules]]\nimages = \"x\"\n"), 5, "invalid type"),
            ("version = 1\n[[verifiers]]\nkee = \"k0.pub\"\n".to_owned(), 3, "unknown field `kee`"),
        ];
        for (text, want_line, want) in syntax {
            match parse(&text, dir.path()) {
                Err(PolicyError::Syntax { line, column, message }) => {
                    assert_eq!(line, want_line, "{text}: {message}");
                    assert!(column >= 1 && message.contains(want), "{text}: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let invalid = [
            (format!("{head}[default]\nthreshold = 2\n"), "default.threshold: 2 distinct verifiers required"),
            (format!("{head}[[rules]]\nmax_age = \"a week\"\n"), "rules[0].max_age"),
            (format!("{head}[[rules]]\ncoverage = \"image\"\npaths = [\"/a\"]\n"), "rules[0].paths"),
            (format!("{head}[[rules]]\npaths = [\"bin/a\"]\n"), "not an absolute path"),
            (format!("{head}[[rules]]\ncoverage = \"paths\"\n"), "rules[0].coverage"),
            (
                format!("{head}[[exemptions]]\nimage = \"x\"\nexpires = \"soon\"\nreason = \"r\"\n"),
                "exemptions[0].expires",
            ),
            (
                format!("{head}[[exemptions]]\nimage = \"x\"\nexpires = \"2027-01-01\"\nreason = \" \"\n"),
                "must say why",
            ),
            (format!("{head}[[verifiers]]\nkey = \"k0.pub\"\n"), "the same key as verifiers[0]"),
            ("version = 1\n".to_owned(), "trusts no verifier"),
            ("version = 2\n[[verifiers]]\nkey = \"k0.pub\"\n".to_owned(), "version"),
            ("version = 1\n[[verifiers]]\nkey = \"k0.pub\"\nsubject = \"a\"\n".to_owned(), "not both"),
            ("version = 1\n[[verifiers]]\nsubject = \"a\"\nissuer = \"b\"\n".to_owned(), "trusted root"),
            ("version = 1\n[[verifiers]]\nkey = \"missing.pub\"\n".to_owned(), "verifiers[0].key: reading"),
        ];
        for (text, want) in invalid {
            let err = parse(&text, dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(want), "{text}: {err:?}");
        }
        std::fs::write(dir.path().join("bad.pub"), KEY.replace("MFkw", "AAAA"))?;
        let err = parse("version = 1\n[[verifiers]]\nkey = \"bad.pub\"\n", dir.path()).err().map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.contains("verifiers[0].key: bad.pub")), "{err:?}");
        Ok(())
    }
}
