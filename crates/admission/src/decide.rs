//! The decision: may this image run in this namespace, from the signed VSAs attached
//! to its digest, under a [`Policy`].
//!
//! [`decide_all`] decides a batch (an AdmissionReview's containers, or every manifest
//! of `reprove admit`): each distinct `(repository, digest)` is fetched once, each
//! distinct tag of a tag-only image resolved once, all of them concurrently (at most
//! [`CONCURRENT_FETCHES`] at a time) and all under one deadline. Nothing here panics
//! on input, and every failure denies unless the policy says otherwise:
//! - an attestation is counted only when `attest::verify` accepts it for one trusted
//!   verifier (signature, statement, VSA predicate type, a subject with the digest,
//!   `verificationResult` PASSED with `REPROVE_REPRODUCED`, the maximum age) and it
//!   covers what the rule requires;
//! - a registry failure is [`Reason::RegistryError`], allowed only with
//!   `on_error = "allow-with-warning"`; an expired deadline (the decision's, or one
//!   of the registry requests') is [`Reason::Deadline`], always a denial (fail closed,
//!   whatever `on_error` says; warn mode still allows it with a warning). Neither is
//!   a verdict about the image: [`Decision::cacheable`] is false for both;
//! - the threshold counts PASSED VSAs: a trusted verifier's FAILED VSA next to enough
//!   PASSED ones does not deny, but warns; without enough, it makes the reason `failed`;
//! - the threshold counts distinct verifiers, each satisfied by its own signer: a VSA
//!   signed with one certificate counts once, however many verifiers' identities match
//!   it (a key verifier's key is never another's: the policy refuses that).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use attach::{AttachError, FetchReport};
use attest::bundle::Attestation;
use attest::image_vsa::{OUTCOME_REPRODUCED, VSA_BINARIES_FIELD};
use attest::statement::Statement;
use attest::verify::{Check, Requirements as VerifyRequirements, Verifier as AttestVerifier};
use attest::vsa::PREDICATE_TYPE_VSA_V1;
use futures_util::StreamExt as _;
use oci::referrers::{Limits, ReferrersError, Repository};
use oci::{Digest, ImageRef, PinnedImage, RegistryOptions};
use serde::Serialize;

use crate::policy::{Coverage, Mode, OnError, Policy, Requirements, Rule};

/// How many registry fetches of one batch run at once.
pub const CONCURRENT_FETCHES: usize = 8;

/// The annotation of an image subject naming the file the VSA is about.
const ANNOTATION_PATH: &str = "reprovePath";

/// Why an image was allowed or denied: a closed set, stable in JSON and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Enough trusted PASSED VSAs cover what the rule requires.
    Passed,
    /// No VSA found for the digest (or the image is not in its registry).
    Missing,
    /// A trusted verifier attests FAILED: the binaries were not reproduced.
    Failed,
    /// The trusted PASSED VSAs are older than the rule's maximum age.
    Expired,
    /// VSAs were found, none signed by a trusted verifier.
    Untrusted,
    /// Trusted PASSED VSAs, from fewer distinct verifiers than the threshold.
    BelowThreshold,
    /// The image is named by tag only: what runs is not pinned.
    TagOnly,
    /// Trusted PASSED VSAs that do not cover what the rule requires.
    NotCovered,
    /// The registry failed (an outage, a refused request, a malformed answer).
    RegistryError,
    /// An exemption of the policy applies.
    Exempt,
    /// The decision's deadline expired before the registry answered.
    Deadline,
    /// The image reference cannot be parsed.
    InvalidReference,
}

impl Reason {
    /// The name, as JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Passed => "passed",
            Reason::Missing => "missing",
            Reason::Failed => "failed",
            Reason::Expired => "expired",
            Reason::Untrusted => "untrusted",
            Reason::BelowThreshold => "below-threshold",
            Reason::TagOnly => "tag-only",
            Reason::NotCovered => "not-covered",
            Reason::RegistryError => "registry-error",
            Reason::Exempt => "exempt",
            Reason::Deadline => "deadline",
            Reason::InvalidReference => "invalid-reference",
        }
    }
}

/// What the user should do about a decision; the caller words it (a CLI names its
/// commands and flags, a webhook its own terms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// Nothing.
    None,
    /// Audit the image by digest and push the signed image VSA next to it.
    AuditImage {
        /// `registry/repository@sha256:…`.
        image: String,
    },
    /// Verify these binaries of the image by digest and push their signed VSAs.
    VerifyPaths {
        /// `registry/repository@sha256:…`.
        image: String,
        /// The paths in the image still needing VSAs.
        paths: Vec<String>,
    },
    /// Pin the image by digest.
    Pin {
        /// The reference to write (`name:tag@sha256:…`), when the registry could resolve the tag.
        reference: Option<String>,
    },
    /// The binaries do not reproduce: fix the build, or exempt the image with a reason.
    Investigate {
        /// `registry/repository@sha256:…`.
        image: String,
    },
    /// Sign VSAs with a key or identity the policy trusts (or trust the signer).
    TrustSigner,
    /// Retry when the registry answers.
    Retry,
    /// Fix the image reference.
    FixReference,
}

/// Why a VSA (or another attestation) of the digest was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rejection {
    /// Not a SLSA VSA (a provenance, an SBOM): not considered.
    NotVsa,
    /// Not a readable DSSE envelope or Sigstore bundle with an in-toto statement.
    Invalid,
    /// Signed by no trusted verifier (or with a verifier id the rule does not accept).
    Untrusted,
    /// Signed by a trusted verifier, but no subject has the digest.
    OtherSubject,
    /// Signed by a trusted verifier, older than the maximum age.
    Expired,
    /// Signed by a trusted verifier, about binaries the rule does not require.
    NotCovered,
    /// Signed by a trusted verifier: FAILED (or without `REPROVE_REPRODUCED`).
    Failed,
}

