//! Walks an image's filesystem without unpacking it: each layer is streamed
//! once, and only the files visible in the final filesystem (whiteouts and
//! shadowing applied) are reported.
//!
//! Layers are streamed in parallel, the largest first, each on a thread of its
//! own (up to the machine's cores): decompression is what a walk spends its time
//! on, and one layer's inflation cannot be split. While a layer streams, its
//! entries are recorded (path, kind, link target) and every regular file the
//! visitor wants is read and handed over, visible or not yet known to be. Once
//! every layer is read, the records are settled top-down: a layer's entry is
//! visible unless a layer above it has an entry at the same path, a
//! non-directory or a whiteout (`.wh.NAME`) at one of its ancestors, or an
//! opaque whiteout (`.wh..wh..opq`) in one of its ancestor directories. The
//! decision is lexical on the cleaned path, as overlayfs and containerd's
//! applier see tar entries; a symlink is a non-directory (it hides what lower
//! layers have below its path) and is never followed. A candidate that turns
//! out hidden was read for nothing, which costs less than streaming its layer
//! after the layers above it.
//!
//! A hardlink (tar `Link`) is another path of a file of the same layer: a
//! visible link to a visible file adds a path to it; a visible link to a file
//! that is itself hidden (a later layer replaced or removed the target's path)
//! makes that file visible at the link's path.
//!
//! Paths: a leading `/` and `./` are dropped, empty and `.` components too. An
//! entry whose path has a `..` component or a NUL byte is skipped with a note
//! (it could not name a file of the image's filesystem without escaping it).
//!
//! Bounds: the uncompressed tars of all layers together count against
//! [`WalkOptions::max_unpacked_size`], the entries against
//! [`WalkOptions::max_entries`]; a candidate larger than
//! [`WalkOptions::max_file_size`] is reported as not read, never dropped.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::ToolchainError;

/// A decompressed layer being streamed; [`LayerStream::finish`] checks what was read.
pub trait LayerStream: Read + Send {
    /// Reads what is left and checks the layer's digests and size; content read
    /// from the layer must not be trusted before this returned `Ok`.
    fn finish(self: Box<Self>) -> Result<(), ToolchainError>;
}

/// The layers of one image, bottom first, each opened as a decompressed tar stream.
pub trait LayerSource: Send {
    /// How many layers.
    fn count(&self) -> usize;
    /// Opens layer `index` (0: bottom).
    fn open(&mut self, index: usize) -> Result<Box<dyn LayerStream>, ToolchainError>;
    /// The image, for messages.
    fn image(&self) -> String;
    /// Layer `index`'s digest, for messages.
    fn layer_digest(&self, index: usize) -> String;
    /// Layer `index`'s stored size, when known: the walk starts the largest layers first.
    fn size_hint(&self, _index: usize) -> Option<u64> {
        None
    }
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

/// Receives the candidate files of a walk, from the walk's threads.
pub trait Visitor: Sync {
    /// Whether a regular file starting with `head` (up to 16 bytes; fewer when
    /// the file is shorter) is wanted.
    fn wants(&self, head: &[u8]) -> bool;
    /// The content of wanted file `id`, at `path` in its layer. Called for every
    /// wanted regular file of every layer, before it is known whether it is
    /// visible (the [`Walk`]'s files are the visible ones) and before its layer's
    /// digest is checked: nothing may be trusted before [`walk`] returned `Ok`.
    fn file(&self, id: usize, path: &str, content: Vec<u8>);
    /// An empty buffer to read the next candidate into: one the visitor is done
    /// with spares the walk fresh memory (and its page faults) for every file.
    fn buffer(&self) -> Vec<u8> {
        Vec::new()
    }
}

/// A wanted file visible in the final filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkedFile {
    /// The id [`Visitor::file`] was called with.
    pub id: usize,
    /// Its paths (a hardlink is another path), cleaned, without a leading `/`.
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
    /// The wanted files visible in the final filesystem, top layer first.
    pub files: Vec<WalkedFile>,
    /// Entries skipped, files not read: one line each.
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

/// A wanted regular file as its layer streamed past.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    id: usize,
    size: u64,
    mode: u32,
    read: bool,
}

