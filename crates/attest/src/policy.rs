//! Verification policy: a small TOML file saying which attestations to accept.
//!
//! ```toml
//! version = 1
//! threshold = 1                       # distinct trusted keys that must have signed
//! max_age = "30d"                     # w, d, h, m, s
//! predicate_types = ["https://slsa.dev/provenance/v1"]
//!
//! [provenance]                        # rules for SLSA Provenance v1 statements
//! builder_ids = ["https://reprove.example/builder"]
//! source_repositories = ["git+https://example.com/org/*"]
//! toolchain_digests = ["sha256:…"]
//!
//! [vsa]                               # rules for SLSA VSA v1 statements
//! verifier_ids = ["https://reprove.example/verifier"]
//! verification_result = "PASSED"
//! verified_levels = ["REPROVE_REPRODUCED"]
//!
//! [certificate]                       # certificate bundles: who may have signed
//! identities = [
//!   { subject = "release@example.com", issuer = "https://accounts.example.com" },
//!   { subject_regexp = "^https://ci\\.example/acme/", issuer = "https://ci.example" },
//! ]
//! ```
//!
//! Every key is optional except `version`; an absent rule accepts anything. Unknown keys
//! are errors, so a misspelt rule is never silently ignored. `predicate_types`, when
//! absent, defaults to the types that have a section (any type when none has). The
//! schema is `schemas/policy.schema.json`; examples are in `examples/policies/`.
//!
//! [`Policy::evaluate`] returns one [`RuleOutcome`] per rule that applies, named as the
//! key is written in the file (`provenance.builder_ids`), so a rejection says which
//! line of the policy refused it and why. The threshold is enforced by the caller when
//! it verifies signatures ([`Policy::threshold`]).

use serde::Deserialize;

use crate::certificate::{IdentityRule, Matcher, SignerIdentity};
use crate::provenance::{Provenance, PREDICATE_TYPE_PROVENANCE_V1};
use crate::statement::Statement;
use crate::vsa::{VerificationResult, VerificationSummary, PREDICATE_TYPE_VSA_V1};
use stdx::time::{format_rfc3339, parse_duration, parse_rfc3339};

/// The only policy format version.
pub const POLICY_VERSION: u32 = 1;

/// How far in the future a statement's time may be (clock skew) before it is refused.
pub const CLOCK_SKEW_SECONDS: i64 = 300;

/// Why a policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not TOML, or TOML of the wrong shape (unknown key, wrong type).
    #[error("policy line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A rule whose value cannot be used.
    #[error("policy rule {rule}: {reason}")]
    Invalid {
        /// The rule, as written in the file.
        rule: String,
        /// Why its value is unusable.
        reason: String,
    },
}

/// A parsed, checked policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Always [`POLICY_VERSION`].
    pub version: u32,
    /// Distinct trusted keys that must have signed.
    #[serde(default)]
    pub threshold: Option<usize>,
    /// The oldest a statement may be, as a duration (`30d`).
    #[serde(default)]
    pub max_age: Option<String>,
    /// The predicate types accepted.
    #[serde(default)]
    pub predicate_types: Vec<String>,
    /// Rules for provenance statements.
    #[serde(default)]
    pub provenance: Option<ProvenanceRules>,
    /// Rules for VSA statements.
    #[serde(default)]
    pub vsa: Option<VsaRules>,
    /// Who may have signed, for attestations in certificate bundles.
    #[serde(default)]
    pub certificate: Option<CertificateRules>,
    #[serde(skip)]
    max_age_seconds: Option<i64>,
}

/// Rules that apply to SLSA Provenance v1 statements.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenanceRules {
    /// Accepted `runDetails.builder.id`s.
    #[serde(default)]
    pub builder_ids: Vec<String>,
    /// Glob patterns one of which `externalParameters.source.uri` must match: `*` is any
    /// run of characters but `/`, `**` any run at all, `?` one character but `/`.
    #[serde(default)]
    pub source_repositories: Vec<String>,
    /// Accepted toolchain image digests (`sha256:…`): the digest in
    /// `externalParameters.toolchain` and of every `oci://` resolved dependency.
    #[serde(default)]
    pub toolchain_digests: Vec<String>,
}