/// One attestation of the digest and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Considered {
    /// Where it was found (`referrer sha256:…`, `legacy sha256-….att`).
    pub source: String,
    /// The digest of the attestation blob.
    pub digest: String,
    /// Its predicate type, when readable.
    pub predicate_type: Option<String>,
    /// The trusted verifiers for which it passed every check.
    pub verifiers: Vec<String>,
    /// What it covers: `image` (the audit's image VSA) or paths in the image.
    pub covers: Vec<String>,
    /// Its `timeVerified`, when it was accepted.
    pub time_verified: Option<String>,
    /// When it stops being accepted (`timeVerified` + the maximum age).
    pub expires: Option<String>,
    /// Why it was not counted; absent when it was.
    pub rejected: Option<Rejection>,
    /// What was checked, or why it failed.
    pub detail: String,
}

/// The decision about one image in one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The image as given.
    pub image: String,
    /// The namespace.
    pub namespace: String,
    /// The digest decided on (as given, or resolved from the tag of a tag-only image).
    pub digest: Option<String>,
    /// Whether the image may run.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
    /// The rule that applied (`rules[N]`, `default`, `exemptions[N]`).
    pub rule: String,
    /// Whether the rule enforces or warns.
    pub mode: Mode,
    /// What was found, in a sentence.
    pub message: String,
    /// What to do.
    pub action: Action,
    /// Warn-mode denials, allowed registry errors, VSAs about to expire, expired exemptions.
    pub warnings: Vec<String>,
    /// The attestations of the digest and what became of each.
    pub vsas: Vec<Considered>,
    /// When the decision stops holding (the earliest expiry of the VSAs counted, or of
    /// the exemption), for a cache's TTL.
    pub expires: Option<String>,
    /// [`Decision::expires`] in Unix seconds.
    #[serde(skip)]
    pub expires_unix: Option<i64>,
}

impl Decision {
    /// Whether the decision is a verdict about the image that a cache may keep: not a
    /// registry failure nor an expired deadline.
    pub fn cacheable(&self) -> bool {
        !matches!(self.reason, Reason::RegistryError | Reason::Deadline)
    }
}

/// One image to decide on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The image reference, as a Pod spec writes it.
    pub image: String,
    /// The namespace the Pod runs in.
    pub namespace: String,
}

/// Why the registry gave no attestations.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The image (digest or tag) is not in the repository.
    #[error("{image} does not exist in its registry")]
    NotFound {
        /// The image.
        image: String,
    },
    /// A deadline of the registry requests expired (connect, idle or overall).
    #[error("{image}: {source}")]
    Deadline {
        /// The image.
        image: String,
        /// Which deadline.
        #[source]
        source: AttachError,
    },
    /// The registry failed or refused.
    #[error("{image}: {source}")]
    Registry {
        /// The image.
        image: String,
        /// Why.
        #[source]
        source: AttachError,
    },
}

/// Fetches attestations and resolves tags for decisions (the registry is `oci`'s).
#[derive(Debug, Clone)]
pub struct Fetcher {
    options: RegistryOptions,
    limits: Limits,
}

fn fetch_error(image: String, e: AttachError) -> FetchError {
    match e {
        AttachError::Registry(ReferrersError::ImageNotFound { .. }) => FetchError::NotFound { image },
        source @ AttachError::Registry(ReferrersError::Registry(oci::ToolchainError::Deadline(_))) => {
            FetchError::Deadline { image, source }
        }
        source => FetchError::Registry { image, source },
    }
}

impl Fetcher {
    /// A fetcher with the registry `options` (credentials, deadlines) and `limits` per image.
    pub fn new(options: RegistryOptions, limits: Limits) -> Fetcher {
        Fetcher { options, limits }
    }

    /// The attestations attached to `image`'s digest.
    pub async fn attestations(&self, image: &PinnedImage) -> Result<FetchReport, FetchError> {
        let repository = Repository::new(image.reference(), &self.options)
            .map_err(|e| fetch_error(image.to_string(), AttachError::from(ReferrersError::from(e))))?;
        attach::fetch(&repository, image.digest(), self.limits).await.map_err(|e| fetch_error(image.to_string(), e))
    }

    /// The digest the tag of `image` (`latest` when it has none) names now.
    pub async fn resolve(&self, image: &ImageRef) -> Result<Digest, FetchError> {
        let repository = Repository::new(image, &self.options)
            .map_err(|e| fetch_error(image.to_string(), AttachError::from(ReferrersError::from(e))))?;
        repository
            .resolve_tag(image.tag().unwrap_or("latest"))
            .await
            .map_err(|e| fetch_error(image.to_string(), AttachError::from(e)))
    }
}

/// Decides on one image (see [`decide_all`]).
pub async fn decide(image: &str, namespace: &str, policy: &Policy, fetcher: &Fetcher, deadline: Instant) -> Decision {
    let request = Request { image: image.to_owned(), namespace: namespace.to_owned() };
    let mut decisions = decide_all(std::slice::from_ref(&request), policy, fetcher, deadline).await;
    decisions.pop().unwrap_or_else(|| deadline_decision(&request, policy))
}

fn deadline_decision(request: &Request, policy: &Policy) -> Decision {
    let rule = &policy.default;
    finish(
        Decision {
            image: request.image.clone(),
            namespace: request.namespace.clone(),
            digest: None,
            allowed: false,
            reason: Reason::Deadline,
            rule: rule.name.clone(),
            mode: rule.requirements.mode,
            message: "no decision was reached before the deadline".to_owned(),
            action: Action::Retry,
            warnings: Vec::new(),
            vsas: Vec::new(),
            expires: None,
            expires_unix: None,
        },
        policy,
    )
}

/// Decides on each request, in order, now (the system clock). See the module's documentation.
pub async fn decide_all(requests: &[Request], policy: &Policy, fetcher: &Fetcher, deadline: Instant) -> Vec<Decision> {
    decide_all_at(requests, policy, fetcher, deadline, stdx::time::now_unix()).await
}

/// What the registry said about one key of a batch.
enum Fetched {
    Attestations(Result<FetchReport, FetchError>),
    Resolved(Result<Digest, FetchError>),
}

/// A request after parsing: what to fetch for it.
enum Plan {
    Done(Decision),
    Fetch { pinned: PinnedImage, rule: Rule, warnings: Vec<String> },
    Resolve { reference: ImageRef, rule: Rule, warnings: Vec<String> },
}

