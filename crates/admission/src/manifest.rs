//! Kubernetes manifests: the images of the workloads in multi-document YAML (or JSON,
//! which is YAML), each with the byte span of its scalar in the text, and the in-place
//! edit that pins a tag to a digest changing nothing else in the file.
//!
//! Kinds: Pod (`spec`), Deployment, StatefulSet, DaemonSet, ReplicaSet, Job
//! (`spec.template.spec`), CronJob (`spec.jobTemplate.spec.template.spec`), and the
//! items of a `List`; in each pod spec the `containers`, `initContainers` and
//! `ephemeralContainers`. Other kinds are counted, not read.
//!
//! The parser is saphyr's YAML 1.2 event parser; aliases are expanded within a bound
//! (no "billion laughs"), malformed YAML is a [`ManifestError`] naming the document,
//! line and column.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// At most this many nodes per input, aliases expanded.
pub const MAX_NODES: usize = 1_000_000;

/// Why a manifest cannot be read or edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not YAML.
    #[error("document {document}, line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based document number.
        document: usize,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Aliases expand to more than [`MAX_NODES`] nodes.
    #[error("document {document}: more than {MAX_NODES} nodes once aliases are expanded")]
    TooLarge {
        /// 1-based document number.
        document: usize,
    },
    /// A workload's field has the wrong shape (`containers` not a list, `image` not a string).
    #[error("document {document} ({kind} {name}): {field}: {reason}")]
    Shape {
        /// 1-based document number.
        document: usize,
        /// The kind.
        kind: String,
        /// `metadata.name`.
        name: String,
        /// The field, as a path (`spec.template.spec.containers[0].image`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// An image scalar that an edit cannot rewrite in place.
    #[error("line {line}: the image {image:?} is written as a {style} scalar; only plain and simply quoted scalars are edited in place")]
    NotEditable {
        /// 1-based line.
        line: usize,
        /// The image.
        image: String,
        /// Its YAML style.
        style: &'static str,
    },
}

/// A YAML node, with the span of scalars.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Scalar { value: String, style: ScalarStyle, start: usize, end: usize, line: usize },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find_map(|(k, v)| (k.as_str() == Some(key)).then_some(v)),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { value, style: ScalarStyle::Plain, .. } if value.is_empty() || value == "~" || value == "null")
    }

    fn size(&self) -> usize {
        match self {
            Node::Scalar { .. } => 1,
            Node::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Node::Map(entries) => 1 + entries.iter().map(|(k, v)| k.size() + v.size()).sum::<usize>(),
        }
    }
}

/// Which list of a pod spec a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ContainerList {
    /// `containers`.
    Containers,
    /// `initContainers`.
    InitContainers,
    /// `ephemeralContainers`.
    EphemeralContainers,
}

impl ContainerList {
    /// The field's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerList::Containers => "containers",
            ContainerList::InitContainers => "initContainers",
            ContainerList::EphemeralContainers => "ephemeralContainers",
        }
    }
}

/// The span of an image scalar in the text, to edit it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalarSpan {
    /// Byte offset of the scalar's first byte (its opening quote, if quoted).
    pub start: usize,
    /// Byte offset after its last byte (its closing quote, if quoted).
    pub end: usize,
    /// 1-based line.
    pub line: usize,
    style: ScalarStyle,
}

/// One container image of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    /// 1-based document number in its input.
    pub document: usize,
    /// The workload's kind.
    pub kind: String,
    /// Its `metadata.name`.
    pub name: String,
    /// Its `metadata.namespace`, if given.
    pub namespace: Option<String>,
    /// The list the container is in.
    pub list: ContainerList,
    /// The container's name.
    pub container: String,
    /// The image, as written.
    pub image: String,
    /// Where the image scalar is.
    pub span: ScalarSpan,
}

/// What one input holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifests {
    /// The images, in document order.
    pub images: Vec<ContainerImage>,
    /// Documents (or `List` items) of the workload kinds.
    pub workloads: usize,
    /// Documents of other kinds, by kind.
    pub ignored: std::collections::BTreeMap<String, usize>,
}

struct Builder<'a> {
    text: &'a str,
    /// Byte offset of each character index (and the text's length at the end).
    offsets: Vec<usize>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    document: usize,
}

impl Builder<'_> {
    fn byte(&self, char_index: usize) -> usize {
        self.offsets.get(char_index).copied().unwrap_or(self.text.len())
    }

    fn count(&mut self, n: usize) -> Result<(), ManifestError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(ManifestError::TooLarge { document: self.document });
        }
        Ok(())
    }
}

fn syntax(document: usize, e: &saphyr_parser::ScanError) -> ManifestError {
    ManifestError::Syntax {
        document,
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_owned(),
    }
}