/// One tar entry, as the settling needs it; paths are cleaned and joined with `/`.
enum Record {
    /// `.wh..wh..opq` in this directory.
    Opaque(Vec<u8>),
    /// `.wh.NAME`: this path.
    Whiteout(Vec<u8>),
    Dir(Vec<u8>),
    /// Symlinks, devices, FIFOs: never read, but they hide lower content.
    Other(Vec<u8>),
    /// A hardlink, with its target cleaned, or why the target could not be.
    Link {
        path: Vec<u8>,
        target: Result<Vec<u8>, (String, &'static str)>,
    },
    /// A regular file; `None` when not wanted.
    File {
        path: Vec<u8>,
        candidate: Option<Candidate>,
    },
}

/// What a layer has at a regular file's path, for its hardlinks.
#[derive(Debug, Clone, Copy)]
enum InLayer {
    /// A visible file: its index in [`Walk::files`].
    File(usize),
    /// A visible file not wanted.
    Unwanted,
    /// A regular file hidden by an upper layer (with what it is when wanted).
    Hidden(Option<Candidate>),
}

/// The visibility state of the layers already settled (the upper ones).
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

/// What one layer adds to [`Upper`], merged when the layer is settled.
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

/// The components of a path [`clean_entry_path`] cleaned and joined.
fn components(key: &[u8]) -> Vec<&[u8]> {
    if key.is_empty() {
        return Vec::new();
    }
    key.split(|&b| b == b'/').collect()
}

fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

const MAX_NOTES: usize = 50;

/// Most layers streamed at once: each holds a decompressor and a file being read.
const MAX_PARALLEL_LAYERS: usize = 4;

/// What the layers' threads share.
struct Shared<'a> {
    options: WalkOptions,
    visitor: &'a dyn Visitor,
    image: String,
    digests: Vec<String>,
    unpacked: AtomicU64,
    entries: AtomicU64,
    next_id: AtomicUsize,
    /// One more than the highest layer that failed (0: none): the layers below it stop.
    failed_above: AtomicUsize,
}

impl Shared<'_> {
    fn layer_error(&self, index: usize, entry: &[u8], reason: String) -> ToolchainError {
        ToolchainError::Layer {
            image: self.image.clone(),
            digest: self.digests.get(index).cloned().unwrap_or_default(),
            entry: show(entry),
            reason,
        }
    }

    fn not_read(&self, path: &str, size: u64) -> String {
        format!(
            "{path}: {size} bytes, more than the {} bytes a file may have to be read; not read",
            self.options.max_file_size
        )
    }
}

/// Counts the bytes of a layer against the walk's bound, shared by all layers.
struct Counted<'a> {
    inner: &'a mut dyn Read,
    unpacked: &'a AtomicU64,
    limit: u64,
    exceeded: bool,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let before = self.unpacked.fetch_add(n as u64, Ordering::Relaxed);
        if before.saturating_add(n as u64) > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("the walk's unpacked size bound is exceeded"));
        }
        Ok(n)
    }
}

/// A layer as streamed: its entries in order, and its notes.
struct Scanned {
    records: Vec<Record>,
    notes: Vec<String>,
}

enum Outcome {
    Scanned(Scanned),
    Failed(ToolchainError),
    /// Not streamed (or not to its end): a layer above it failed.
    Stopped,
}