/// [`decide_all`] at the time `now` (Unix seconds).
pub async fn decide_all_at(
    requests: &[Request],
    policy: &Policy,
    fetcher: &Fetcher,
    deadline: Instant,
    now: i64,
) -> Vec<Decision> {
    let plans: Vec<Plan> = requests.iter().map(|r| plan(r, policy, now)).collect();
    // The distinct keys: (repository, digest) to fetch, repository:tag to resolve.
    let mut keys: BTreeMap<String, (bool, ImageRef, Option<PinnedImage>)> = BTreeMap::new();
    for p in &plans {
        match p {
            Plan::Fetch { pinned, .. } => {
                let key = fetch_key(pinned);
                keys.entry(key).or_insert_with(|| (true, pinned.reference().clone(), Some(pinned.clone())));
            }
            Plan::Resolve { reference, .. } => {
                keys.entry(resolve_key(reference)).or_insert_with(|| (false, reference.clone(), None));
            }
            Plan::Done(_) => {}
        }
    }
    let at = tokio::time::Instant::from_std(deadline);
    let results: BTreeMap<String, Option<Fetched>> = futures_util::stream::iter(keys)
        .map(|(key, (fetch, reference, pinned))| async move {
            let work = async {
                match (fetch, &pinned) {
                    (true, Some(p)) => Fetched::Attestations(fetcher.attestations(p).await),
                    _ => Fetched::Resolved(fetcher.resolve(&reference).await),
                }
            };
            (key, tokio::time::timeout_at(at, work).await.ok())
        })
        .buffer_unordered(CONCURRENT_FETCHES)
        .collect()
        .await;
    plans
        .into_iter()
        .zip(requests)
        .map(|(p, request)| {
            let decision = match p {
                Plan::Done(d) => d,
                Plan::Fetch { pinned, rule, warnings, .. } => {
                    let fetched = results.get(&fetch_key(&pinned));
                    let report = match fetched {
                        Some(Some(Fetched::Attestations(r))) => Some(r),
                        _ => None,
                    };
                    decide_fetched(request, &pinned, report, &rule, policy, warnings, now)
                }
                Plan::Resolve { reference, rule, warnings } => {
                    let resolved = match results.get(&resolve_key(&reference)) {
                        Some(Some(Fetched::Resolved(r))) => Some(r),
                        _ => None,
                    };
                    tag_only(request, &reference, resolved, &rule, warnings)
                }
            };
            finish(decision, policy)
        })
        .collect()
}

fn fetch_key(pinned: &PinnedImage) -> String {
    format!("{}@{}", pinned.reference().name(), pinned.digest())
}

fn resolve_key(reference: &ImageRef) -> String {
    format!("{}:{}", reference.name(), reference.tag().unwrap_or("latest"))
}

fn base(request: &Request, rule: &Rule, reason: Reason, message: String, action: Action) -> Decision {
    Decision {
        image: request.image.clone(),
        namespace: request.namespace.clone(),
        digest: None,
        allowed: reason == Reason::Passed || reason == Reason::Exempt,
        reason,
        rule: rule.name.clone(),
        mode: rule.requirements.mode,
        message,
        action,
        warnings: Vec::new(),
        vsas: Vec::new(),
        expires: None,
        expires_unix: None,
    }
}

/// Parses the request, applies exemptions, and says what to fetch.
fn plan(request: &Request, policy: &Policy, now: i64) -> Plan {
    let reference: ImageRef = match request.image.parse() {
        Ok(r) => r,
        Err(e) => {
            let message = format!("{:?} is not an image reference: {e}", request.image);
            return Plan::Done(base(request, &policy.default, Reason::InvalidReference, message, Action::FixReference));
        }
    };
    let name = reference.name();
    let rule = policy.rule_for(&name, &request.namespace).clone();
    let mut warnings = Vec::new();
    for exemption in policy.exemptions_for(&name, &request.namespace) {
        if now < exemption.expires_unix {
            let message = format!("exempt by {} until {}: {}", exemption.name, exemption.expires, exemption.reason);
            let mut d = base(request, &rule, Reason::Exempt, message, Action::None);
            d.rule = exemption.name.clone();
            d.digest = reference.digest().map(ToString::to_string);
            d.expires = Some(exemption.expires.clone());
            d.expires_unix = Some(exemption.expires_unix);
            return Plan::Done(d);
        }
        warnings.push(format!(
            "{} ({}) expired at {}: it no longer applies",
            exemption.name, exemption.reason, exemption.expires
        ));
    }
    match PinnedImage::new(reference.clone()) {
        Ok(pinned) => Plan::Fetch { pinned, rule, warnings },
        Err(_) => Plan::Resolve { reference, rule, warnings },
    }
}

fn tag_only(
    request: &Request,
    reference: &ImageRef,
    resolved: Option<&Result<Digest, FetchError>>,
    rule: &Rule,
    warnings: Vec<String>,
) -> Decision {
    let tag = reference.tag().unwrap_or("latest");
    let (digest, message, pin) = match resolved {
        Some(Ok(digest)) => {
            let pin = format!("{}:{tag}@{digest}", reference.name());
            (
                Some(digest.to_string()),
                format!("{} is named by tag only; the tag names {digest} now: pin it by digest", request.image),
                Some(pin),
            )
        }
        Some(Err(e)) => {
            (None, format!("{} is named by tag only (the tag could not be resolved: {e})", request.image), None)
        }
        None => (
            None,
            format!("{} is named by tag only (the tag was not resolved before the deadline)", request.image),
            None,
        ),
    };
    let mut d = base(request, rule, Reason::TagOnly, message, Action::Pin { reference: pin });
    d.digest = digest;
    d.warnings = warnings;
    d
}