/// Parses every document of `text`.
fn documents(text: &str) -> Result<Vec<(usize, Node)>, ManifestError> {
    let mut offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    offsets.push(text.len());
    let mut b = Builder { text, offsets, anchors: HashMap::new(), nodes: 0, document: 0 };
    let mut parser = Parser::new_from_str(text);
    // Open collections: (anchor, the sequence's items or the mapping's flat key/value list).
    let mut stack: Vec<(usize, bool, Vec<Node>)> = Vec::new();
    let mut out = Vec::new();
    let mut root: Option<Node> = None;
    while let Some(event) = parser.next_event() {
        let (event, span): (Event<'_>, Span) = event.map_err(|e| syntax(b.document.max(1), &e))?;
        let node = match event {
            Event::DocumentStart(_) => {
                b.document += 1;
                b.anchors.clear();
                root = None;
                continue;
            }
            Event::DocumentEnd => {
                if let Some(node) = root.take() {
                    out.push((b.document, node));
                }
                continue;
            }
            Event::SequenceStart(anchor, _) => {
                stack.push((anchor, false, Vec::new()));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push((anchor, true, Vec::new()));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some((anchor, is_map, items)) = stack.pop() else { continue };
                let node = if is_map {
                    let mut entries = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        entries.push((k, v));
                    }
                    Node::Map(entries)
                } else {
                    Node::Seq(items)
                };
                if anchor > 0 {
                    b.anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::Scalar(value, style, anchor, _) => {
                b.count(1)?;
                let start = b.byte(span.start.index());
                let end = scalar_end(text, start, b.byte(span.end.index()), &value, style);
                let node = Node::Scalar { value: value.into_owned(), style, start, end, line: span.start.line() };
                if anchor > 0 {
                    b.anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::Alias(id) => {
                let node = b.anchors.get(&id).cloned().ok_or_else(|| ManifestError::Syntax {
                    document: b.document,
                    line: span.start.line(),
                    column: span.start.col() + 1,
                    message: "an alias of an unknown anchor".to_owned(),
                })?;
                b.count(node.size())?;
                node
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => continue,
        };
        match stack.last_mut() {
            Some((_, _, items)) => items.push(node),
            None => root = Some(node),
        }
    }
    Ok(out)
}

/// Where the scalar that starts at `start` ends: the parser's end mark can run past
/// it (to the comment or line end after a quoted scalar), so quoted scalars are
/// scanned to their closing quote and plain ones measured by their value.
fn scalar_end(text: &str, start: usize, mark: usize, value: &str, style: ScalarStyle) -> usize {
    let rest = text.get(start..).unwrap_or("");
    let scan = |quote: u8, escape: Option<u8>| {
        let bytes = rest.as_bytes();
        let mut i = 1;
        while i < bytes.len() {
            match bytes[i] {
                b if Some(b) == escape => i += 2,
                b if b == quote && escape.is_none() && bytes.get(i + 1) == Some(&quote) => i += 2,
                b if b == quote => return start + i + 1,
                _ => i += 1,
            }
        }
        mark
    };
    match style {
        ScalarStyle::Plain if rest.starts_with(value) => start + value.len(),
        ScalarStyle::SingleQuoted => scan(b'\'', None),
        ScalarStyle::DoubleQuoted => scan(b'"', Some(b'\\')),
        _ => mark.max(start),
    }
}

fn shape(document: usize, kind: &str, name: &str, field: &str, reason: &str) -> ManifestError {
    ManifestError::Shape {
        document,
        kind: kind.to_owned(),
        name: name.to_owned(),
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The path of the pod spec in a workload of `kind`, if it is one.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "ReplicationController" => {
            &["spec", "template", "spec"]
        }
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

fn workload(document: usize, object: &Node, out: &mut Manifests) -> Result<(), ManifestError> {
    let kind = object.get("kind").and_then(Node::as_str).unwrap_or("").to_owned();
    if kind == "List" {
        if let Some(Node::Seq(items)) = object.get("items") {
            for item in items {
                workload(document, item, out)?;
            }
        }
        return Ok(());
    }
    let Some(path) = pod_spec_path(&kind) else {
        let label = if kind.is_empty() { "(no kind)".to_owned() } else { kind };
        *out.ignored.entry(label).or_default() += 1;
        return Ok(());
    };
    out.workloads += 1;
    let metadata = object.get("metadata");
    let name = metadata.and_then(|m| m.get("name")).and_then(Node::as_str).unwrap_or("").to_owned();
    let namespace = metadata.and_then(|m| m.get("namespace")).and_then(Node::as_str).map(str::to_owned);
    let mut spec = Some(object);
    for key in path {
        spec = spec.and_then(|n| n.get(key));
    }
    let Some(spec) = spec else { return Ok(()) };
    let at = path.join(".");
    for list in [ContainerList::InitContainers, ContainerList::Containers, ContainerList::EphemeralContainers] {
        let field = format!("{at}.{}", list.as_str());
        let containers = match spec.get(list.as_str()) {
            None => continue,
            Some(n) if n.is_null() => continue,
            Some(Node::Seq(items)) => items,
            Some(_) => return Err(shape(document, &kind, &name, &field, "not a list")),
        };
        for (i, container) in containers.iter().enumerate() {
            let field = format!("{field}[{i}]");
            if !matches!(container, Node::Map(_)) {
                return Err(shape(document, &kind, &name, &field, "not a mapping"));
            }
            let container_name = container.get("name").and_then(Node::as_str).unwrap_or("").to_owned();
            let image = match container.get("image") {
                None => continue,
                Some(n) if n.is_null() => continue,
                Some(Node::Scalar { value, style, start, end, line }) => ContainerImage {
                    document,
                    kind: kind.clone(),
                    name: name.clone(),
                    namespace: namespace.clone(),
                    list,
                    container: container_name,
                    image: value.clone(),
                    span: ScalarSpan { start: *start, end: *end, line: *line, style: *style },
                },
                Some(_) => return Err(shape(document, &kind, &name, &format!("{field}.image"), "not a string")),
            };
            out.images.push(image);
        }
    }
    Ok(())
}

/// Reads the workloads and their images from `text` (multi-document YAML or JSON).
pub fn parse(text: &str) -> Result<Manifests, ManifestError> {
    let mut out = Manifests::default();
    for (document, root) in documents(text)? {
        match &root {
            Node::Map(_) => workload(document, &root, &mut out)?,
            n if n.is_null() => {}
            _ => *out.ignored.entry("(not a mapping)".to_owned()).or_default() += 1,
        }
    }
    Ok(out)
}

/// Rewrites the image scalars of `edits` (span and new value) in `text`, leaving every
/// other byte as it was. A scalar whose text is not its value as written plain or
/// simply quoted (escapes, line folding, block scalars) is refused.
pub fn edit(text: &str, edits: &[(&ScalarSpan, &str, &str)]) -> Result<String, ManifestError> {
    let mut sorted: Vec<&(&ScalarSpan, &str, &str)> = edits.iter().collect();
    sorted.sort_by_key(|(span, _, _)| span.start);
    sorted.dedup_by_key(|(span, _, _)| span.start);
    let mut out = String::with_capacity(text.len() + 80 * sorted.len());
    let mut at = 0;
    for (span, old, new) in sorted {
        let written = text.get(span.start..span.end).unwrap_or("");
        let style_name = match span.style {
            ScalarStyle::Plain => "plain",
            ScalarStyle::SingleQuoted => "single-quoted",
            ScalarStyle::DoubleQuoted => "double-quoted",
            ScalarStyle::Literal => "literal block",
            ScalarStyle::Folded => "folded block",
        };
        let refused = || ManifestError::NotEditable { line: span.line, image: (*old).to_owned(), style: style_name };
        let replacement = match span.style {
            ScalarStyle::Plain if written == *old => (*new).to_owned(),
            ScalarStyle::SingleQuoted if written == format!("'{old}'") && !new.contains('\'') => format!("'{new}'"),
            ScalarStyle::DoubleQuoted if written == format!("\"{old}\"") && !new.contains(['"', '\\']) => {
                format!("\"{new}\"")
            }
            _ => return Err(refused()),
        };
        if span.start < at {
            return Err(refused());
        }
        out.push_str(text.get(at..span.start).unwrap_or(""));
        out.push_str(&replacement);
        at = span.end;
    }
    out.push_str(text.get(at..).unwrap_or(""));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_KINDS: &str = r#"# a comment
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: prod}
spec:
  initContainers:
    - name: init
      image: "reg.example/init:1"   # double-quoted
  containers:
    - name: app
      image: reg.example/app:1
  ephemeralContainers:
    - {name: debug, image: 'reg.example/debug:1'}
---
kind: Deployment
metadata: {name: d}
spec: {template: {spec: {containers: [{name: c, image: reg.example/d@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}]}}}
---
kind: CronJob
metadata: {name: cj}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: job
              image: reg.example/job:2
---
kind: Service
metadata: {name: s}
---
{"kind": "StatefulSet", "metadata": {"name": "ss"}, "spec": {"template": {"spec": {"containers": [{"name": "j", "image": "reg.example/ss:1"}]}}}}
---
kind: List
items:
  - kind: DaemonSet
    metadata: {name: ds}
    spec: {template: {spec: {containers: [{name: x, image: reg.example/ds:1}]}}}
  - kind: ConfigMap
"#;

    #[test]
    fn every_kind_and_container_list() -> Result<(), ManifestError> {
        let m = parse(ALL_KINDS)?;
        let seen: Vec<(usize, &str, &str, &str)> =
            m.images.iter().map(|i| (i.document, i.kind.as_str(), i.list.as_str(), i.image.as_str())).collect();
        assert_eq!(
            seen,
            [
                (1, "Pod", "initContainers", "reg.example/init:1"),
                (1, "Pod", "containers", "reg.example/app:1"),
                (1, "Pod", "ephemeralContainers", "reg.example/debug:1"),
                (
                    2,
                    "Deployment",
                    "containers",
                    "reg.example/d@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                ),
                (3, "CronJob", "containers", "reg.example/job:2"),
                (5, "StatefulSet", "containers", "reg.example/ss:1"),
                (6, "DaemonSet", "containers", "reg.example/ds:1"),
            ]
        );
        assert_eq!(m.images[0].namespace.as_deref(), Some("prod"));
        assert_eq!(m.workloads, 5);
        assert_eq!(m.ignored.get("Service"), Some(&1));
        assert_eq!(m.ignored.get("ConfigMap"), Some(&1));
        Ok(())
    }

    #[test]
    fn spans_are_the_scalars_bytes() -> Result<(), ManifestError> {
        // Multi-byte characters before the scalars: spans are bytes, not characters.
        let text = format!("# ünïcödé ✓\n{ALL_KINDS}");
        for image in parse(&text)?.images {
            let written = &text[image.span.start..image.span.end];
            assert_eq!(written.trim_matches(['"', '\'']), image.image, "{written}");
        }
        Ok(())
    }

    #[test]
    fn edits_change_only_the_scalars() -> Result<(), ManifestError> {
        let m = parse(ALL_KINDS)?;
        let pins: Vec<(String, String)> = m
            .images
            .iter()
            .filter(|i| !i.image.contains('@'))
            .map(|i| (i.image.clone(), format!("{}@sha256:00", i.image)))
            .collect();
        let edits: Vec<(&ScalarSpan, &str, &str)> = m
            .images
            .iter()
            .filter(|i| !i.image.contains('@'))
            .zip(&pins)
            .map(|(i, (old, new))| (&i.span, old.as_str(), new.as_str()))
            .collect();
        let edited = edit(ALL_KINDS, &edits)?;
        let expected = ALL_KINDS
            .replace("reg.example/init:1", "reg.example/init:1@sha256:00")
            .replace("reg.example/app:1", "reg.example/app:1@sha256:00")
            .replace("reg.example/debug:1", "reg.example/debug:1@sha256:00")
            .replace("reg.example/job:2", "reg.example/job:2@sha256:00")
            .replace("reg.example/ss:1", "reg.example/ss:1@sha256:00")
            .replace("reg.example/ds:1", "reg.example/ds:1@sha256:00");
        assert_eq!(edited, expected);
        let again = parse(&edited)?;
        assert!(again.images.iter().all(|i| i.image.contains('@')));
        Ok(())
    }

    #[test]
    fn escaped_scalars_are_not_edited() -> Result<(), ManifestError> {
        let text = "kind: Pod\nspec:\n  containers:\n    - image: \"reg.example/\\x61pp:1\"\n";
        let m = parse(text)?;
        assert_eq!(m.images[0].image, "reg.example/app:1");
        let err = edit(text, &[(&m.images[0].span, "reg.example/app:1", "x")]).err();
        assert!(matches!(err, Some(ManifestError::NotEditable { line: 4, .. })), "{err:?}");
        Ok(())
    }

    #[test]
    fn malformed_yaml_names_document_line_and_column() {
        let text = "kind: Pod\n---\nkind: Deployment\nspec: [unclosed\n";
        match parse(text) {
            Err(ManifestError::Syntax { document, line, .. }) => assert_eq!((document, line), (2, 5)),
            other => panic!("{other:?}"),
        }
        let text = "kind: Pod\nspec:\n  containers: {image: x}\n";
        let err = parse(text).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("spec.containers: not a list"), "{err}");
        let text = "kind: Pod\nspec:\n  containers:\n    - image: [x]\n";
        let err = parse(text).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("spec.containers[0].image: not a string"), "{err}");
    }

    #[test]
    fn alias_bombs_are_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
        }
        assert!(matches!(parse(&text), Err(ManifestError::TooLarge { document: 1 })));
    }
}
