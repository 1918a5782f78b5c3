//! AdmissionReview `admission.k8s.io/v1`: strict parsing, the images of an object,
//! and the answer.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::{Decide, Decision, ImageUse, Inner};

const API_VERSION: &str = "admission.k8s.io/v1";

/// The longest message returned to the API server (kubectl prints it whole).
const MAX_MESSAGE: usize = 4096;
/// The most warnings returned (the API server keeps warnings short and few).
const MAX_WARNINGS: usize = 16;

/// Why an AdmissionReview was refused before any decision (answered with HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON, or not the AdmissionReview shape.
    #[error("malformed AdmissionReview: {0}")]
    Malformed(String),
    /// Another API version (the webhook speaks admission.k8s.io/v1 only).
    #[error("unsupported AdmissionReview apiVersion {0:?}: this webhook speaks admission.k8s.io/v1 (set admissionReviewVersions: [\"v1\"] in the webhook configuration)")]
    ApiVersion(String),
    /// Another kind.
    #[error("unexpected kind {0:?}: expected AdmissionReview")]
    Kind(String),
    /// No `request`, or a `response` sent to the webhook.
    #[error("malformed AdmissionReview: {0}")]
    Shape(&'static str),
    /// The object does not have the fields its kind has.
    #[error("malformed {kind} object at {pointer}: {problem}")]
    Object {
        /// The object's kind.
        kind: String,
        /// Where, as a JSON pointer.
        pointer: String,
        /// What is wrong.
        problem: &'static str,
    },
}

impl ReviewError {
    /// A short code for the metrics.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ReviewError::Malformed(_) | ReviewError::Shape(_) => "malformed",
            ReviewError::ApiVersion(_) => "api-version",
            ReviewError::Kind(_) => "kind",
            ReviewError::Object { .. } => "object",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Review {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    request: Option<Request>,
    response: Option<Value>,
}

/// The fields of AdmissionRequest the webhook reads; the API server may add others
/// (forward compatibility), but these must have their types.
#[derive(Deserialize)]
struct Request {
    uid: String,
    kind: GroupVersionKind,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    operation: String,
    #[serde(rename = "subResource", default)]
    sub_resource: String,
    #[serde(default)]
    object: Option<Value>,
    #[serde(rename = "dryRun", default)]
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    kind: String,
}

/// A review the webhook will answer.
pub(crate) struct Parsed {
    pub(crate) uid: String,
    pub(crate) dry_run: bool,
    namespace: String,
    kind: String,
    /// The images, or why the object could not be read (a denial, not a 400: the
    /// review itself was well formed).
    images: Result<Vec<ImageAt>, ReviewError>,
}

pub(crate) fn parse(body: &[u8]) -> Result<Parsed, ReviewError> {
    // Type-check the envelope first, so that the apiVersion error wins over the rest.
    let v: Value = serde_json::from_slice(body).map_err(|e| ReviewError::Malformed(e.to_string()))?;
    let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    if api != API_VERSION {
        return Err(ReviewError::ApiVersion(api.to_string()));
    }
    let review: Review = serde_json::from_value(v).map_err(|e| ReviewError::Malformed(e.to_string()))?;
    debug_assert_eq!(review.api_version, API_VERSION);
    if review.kind != "AdmissionReview" {
        return Err(ReviewError::Kind(review.kind));
    }
    if review.response.is_some() {
        return Err(ReviewError::Shape("a request carries no response"));
    }
    let request = review.request.ok_or(ReviewError::Shape("no request"))?;
    if request.uid.is_empty() {
        return Err(ReviewError::Shape("request.uid is empty"));
    }
    let images = match (&request.object, request.operation.as_str()) {
        // DELETE and CONNECT carry no object to judge.
        (None, _) | (Some(Value::Null), _) => Ok(Vec::new()),
        (Some(obj), _) => extract_images(&request.kind.group, &request.kind.kind, &request.sub_resource, obj),
    };
    Ok(Parsed {
        uid: request.uid,
        dry_run: request.dry_run.unwrap_or(false),
        namespace: request.namespace,
        kind: request.kind.kind,
        images,
    })
}

/// An image and where the object names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageAt {
    /// The JSON pointer of the `image` field.
    pub pointer: String,
    /// The reference as written.
    pub image: String,
}