/// Applies the mode: a denial in warn mode is allowed, with a warning.
fn finish(mut d: Decision, policy: &Policy) -> Decision {
    if d.reason == Reason::RegistryError && policy.on_error == OnError::AllowWithWarning && !d.allowed {
        d.allowed = true;
        d.warnings
            .push(format!("allowed although the registry failed (on_error = \"allow-with-warning\"): {}", d.message));
    }
    if !d.allowed && d.mode == Mode::Warn {
        d.allowed = true;
        d.warnings.push(format!("would be denied ({}): {}", d.reason.as_str(), d.message));
    }
    d
}

/// The attestation policy that a VSA must satisfy for one rule.
fn attest_policy(requirements: &Requirements) -> Result<attest::policy::Policy, String> {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut text = format!("version = 1\npredicate_types = [{}]\n", quote(PREDICATE_TYPE_VSA_V1));
    if let Some(max) = &requirements.max_age {
        text.push_str(&format!("max_age = {}\n", quote(&max.text)));
    }
    text.push_str("[vsa]\nverification_result = \"PASSED\"\n");
    text.push_str(&format!("verified_levels = [{}]\n", quote(attest::generate::LEVEL_REPRODUCED)));
    if !requirements.verifier_ids.is_empty() {
        let ids: Vec<String> = requirements.verifier_ids.iter().map(|s| quote(s)).collect();
        text.push_str(&format!("verifier_ids = [{}]\n", ids.join(", ")));
    }
    attest::policy::Policy::from_toml(&text).map_err(|e| e.to_string())
}

/// How one trusted verifier judged one attestation.
fn classify(checks: &[Check]) -> (Rejection, String) {
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.passed).collect();
    let rule = |name: &str| failed.iter().find(|c| c.name == "policy" && c.rule.as_deref() == Some(name));
    let text = |c: &Check| match &c.rule {
        Some(rule) => format!("{} {rule}: {}", c.name, c.detail),
        None => format!("{}: {}", c.name, c.detail),
    };
    if let Some(c) = rule("vsa.verification_result").or_else(|| rule("vsa.verified_levels")) {
        return (Rejection::Failed, text(c));
    }
    if let Some(c) = rule("max_age") {
        return (Rejection::Expired, text(c));
    }
    let Some(first) = failed.first() else {
        return (Rejection::Invalid, "no check failed, yet it was not accepted".to_owned());
    };
    let kind = match first.name {
        "subject" => Rejection::OtherSubject,
        "predicateType" => Rejection::NotVsa,
        "policy" if first.rule.as_deref() == Some("predicate_types") => Rejection::NotVsa,
        "statement" | "payloadType" => Rejection::Invalid,
        _ => Rejection::Untrusted,
    };
    (kind, text(first))
}

/// What an accepted VSA covers for `hex`: `image` for the audit's image VSA, else the
/// `reprovePath`s of its subjects with that digest.
fn coverage_of(statement: &Statement, hex: &str) -> Vec<String> {
    let mut covers = BTreeSet::new();
    let binaries = statement.predicate.get(VSA_BINARIES_FIELD).and_then(|b| b.as_array());
    for subject in statement.subject.iter().filter(|s| s.digest.get("sha256").is_some_and(|d| d == hex)) {
        match subject.annotations.get(ANNOTATION_PATH).and_then(|p| p.as_str()) {
            Some(path) => {
                covers.insert(path.to_owned());
            }
            None => {
                let every = binaries.is_some_and(|b| {
                    !b.is_empty()
                        && b.iter().all(|x| x.get("outcome").and_then(|o| o.as_str()) == Some(OUTCOME_REPRODUCED))
                });
                if every {
                    covers.insert("image".to_owned());
                }
            }
        }
    }
    covers.into_iter().collect()
}

fn source_text(f: &attach::Fetched) -> String {
    match &f.source {
        attach::Source::Referrer { manifest, .. } => format!("referrer {manifest}"),
        attach::Source::Legacy { tag, .. } => format!("legacy {tag}"),
    }
}

fn time_verified(statement: &Statement) -> Option<i64> {
    statement.predicate.get("timeVerified").and_then(|t| t.as_str()).and_then(stdx::time::parse_rfc3339)
}

fn human(seconds: i64) -> String {
    match seconds {
        s if s >= 86_400 => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}s", s.max(0)),
    }
}

/// One accepted VSA, for the threshold: the trusted verifiers that accepted it, and
/// who signed it.
struct Vote {
    verifiers: Vec<String>,
    signers: Vec<String>,
}

/// Who signed an attestation: the certificate of a certificate bundle (one certificate
/// is one signer, however many VSAs it signed and however many verifiers' identities
/// match it), else each signature of the envelope (distinct keys are distinct
/// verifiers; the same envelope in two layouts has the same signatures).
fn signers_of(attestation: &Attestation) -> Vec<String> {
    let material = attestation.bundle.as_ref().map(|b| &b.verification_material.extra);
    let certificate = material.and_then(|m| {
        m.get("certificate")
            .and_then(|c| c.get("rawBytes"))
            .or_else(|| m.get("x509CertificateChain").and_then(|c| c.pointer("/certificates/0/rawBytes")))
    });
    match certificate {
        Some(raw) => vec![format!("certificate {raw}")],
        None => attestation.envelope.signatures.iter().map(|s| format!("signature {}", s.sig)).collect(),
    }
}