/// Signer identities accepted in certificate bundles (`[certificate]`): the
/// certificate must match one of them. With this section, an attestation verified
/// with `--key` (no certificate) fails the rule.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRules {
    /// The accepted identities; at least one.
    pub identities: Vec<IdentitySpec>,
}

/// One accepted identity: exactly one of `subject`/`subject_regexp` (a certificate
/// email or URI SAN) and one of `issuer`/`issuer_regexp` (the Fulcio OIDC issuer
/// extension). Regular expressions are RE2 syntax and unanchored, as cosign's.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySpec {
    /// The exact SAN.
    #[serde(default)]
    pub subject: Option<String>,
    /// A regular expression one SAN must match.
    #[serde(default)]
    pub subject_regexp: Option<String>,
    /// The exact OIDC issuer.
    #[serde(default)]
    pub issuer: Option<String>,
    /// A regular expression the OIDC issuer must match.
    #[serde(default)]
    pub issuer_regexp: Option<String>,
}

impl IdentitySpec {
    /// The rule it states, or why it states none.
    pub fn to_rule(&self) -> Result<IdentityRule, IdentityRuleError> {
        self.to_rule_text().map_err(IdentityRuleError)
    }

    fn to_rule_text(&self) -> Result<IdentityRule, String> {
        let matcher = |what: &'static str, exact: &Option<String>, regexp: &Option<String>| match (exact, regexp) {
            (Some(e), None) => Ok(Matcher::Exact(e.clone())),
            (None, Some(r)) => Matcher::regexp(what, r).map_err(|e| e.to_string()),
            (Some(_), Some(_)) => Err(format!("both {what} and {what}_regexp")),
            (None, None) => Err(format!("neither {what} nor {what}_regexp")),
        };
        Ok(IdentityRule {
            subject: matcher("subject", &self.subject, &self.subject_regexp)?,
            issuer: matcher("issuer", &self.issuer, &self.issuer_regexp)?,
        })
    }
}

/// Rules that apply to SLSA VSA v1 statements.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VsaRules {
    /// Accepted `verifier.id`s.
    #[serde(default)]
    pub verifier_ids: Vec<String>,
    /// The `verificationResult` required.
    #[serde(default)]
    pub verification_result: Option<VerificationResult>,
    /// Levels that must all be among `verifiedLevels`.
    #[serde(default)]
    pub verified_levels: Vec<String>,
}

/// The outcome of one rule on one statement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleOutcome {
    /// The rule as written in the policy (`max_age`, `provenance.builder_ids`).
    pub rule: String,
    /// Whether the statement satisfied it.
    pub passed: bool,
    /// What was found, or why it failed.
    pub detail: String,
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

fn is_sha256_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether `text` matches the glob `pattern` (see [`ProvenanceRules::source_repositories`]).
/// Dynamic programming over (pattern, text) positions: linear in their product, whatever
/// the number of stars.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // matches[j]: whether p[i..] matches t[j..], computed for i from the end.
    let mut next = vec![false; t.len() + 1];
    next[t.len()] = true;
    let mut i = p.len();
    while i > 0 {
        let double = i >= 2 && p[i - 2] == '*' && p[i - 1] == '*';
        let start = if double { i - 2 } else { i - 1 };
        let mut current = vec![false; t.len() + 1];
        for j in (0..=t.len()).rev() {
            current[j] = match p[start] {
                '*' if double => next[j] || (j < t.len() && current[j + 1]),
                '*' => next[j] || (j < t.len() && t[j] != '/' && current[j + 1]),
                '?' => j < t.len() && t[j] != '/' && next[j + 1],
                c => j < t.len() && t[j] == c && next[j + 1],
            };
        }
        next = current;
        i = start;
    }
    next[0]
}