/// The images of a Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob
/// (containers, init containers, ephemeral containers), with their JSON pointers. Other
/// kinds have none. A pod spec of the wrong shape is an error.
pub fn extract_images(
    group: &str,
    kind: &str,
    _sub_resource: &str,
    object: &Value,
) -> Result<Vec<ImageAt>, ReviewError> {
    let spec_path: &[&str] = match (group, kind) {
        ("", "Pod") => &["spec"],
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => &["spec", "template", "spec"],
        ("batch", "CronJob") => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return Ok(Vec::new()),
    };
    let bad = |pointer: String, problem| ReviewError::Object { kind: kind.to_string(), pointer, problem };
    let mut node = object;
    let mut pointer = String::new();
    for key in spec_path {
        pointer.push('/');
        pointer.push_str(key);
        node = match node.get(key) {
            Some(n) if n.is_object() => n,
            Some(_) => return Err(bad(pointer, "not an object")),
            None => return Err(bad(pointer, "missing")),
        };
    }
    let mut out = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let p = format!("{pointer}/{list}");
        let items = match node.get(list) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(a)) => a,
            Some(_) => return Err(bad(p, "not a list")),
        };
        for (i, c) in items.iter().enumerate() {
            let ip = format!("{p}/{i}/image");
            match c.get("image") {
                Some(Value::String(s)) if !s.is_empty() => out.push(ImageAt { pointer: ip, image: s.clone() }),
                // The API server refuses a container without an image itself, after
                // the webhooks: nothing to judge.
                None | Some(Value::Null) => {}
                Some(_) => return Err(bad(ip, "not a string")),
            }
        }
    }
    Ok(out)
}

#[derive(Clone, Copy)]
pub(crate) enum Endpoint {
    Validate,
    Mutate,
}

impl Endpoint {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

/// The webhook's answer to one review.
pub(crate) struct Answer {
    pub(crate) allowed: bool,
    code: u16,
    message: String,
    warnings: Vec<String>,
    patch: Option<Vec<Value>>,
}

/// Decides every distinct image of the review, concurrently and before `deadline`.
///
/// dryRun changes nothing in the decision (the API server needs the same answer to
/// report what would happen) and the webhook has no side effects to skip (it is
/// registered with `sideEffects: None`); only the metrics tell dry runs apart (their
/// `dry_run` label), so that counts of admitted workloads can leave them out.
pub(crate) async fn answer<D: Decide>(
    inner: &Arc<Inner<D>>,
    review: &Parsed,
    endpoint: Endpoint,
    deadline: Instant,
) -> Answer {
    let images = match &review.images {
        Ok(i) => i,
        Err(e) => {
            return Answer {
                allowed: matches!(endpoint, Endpoint::Mutate),
                code: 400,
                message: format!("reprove: {e}"),
                warnings: Vec::new(),
                patch: None,
            }
        }
    };
    let distinct: BTreeSet<&str> = images.iter().map(|i| i.image.as_str()).collect();
    let policy = inner.decider.policy_digest();
    let decisions = futures_join(distinct.iter().map(|image| {
        let use_ = ImageUse { image: (*image).to_string(), namespace: review.namespace.clone() };
        let policy = policy.clone();
        async move {
            let d = inner.cache.decide(&inner.decider, use_, policy, deadline).await;
            inner.metrics.decision(&d);
            ((*image).to_string(), d)
        }
    }))
    .await;

    let mut warnings = Vec::new();
    let mut denials = Vec::new();
    for (image, d) in &decisions {
        for w in &d.warnings {
            warnings.push(format!("{image}: {w}"));
        }
        if !d.allowed {
            denials.push(format!("image {image} ({}): {}", d.reason, d.message));
        }
    }
    warnings.truncate(MAX_WARNINGS);
    for w in &mut warnings {
        truncate(w, 512);
    }
    match endpoint {
        Endpoint::Validate => {
            let allowed = denials.is_empty();
            let mut message = if allowed {
                String::new()
            } else {
                format!(
                    "reprove denied this {} in namespace {:?}: {}",
                    review.kind,
                    review.namespace,
                    denials.join("; ")
                )
            };
            truncate(&mut message, MAX_MESSAGE);
            Answer { allowed, code: if allowed { 200 } else { 403 }, message, warnings, patch: None }
        }
        Endpoint::Mutate => {
            let mut patch = Vec::new();
            for at in images {
                if at.image.contains('@') {
                    continue;
                }
                if let Some(digest) =
                    decisions.iter().find(|(i, _)| *i == at.image).and_then(|(_, d)| d.digest.as_ref())
                {
                    patch.push(json!({"op": "replace", "path": at.pointer, "value": format!("{}@{digest}", at.image)}));
                }
            }
            // Mutation never refuses: the validating webhook, which runs after, does.
            Answer { allowed: true, code: 200, message: String::new(), warnings: Vec::new(), patch: Some(patch) }
        }
    }
}

/// Runs the futures concurrently, keeping their order (no extra dependency for join_all).
async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max.saturating_sub(3);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
}

