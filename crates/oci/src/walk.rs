//! Walks an image's filesystem without unpacking it: the layers are streamed
//! top-down, once each, and only the files visible in the final filesystem
//! (whiteouts and shadowing applied) are reported.
//!
//! Top-down, a layer's entry is visible unless a layer above it has an entry at
//! the same path, a non-directory or a whiteout (`.wh.NAME`) at one of its
//! ancestors, or an opaque whiteout (`.wh..wh..opq`) in one of its ancestor
//! directories. So every entry is decided when it streams past, and a visible
//! file's content is read right then. The decision is lexical on the cleaned
//! path, as overlayfs and containerd's applier see tar entries; a symlink is a
//! non-directory (it hides what lower layers have below its path) and is never
//! followed.
//!
//! A hardlink (tar `Link`) is another path of a file of the same layer: a
//! visible link to a visible file adds a path to it; a visible link to a file
//! that is itself hidden (a later layer replaced or removed the target's path)
//! reads the target's content in a second pass over that layer, the only case
//! in which a layer is streamed twice.
//!
//! Paths: a leading `/` and `./` are dropped, empty and `.` components too. An
//! entry whose path has a `..` component or a NUL byte is skipped with a note
//! (it could not name a file of the image's filesystem without escaping it).
//!
//! Bounds: every layer's uncompressed tar counts against
//! [`WalkOptions::max_unpacked_size`], the entries against
//! [`WalkOptions::max_entries`]; a candidate larger than
//! [`WalkOptions::max_file_size`] is reported as not read, never dropped.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};

use crate::ToolchainError;

/// A decompressed layer being streamed; [`LayerStream::finish`] checks what was read.
pub trait LayerStream: Read + Send {
    /// Reads what is left and checks the layer's digests and size; content read
    /// from the layer must not be trusted before this returned `Ok`.
    fn finish(self: Box<Self>) -> Result<(), ToolchainError>;
}

/// The layers of one image, bottom first, each opened as a decompressed tar stream.
pub trait LayerSource {
    /// How many layers.
    fn count(&self) -> usize;
    /// Opens layer `index` (0: bottom).
    fn open(&mut self, index: usize) -> Result<Box<dyn LayerStream>, ToolchainError>;
    /// The image, for messages.
    fn image(&self) -> String;
    /// Layer `index`'s digest, for messages.
    fn layer_digest(&self, index: usize) -> String;
}

/// Bounds of a walk.
#[derive(Debug, Clone, Copy)]
pub struct WalkOptions {
    /// Largest file whose content is read; larger candidates are listed as not read.
    pub max_file_size: u64,
    /// Bound of the uncompressed size of all layers together (tar headers included).
    pub max_unpacked_size: u64,
    /// Bound of the number of tar entries of all layers together.
    pub max_entries: u64,
}

/// The default [`WalkOptions::max_file_size`]: 1 GiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;
/// The default [`WalkOptions::max_entries`]: 10 million.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000_000;

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_unpacked_size: crate::DEFAULT_MAX_UNPACKED_SIZE,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// Receives the visible candidate files of a walk.
pub trait Visitor {
    /// Whether a regular file starting with `head` (up to 16 bytes; fewer when
    /// the file is shorter) is wanted.
    fn wants(&self, head: &[u8]) -> bool;
    /// The content of wanted file `id` (its first path `path`). Called while the
    /// layer streams, before its digest is checked: nothing may be trusted
    /// before [`walk`] returned `Ok`.
    fn file(&mut self, id: usize, path: &str, content: Vec<u8>);
}

/// A wanted file visible in the final filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkedFile {
    /// The id [`Visitor::file`] was called with.
    pub id: usize,
    /// Its paths (a hardlink is another path), cleaned, without a leading `/`; the first is the one the content was read at.
    pub paths: Vec<String>,
    /// The layer (0: bottom) it is in.
    pub layer: usize,
    /// Its size, from the tar header.
    pub size: u64,
    /// Its mode bits, from the tar header.
    pub mode: u32,
    /// Whether its content was read ([`Visitor::file`] called); `false`: larger than the bound.
    pub read: bool,
}

/// What a walk found.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    /// The wanted files visible in the final filesystem, by id.
    pub files: Vec<WalkedFile>,
    /// Entries skipped, files not read, second passes: one line each.
    pub notes: Vec<String>,
    /// How many tar entries were read.
    pub entries: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Dir,
    /// A non-directory or a whiteout: hides everything at and below its path.
    Other,
}