/// Walks `source`'s layers and calls `visitor` for each regular file it wants;
/// the [`Walk`] lists those visible in the final filesystem. Every layer's
/// digests are checked ([`LayerStream::finish`]) before the walk returns; an
/// error means nothing the visitor got may be used. When several layers are
/// bad, the error is the topmost one's.
pub fn walk(
    source: &mut dyn LayerSource,
    options: &WalkOptions,
    visitor: &dyn Visitor,
) -> Result<Walk, ToolchainError> {
    let count = source.count();
    let shared = Shared {
        options: *options,
        visitor,
        image: source.image(),
        digests: (0..count).map(|i| source.layer_digest(i)).collect(),
        unpacked: AtomicU64::new(0),
        entries: AtomicU64::new(0),
        next_id: AtomicUsize::new(0),
        failed_above: AtomicUsize::new(0),
    };
    // The largest first, so that the longest inflation starts at once; the top first among equals.
    let mut order: Vec<usize> = (0..count).rev().collect();
    order.sort_by_key(|&i| std::cmp::Reverse(source.size_hint(i).unwrap_or(0)));
    let outcomes: Vec<Mutex<Option<Outcome>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let source = Mutex::new(source);
    let work = || {
        while let Some(&index) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            let outcome = if shared.failed_above.load(Ordering::Relaxed) > index {
                Outcome::Stopped
            } else {
                match scan_layer(&source, index, &shared) {
                    Ok(Some(s)) => Outcome::Scanned(s),
                    Ok(None) => Outcome::Stopped,
                    Err(e) => {
                        shared.failed_above.fetch_max(index + 1, Ordering::Relaxed);
                        Outcome::Failed(e)
                    }
                }
            };
            if let Ok(mut slot) = outcomes[index].lock() {
                *slot = Some(outcome);
            }
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_PARALLEL_LAYERS).min(count);
    std::thread::scope(|scope| {
        for _ in 1..threads {
            // A thread that cannot be started leaves its share to the others.
            let _ = std::thread::Builder::new().name("layer-walk".into()).spawn_scoped(scope, work);
        }
        work();
    });

    let mut settle = Settle { walk: Walk::default(), skipped_notes: 0, cross: HashMap::new(), by_id: HashMap::new() };
    settle.walk.entries = shared.entries.load(Ordering::Relaxed);
    let mut upper = Upper::default();
    for (index, slot) in outcomes.into_iter().enumerate().rev() {
        let outcome = slot.into_inner().ok().flatten();
        match outcome {
            Some(Outcome::Scanned(scanned)) => {
                for note in scanned.notes {
                    settle.note(note);
                }
                let layer = settle.layer(index, scanned.records, &upper, &shared);
                upper.merge(layer);
            }
            Some(Outcome::Failed(e)) => return Err(e),
            // A layer is stopped only below one that failed, whose error was returned.
            Some(Outcome::Stopped) | None => {
                return Err(shared.layer_error(index, b"", "the layer was not read".into()));
            }
        }
    }
    let mut dangling: Vec<(Vec<u8>, Vec<String>)> = settle.cross.drain().collect();
    dangling.sort();
    for (target, links) in dangling {
        let target = show(&target);
        settle.note(format!(
            "hardlinks {links:?} skipped: their target {target:?} is not a regular file of a lower layer"
        ));
    }
    if settle.skipped_notes > 0 {
        let n = settle.skipped_notes;
        settle.walk.notes.push(format!("… and {n} more notes"));
    }
    let mut walk = settle.walk;
    prune(&mut walk);
    Ok(walk)
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

/// Streams layer `index`: its records, or `None` when a layer above it failed meanwhile.
fn scan_layer(
    source: &Mutex<&mut dyn LayerSource>,
    index: usize,
    shared: &Shared<'_>,
) -> Result<Option<Scanned>, ToolchainError> {
    let mut stream = {
        let mut source = source.lock().map_err(|_| shared.layer_error(index, b"", "the layer source failed".into()))?;
        source.open(index)?
    };
    let mut scanned = Scanned { records: Vec::new(), notes: Vec::new() };
    let limit = shared.options.max_unpacked_size;
    let mut counted = Counted { inner: &mut stream, unpacked: &shared.unpacked, limit, exceeded: false };
    let r = scan_entries(index, &mut counted, shared, &mut scanned);
    let stopped = matches!(r, Ok(false));
    let r = r.and_then(|_| {
        if stopped {
            return Ok(());
        }
        io::copy(&mut counted, &mut io::sink())
            .map(|_| ())
            .map_err(|e| shared.layer_error(index, b"", format!("reading the layer: {e}")))
    });
    let exceeded = counted.exceeded;
    if stopped {
        return Ok(None);
    }
    // A bad digest explains a bad layer best: check it first.
    stream.finish()?;
    if exceeded {
        return Err(ToolchainError::TooLarge { image: shared.image.clone(), limit });
    }
    r?;
    Ok(Some(scanned))
}

/// Records the entries of a layer and hands its candidates to the visitor;
/// `Ok(false)` when it stopped because a layer above failed.
fn scan_entries(
    index: usize,
    reader: &mut dyn Read,
    shared: &Shared<'_>,
    scanned: &mut Scanned,
) -> Result<bool, ToolchainError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| shared.layer_error(index, b"", format!("reading the layer: {e}")))?;
    for entry in entries {
        if shared.failed_above.load(Ordering::Relaxed) > index {
            return Ok(false);
        }
        let mut entry = entry.map_err(|e| shared.layer_error(index, b"", format!("reading the layer: {e}")))?;
        let max = shared.options.max_entries;
        if shared.entries.fetch_add(1, Ordering::Relaxed) >= max {
            return Err(shared.layer_error(index, b"", format!("more than {max} entries in the image; refusing it")));
        }
        let raw = entry.path_bytes().into_owned();
        let comps = match clean_entry_path(&raw) {
            Ok(c) => c,
            Err(why) => {
                let digest = shared.digests.get(index).map(String::as_str).unwrap_or_default();
                scanned.notes.push(format!("layer {digest}: entry {:?} skipped: {why}", show(&raw)));
                continue;
            }
        };
        let Some((name, parent)) = comps.split_last() else { continue };

        if let Some(target) = name.strip_prefix(b".wh.") {
            if target == b".wh..opq" {
                scanned.records.push(Record::Opaque(parent.join(&b'/')));
            } else if !target.starts_with(b".wh.") && !target.is_empty() {
                let mut c = parent.to_vec();
                c.push(target);
                scanned.records.push(Record::Whiteout(c.join(&b'/')));
            }
            continue;
        }

        let path = comps.join(&b'/');
        let record = match entry.header().entry_type() {
            tar::EntryType::Directory => Record::Dir(path),
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let candidate = read_candidate(index, &mut entry, &raw, &path, shared)?;
                Record::File { path, candidate }
            }
            tar::EntryType::Link => {
                let target_raw = entry.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
                let target =
                    clean_entry_path(&target_raw).map(|c| c.join(&b'/')).map_err(|why| (show(&target_raw), why));
                Record::Link { path, target }
            }
            _ => Record::Other(path),
        };
        scanned.records.push(record);
    }
    Ok(true)
}