/// The AdmissionReview sent back: the request's uid, allowed, status, warnings, patch.
pub(crate) fn envelope(review: &Parsed, answer: Answer) -> Value {
    let mut response = json!({"uid": review.uid, "allowed": answer.allowed});
    if !answer.allowed {
        response["status"] = json!({"code": answer.code, "message": answer.message, "reason": "Forbidden"});
    }
    if !answer.warnings.is_empty() {
        response["warnings"] = json!(answer.warnings);
    }
    if let Some(patch) = answer.patch.filter(|p| !p.is_empty()) {
        let bytes = serde_json::to_vec(&patch).unwrap_or_default();
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    json!({"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response})
}

/// A decision's outcome as the metrics label it.
pub(crate) fn result_label(d: &Decision) -> &'static str {
    match (d.allowed, d.warnings.is_empty()) {
        (false, _) => "denied",
        (true, true) => "allowed",
        (true, false) => "warned",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_of_every_workload_kind_with_pointers() {
        let pod = json!({"containers": [{"image": "a:1"}], "initContainers": [{"image": "b@sha256:00"}], "ephemeralContainers": [{"image": "c"}]});
        let cases = [
            ("", "Pod", json!({"spec": pod}), "/spec"),
            ("apps", "Deployment", json!({"spec": {"template": {"spec": pod}}}), "/spec/template/spec"),
            ("apps", "StatefulSet", json!({"spec": {"template": {"spec": pod}}}), "/spec/template/spec"),
            ("apps", "DaemonSet", json!({"spec": {"template": {"spec": pod}}}), "/spec/template/spec"),
            ("apps", "ReplicaSet", json!({"spec": {"template": {"spec": pod}}}), "/spec/template/spec"),
            ("batch", "Job", json!({"spec": {"template": {"spec": pod}}}), "/spec/template/spec"),
            (
                "batch",
                "CronJob",
                json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}}}),
                "/spec/jobTemplate/spec/template/spec",
            ),
        ];
        for (group, kind, obj, base) in cases {
            let got = extract_images(group, kind, "", &obj).unwrap_or_else(|e| panic!("{kind}: {e}"));
            let want = vec![
                ImageAt { pointer: format!("{base}/initContainers/0/image"), image: "b@sha256:00".into() },
                ImageAt { pointer: format!("{base}/containers/0/image"), image: "a:1".into() },
                ImageAt { pointer: format!("{base}/ephemeralContainers/0/image"), image: "c".into() },
            ];
            assert_eq!(got, want, "{kind}");
        }
        assert!(extract_images("", "ConfigMap", "", &json!({"data": {}})).is_ok_and(|v| v.is_empty()));
        assert!(matches!(
            extract_images("apps", "Deployment", "", &json!({"spec": {"template": {"spec": {"containers": {}}}}})),
            Err(ReviewError::Object { .. })
        ));
    }

    #[test]
    fn strict_envelope() {
        let ok = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"ns","operation":"CREATE","object":{"spec":{"containers":[{"image":"x:1"}]}},"dryRun":true}}"#;
        let p = parse(ok).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.dry_run);
        assert_eq!(p.uid, "u1");
        let v1beta1 = br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}"#;
        assert!(matches!(parse(v1beta1), Err(ReviewError::ApiVersion(v)) if v == "admission.k8s.io/v1beta1"));
        let extra = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"}},"bogus":1}"#;
        assert!(matches!(parse(extra), Err(ReviewError::Malformed(_))));
        let uid_type = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7,"kind":{"kind":"Pod"}}}"#;
        assert!(matches!(parse(uid_type), Err(ReviewError::Malformed(_))));
        assert!(matches!(parse(b"{"), Err(ReviewError::Malformed(_))));
        let no_req = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
        assert!(matches!(parse(no_req), Err(ReviewError::Shape(_))));
    }
}