/// What a layer has at a regular file's path, for its hardlinks.
#[derive(Debug, Clone, Copy)]
enum InLayer {
    /// A wanted visible file.
    File(usize),
    /// A visible file not wanted.
    Unwanted,
    /// A regular file hidden by an upper layer.
    Hidden,
}

/// The visibility state of the layers already walked (the upper ones).
#[derive(Default)]
struct Upper {
    marks: HashMap<Vec<u8>, Mark>,
    opaque: HashSet<Vec<u8>>,
}

impl Upper {
    fn hidden(&self, comps: &[&[u8]]) -> bool {
        let mut key: Vec<u8> = Vec::new();
        if self.opaque.contains(&key) {
            return true;
        }
        for (i, c) in comps.iter().enumerate() {
            if i > 0 {
                key.push(b'/');
            }
            key.extend_from_slice(c);
            let last = i + 1 == comps.len();
            match self.marks.get(&key) {
                Some(_) if last => return true,
                Some(Mark::Other) => return true,
                _ => {}
            }
            if !last && self.opaque.contains(&key) {
                return true;
            }
        }
        false
    }

    fn merge(&mut self, layer: Layer) {
        for (k, m) in layer.marks {
            self.marks.entry(k).or_insert(m);
        }
        self.opaque.extend(layer.opaque);
    }
}

/// What one layer adds to [`Upper`], merged when the layer is done.
#[derive(Default)]
struct Layer {
    marks: HashMap<Vec<u8>, Mark>,
    opaque: HashSet<Vec<u8>>,
}

impl Layer {
    fn mark(&mut self, comps: &[&[u8]], mark: Mark) {
        let mut key = Vec::new();
        for (i, c) in comps.iter().enumerate() {
            if i > 0 {
                key.push(b'/');
            }
            key.extend_from_slice(c);
            if i + 1 == comps.len() {
                self.marks.insert(key.clone(), mark);
            } else {
                self.marks.entry(key.clone()).or_insert(Mark::Dir);
            }
        }
    }
}

/// Cleans a tar path: `Ok(components)`, or `Err(reason)` for a path that cannot name a file of the image.
pub(crate) fn clean_entry_path(path: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if path.contains(&0) {
        return Err("a NUL byte in the path");
    }
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("a `..` component"),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

const MAX_NOTES: usize = 50;

struct State<'a> {
    options: WalkOptions,
    visitor: &'a mut dyn Visitor,
    walk: Walk,
    unpacked: u64,
    skipped_notes: usize,
    /// Visible hardlinks whose target is not in their layer: target → (link paths, the link's layer).
    cross: HashMap<Vec<u8>, Vec<String>>,
}

impl State<'_> {
    fn note(&mut self, note: String) {
        if self.walk.notes.len() < MAX_NOTES {
            self.walk.notes.push(note);
        } else {
            self.skipped_notes += 1;
        }
    }
}