impl Policy {
    /// Parses and checks a policy: TOML errors carry their line and column; values that
    /// cannot be used (a bad duration, digest or pattern) name their rule.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let mut policy: Policy = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |span| location(text, span.start));
            PolicyError::Syntax { line, column, message: e.message().trim().to_owned() }
        })?;
        if policy.version != POLICY_VERSION {
            return Err(invalid("version", format!("{} is not a known version (expected 1)", policy.version)));
        }
        if policy.threshold == Some(0) {
            return Err(invalid("threshold", "must be at least 1"));
        }
        if let Some(text) = &policy.max_age {
            let seconds = parse_duration(text)
                .ok_or_else(|| invalid("max_age", format!("{text:?} is not a duration such as \"30d\" or \"12h\"")))?;
            policy.max_age_seconds = Some(seconds);
        }
        if let Some(rules) = &mut policy.provenance {
            for digest in &mut rules.toolchain_digests {
                *digest = digest.to_ascii_lowercase();
                if !is_sha256_digest(digest) {
                    return Err(invalid("provenance.toolchain_digests", format!("{digest:?} is not sha256:<64 hex>")));
                }
            }
            if rules.source_repositories.iter().any(String::is_empty) {
                return Err(invalid("provenance.source_repositories", "an empty pattern"));
            }
        }
        if let Some(rules) = &policy.certificate {
            if rules.identities.is_empty() {
                return Err(invalid("certificate.identities", "lists no identity"));
            }
            for (i, spec) in rules.identities.iter().enumerate() {
                spec.to_rule().map_err(|e| invalid(&format!("certificate.identities[{i}]"), e))?;
            }
        }
        Ok(policy)
    }

    /// The identity rules of `[certificate]`, if the policy has that section.
    pub fn identity_rules(&self) -> Option<Vec<IdentityRule>> {
        // Checked by from_toml: every spec states a rule.
        self.certificate.as_ref().map(|c| c.identities.iter().filter_map(|s| s.to_rule().ok()).collect())
    }

    /// The `certificate.identities` rule for the signer: `signer` is the verified
    /// certificate's identity, `None` when the attestation was verified with a key.
    /// `None` when the policy has no `[certificate]` section.
    pub fn evaluate_signer(&self, signer: Option<&SignerIdentity>) -> Option<RuleOutcome> {
        let rules = self.identity_rules()?;
        let result = match signer {
            None => Err("the attestation was verified with a key, not a certificate; the policy requires a \
                         certificate identity"
                .to_owned()),
            Some(identity) => crate::certificate::match_identity(identity, &rules).map_err(String::from),
        };
        let passed = result.is_ok();
        Some(RuleOutcome { rule: "certificate.identities".to_owned(), passed, detail: result.unwrap_or_else(|e| e) })
    }

    /// The number of distinct trusted keys the policy requires, if it says.
    pub fn threshold(&self) -> Option<usize> {
        self.threshold
    }

    fn accepted_types(&self) -> Vec<&str> {
        if !self.predicate_types.is_empty() {
            return self.predicate_types.iter().map(String::as_str).collect();
        }
        let mut types = Vec::new();
        if self.provenance.is_some() {
            types.push(PREDICATE_TYPE_PROVENANCE_V1);
        }
        if self.vsa.is_some() {
            types.push(PREDICATE_TYPE_VSA_V1);
        }
        types
    }

    /// Applies every rule that concerns `statement` (whose signatures the caller has
    /// already verified), at time `now` (Unix seconds). The statement passes when every
    /// outcome passed.
    pub fn evaluate(&self, statement: &Statement, now: i64) -> Vec<RuleOutcome> {
        let mut out = Vec::new();
        let mut push = |rule: &str, result: Result<String, String>| {
            let passed = result.is_ok();
            out.push(RuleOutcome { rule: rule.to_owned(), passed, detail: result.unwrap_or_else(|e| e) });
        };
        let types = self.accepted_types();
        let kind = statement.predicate_type.as_str();
        if !types.is_empty() {
            let implied = if self.predicate_types.is_empty() { " (implied by the policy's sections)" } else { "" };
            push(
                "predicate_types",
                if types.contains(&kind) {
                    Ok(kind.to_owned())
                } else {
                    Err(format!("predicate type {kind:?} is not one of {types:?}{implied}"))
                },
            );
        }
        // The statement's time, for max_age: when the build finished, or was verified.
        let mut time: Result<(String, &str), String> = Err(format!("a {kind} predicate records no time to check"));
        match kind {
            PREDICATE_TYPE_PROVENANCE_V1 => match serde_json::from_value::<Provenance>(statement.predicate.clone()) {
                Err(e) => {
                    push("predicate", Err(format!("not a SLSA Provenance v1 predicate: {e}")));
                    return out;
                }
                Ok(p) => {
                    let meta = p.run_details.metadata.clone().unwrap_or_default();
                    time = match (meta.finished_on, meta.started_on) {
                        (Some(t), _) => Ok((t, "runDetails.metadata.finishedOn")),
                        (None, Some(t)) => Ok((t, "runDetails.metadata.startedOn")),
                        (None, None) => Err("the provenance records neither finishedOn nor startedOn".to_owned()),
                    };
                    if let Some(rules) = &self.provenance {
                        provenance_rules(rules, &p, &mut push);
                    }
                }
            },
            PREDICATE_TYPE_VSA_V1 => match serde_json::from_value::<VerificationSummary>(statement.predicate.clone()) {
                Err(e) => {
                    push("predicate", Err(format!("not a SLSA VSA v1 predicate: {e}")));
                    return out;
                }
                Ok(v) => {
                    time = Ok((v.time_verified.clone(), "timeVerified"));
                    if let Some(rules) = &self.vsa {
                        vsa_rules(rules, &v, &mut push);
                    }
                }
            },
            _ => {}
        }
        if let (Some(max), Some(text)) = (self.max_age_seconds, &self.max_age) {
            let result = time.and_then(|(stamp, field)| {
                let at = parse_rfc3339(&stamp).ok_or_else(|| format!("{field} {stamp:?} is not an RFC 3339 time"))?;
                let age = now.saturating_sub(at);
                if age < -CLOCK_SKEW_SECONDS {
                    Err(format!("{field} {stamp} is in the future (now {})", format_rfc3339(now)))
                } else if age > max {
                    Err(format!(
                        "{field} {stamp} is {} old, more than {text} (now {})",
                        human(age),
                        format_rfc3339(now)
                    ))
                } else {
                    Ok(format!("{field} {stamp} is {} old, within {text}", human(age.max(0))))
                }
            });
            push("max_age", result);
        }
        out
    }
}