/// The distinct verifiers the votes satisfy when each signer counts for one verifier
/// that accepted a VSA it signed: a maximum matching of verifiers to signers
/// (augmenting paths), so that one signer cannot count for two verifiers whose
/// identities overlap (`subject` and a `subject_regexp` matching it).
fn distinct_verifiers(votes: &[Vote]) -> BTreeSet<String> {
    // signer → the verifiers it may count for.
    let mut accepts: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for vote in votes {
        for signer in &vote.signers {
            accepts.entry(signer.as_str()).or_default().extend(vote.verifiers.iter().map(String::as_str));
        }
    }
    let slots: Vec<&BTreeSet<&str>> = accepts.values().collect();
    let names: BTreeSet<&str> = slots.iter().flat_map(|s| s.iter().copied()).collect();
    let mut holder: Vec<Option<&str>> = vec![None; slots.len()];
    fn augment<'a>(
        name: &'a str,
        slots: &[&BTreeSet<&'a str>],
        holder: &mut [Option<&'a str>],
        seen: &mut [bool],
    ) -> bool {
        for i in 0..slots.len() {
            if seen[i] || !slots[i].contains(name) {
                continue;
            }
            seen[i] = true;
            let free = match holder[i] {
                None => true,
                Some(other) => augment(other, slots, holder, seen),
            };
            if free {
                holder[i] = Some(name);
                return true;
            }
        }
        false
    }
    for name in names {
        let mut seen = vec![false; slots.len()];
        augment(name, &slots, &mut holder, &mut seen);
    }
    holder.into_iter().flatten().map(str::to_owned).collect()
}

#[allow(clippy::too_many_lines)]
fn decide_fetched(
    request: &Request,
    pinned: &PinnedImage,
    report: Option<&Result<FetchReport, FetchError>>,
    rule: &Rule,
    policy: &Policy,
    warnings: Vec<String>,
    now: i64,
) -> Decision {
    let image = format!("{}@{}", pinned.reference().name(), pinned.digest());
    let requirements = &rule.requirements;
    let audit = || match &requirements.coverage {
        Coverage::Image => Action::AuditImage { image: image.clone() },
        Coverage::Paths(paths) => Action::VerifyPaths { image: image.clone(), paths: paths.clone() },
    };
    let with = |reason: Reason, message: String, action: Action, warnings: Vec<String>| {
        let mut d = base(request, rule, reason, message, action);
        d.digest = Some(pinned.digest().to_string());
        d.warnings = warnings;
        d
    };
    let report = match report {
        None => {
            let message = format!("the attestations of {image} were not fetched before the deadline");
            return with(Reason::Deadline, message, Action::Retry, warnings);
        }
        Some(Err(e @ FetchError::NotFound { .. })) => {
            return with(Reason::Missing, e.to_string(), audit(), warnings);
        }
        Some(Err(e @ FetchError::Deadline { .. })) => {
            let message = format!("the registry did not answer in time: {e}");
            return with(Reason::Deadline, message, Action::Retry, warnings);
        }
        Some(Err(e)) => {
            let message = format!("fetching the attestations failed: {e}");
            return with(Reason::RegistryError, message, Action::Retry, warnings);
        }
        Some(Ok(report)) => report,
    };
    let hex = pinned.digest().hex().to_owned();
    let verifiers: Vec<(String, Result<AttestVerifier, String>)> = {
        let policy_rules = attest_policy(requirements);
        policy
            .verifiers
            .iter()
            .map(|v| {
                let verifier = policy_rules.clone().and_then(|p| {
                    let reqs = VerifyRequirements {
                        threshold: None,
                        predicate_type: Some(PREDICATE_TYPE_VSA_V1.to_owned()),
                        policy: Some(p),
                    };
                    AttestVerifier::new(v.signers.clone(), reqs).map_err(|e| e.to_string())
                });
                (v.name.clone(), verifier)
            })
            .collect()
    };
    let needed: Vec<String> = match &requirements.coverage {
        Coverage::Image => vec!["image".to_owned()],
        Coverage::Paths(paths) => paths.clone(),
    };
    // needed item → the distinct verifiers whose accepted VSAs cover it.
    // needed item → the accepted VSAs that cover it, as votes for the verifiers.
    let mut votes: BTreeMap<&str, Vec<Vote>> = needed.iter().map(|n| (n.as_str(), Vec::new())).collect();
    let mut earliest: Option<i64> = None;
    let mut warnings = warnings;
    let mut vsas = Vec::with_capacity(report.attestations.len());
    for fetched in &report.attestations {
        let mut c = Considered {
            source: source_text(fetched),
            digest: fetched.digest.to_string(),
            predicate_type: fetched.predicate_type.clone(),
            verifiers: Vec::new(),
            covers: Vec::new(),
            time_verified: None,
            expires: None,
            rejected: None,
            detail: String::new(),
        };
        if fetched.predicate_type.as_deref().is_some_and(|t| t != PREDICATE_TYPE_VSA_V1) {
            c.rejected = Some(Rejection::NotVsa);
            c.detail = "not a VSA".to_owned();
            vsas.push(c);
            continue;
        }
        let attestation = match Attestation::detect(&fetched.bytes) {
            Ok(a) => a,
            Err(e) => {
                c.rejected = Some(Rejection::Invalid);
                c.detail = e.to_string();
                vsas.push(c);
                continue;
            }
        };
        let mut best: Option<(Rejection, String)> = None;
        for (name, verifier) in &verifiers {
            let outcome = match verifier {
                Err(e) => Err((Rejection::Untrusted, format!("{name}: {e}"))),
                Ok(v) => {
                    let verification = v.verify(&attestation, Some(&hex), now);
                    if verification.valid {
                        Ok(())
                    } else {
                        let (kind, detail) = classify(&verification.checks);
                        Err((kind, format!("{name}: {detail}")))
                    }
                }
            };
            match outcome {
                Ok(()) => c.verifiers.push(name.clone()),
                Err((kind, detail)) => {
                    if best.as_ref().is_none_or(|(b, _)| kind > *b) {
                        best = Some((kind, detail));
                    }
                }
            }
        }
        if c.verifiers.is_empty() {
            let (kind, detail) = best.unwrap_or((Rejection::Untrusted, "the policy trusts no verifier".to_owned()));
            if kind == Rejection::Failed {
                warnings.push(format!("a trusted verifier attests FAILED: {detail}"));
            }
            c.rejected = Some(kind);
            c.detail = detail;
            vsas.push(c);
            continue;
        }
        // Accepted: the payload is authenticated, read what it covers and when it expires.
        let statement: Option<Statement> =
            attestation.envelope.payload_bytes().ok().and_then(|p| serde_json::from_slice(&p).ok());
        let Some(statement) = statement else {
            c.rejected = Some(Rejection::Invalid);
            c.detail = "the verified payload is not an in-toto statement".to_owned();
            vsas.push(c);
            continue;
        };
        c.covers = coverage_of(&statement, &hex);
        let verified_at = time_verified(&statement);
        c.time_verified = verified_at.map(stdx::time::format_rfc3339);
        let expires = match (&requirements.max_age, verified_at) {
            (Some(max), Some(at)) => Some(at.saturating_add(max.seconds)),
            _ => None,
        };
        c.expires = expires.map(stdx::time::format_rfc3339);
        let useful: Vec<&String> = c.covers.iter().filter(|x| needed.contains(x)).collect();
        if useful.is_empty() {
            let what = if c.covers.is_empty() {
                "it covers no binary of this digest (not the audit's image VSA: not every binary reproduced, or no reproveBinaries)".to_owned()
            } else {
                format!("it covers {}", c.covers.join(", "))
            };
            c.rejected = Some(Rejection::NotCovered);
            c.detail = format!("{what}; the rule requires {}", needed.join(", "));
            vsas.push(c);
            continue;
        }
        let signers = signers_of(&attestation);
        for item in &useful {
            if let Some(list) = votes.get_mut(item.as_str()) {
                list.push(Vote { verifiers: c.verifiers.clone(), signers: signers.clone() });
            }
        }
        if let Some(at) = expires {
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
            if let Some(window) = policy.expiry_warning_seconds {
                if at - now <= window {
                    // The same statement in two layouts (referrer, legacy) warns once.
                    let warning = format!(
                        "the VSA of {} verified at {} expires at {} (in {})",
                        c.verifiers.join(", "),
                        c.time_verified.as_deref().unwrap_or("?"),
                        stdx::time::format_rfc3339(at),
                        human(at - now)
                    );
                    if !warnings.contains(&warning) {
                        warnings.push(warning);
                    }
                }
            }
        }
        c.detail = format!("accepted: signed by {}, covers {}", c.verifiers.join(", "), c.covers.join(", "));
        vsas.push(c);
    }
    let threshold = requirements.threshold;
    let counted: BTreeMap<&str, BTreeSet<String>> = votes.iter().map(|(k, v)| (*k, distinct_verifiers(v))).collect();
    let short: Vec<(&str, usize)> =
        counted.iter().filter(|(_, v)| v.len() < threshold).map(|(k, v)| (*k, v.len())).collect();
    let any = |r: Rejection| vsas.iter().any(|c| c.rejected == Some(r));
    let vsa_found = vsas.iter().any(|c| c.rejected != Some(Rejection::NotVsa));
    let mut d = if short.is_empty() {
        let who: BTreeSet<&String> = counted.values().flatten().collect();
        let who: Vec<&str> = who.into_iter().map(String::as_str).collect();
        let message =
            format!("{} covered by PASSED VSAs of {} (threshold {threshold})", needed.join(", "), who.join(", "));
        let mut d = with(Reason::Passed, message, Action::None, warnings);
        d.expires_unix = earliest;
        d.expires = earliest.map(stdx::time::format_rfc3339);
        d
    } else {
        let uncovered: Vec<String> = short.iter().filter(|(_, n)| *n == 0).map(|(k, _)| (*k).to_owned()).collect();
        let (reason, message, action) = if any(Rejection::Failed) {
            (
                Reason::Failed,
                format!("a trusted verifier attests that {image} was not reproduced"),
                Action::Investigate { image: image.clone() },
            )
        } else if uncovered.is_empty() {
            let counts: Vec<String> = short.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            (
                Reason::BelowThreshold,
                format!(
                    "PASSED VSAs from fewer distinct trusted verifiers than the threshold {threshold} ({})",
                    counts.join(", ")
                ),
                audit(),
            )
        } else if any(Rejection::Expired) {
            let max = requirements.max_age.as_ref().map_or(String::new(), |m| m.text.clone());
            (Reason::Expired, format!("the trusted PASSED VSAs of {image} are older than {max}"), audit())
        } else if any(Rejection::NotCovered) || uncovered.len() < needed.len() {
            let action = match &requirements.coverage {
                Coverage::Image => Action::AuditImage { image: image.clone() },
                Coverage::Paths(_) => Action::VerifyPaths { image: image.clone(), paths: uncovered.clone() },
            };
            (Reason::NotCovered, format!("no trusted PASSED VSA covers {}", uncovered.join(", ")), action)
        } else if vsa_found {
            // Why the first one was refused (referrers come first: a bundle with its
            // certificate before the legacy image's bare envelope).
            let why = vsas
                .iter()
                .find(|c| c.rejected == Some(Rejection::Untrusted))
                .map_or(String::new(), |c| format!(" ({})", c.detail));
            (
                Reason::Untrusted,
                format!("no VSA of {image} is signed by a verifier the policy trusts{why}"),
                Action::TrustSigner,
            )
        } else {
            (Reason::Missing, format!("no VSA is attached to {image}"), audit())
        };
        with(reason, message, action, warnings)
    };
    d.vsas = vsas;
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &'static str, rule: Option<&str>, passed: bool) -> Check {
        Check { name, rule: rule.map(str::to_owned), passed, detail: "d".to_owned(), hint: None }
    }

    /// The webhook runs decisions on a multi-threaded runtime: the future must be `Send`
    /// (this fails to compile otherwise).
    #[test]
    fn the_decision_future_is_send() {
        fn is_send<T: Send>(_: &T) {}
        fn check(requests: &[Request], policy: &Policy, fetcher: &Fetcher) {
            let future = decide_all(requests, policy, fetcher, Instant::now());
            is_send(&future);
        }
        let _ = check;
    }

    /// Decisions on attestations made here, without a registry: the logic after the fetch.
    mod logic {
        use super::super::*;
        use attest::keys::{Algorithm, KeySigner, Signer as _};
        use attest::statement::{ResourceDescriptor, PAYLOAD_TYPE_IN_TOTO};

        type R<T> = std::result::Result<T, Box<dyn std::error::Error>>;

        const NOW: i64 = 1_800_000_000;
        const HEX: &str = "abababababababababababababababababababababababababababababababab";

        struct World {
            _dir: tempfile::TempDir,
            policy: Policy,
            signers: Vec<KeySigner>,
        }

        fn world(body: &str) -> R<World> {
            let dir = tempfile::tempdir()?;
            let mut signers = Vec::new();
            for name in ["a", "b"] {
                let (signer, _) = KeySigner::generate(Algorithm::EcdsaP256Sha256)?;
                std::fs::write(dir.path().join(format!("{name}.pub")), signer.public_key().to_pem())?;
                signers.push(signer);
            }
            let text = format!(
                "version = 1\n{body}\n[[verifiers]]\nname = \"a\"\nkey = \"a.pub\"\n[[verifiers]]\nname = \"b\"\nkey = \"b.pub\"\n"
            );
            let policy = Policy::from_toml(&text, dir.path())?;
            Ok(World { _dir: dir, policy, signers })
        }

        /// A VSA about the digest: the image VSA (`path` None) or a per-binary one.
        fn vsa(signer: &KeySigner, passed: bool, path: Option<&str>, verified: i64) -> R<attach::Fetched> {
            let mut subject = ResourceDescriptor::sha256("reg.example/app", HEX);
            let mut predicate = serde_json::json!({
                "verifier": {"id": "v"}, "timeVerified": stdx::time::format_rfc3339(verified),
                "resourceUri": "oci://x", "policy": {"uri": "p"},
                "verificationResult": if passed { "PASSED" } else { "FAILED" },
                "verifiedLevels": if passed { vec!["REPROVE_REPRODUCED"] } else { vec![] },
            });
            match path {
                Some(p) => {
                    subject.annotations.insert("reprovePath".into(), p.into());
                }
                None => {
                    let outcome = if passed { "reproduced" } else { "not-reproduced" };
                    predicate["reproveBinaries"] = serde_json::json!([{"path": "/a", "outcome": outcome}]);
                }
            }
            let statement = Statement::new(vec![subject], PREDICATE_TYPE_VSA_V1, predicate);
            let envelope =
                attest::dsse::Envelope::sign(PAYLOAD_TYPE_IN_TOTO, &serde_json::to_vec(&statement)?, &[signer])?;
            let raw = serde_json::to_vec(&envelope)?;
            Ok(attach::Fetched {
                source: attach::Source::Legacy { tag: "t".into(), manifest: Digest::of(b"m") },
                format: attest::bundle::Format::Dsse,
                predicate_type: Some(PREDICATE_TYPE_VSA_V1.into()),
                digest: Digest::of(&raw),
                bytes: raw.into(),
            })
        }

        fn decide_on(w: &World, namespace: &str, fetched: Result<Vec<attach::Fetched>, FetchError>) -> R<Decision> {
            let pinned: PinnedImage = format!("reg.example/app@sha256:{HEX}").parse()?;
            let report = fetched.map(|attestations| FetchReport {
                subject: oci::referrers::Subject {
                    image: pinned.reference().clone(),
                    digest: pinned.digest().clone(),
                    media_type: "m".into(),
                    size: 1,
                    kind: oci::referrers::SubjectKind::Manifest,
                    platforms: Vec::new(),
                },
                referrers_path: oci::referrers::ReferrersPath::Api,
                attestations,
                notes: Vec::new(),
            });
            let request = Request { image: pinned.to_string(), namespace: namespace.to_owned() };
            let rule = w.policy.rule_for("reg.example/app", namespace).clone();
            Ok(finish(decide_fetched(&request, &pinned, Some(&report), &rule, &w.policy, Vec::new(), NOW), &w.policy))
        }

        #[test]
        fn a_failed_vsa_beside_enough_passed_ones_warns() -> R<()> {
            let w = world("[default]\nmax_age = \"30d\"")?;
            let (a, b) = (&w.signers[0], &w.signers[1]);
            let d =
                decide_on(&w, "default", Ok(vec![vsa(a, true, None, NOW - 86_400)?, vsa(b, false, None, NOW - 60)?]))?;
            assert_eq!((d.allowed, d.reason), (true, Reason::Passed), "{d:#?}");
            assert!(d.warnings.iter().any(|w| w.contains("attests FAILED")), "{d:#?}");
            assert_eq!(d.expires_unix, Some(NOW - 86_400 + 30 * 86_400));
            // Alone, the FAILED one denies with its reason.
            let d = decide_on(&w, "default", Ok(vec![vsa(b, false, None, NOW - 60)?]))?;
            assert_eq!((d.allowed, d.reason), (false, Reason::Failed), "{d:#?}");
            assert!(matches!(d.action, Action::Investigate { .. }));
            Ok(())
        }

        #[test]
        fn paths_must_each_be_covered_by_the_threshold() -> R<()> {
            let w = world("[[rules]]\nnamespaces = [\"p\"]\npaths = [\"/a\", \"/b\"]\nthreshold = 2")?;
            let (a, b) = (&w.signers[0], &w.signers[1]);
            let one_path = vec![vsa(a, true, Some("/a"), NOW)?, vsa(b, true, Some("/a"), NOW)?];
            let d = decide_on(&w, "p", Ok(one_path))?;
            assert_eq!(d.reason, Reason::NotCovered, "{d:#?}");
            assert_eq!(
                d.action,
                Action::VerifyPaths { image: format!("reg.example/app@sha256:{HEX}"), paths: vec!["/b".into()] }
            );
            let both =
                vec![vsa(a, true, Some("/a"), NOW)?, vsa(b, true, Some("/a"), NOW)?, vsa(a, true, Some("/b"), NOW)?];
            let d = decide_on(&w, "p", Ok(both))?;
            assert_eq!(d.reason, Reason::BelowThreshold, "/b has one verifier of 2: {d:#?}");
            let all = vec![
                vsa(a, true, Some("/a"), NOW)?,
                vsa(b, true, Some("/a"), NOW)?,
                vsa(a, true, Some("/b"), NOW)?,
                vsa(b, true, Some("/b"), NOW)?,
            ];
            assert_eq!(decide_on(&w, "p", Ok(all))?.reason, Reason::Passed);
            // The image VSA covers no named path; in the default namespace it is what counts.
            let d = decide_on(&w, "p", Ok(vec![vsa(a, true, None, NOW)?]))?;
            assert_eq!(d.reason, Reason::NotCovered);
            assert_eq!(decide_on(&w, "default", Ok(vec![vsa(a, true, None, NOW)?]))?.reason, Reason::Passed);
            Ok(())
        }

        #[test]
        fn warn_mode_and_on_error() -> R<()> {
            let w = world("on_error = \"allow-with-warning\"\n[[rules]]\nnamespaces = [\"w\"]\nmode = \"warn\"")?;
            let d = decide_on(&w, "w", Ok(Vec::new()))?;
            assert_eq!((d.allowed, d.reason), (true, Reason::Missing));
            assert!(d.warnings[0].starts_with("would be denied (missing)"), "{d:#?}");
            let d = decide_on(&w, "default", Ok(Vec::new()))?;
            assert_eq!((d.allowed, d.reason), (false, Reason::Missing));
            let outage = || FetchError::Registry {
                image: "x".into(),
                source: AttachError::TooManyAttestations {
                    image: "x".into(),
                    limit: 1,
                    setting: stdx::setting::Setting::MaxReferrers,
                },
            };
            let d = decide_on(&w, "default", Err(outage()))?;
            assert_eq!((d.allowed, d.reason, d.cacheable()), (true, Reason::RegistryError, false), "{d:#?}");
            let strict = world("")?;
            let d = decide_on(&strict, "default", Err(outage()))?;
            assert_eq!((d.allowed, d.reason, d.cacheable()), (false, Reason::RegistryError, false), "{d:#?}");
            // A key the policy does not trust.
            let (other, _) = KeySigner::generate(Algorithm::EcdsaP256Sha256)?;
            let d = decide_on(&strict, "default", Ok(vec![vsa(&other, true, None, NOW)?]))?;
            assert_eq!((d.allowed, d.reason), (false, Reason::Untrusted));
            assert_eq!(d.vsas[0].rejected, Some(Rejection::Untrusted));
            Ok(())
        }
    }

    #[test]
    fn one_signer_counts_for_one_verifier() {
        let vote = |verifiers: &[&str], signers: &[&str]| Vote {
            verifiers: verifiers.iter().map(|v| (*v).to_owned()).collect(),
            signers: signers.iter().map(|v| (*v).to_owned()).collect(),
        };
        let count = |votes: &[Vote]| distinct_verifiers(votes).len();
        // One certificate matched by two overlapping identities: one verifier, also
        // when it signed two VSAs or one VSA is in two layouts.
        assert_eq!(count(&[vote(&["exact", "pattern"], &["c1"])]), 1);
        assert_eq!(count(&[vote(&["exact", "pattern"], &["c1"]), vote(&["exact", "pattern"], &["c1"])]), 1);
        // Two certificates: two verifiers, whichever matches which.
        assert_eq!(count(&[vote(&["exact", "pattern"], &["c1"]), vote(&["exact"], &["c2"])]), 2);
        // An envelope signed by two keys: two verifiers.
        assert_eq!(count(&[vote(&["a", "b"], &["s1", "s2"])]), 2);
        // A greedy choice would give x the only signer of y: the matching does not.
        let votes = [vote(&["x", "y"], &["c1"]), vote(&["x"], &["c2"]), vote(&["x", "z"], &["c3"])];
        assert_eq!(distinct_verifiers(&votes).into_iter().collect::<Vec<_>>(), ["x", "y", "z"]);
        assert_eq!(count(&[]), 0);
    }

    #[test]
    fn a_failed_check_classifies_the_rejection() {
        let cases = [
            (vec![check("signatures", None, false)], Rejection::Untrusted),
            (vec![check("identity", None, false)], Rejection::Untrusted),
            (vec![check("signatures", None, true), check("subject", None, false)], Rejection::OtherSubject),
            (vec![check("predicateType", None, false)], Rejection::NotVsa),
            (vec![check("statement", None, false)], Rejection::Invalid),
            (
                vec![check("policy", Some("max_age"), false), check("policy", Some("vsa.verifier_ids"), true)],
                Rejection::Expired,
            ),
            (
                vec![check("policy", Some("max_age"), false), check("policy", Some("vsa.verification_result"), false)],
                Rejection::Failed,
            ),
            (vec![check("policy", Some("vsa.verifier_ids"), false)], Rejection::Untrusted),
        ];
        for (checks, want) in cases {
            assert_eq!(classify(&checks).0, want, "{checks:?}");
        }
    }

    #[test]
    fn coverage_reads_image_vsas_and_paths() {
        let hex = "ab".repeat(32);
        let subject = |annotations: serde_json::Value| serde_json::json!({"name": "reg/app", "digest": {"sha256": hex}, "annotations": annotations});
        let statement = |subjects: Vec<serde_json::Value>, binaries: serde_json::Value| -> Statement {
            serde_json::from_value(serde_json::json!({
                "_type": "https://in-toto.io/Statement/v1",
                "subject": subjects,
                "predicateType": PREDICATE_TYPE_VSA_V1,
                "predicate": {"reproveBinaries": binaries},
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let reproduced = serde_json::json!([{"path": "/a", "outcome": "reproduced"}]);
        let mixed =
            serde_json::json!([{"path": "/a", "outcome": "reproduced"}, {"path": "/b", "outcome": "unverifiable"}]);
        let image = statement(vec![subject(serde_json::json!({"reproveImageDigest": "index"}))], reproduced.clone());
        assert_eq!(coverage_of(&image, &hex), ["image"]);
        assert!(coverage_of(&image, &"cd".repeat(32)).is_empty(), "another digest covers nothing");
        let partial = statement(vec![subject(serde_json::json!({}))], mixed);
        assert!(coverage_of(&partial, &hex).is_empty());
        let empty = statement(vec![subject(serde_json::json!({}))], serde_json::json!([]));
        assert!(coverage_of(&empty, &hex).is_empty(), "no binaries is not every binary");
        let per_binary =
            statement(vec![subject(serde_json::json!({"reprovePath": "/usr/bin/app"}))], serde_json::Value::Null);
        assert_eq!(coverage_of(&per_binary, &hex), ["/usr/bin/app"]);
    }
}
