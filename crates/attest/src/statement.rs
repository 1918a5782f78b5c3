//! in-toto Statement v1 and ResourceDescriptor v1.
//!
//! A [`Statement`] binds a predicate (provenance, VSA, …) to the artifacts it is about:
//! its `subject` list of [`ResourceDescriptor`]s, each named and identified by digests.
//! These are the wire types of the in-toto attestation framework
//! (<https://github.com/in-toto/attestation/tree/main/spec/v1>); fields this crate does
//! not know are kept in `extra` and written back unchanged, so reading and writing a
//! statement from another producer loses nothing. No signing here: see [`crate::dsse`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `_type` of every in-toto Statement v1.
pub const STATEMENT_TYPE_V1: &str = "https://in-toto.io/Statement/v1";

/// The `_type` of in-toto Statement v0.1, which cosign 2.x `attest-blob` still writes.
/// Its fields are a subset of v1's, so it is read (never written) with the same types.
pub const STATEMENT_TYPE_V0_1: &str = "https://in-toto.io/Statement/v0.1";

/// The DSSE `payloadType` of an in-toto statement.
pub const PAYLOAD_TYPE_IN_TOTO: &str = "application/vnd.in-toto+json";

/// An in-toto Statement v1: subjects, a predicate type and the predicate itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE_V1`] for statements this crate writes.
    #[serde(rename = "_type")]
    pub type_: String,
    /// The artifacts the predicate is about.
    pub subject: Vec<ResourceDescriptor>,
    /// The URI saying how to read `predicate`.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate, interpreted according to `predicate_type`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub predicate: Value,
    /// Fields this crate does not know, preserved on read and write.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Statement {
    /// A statement of type [`STATEMENT_TYPE_V1`] about `subject`.
    pub fn new(subject: Vec<ResourceDescriptor>, predicate_type: impl Into<String>, predicate: Value) -> Self {
        Statement {
            type_: STATEMENT_TYPE_V1.to_owned(),
            subject,
            predicate_type: predicate_type.into(),
            predicate,
            extra: Map::new(),
        }
    }

    /// Whether `_type` is one this crate reads: [`STATEMENT_TYPE_V1`] or [`STATEMENT_TYPE_V0_1`].
    pub fn has_known_type(&self) -> bool {
        self.type_ == STATEMENT_TYPE_V1 || self.type_ == STATEMENT_TYPE_V0_1
    }

    /// Whether some subject carries `algorithm:hex` among its digests. `hex` is
    /// lower-case, and so must the statement's be: in-toto writes digests in
    /// lower-case hex, and cosign refuses a subject whose digest is written
    /// otherwise, so a digest that matches only case-insensitively does not match.
    pub fn has_subject_digest(&self, algorithm: &str, hex: &str) -> bool {
        self.subject.iter().any(|s| s.digest.get(algorithm).is_some_and(|d| d == hex))
    }

    /// Whether some subject carries `algorithm:hex` written in another case: a
    /// digest that [`Statement::has_subject_digest`] refuses, named as such.
    pub fn has_subject_digest_in_other_case(&self, algorithm: &str, hex: &str) -> bool {
        self.subject.iter().any(|s| s.digest.get(algorithm).is_some_and(|d| d != hex && d.eq_ignore_ascii_case(hex)))
    }
}

/// An in-toto ResourceDescriptor v1: a name, a location or content, and digests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    /// A URI locating the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Digests of the resource, keyed by algorithm (`sha256`, `gitCommit`, `dirHash`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    /// A machine-readable name, such as a file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the resource can be downloaded.
    #[serde(rename = "downloadLocation", default, skip_serializing_if = "Option::is_none")]
    pub download_location: Option<String>,
    /// The media type of the resource.
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The resource's content, base64 in JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Further information about the resource.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub annotations: Map<String, Value>,
    /// Fields this crate does not know, preserved on read and write.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The lower-case hex SHA-256 of `bytes`, as in-toto `sha256` digests are written.
pub use stdx::sha256_hex;

/// Lower-case hex, as in-toto digests, log ids and Rekor hashes are written.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The lower-case hex SHA-256 of everything `reader` yields, read in 64 KiB chunks so
/// a large subject is hashed without being held in memory.
pub fn sha256_hex_reader(mut reader: impl std::io::Read) -> std::io::Result<String> {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => context.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex(context.finish().as_ref()))
}

impl ResourceDescriptor {
    /// A descriptor with a name and a single `sha256` digest (lower-case hex).
    pub fn sha256(name: impl Into<String>, hex: impl Into<String>) -> Self {
        ResourceDescriptor {
            name: Some(name.into()),
            digest: BTreeMap::from([("sha256".to_owned(), hex.into())]),
            ..ResourceDescriptor::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_read_and_write() -> Result<(), serde_json::Error> {
        let text = r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"ab"},"x-sub":[1,2]}],"predicateType":"https://example.com/p","predicate":{"a":{"b":true}},"x-top":"kept"}"#;
        let statement: Statement = serde_json::from_str(text)?;
        assert_eq!(statement.extra.get("x-top"), Some(&Value::from("kept")));
        assert!(statement.has_subject_digest("sha256", "ab"));
        assert!(!statement.has_subject_digest("sha256", "AB"));
        let back: Value = serde_json::to_value(&statement)?;
        let original: Value = serde_json::from_str(text)?;
        assert_eq!(back, original);
        Ok(())
    }

    #[test]
    fn new_sets_the_v1_type() {
        let s = Statement::new(vec![ResourceDescriptor::sha256("a", "00")], "https://example.com/p", Value::Null);
        assert_eq!(s.type_, STATEMENT_TYPE_V1);
        assert!(s.has_known_type());
        assert!(!s.has_subject_digest("sha256", "01"));
        let upper = Statement::new(vec![ResourceDescriptor::sha256("a", "0A")], "https://example.com/p", Value::Null);
        assert!(!upper.has_subject_digest("sha256", "0a"), "an upper-case subject digest does not match");
        assert!(upper.has_subject_digest_in_other_case("sha256", "0a"));
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let big = vec![7u8; 200_000];
        assert_eq!(sha256_hex_reader(&big[..]).ok(), Some(sha256_hex(&big)));
    }
}