fn human(seconds: i64) -> String {
    match seconds {
        s if s >= 86_400 => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{s}s"),
    }
}

fn one_of(what: &str, value: &str, allowed: &[String]) -> Result<String, String> {
    if allowed.iter().any(|a| a == value) {
        Ok(format!("{what} {value}"))
    } else {
        Err(format!("{what} {value:?} is not one of {allowed:?}"))
    }
}

fn provenance_rules(rules: &ProvenanceRules, p: &Provenance, push: &mut impl FnMut(&str, Result<String, String>)) {
    if !rules.builder_ids.is_empty() {
        push("provenance.builder_ids", one_of("builder id", &p.run_details.builder.id, &rules.builder_ids));
    }
    let params = &p.build_definition.external_parameters;
    if !rules.source_repositories.is_empty() {
        let result = match params.pointer("/source/uri").and_then(|v| v.as_str()) {
            None => Err("externalParameters.source.uri is missing".to_owned()),
            Some(uri) => match rules.source_repositories.iter().find(|p| glob_match(p, uri)) {
                Some(pattern) => Ok(format!("source {uri} matches {pattern:?}")),
                None => Err(format!("source {uri:?} matches none of {:?}", rules.source_repositories)),
            },
        };
        push("provenance.source_repositories", result);
    }
    if !rules.toolchain_digests.is_empty() {
        // The policy's digests are lower-cased when it is read; an attested digest
        // must be written in lower-case hex to match, as in-toto writes them.
        let allowed = |d: &str| rules.toolchain_digests.iter().any(|a| a == d);
        let result = match params.get("toolchain").and_then(|v| v.as_str()) {
            None => Err("externalParameters.toolchain is missing".to_owned()),
            Some(image) => match image.rsplit_once('@').map(|(_, d)| d) {
                None => Err(format!("toolchain {image:?} is not pinned by digest")),
                Some(digest) if !allowed(digest) => {
                    Err(format!("toolchain digest {digest} is not one of {:?}", rules.toolchain_digests))
                }
                Some(digest) => {
                    let stray = p.build_definition.resolved_dependencies.iter().find_map(|d| {
                        let uri = d.uri.as_deref().filter(|u| u.starts_with("oci://"))?;
                        let sha = d.digest.get("sha256").map(|h| format!("sha256:{h}")).unwrap_or_default();
                        (!allowed(&sha)).then(|| format!("resolved dependency {uri} has digest {sha:?}, not allowed"))
                    });
                    stray.map_or_else(|| Ok(format!("toolchain digest {digest}")), Err)
                }
            },
        };
        push("provenance.toolchain_digests", result);
    }
}