/// Reads a regular file's head and, when the visitor wants it and it is within the bound, its content.
fn read_candidate<R: Read>(
    index: usize,
    entry: &mut tar::Entry<'_, R>,
    raw: &[u8],
    path: &[u8],
    shared: &Shared<'_>,
) -> Result<Option<Candidate>, ToolchainError> {
    let size = entry.size();
    let mode = entry.header().mode().unwrap_or(0);
    let mut head = [0u8; 16];
    let n = read_head(entry, &mut head).map_err(|e| shared.layer_error(index, raw, e.to_string()))?;
    if !shared.visitor.wants(&head[..n]) {
        return Ok(None);
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let read = size <= shared.options.max_file_size;
    if read {
        let content = read_rest(entry, &head[..n], size, shared.visitor.buffer())
            .map_err(|e| shared.layer_error(index, raw, e))?;
        shared.visitor.file(id, &show(path), content);
    }
    Ok(Some(Candidate { id, size, mode, read }))
}

/// The whole content of an entry of `size` bytes whose first bytes are `head`.
fn read_rest(entry: &mut dyn Read, head: &[u8], size: u64, mut content: Vec<u8>) -> Result<Vec<u8>, String> {
    let cap = usize::try_from(size).map_err(|_| format!("{size} bytes do not fit in memory"))?;
    content.clear();
    content.try_reserve_exact(cap).map_err(|e| format!("{size} bytes: {e}"))?;
    content.extend_from_slice(head);
    entry.take(size.saturating_sub(head.len() as u64)).read_to_end(&mut content).map_err(|e| e.to_string())?;
    if content.len() as u64 != size {
        return Err(format!("the entry ends after {} of its {size} bytes", content.len()));
    }
    Ok(content)
}

/// Decides, top-down, which recorded files are visible.
struct Settle {
    walk: Walk,
    skipped_notes: usize,
    /// Visible hardlinks whose target is not in their layer: target → link paths.
    cross: HashMap<Vec<u8>, Vec<String>>,
    /// The index in [`Walk::files`] of each candidate made visible.
    by_id: HashMap<usize, usize>,
}

impl Settle {
    fn note(&mut self, note: String) {
        if self.walk.notes.len() < MAX_NOTES {
            self.walk.notes.push(note);
        } else {
            self.skipped_notes += 1;
        }
    }

    /// Makes candidate `c` of layer `index` visible at `paths` (or adds them to it).
    fn show_file(&mut self, index: usize, c: Candidate, paths: Vec<String>, shared: &Shared<'_>) -> Option<usize> {
        if let Some(&at) = self.by_id.get(&c.id) {
            self.walk.files[at].paths.extend(paths);
            return Some(at);
        }
        let first = paths.first()?.clone();
        let at = self.walk.files.len();
        self.walk.files.push(WalkedFile { id: c.id, paths, layer: index, size: c.size, mode: c.mode, read: c.read });
        self.by_id.insert(c.id, at);
        if !c.read {
            self.note(shared.not_read(&first, c.size));
        }
        Some(at)
    }

    /// Settles layer `index`'s records under the layers above it (`upper`).
    fn layer(&mut self, index: usize, records: Vec<Record>, upper: &Upper, shared: &Shared<'_>) -> Layer {
        let mut layer = Layer::default();
        let mut in_layer: HashMap<Vec<u8>, InLayer> = HashMap::new();
        for record in records {
            match record {
                Record::Opaque(dir) => {
                    layer.mark(&components(&dir), Mark::Dir);
                    layer.opaque.insert(dir);
                }
                Record::Whiteout(path) | Record::Other(path) => layer.mark(&components(&path), Mark::Other),
                Record::Dir(path) => layer.mark(&components(&path), Mark::Dir),
                Record::Link { path, target } => {
                    let comps = components(&path);
                    layer.mark(&comps, Mark::Other);
                    if upper.hidden(&comps) {
                        continue;
                    }
                    let target = match target {
                        Ok(t) => t,
                        Err((raw_target, why)) => {
                            let digest = shared.digests.get(index).cloned().unwrap_or_default();
                            self.note(format!(
                                "layer {digest}: hardlink {:?} skipped: its target {raw_target:?} has {why}",
                                show(&path)
                            ));
                            continue;
                        }
                    };
                    match in_layer.get(&target).copied() {
                        Some(InLayer::File(at)) => {
                            self.walk.files[at].paths.push(show(&path));
                            in_layer.insert(path, InLayer::File(at));
                        }
                        Some(InLayer::Unwanted) | Some(InLayer::Hidden(None)) => {
                            in_layer.insert(path, InLayer::Unwanted);
                        }
                        // A visible link to a file an upper layer hides: the file, at the link's path.
                        Some(InLayer::Hidden(Some(c))) => {
                            if let Some(at) = self.show_file(index, c, vec![show(&path)], shared) {
                                in_layer.insert(path, InLayer::File(at));
                            }
                        }
                        // A target in a lower layer (what an unpacker resolves in the rootfs):
                        // the first regular file at that path below this layer.
                        None => self.cross.entry(target).or_default().push(show(&path)),
                    }
                }
                Record::File { path, candidate } => {
                    let comps = components(&path);
                    let hidden = upper.hidden(&comps);
                    layer.mark(&comps, Mark::Other);
                    let links = self.cross.remove(&path);
                    // A later entry at the same path replaces an earlier one of the same layer.
                    if let Some(InLayer::File(old)) = in_layer.get(&path).copied() {
                        let shown = show(&path);
                        self.walk.files[old].paths.retain(|p| *p != shown);
                    }
                    let Some(c) = candidate else {
                        in_layer.insert(path, if hidden { InLayer::Hidden(None) } else { InLayer::Unwanted });
                        continue;
                    };
                    let mut paths = if hidden { Vec::new() } else { vec![show(&path)] };
                    paths.extend(links.into_iter().flatten());
                    let at = if paths.is_empty() { None } else { self.show_file(index, c, paths, shared) };
                    let state = match at {
                        Some(at) if !hidden => InLayer::File(at),
                        _ => InLayer::Hidden(Some(c)),
                    };
                    in_layer.insert(path, state);
                }
            }
        }
        layer
    }
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
    struct Collect(std::sync::Mutex<Vec<(usize, String, Vec<u8>)>>);

    impl Visitor for Collect {
        fn wants(&self, head: &[u8]) -> bool {
            head.starts_with(b"EXE")
        }
        fn file(&self, id: usize, path: &str, content: Vec<u8>) {
            self.0.lock().unwrap().push((id, path.to_string(), content));
        }
    }

    impl Collect {
        /// The content the walk read for a visible file.
        fn content(&self, f: &WalkedFile) -> Vec<u8> {
            self.0.lock().unwrap().iter().find(|(id, _, _)| *id == f.id).map(|c| c.2.clone()).unwrap()
        }
        fn count(&self) -> usize {
            self.0.lock().unwrap().len()
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

    /// Walks `layers`; the layers it opened are sorted (they are opened in parallel).
    fn run(layers: Vec<Vec<u8>>) -> (Walk, Collect, Vec<usize>) {
        let mut src = Mem { layers, opened: Vec::new() };
        let c = Collect::default();
        let w = walk(&mut src, &WalkOptions::default(), &c).unwrap();
        src.opened.sort();
        (w, c, src.opened)
    }

    fn file<'a>(w: &'a Walk, path: &str) -> &'a WalkedFile {
        w.files.iter().find(|f| f.paths.iter().any(|p| p == path)).unwrap()
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
        assert_eq!(c.content(file(&w, "srv/e")), b"EXE e2");
        assert_eq!(file(&w, "srv/e").layer, 1);
        assert_eq!(opened, vec![0, 1]);
    }

    #[test]
    fn hardlinks_are_paths_of_one_file() {
        let lower = tar(&[E::File("bin/a", b"EXE a"), E::Link("bin/a2", "bin/a"), E::Link("./sbin/a3", "/bin/a")]);
        let (w, c, opened) = run(vec![lower]);
        assert_eq!(paths(&w), vec![vec!["bin/a".to_string(), "bin/a2".into(), "sbin/a3".into()]]);
        assert_eq!(c.count(), 1);
        assert_eq!(opened, vec![0]);
    }

    #[test]
    fn a_link_to_a_hidden_target_is_the_file_at_the_link() {
        let lower = tar(&[E::File("bin/a", b"EXE a"), E::Link("bin/a2", "bin/a"), E::Link("bin/a3", "bin/a2")]);
        let upper = tar(&[E::File("bin/.wh.a", b"")]);
        let (w, c, opened) = run(vec![lower, upper]);
        assert_eq!(paths(&w), vec![vec!["bin/a2".to_string(), "bin/a3".into()]]);
        assert_eq!(c.content(&w.files[0]), b"EXE a");
        assert_eq!(opened, vec![0, 1], "each layer is streamed once");
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
        assert_eq!(c.count(), 2);
        assert_eq!(opened, vec![0, 1]);
        assert!(w.notes.iter().any(|n| n.contains("nowhere")), "{:?}", w.notes);
    }

    #[test]
    fn dot_dot_and_nul_are_skipped_with_a_note() {
        let layer = tar(&[E::Raw("../../escape", b"EXE x"), E::Raw("a/../../b", b"EXE y")]);
        let (w, c, _) = run(vec![layer]);
        assert!(w.files.is_empty() && c.count() == 0);
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
        let c = Collect::default();
        let options = WalkOptions { max_file_size: 4, ..WalkOptions::default() };
        let w = walk(&mut src, &options, &c).unwrap();
        assert_eq!(w.files.len(), 1);
        assert!(!w.files[0].read && c.count() == 0);
        assert!(w.notes[0].contains("not read"));
    }

    #[test]
    fn hidden_candidates_are_read_but_not_walked() {
        let lower = tar(&[E::File("bin/a", b"EXE old"), E::File("bin/b", b"EXE b")]);
        let upper = tar(&[E::File("bin/a", b"EXE new")]);
        let (w, c, _) = run(vec![lower, upper]);
        assert_eq!(paths(&w), vec![vec!["bin/a".to_string()], vec!["bin/b".into()]]);
        assert_eq!(c.content(file(&w, "bin/a")), b"EXE new");
        assert_eq!(c.count(), 3, "the replaced bin/a was read too");
    }

    #[test]
    fn the_topmost_bad_layer_is_the_error() {
        let bad = b"not a tar, and not 512 bytes".to_vec();
        let good = tar(&[E::File("bin/a", b"EXE a")]);
        for _ in 0..20 {
            let mut src =
                Mem { layers: vec![bad.clone(), good.clone(), bad.clone(), good.clone()], opened: Vec::new() };
            let e = walk(&mut src, &WalkOptions::default(), &Collect::default()).unwrap_err();
            assert!(e.to_string().contains("layer2"), "{e}");
        }
    }

    /// Mutated and truncated layers: the walk never panics, its files have clean paths,
    /// and two walks of the same layers (streamed in parallel) give the same answer.
    #[test]
    fn hostile_layers_never_panic_and_walks_are_deterministic() {
        let base = vec![
            tar(&[
                E::Dir("bin"),
                E::File("bin/a", b"EXE a"),
                E::Link("bin/a2", "bin/a"),
                E::File("opt/x/c", b"EXE c"),
                E::Sym("usr", "/opt"),
            ]),
            tar(&[E::File("bin/.wh.a", b""), E::File("opt/x/.wh..wh..opq", b""), E::Link("l", "bin/a")]),
            tar(&[E::File("bin/a", b"EXE new"), E::Raw("/etc/f", b"EXE f"), E::Link("bin/b", "bin/a")]),
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..400 {
            let mut layers = base.clone();
            for _ in 0..(next() % 6) {
                let l = (next() % 3) as usize;
                let layer = &mut layers[l];
                match next() % 3 {
                    0 if !layer.is_empty() => {
                        let at = (next() as usize) % layer.len();
                        layer[at] = next() as u8;
                    }
                    1 => {
                        let keep = (next() as usize) % (layer.len() + 1);
                        layer.truncate(keep);
                    }
                    _ => {
                        let at = (next() as usize) % (layer.len() + 1);
                        layer.insert(at, b'/');
                    }
                }
            }
            let walk_once = |layers: Vec<Vec<u8>>| {
                let mut src = Mem { layers, opened: Vec::new() };
                let c = Collect::default();
                walk(&mut src, &WalkOptions::default(), &c).map(|w| (paths(&w), w.notes, c.count()))
            };
            let first = walk_once(layers.clone());
            let second = walk_once(layers);
            match (&first, &second) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b);
                    for p in a.0.iter().flatten() {
                        assert!(!p.is_empty() && !p.starts_with('/') && !p.split('/').any(|c| c == ".."), "{p}");
                    }
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                _ => panic!("two walks of the same layers differ: {first:?} / {second:?}"),
            }
        }
    }

    #[test]
    fn the_unpacked_bound_is_an_error() {
        let lower = tar(&[E::File("big", &[0u8; 4096])]);
        let mut src = Mem { layers: vec![lower], opened: Vec::new() };
        let options = WalkOptions { max_unpacked_size: 1000, ..WalkOptions::default() };
        let e = walk(&mut src, &options, &Collect::default()).unwrap_err();
        assert!(matches!(e, ToolchainError::TooLarge { .. }), "{e}");
    }
}