/// Counts the bytes of a layer against the walk's bound.
struct Counted<'a> {
    inner: &'a mut dyn Read,
    left: u64,
    exceeded: bool,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.exceeded = true;
            return Err(io::Error::other("the walk's unpacked size bound is exceeded"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Walks `source`'s layers top-down and calls `visitor` for each visible
/// regular file it wants. Every layer's digests are checked
/// ([`LayerStream::finish`]) before the walk goes on; an error means nothing
/// the visitor got may be used.
pub fn walk(
    source: &mut dyn LayerSource,
    options: &WalkOptions,
    visitor: &mut dyn Visitor,
) -> Result<Walk, ToolchainError> {
    let mut state = State {
        options: *options,
        visitor,
        walk: Walk::default(),
        unpacked: 0,
        skipped_notes: 0,
        cross: HashMap::new(),
    };
    let mut upper = Upper::default();
    for index in (0..source.count()).rev() {
        let layer = walk_layer(source, index, &upper, &mut state)?;
        upper.merge(layer);
    }
    let mut dangling: Vec<(Vec<u8>, Vec<String>)> = state.cross.drain().collect();
    dangling.sort();
    for (target, links) in dangling {
        let target = show(&target);
        state.note(format!(
            "hardlinks {links:?} skipped: their target {target:?} is not a regular file of a lower layer"
        ));
    }
    if state.skipped_notes > 0 {
        let n = state.skipped_notes;
        state.walk.notes.push(format!("… and {n} more notes"));
    }
    let mut walk = state.walk;
    prune(&mut walk);
    Ok(walk)
}

fn layer_error(source: &dyn LayerSource, index: usize, entry: &[u8], reason: String) -> ToolchainError {
    ToolchainError::Layer { image: source.image(), digest: source.layer_digest(index), entry: show(entry), reason }
}

/// Reads up to 16 bytes: fewer only at the end of the entry.
fn read_head(r: &mut dyn Read, head: &mut [u8; 16]) -> io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn walk_layer(
    source: &mut dyn LayerSource,
    index: usize,
    upper: &Upper,
    state: &mut State<'_>,
) -> Result<Layer, ToolchainError> {
    let mut stream = source.open(index)?;
    let mut layer = Layer::default();
    let mut in_layer: HashMap<Vec<u8>, InLayer> = HashMap::new();
    // Visible links to hidden files: target → link paths.
    let mut deferred: HashMap<Vec<u8>, Vec<String>> = HashMap::new();
    let left = state.options.max_unpacked_size.saturating_sub(state.unpacked);
    let mut counted = Counted { inner: &mut stream, left, exceeded: false };
    let r = walk_entries(source, index, &mut counted, upper, state, &mut layer, &mut in_layer, &mut deferred);
    let r = r.and_then(|()| {
        io::copy(&mut counted, &mut io::sink())
            .map(|_| ())
            .map_err(|e| layer_error(source, index, b"", format!("reading the layer: {e}")))
    });
    state.unpacked = state.options.max_unpacked_size - counted.left;
    let exceeded = counted.exceeded;
    // A bad digest explains a bad layer best: check it first.
    stream.finish()?;
    if exceeded {
        return Err(ToolchainError::TooLarge { image: source.image(), limit: state.options.max_unpacked_size });
    }
    r?;
    if !deferred.is_empty() {
        second_pass(source, index, deferred, state)?;
    }
    Ok(layer)
}

#[allow(clippy::too_many_arguments)]
fn walk_entries(
    source: &dyn LayerSource,
    index: usize,
    reader: &mut dyn Read,
    upper: &Upper,
    state: &mut State<'_>,
    layer: &mut Layer,
    in_layer: &mut HashMap<Vec<u8>, InLayer>,
    deferred: &mut HashMap<Vec<u8>, Vec<String>>,
) -> Result<(), ToolchainError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| layer_error(source, index, b"", format!("reading the layer: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| layer_error(source, index, b"", format!("reading the layer: {e}")))?;
        state.walk.entries += 1;
        if state.walk.entries > state.options.max_entries {
            return Err(layer_error(
                source,
                index,
                b"",
                format!("more than {} entries in the image; refusing it", state.options.max_entries),
            ));
        }
        let raw = entry.path_bytes().into_owned();
        let comps = match clean_entry_path(&raw) {
            Ok(c) => c,
            Err(why) => {
                state.note(format!("layer {}: entry {:?} skipped: {why}", source.layer_digest(index), show(&raw)));
                continue;
            }
        };
        let Some((name, parent)) = comps.split_last() else { continue };
        let kind = entry.header().entry_type();

        if let Some(target) = name.strip_prefix(b".wh.") {
            if target == b".wh..opq" {
                layer.opaque.insert(parent.join(&b'/'));
                layer.mark(parent, Mark::Dir);
            } else if !target.starts_with(b".wh.") && !target.is_empty() {
                let mut c = parent.to_vec();
                c.push(target);
                layer.mark(&c, Mark::Other);
            }
            continue;
        }

        let key = comps.join(&b'/');
        let hidden = upper.hidden(&comps);
        match kind {
            tar::EntryType::Directory => {
                layer.mark(&comps, Mark::Dir);
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {}
            tar::EntryType::Link => {
                layer.mark(&comps, Mark::Other);
                if hidden {
                    continue;
                }
                let target_raw = entry.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
                let target = match clean_entry_path(&target_raw) {
                    Ok(c) => c.join(&b'/'),
                    Err(why) => {
                        state.note(format!(
                            "layer {}: hardlink {:?} skipped: its target {:?} has {why}",
                            source.layer_digest(index),
                            show(&raw),
                            show(&target_raw)
                        ));
                        continue;
                    }
                };
                match in_layer.get(&target).copied() {
                    Some(InLayer::File(id)) => {
                        state.walk.files[id].paths.push(show(&key));
                        in_layer.insert(key, InLayer::File(id));
                    }
                    Some(InLayer::Unwanted) => {
                        in_layer.insert(key, InLayer::Unwanted);
                    }
                    Some(InLayer::Hidden) => deferred.entry(target).or_default().push(show(&key)),
                    // A target in a lower layer (what an unpacker resolves in the rootfs):
                    // the first regular file at that path below this layer.
                    None => state.cross.entry(target).or_default().push(show(&key)),
                }
                continue;
            }
            _ => {
                // Symlinks, devices, FIFOs: never read, but they hide lower content.
                layer.mark(&comps, Mark::Other);
                continue;
            }
        }

        // A regular file.
        layer.mark(&comps, Mark::Other);
        let links = state.cross.remove(&key);
        if hidden && links.is_none() {
            in_layer.insert(key, InLayer::Hidden);
            continue;
        }
        // A later entry at the same path replaces an earlier one of the same layer.
        if let Some(InLayer::File(old)) = in_layer.get(&key).copied() {
            let shown = show(&key);
            state.walk.files[old].paths.retain(|p| *p != shown);
        }
        let size = entry.size();
        let mode = entry.header().mode().unwrap_or(0);
        let mut head = [0u8; 16];
        let n = read_head(&mut entry, &mut head).map_err(|e| layer_error(source, index, &raw, e.to_string()))?;
        if !state.visitor.wants(&head[..n]) {
            in_layer.insert(key, InLayer::Unwanted);
            continue;
        }
        let id = state.walk.files.len();
        let mut paths = if hidden { Vec::new() } else { vec![show(&key)] };
        paths.extend(links.into_iter().flatten());
        let Some(path) = paths.first().cloned() else { continue };
        let read = size <= state.options.max_file_size;
        state.walk.files.push(WalkedFile { id, paths, layer: index, size, mode, read });
        in_layer.insert(key, if hidden { InLayer::Hidden } else { InLayer::File(id) });
        if !read {
            state.note(format!(
                "{path}: {size} bytes, more than the {} bytes a file may have to be read; not read",
                state.options.max_file_size
            ));
            continue;
        }
        let content = read_rest(&mut entry, &head[..n], size).map_err(|e| layer_error(source, index, &raw, e))?;
        state.visitor.file(id, &path, content);
    }
    Ok(())
}

/// The whole content of an entry of `size` bytes whose first bytes are `head`.
fn read_rest(entry: &mut dyn Read, head: &[u8], size: u64) -> Result<Vec<u8>, String> {
    let cap = usize::try_from(size).map_err(|_| format!("{size} bytes do not fit in memory"))?;
    let mut content = Vec::new();
    content.try_reserve_exact(cap).map_err(|e| format!("{size} bytes: {e}"))?;
    content.extend_from_slice(head);
    entry.take(size.saturating_sub(head.len() as u64)).read_to_end(&mut content).map_err(|e| e.to_string())?;
    if content.len() as u64 != size {
        return Err(format!("the entry ends after {} of its {size} bytes", content.len()));
    }
    Ok(content)
}

/// Reads the hidden files that visible hardlinks of layer `index` point to.
fn second_pass(
    source: &mut dyn LayerSource,
    index: usize,
    mut deferred: HashMap<Vec<u8>, Vec<String>>,
    state: &mut State<'_>,
) -> Result<(), ToolchainError> {
    let count = deferred.len();
    state.note(format!(
        "layer {}: read a second time for {count} hardlinks to paths an upper layer hides",
        source.layer_digest(index)
    ));
    let mut stream = source.open(index)?;
    let r = (|| -> Result<(), ToolchainError> {
        let mut archive = tar::Archive::new(&mut stream);
        let entries =
            archive.entries().map_err(|e| layer_error(source, index, b"", format!("reading the layer: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| layer_error(source, index, b"", format!("reading the layer: {e}")))?;
            if !matches!(entry.header().entry_type(), tar::EntryType::Regular | tar::EntryType::Continuous) {
                continue;
            }
            let raw = entry.path_bytes().into_owned();
            let Ok(comps) = clean_entry_path(&raw) else { continue };
            let key = comps.join(&b'/');
            let Some(links) = deferred.remove(&key) else { continue };
            let size = entry.size();
            let mode = entry.header().mode().unwrap_or(0);
            let mut head = [0u8; 16];
            let n = read_head(&mut entry, &mut head).map_err(|e| layer_error(source, index, &raw, e.to_string()))?;
            if !state.visitor.wants(&head[..n]) {
                continue;
            }
            let id = state.walk.files.len();
            let read = size <= state.options.max_file_size;
            let Some(path) = links.first().cloned() else { continue };
            state.walk.files.push(WalkedFile { id, paths: links, layer: index, size, mode, read });
            if read {
                let content =
                    read_rest(&mut entry, &head[..n], size).map_err(|e| layer_error(source, index, &raw, e))?;
                state.visitor.file(id, &path, content);
            } else {
                state.note(format!(
                    "{path}: {size} bytes, more than the {} bytes a file may have to be read; not read",
                    state.options.max_file_size
                ));
            }
            if deferred.is_empty() {
                break;
            }
        }
        Ok(())
    })();
    stream.finish()?;
    r
}

/// Drops files that lost every path (a later entry of their layer replaced them).
fn prune(walk: &mut Walk) {
    walk.files.retain(|f| !f.paths.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem {
        layers: Vec<Vec<u8>>,
        opened: Vec<usize>,
    }

    struct MemStream(io::Cursor<Vec<u8>>);

    impl Read for MemStream {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl LayerStream for MemStream {
        fn finish(self: Box<Self>) -> Result<(), ToolchainError> {
            Ok(())
        }
    }

    impl LayerSource for Mem {
        fn count(&self) -> usize {
            self.layers.len()
        }
        fn open(&mut self, index: usize) -> Result<Box<dyn LayerStream>, ToolchainError> {
            self.opened.push(index);
            Ok(Box::new(MemStream(io::Cursor::new(self.layers[index].clone()))))
        }
        fn image(&self) -> String {
            "mem".into()
        }
        fn layer_digest(&self, index: usize) -> String {
            format!("layer{index}")
        }
    }

    #[derive(Default)]
    struct Collect(Vec<(usize, String, Vec<u8>)>);

    impl Visitor for Collect {
        fn wants(&self, head: &[u8]) -> bool {
            head.starts_with(b"EXE")
        }
        fn file(&mut self, id: usize, path: &str, content: Vec<u8>) {
            self.0.push((id, path.to_string(), content));
        }
    }

    enum E<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Link(&'a str, &'a str),
        Sym(&'a str, &'a str),
        /// A file whose name goes into the header as is (the builder refuses absolute and `..` names).
        Raw(&'a str, &'a [u8]),
    }

    fn tar(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            match e {
                E::File(p, data) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    h.set_mode(0o644);
                    b.append_data(&mut h, p, *data).unwrap();
                }
                E::Dir(p) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, p, io::empty()).unwrap();
                }
                E::Link(p, t) => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, p, t).unwrap();
                }
                E::Raw(p, data) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    h.as_old_mut().name[..p.len()].copy_from_slice(p.as_bytes());
                    h.set_cksum();
                    b.append(&h, *data).unwrap();
                }
                E::Sym(p, t) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, p, t).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn run(layers: Vec<Vec<u8>>) -> (Walk, Collect, Vec<usize>) {
        let mut src = Mem { layers, opened: Vec::new() };
        let mut c = Collect::default();
        let w = walk(&mut src, &WalkOptions::default(), &mut c).unwrap();
        (w, c, src.opened)
    }

    fn paths(w: &Walk) -> Vec<Vec<String>> {
        let mut v: Vec<Vec<String>> = w.files.iter().map(|f| f.paths.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn whiteouts_opaque_dirs_and_shadowing() {
        let lower = tar(&[
            E::File("bin/a", b"EXE a"),
            E::File("bin/b", b"EXE b"),
            E::File("opt/x/c", b"EXE c"),
            E::File("usr/d", b"EXE d"),
            E::File("./srv/e", b"EXE e"),
            E::Raw("/etc/f", b"EXE f"),
            E::File("etc/plain", b"text"),
        ]);
        let upper = tar(&[
            E::File("bin/.wh.a", b""),
            E::File("opt/x/.wh..wh..opq", b""),
            E::File("opt/x/new", b"EXE new"),
            E::Sym("usr", "/opt"),
            E::File("srv/e", b"EXE e2"),
        ]);
        let (w, c, opened) = run(vec![lower, upper]);
        assert_eq!(
            paths(&w),
            vec![vec!["bin/b".to_string()], vec!["etc/f".into()], vec!["opt/x/new".into()], vec!["srv/e".into()]]
        );
        let e = c.0.iter().find(|(_, p, _)| p == "srv/e").unwrap();
        assert_eq!(e.2, b"EXE e2");
        assert_eq!(opened, vec![1, 0]);
    }

    #[test]
    fn hardlinks_are_paths_of_one_file() {
        let lower = tar(&[E::File("bin/a", b"EXE a"), E::Link("bin/a2", "bin/a"), E::Link("./sbin/a3", "/bin/a")]);
        let (w, c, opened) = run(vec![lower]);
        assert_eq!(paths(&w), vec![vec!["bin/a".to_string(), "bin/a2".into(), "sbin/a3".into()]]);
        assert_eq!(c.0.len(), 1);
        assert_eq!(opened, vec![0]);
    }

    #[test]
    fn a_link_to_a_hidden_target_is_read_in_a_second_pass() {
        let lower = tar(&[E::File("bin/a", b"EXE a"), E::Link("bin/a2", "bin/a")]);
        let upper = tar(&[E::File("bin/.wh.a", b"")]);
        let (w, c, opened) = run(vec![lower, upper]);
        assert_eq!(paths(&w), vec![vec!["bin/a2".to_string()]]);
        assert_eq!(c.0[0].2, b"EXE a");
        assert_eq!(opened, vec![1, 0, 0]);
    }

    #[test]
    fn a_link_to_a_lower_layer_is_another_path_of_its_file() {
        let lower = tar(&[E::File("bin/a", b"EXE a"), E::File("bin/b", b"EXE b")]);
        let upper = tar(&[
            E::Link("bin/a2", "bin/a"),
            E::Link("bin/b2", "bin/b"),
            E::File("bin/.wh.b", b""),
            E::Link("x", "nowhere"),
        ]);
        let (w, c, opened) = run(vec![lower, upper]);
        assert_eq!(paths(&w), vec![vec!["bin/a".to_string(), "bin/a2".into()], vec!["bin/b2".to_string()]]);
        assert_eq!(c.0.len(), 2);
        assert_eq!(opened, vec![1, 0]);
        assert!(w.notes.iter().any(|n| n.contains("nowhere")), "{:?}", w.notes);
    }

    #[test]
    fn dot_dot_and_nul_are_skipped_with_a_note() {
        let layer = tar(&[E::Raw("../../escape", b"EXE x"), E::Raw("a/../../b", b"EXE y")]);
        let (w, c, _) = run(vec![layer]);
        assert!(w.files.is_empty() && c.0.is_empty());
        assert!(w.notes[0].contains("`..`"), "{:?}", w.notes);
        assert_eq!(w.notes.len(), 2, "{:?}", w.notes);
        // A PAX path can hold a NUL byte, a header name cannot.
        assert_eq!(clean_entry_path(b"a\0b"), Err("a NUL byte in the path"));
        assert_eq!(clean_entry_path(b"/./a//b/"), Ok(vec![&b"a"[..], &b"b"[..]]));
    }

    #[test]
    fn a_directory_replaced_by_a_file_hides_its_content() {
        let lower = tar(&[E::Dir("app"), E::File("app/bin", b"EXE 1")]);
        let upper = tar(&[E::File("app", b"EXE 2")]);
        let (w, _, _) = run(vec![lower, upper]);
        assert_eq!(paths(&w), vec![vec!["app".to_string()]]);
    }

    #[test]
    fn large_files_are_listed_not_read() {
        let lower = tar(&[E::File("big", b"EXE 0123456789")]);
        let mut src = Mem { layers: vec![lower], opened: Vec::new() };
        let mut c = Collect::default();
        let options = WalkOptions { max_file_size: 4, ..WalkOptions::default() };
        let w = walk(&mut src, &options, &mut c).unwrap();
        assert_eq!(w.files.len(), 1);
        assert!(!w.files[0].read && c.0.is_empty());
        assert!(w.notes[0].contains("not read"));
    }

    #[test]
    fn the_unpacked_bound_is_an_error() {
        let lower = tar(&[E::File("big", &[0u8; 4096])]);
        let mut src = Mem { layers: vec![lower], opened: Vec::new() };
        let options = WalkOptions { max_unpacked_size: 1000, ..WalkOptions::default() };
        let e = walk(&mut src, &options, &mut Collect::default()).unwrap_err();
        assert!(matches!(e, ToolchainError::TooLarge { .. }), "{e}");
    }
}