fn vsa_rules(rules: &VsaRules, v: &VerificationSummary, push: &mut impl FnMut(&str, Result<String, String>)) {
    if !rules.verifier_ids.is_empty() {
        push("vsa.verifier_ids", one_of("verifier id", &v.verifier.id, &rules.verifier_ids));
    }
    if let Some(want) = rules.verification_result {
        let name = |r: VerificationResult| match r {
            VerificationResult::Passed => "PASSED",
            VerificationResult::Failed => "FAILED",
        };
        let result = if v.verification_result == want {
            Ok(format!("verificationResult {}", name(want)))
        } else {
            Err(format!("verificationResult is {}, the policy requires {}", name(v.verification_result), name(want)))
        };
        push("vsa.verification_result", result);
    }
    if !rules.verified_levels.is_empty() {
        let missing: Vec<&String> = rules.verified_levels.iter().filter(|l| !v.verified_levels.contains(l)).collect();
        let result = if missing.is_empty() {
            Ok(format!("verifiedLevels include {:?}", rules.verified_levels))
        } else {
            Err(format!("verifiedLevels {:?} lack {missing:?}", v.verified_levels))
        };
        push("vsa.verified_levels", result);
    }
}

crate::message_error! {
    /// Why an identity of the policy is not a valid rule.
    IdentityRuleError
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::ResourceDescriptor;

    #[test]
    fn globs() {
        assert!(glob_match("git+https://example.com/org/*", "git+https://example.com/org/app"));
        assert!(!glob_match("git+https://example.com/org/*", "git+https://example.com/org/app/sub"));
        assert!(glob_match("git+https://example.com/**", "git+https://example.com/org/app/sub"));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "a/c") && !glob_match("abc", "abcd"));
        assert!(glob_match("**/x", "a/b/x") && glob_match("*", "") && !glob_match("?", ""));
        assert!(glob_match("a/**", "a/") && glob_match("a**b", "a/x/b") && !glob_match("a*b", "a/x/b"));
        // No exponential backtracking on many stars.
        let text = "a".repeat(5000);
        assert!(!glob_match(&format!("{}b", "*a".repeat(30)), &text));
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let cases = [
            ("version = 1\nthreshold = \"two\"\n", 2, "invalid type"),
            ("version = 1\n[provenance]\nbuilder_id = []\n", 3, "unknown field `builder_id`"),
            ("version = 1\nmax_age = 30d\n", 2, ""),
        ];
        for (text, want_line, want) in cases {
            match Policy::from_toml(text) {
                Err(PolicyError::Syntax { line, column, message }) => {
                    assert_eq!(line, want_line, "{text}: {message}");
                    assert!(column >= 1 && message.contains(want), "{text}: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let err = Policy::from_toml("version = 1\nmax_age = \"30 days\"\n").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("policy rule max_age: \"30 days\" is not a duration such as \"30d\" or \"12h\"")
        );
        assert!(matches!(Policy::from_toml("version = 2"), Err(PolicyError::Invalid { .. })));
    }

    #[test]
    fn certificate_identities() -> Result<(), Box<dyn std::error::Error>> {
        use crate::certificate::SubjectName;
        let policy = Policy::from_toml(
            "version = 1\n[certificate]\nidentities = [{ subject = \"a@example.com\", issuer = \"https://i\" }, \
             { subject_regexp = \"^https://ci/\", issuer_regexp = \"^https://ci$\" }]\n",
        )?;
        let who = |s: SubjectName, i: &str| SignerIdentity { subjects: vec![s], issuer: Some(i.to_owned()) };
        let pass = policy.evaluate_signer(Some(&who(SubjectName::Uri("https://ci/wf".into()), "https://ci")));
        assert!(pass.as_ref().is_some_and(|o| o.passed && o.rule == "certificate.identities"), "{pass:?}");
        let fail = policy.evaluate_signer(Some(&who(SubjectName::Email("a@example.com".into()), "https://other")));
        assert!(fail.as_ref().is_some_and(|o| !o.passed && o.detail.contains("issuer \"https://other\"")), "{fail:?}");
        assert!(policy.evaluate_signer(None).is_some_and(|o| !o.passed && o.detail.contains("verified with a key")));
        for (text, want) in [
            ("[certificate]\nidentities = []\n", "certificate.identities: lists no identity"),
            ("[certificate]\nidentities = [{ subject = \"a\" }]\n", "neither issuer nor issuer_regexp"),
            (
                "[certificate]\nidentities = [{ subject = \"a\", subject_regexp = \"b\", issuer = \"c\" }]\n",
                "both subject",
            ),
            ("[certificate]\nidentities = [{ subject_regexp = \"(\", issuer = \"c\" }]\n", "certificate.identities[0]"),
        ] {
            let err =
                Policy::from_toml(&format!("version = 1\n{text}")).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(want), "{text}: {err}");
        }
        assert!(Policy::from_toml("version = 1\n").map(|p| p.evaluate_signer(None).is_none())?);
        Ok(())
    }

    #[test]
    fn vsa_rules_name_what_failed() -> Result<(), Box<dyn std::error::Error>> {
        let policy = Policy::from_toml(
            "version = 1\nmax_age = \"1d\"\n[vsa]\nverification_result = \"PASSED\"\nverified_levels = [\"REPROVE_REPRODUCED\"]\n",
        )?;
        let predicate = serde_json::json!({
            "verifier": {"id": "v"}, "timeVerified": "2026-01-01T00:00:00Z", "resourceUri": "file:app",
            "policy": {"uri": "p"}, "verificationResult": "FAILED", "verifiedLevels": []
        });
        let statement = Statement::new(vec![ResourceDescriptor::sha256("app", "00")], PREDICATE_TYPE_VSA_V1, predicate);
        let now = parse_rfc3339("2026-01-03T00:00:00Z").ok_or("time")?;
        let outcomes = policy.evaluate(&statement, now);
        let failed: Vec<&str> = outcomes.iter().filter(|o| !o.passed).map(|o| o.rule.as_str()).collect();
        assert_eq!(failed, ["vsa.verification_result", "vsa.verified_levels", "max_age"]);
        assert!(outcomes[0].passed && outcomes[0].rule == "predicate_types");
        Ok(())
    }
    #[test]
    fn toolchain_digests_match_only_in_lower_case_hex() -> Result<(), Box<dyn std::error::Error>> {
        // The policy may write its digests in any case; the attestation must use lower case.
        let upper = format!("sha256:{}", "AB".repeat(32));
        let policy = Policy::from_toml(&format!("version = 1\n[provenance]\ntoolchain_digests = [\"{upper}\"]\n"))?;
        let provenance = |digest: &str| {
            let predicate = serde_json::json!({
                "buildDefinition": {
                    "buildType": "b",
                    "externalParameters": {"toolchain": format!("golang@{digest}")},
                    "resolvedDependencies": [{"uri": "oci://golang", "digest": {"sha256": &digest[7..]}}]
                },
                "runDetails": {"builder": {"id": "x"}, "metadata": {}}
            });
            Statement::new(
                vec![ResourceDescriptor::sha256("app", "00")],
                crate::provenance::PREDICATE_TYPE_PROVENANCE_V1,
                predicate,
            )
        };
        let rule = |s: &Statement| {
            policy.evaluate(s, 0).into_iter().find(|o| o.rule == "provenance.toolchain_digests").map(|o| o.passed)
        };
        assert_eq!(rule(&provenance(&upper.to_ascii_lowercase())), Some(true));
        assert_eq!(rule(&provenance(&upper)), Some(false), "an upper-case attested digest is refused");
        Ok(())
    }
}
