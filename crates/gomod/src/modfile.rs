//! go.mod and go.work files, parsed as `golang.org/x/mod/modfile` parses them.
//!
//! The lexer and parser follow x/mod's `read.go` (tokens, `( … )` blocks,
//! `//` comments, quoted strings) and the directives follow `rule.go` and
//! `work.go`: the same statements are accepted, versions are canonicalised
//! the same way (`v1.2` → `v1.2.0`, as `modfile.Parse` does with no version
//! fixer), and errors carry Go's positions and words
//! (`go.mod:3:2: require x: version "1" invalid: must be of the form v1.2.3`).
//!
//! What it is not: a formatter or editor; comments are kept only where they
//! carry meaning (`// indirect`, `Deprecated:`, retraction rationales).

use std::fmt;

use super::module::{self, canonical_version, check_path_major, go_quote, go_quote_rune, ModuleVersion};

/// A position in a file: 1-based line, and 1-based rune column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Line number, from 1.
    pub line: u32,
    /// Rune offset in the line, from 1.
    pub column: u32,
    byte: usize,
}

/// One error of a go.mod or go.work file, at a position (Go's `modfile.Error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The file name as given to the parser.
    pub file: String,
    /// Where the statement or token starts; line 0 when unknown.
    pub pos: Position,
    /// The directive (`require`, `replace`…) when the error is about a module.
    pub verb: String,
    /// The module path the error is about, if any.
    pub module_path: String,
    /// Go's message.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pos.column > 1 {
            write!(f, "{}:{}:{}: ", self.file, self.pos.line, self.pos.column)?;
        } else if self.pos.line > 0 {
            write!(f, "{}:{}: ", self.file, self.pos.line)?;
        } else if !self.file.is_empty() {
            write!(f, "{}: ", self.file)?;
        }
        if !self.module_path.is_empty() {
            write!(f, "{} {}: ", self.verb, self.module_path)?;
        } else if !self.verb.is_empty() {
            write!(f, "{}: ", self.verb)?;
        }
        f.write_str(&self.message)
    }
}

/// Every error found in a file, printed one per line as Go's `modfile.ErrorList`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ModFileError {
    /// The errors, in file order.
    pub errors: Vec<SyntaxError>,
}

impl fmt::Display for ModFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// How many errors [`ModFileError::excerpted`] lists.
const EXCERPTED_ERRORS: usize = 5;

impl ModFileError {
    /// The errors for a file someone else wrote (a commit's go.mod or
    /// go.work): each as Go prints it, but with what it quotes from the file
    /// (module path, directive, token) cut to a short escaped
    /// [`confined::excerpt`], and at most a few of them. `Display`
    /// keeps Go's exact text.
    pub fn excerpted(&self) -> String {
        let mut lines: Vec<String> = self
            .errors
            .iter()
            .take(EXCERPTED_ERRORS)
            .map(|e| {
                let file = confined::excerpt(&e.file);
                let mut pos = String::new();
                if e.pos.column > 1 {
                    pos = format!("{file}:{}:{}: ", e.pos.line, e.pos.column);
                } else if e.pos.line > 0 {
                    pos = format!("{file}:{}: ", e.pos.line);
                } else if !file.is_empty() {
                    pos = format!("{file}: ");
                }
                let mut what = String::new();
                if !e.module_path.is_empty() {
                    what = format!("{} {}: ", e.verb, e.module_path);
                } else if !e.verb.is_empty() {
                    what = format!("{}: ", e.verb);
                }
                what.push_str(&e.message);
                format!("{pos}{}", confined::excerpt(&what))
            })
            .collect();
        if self.errors.len() > EXCERPTED_ERRORS {
            lines.push(format!("(and {} more errors)", self.errors.len() - EXCERPTED_ERRORS));
        }
        lines.join("\n")
    }
}

/// The `module` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleStmt {
    /// The module path.
    pub path: String,
    /// The text after `Deprecated:` in the statement's comments, or empty.
    pub deprecated: String,
    /// Line of the statement.
    pub line: u32,
}

/// A `require` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Require {
    /// The required module version (canonical).
    pub module: ModuleVersion,
    /// Whether the line carries `// indirect`.
    pub indirect: bool,
    /// Line of the requirement.
    pub line: u32,
}

/// A `replace` line: `old [version] => new [version]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replace {
    /// What is replaced; an empty version replaces every version.
    pub old: ModuleVersion,
    /// The replacement; an empty version means a local directory.
    pub new: ModuleVersion,
    /// Line of the replacement.
    pub line: u32,
}

/// A `retract` line: a single version or a closed interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retract {
    /// Lowest retracted version.
    pub low: String,
    /// Highest retracted version.
    pub high: String,
    /// The comment text explaining the retraction.
    pub rationale: String,
    /// Line of the retraction.
    pub line: u32,
}

/// A `godebug key=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Godebug {
    /// The setting.
    pub key: String,
    /// Its value.
    pub value: String,
    /// Line of the setting.
    pub line: u32,
}

/// A parsed go.mod file (Go's `modfile.File`, without the syntax tree).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModFile {
    /// `module path`.
    pub module: Option<ModuleStmt>,
    /// `go 1.21.0`.
    pub go: Option<String>,
    /// `toolchain go1.21.3`.
    pub toolchain: Option<String>,
    /// `godebug` settings.
    pub godebug: Vec<Godebug>,
    /// `require` lines, in file order.
    pub require: Vec<Require>,
    /// `exclude` lines.
    pub exclude: Vec<(ModuleVersion, u32)>,
    /// `replace` lines.
    pub replace: Vec<Replace>,
    /// `retract` lines.
    pub retract: Vec<Retract>,
    /// `tool` paths.
    pub tool: Vec<String>,
    /// `ignore` paths.
    pub ignore: Vec<String>,
}

/// A parsed go.work file (Go's `modfile.WorkFile`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkFile {
    /// `go 1.22`.
    pub go: Option<String>,
    /// `toolchain go1.22.1`.
    pub toolchain: Option<String>,
    /// `godebug` settings.
    pub godebug: Vec<Godebug>,
    /// `use` directories, with their lines.
    pub use_dirs: Vec<(String, u32)>,
    /// `replace` lines.
    pub replace: Vec<Replace>,
}

/// Parses a go.mod file strictly, as `modfile.Parse(file, data, nil)`.
pub fn parse_mod(file: &str, data: &[u8]) -> Result<ModFile, ModFileError> {
    parse_mod_file(file, data, true)
}

/// Parses a dependency's go.mod leniently, as `modfile.ParseLax(file, data, nil)`:
/// only `module`, `go`, `require`, `retract` and `ignore` are read, unknown
/// statements are ignored.
pub fn parse_mod_lax(file: &str, data: &[u8]) -> Result<ModFile, ModFileError> {
    parse_mod_file(file, data, false)
}

/// Parses a go.work file, as `modfile.ParseWork(file, data, nil)`.
pub fn parse_work(file: &str, data: &[u8]) -> Result<WorkFile, ModFileError> {
    let stmts = parse_syntax(file, data)?;
    let mut w = WorkFile::default();
    let mut errs = Vec::new();
    let mut ctx = Ctx { file, errs: &mut errs };
    for stmt in &stmts {
        match stmt {
            Stmt::Line(l) => ctx.add_work(&mut w, l, &l.tokens[0], &l.tokens[1..]),
            Stmt::Block(b) => {
                if b.tokens.len() > 1 || !matches!(b.tokens[0].as_str(), "godebug" | "use" | "replace") {
                    ctx.error(b.start, format!("unknown block type: {}", b.tokens.join(" ")));
                    continue;
                }
                for l in &b.lines {
                    ctx.add_work(&mut w, l, &b.tokens[0], &l.tokens);
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(w)
    } else {
        Err(ModFileError { errors: errs })
    }
}

fn parse_mod_file(file: &str, data: &[u8], strict: bool) -> Result<ModFile, ModFileError> {
    let stmts = parse_syntax(file, data)?;
    let mut m = ModFile::default();
    let mut errs = Vec::new();
    let mut ctx = Ctx { file, errs: &mut errs };
    for stmt in &stmts {
        match stmt {
            Stmt::Line(l) => ctx.add_mod(&mut m, None, l, &l.tokens[0], &l.tokens[1..], strict),
            Stmt::Block(b) => {
                let known = matches!(
                    b.tokens[0].as_str(),
                    "module" | "godebug" | "require" | "exclude" | "replace" | "retract" | "tool" | "ignore"
                );
                if b.tokens.len() > 1 || !known {
                    if strict {
                        ctx.error(b.start, format!("unknown block type: {}", b.tokens.join(" ")));
                    }
                    continue;
                }
                for l in &b.lines {
                    ctx.add_mod(&mut m, Some(b), l, &b.tokens[0], &l.tokens, strict);
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(m)
    } else {
        Err(ModFileError { errors: errs })
    }
}

// ---- syntax ----------------------------------------------------------------

#[derive(Debug)]
struct Line {
    start: Position,
    tokens: Vec<String>,
    before: Vec<String>,
    suffix: Option<String>,
}

#[derive(Debug)]
struct Block {
    start: Position,
    tokens: Vec<String>,
    before: Vec<String>,
    lines: Vec<Line>,
}

#[derive(Debug)]
enum Stmt {
    Line(Line),
    Block(Block),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Eof,
    EolComment,
    Ident,
    Str,
    Comment,
    Char(u8),
}

impl Kind {
    fn is_eol(self) -> bool {
        matches!(self, Kind::Eof | Kind::EolComment | Kind::Char(b'\n'))
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    pos: Position,
    text: String,
}

struct Lexer<'a> {
    file: &'a str,
    data: &'a [u8],
    pos: Position,
    token: Token,
}

/// Decodes one rune as Go's `utf8.DecodeRune`: invalid bytes are U+FFFD of width 1.
fn decode_rune(b: &[u8]) -> (char, usize) {
    let n = match b.first() {
        None => return ('\0', 0),
        Some(&c) if c < 0x80 => return (c as char, 1),
        Some(&c) if c >= 0xF0 => 4,
        Some(&c) if c >= 0xE0 => 3,
        Some(_) => 2,
    };
    match b.get(..n).and_then(|s| std::str::from_utf8(s).ok()).and_then(|s| s.chars().next()) {
        Some(c) => (c, n),
        None => ('\u{FFFD}', 1),
    }
}

/// Go's `unicode.IsSpace`.
fn is_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0b' | '\x0c' | '\r' | ' ' | '\u{85}' | '\u{A0}')
        || (c as u32 > 0xff && c.is_whitespace())
}

fn is_ident(c: char) -> bool {
    !matches!(c, ' ' | '(' | ')' | '[' | ']' | '{' | '}' | ',') && !is_space(c) && !c.is_control() && !is_format(c)
}

/// Unicode format characters (Cf), which Go's `unicode.IsPrint` rejects.
fn is_format(c: char) -> bool {
    matches!(c as u32, 0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB)
}

type LexResult<T> = Result<T, SyntaxError>;

impl<'a> Lexer<'a> {
    fn err(&self, pos: Position, msg: impl Into<String>) -> SyntaxError {
        SyntaxError {
            file: self.file.to_string(),
            pos,
            verb: String::new(),
            module_path: String::new(),
            message: msg.into(),
        }
    }

    fn remaining(&self) -> &'a [u8] {
        &self.data[self.pos.byte..]
    }

    fn peek_rune(&self) -> char {
        decode_rune(self.remaining()).0
    }

    fn read_rune(&mut self) -> char {
        let (c, n) = decode_rune(self.remaining());
        if c == '\n' {
            self.pos.line += 1;
            self.pos.column = 1;
        } else {
            self.pos.column += 1;
        }
        self.pos.byte += n;
        c
    }

    fn eof(&self) -> bool {
        self.pos.byte >= self.data.len()
    }

    fn lex(&mut self) -> LexResult<Token> {
        let next = self.read_token()?;
        Ok(std::mem::replace(&mut self.token, next))
    }

    fn peek(&self) -> Kind {
        self.token.kind
    }

    fn read_token(&mut self) -> LexResult<Token> {
        while !self.eof() {
            let c = self.peek_rune();
            if c == ' ' || c == '\t' || c == '\r' {
                self.read_rune();
                continue;
            }
            if self.remaining().starts_with(b"//") {
                let start = self.pos;
                let line_start = self.data[..start.byte].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let suffix = !self.data[line_start..start.byte].iter().all(|b| b.is_ascii_whitespace());
                self.read_rune();
                self.read_rune();
                while !self.eof() && self.read_rune() != '\n' {}
                let mut text = &self.data[start.byte..self.pos.byte];
                if let Some(t) = text.strip_suffix(b"\r\n") {
                    text = t;
                } else if let Some(t) = text.strip_suffix(b"\n") {
                    text = t;
                }
                let kind = if suffix { Kind::EolComment } else { Kind::Comment };
                return Ok(Token { kind, pos: start, text: String::from_utf8_lossy(text).into_owned() });
            }
            if self.remaining().starts_with(b"/*") {
                return Err(self.err(self.pos, "mod files must use // comments (not /* */ comments)"));
            }
            break;
        }
        let start = self.pos;
        let tok = |l: &Self, kind| Token {
            kind,
            pos: start,
            text: String::from_utf8_lossy(&l.data[start.byte..l.pos.byte]).into_owned(),
        };
        if self.eof() {
            return Ok(tok(self, Kind::Eof));
        }
        let c = self.peek_rune();
        match c {
            '\n' | '(' | ')' | '[' | ']' | '{' | '}' | ',' => {
                self.read_rune();
                return Ok(tok(self, Kind::Char(c as u8)));
            }
            '"' | '`' => {
                self.read_rune();
                loop {
                    if self.eof() {
                        return Err(self.err(start, "unexpected EOF in string"));
                    }
                    if self.peek_rune() == '\n' {
                        return Err(self.err(self.pos, "unexpected newline in string"));
                    }
                    let r = self.read_rune();
                    if r == c {
                        break;
                    }
                    if r == '\\' && c != '`' {
                        if self.eof() {
                            return Err(self.err(start, "unexpected EOF in string"));
                        }
                        self.read_rune();
                    }
                }
                return Ok(tok(self, Kind::Str));
            }
            _ => {}
        }
        if !is_ident(c) {
            return Err(self.err(self.pos, format!("unexpected input character {}", go_quote_rune(c))));
        }
        while !self.eof() && is_ident(self.peek_rune()) {
            if self.remaining().starts_with(b"//") {
                break;
            }
            if self.remaining().starts_with(b"/*") {
                return Err(self.err(self.pos, "mod files must use // comments (not /* */ comments)"));
            }
            self.read_rune();
        }
        Ok(tok(self, Kind::Ident))
    }
}

fn parse_syntax(file: &str, data: &[u8]) -> Result<Vec<Stmt>, ModFileError> {
    let one = |e: SyntaxError| ModFileError { errors: vec![e] };
    let start = Position { line: 1, column: 1, byte: 0 };
    let mut lx = Lexer { file, data, pos: start, token: Token { kind: Kind::Eof, pos: start, text: String::new() } };
    lx.token = lx.read_token().map_err(one)?;
    let mut stmts = Vec::new();
    let mut cb: Option<Vec<String>> = None;
    loop {
        match lx.peek() {
            Kind::Char(b'\n') => {
                lx.lex().map_err(one)?;
                cb = None;
            }
            Kind::Comment => {
                let t = lx.lex().map_err(one)?;
                cb.get_or_insert_with(Vec::new).push(t.text);
            }
            Kind::Eof => return Ok(stmts),
            _ => {
                let mut stmt = parse_stmt(&mut lx).map_err(one)?;
                if let Some(before) = cb.take() {
                    match &mut stmt {
                        Stmt::Line(l) => l.before = before,
                        Stmt::Block(b) => b.before = before,
                    }
                }
                stmts.push(stmt);
            }
        }
    }
}

fn parse_stmt(lx: &mut Lexer<'_>) -> LexResult<Stmt> {
    let tok = lx.lex()?;
    let start = tok.pos;
    let mut tokens = vec![tok.text];
    loop {
        let tok = lx.lex()?;
        if tok.kind.is_eol() {
            let suffix = (tok.kind == Kind::EolComment).then_some(tok.text);
            return Ok(Stmt::Line(Line { start, tokens, before: Vec::new(), suffix }));
        }
        if tok.kind == Kind::Char(b'(') {
            let next = lx.peek();
            if next.is_eol() {
                return parse_line_block(lx, start, tokens).map(Stmt::Block);
            } else if next == Kind::Char(b')') {
                let rparen = lx.lex()?;
                if lx.peek().is_eol() {
                    lx.lex()?;
                    return Ok(Stmt::Block(Block { start, tokens, before: Vec::new(), lines: Vec::new() }));
                }
                tokens.push(tok.text);
                tokens.push(rparen.text);
            } else {
                tokens.push(tok.text);
            }
        } else {
            tokens.push(tok.text);
        }
    }
}

fn parse_line_block(lx: &mut Lexer<'_>, start: Position, tokens: Vec<String>) -> LexResult<Block> {
    let mut block = Block { start, tokens, before: Vec::new(), lines: Vec::new() };
    let mut comments: Vec<String> = Vec::new();
    loop {
        match lx.peek() {
            Kind::EolComment => {
                lx.lex()?;
            }
            Kind::Char(b'\n') => {
                lx.lex()?;
                if (comments.is_empty() && !block.lines.is_empty()) || comments.last().is_some_and(|c| !c.is_empty()) {
                    comments.push(String::new());
                }
            }
            Kind::Comment => {
                let t = lx.lex()?;
                comments.push(t.text);
            }
            Kind::Eof => {
                let msg = format!(
                    "syntax error (unterminated block started at {}:{}:{})",
                    lx.file, block.start.line, block.start.column
                );
                return Err(lx.err(lx.pos, msg));
            }
            Kind::Char(b')') => {
                lx.lex()?;
                if !lx.peek().is_eol() {
                    return Err(lx.err(lx.pos, "syntax error (expected newline after closing paren)"));
                }
                lx.lex()?;
                return Ok(block);
            }
            _ => {
                let tok = lx.lex()?;
                let line_start = tok.pos;
                let mut toks = vec![tok.text];
                let suffix = loop {
                    let t = lx.lex()?;
                    if t.kind.is_eol() {
                        break (t.kind == Kind::EolComment).then_some(t.text);
                    }
                    toks.push(t.text);
                };
                block.lines.push(Line {
                    start: line_start,
                    tokens: toks,
                    before: std::mem::take(&mut comments),
                    suffix,
                });
            }
        }
    }
}

// ---- directives --------------------------------------------------------------

struct Ctx<'a> {
    file: &'a str,
    errs: &'a mut Vec<SyntaxError>,
}

/// An error from a version or path check, before it is placed at a line.
struct Inner {
    verb: String,
    module_path: String,
    message: String,
}

impl Inner {
    fn plain(message: impl Into<String>) -> Self {
        Inner { verb: String::new(), module_path: String::new(), message: message.into() }
    }

    /// The text Go prints for a nested `modfile.Error` without position.
    fn nested(&self) -> String {
        SyntaxError {
            file: String::new(),
            pos: Position::default(),
            verb: self.verb.clone(),
            module_path: self.module_path.clone(),
            message: self.message.clone(),
        }
        .to_string()
    }
}

fn is_go_version(v: &str) -> bool {
    // ^([1-9][0-9]*)\.(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))?([a-z]+[0-9]+)?$
    fn num(s: &str, allow_zero_lead: bool) -> Option<&str> {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let d = &s[..n];
        if d.starts_with('0') && (n > 1 || !allow_zero_lead) {
            return None;
        }
        Some(&s[n..])
    }
    let Some(rest) = num(v, false) else { return false };
    let Some(rest) = rest.strip_prefix('.') else { return false };
    let Some(mut rest) = num(rest, true) else { return false };
    if let Some(r) = rest.strip_prefix('.') {
        match num(r, true) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    if rest.is_empty() {
        return true;
    }
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    let digits = rest[letters..].bytes().take_while(u8::is_ascii_digit).count();
    letters > 0 && digits > 0 && letters + digits == rest.len()
}

/// laxGoVersionRE: `^v?(([1-9][0-9]*)\.(0|[1-9][0-9]*))([^0-9].*)$`, returning group 1.
fn lax_go_version(v: &str) -> Option<&str> {
    let s = v.strip_prefix('v').unwrap_or(v);
    let major = s.bytes().take_while(u8::is_ascii_digit).count();
    if major == 0 || s.starts_with('0') || s.as_bytes().get(major) != Some(&b'.') {
        return None;
    }
    let rest = &s[major + 1..];
    let minor = rest.bytes().take_while(u8::is_ascii_digit).count();
    if minor == 0 || (rest.starts_with('0') && minor > 1) {
        return None;
    }
    let tail = &rest[minor..];
    // The tail must start with a non-digit (it can't be empty, or a digit after a leading 0).
    match tail.chars().next() {
        Some(c) if !c.is_ascii_digit() => Some(&s[..major + 1 + minor]),
        _ => None,
    }
}

fn is_toolchain_name(v: &str) -> bool {
    v == "default" || v == "go1" || v.starts_with("go1.")
}

/// Go's `strconv.Unquote` for a double-quoted string.
fn unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let b = inner.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    let hex = |s: &[u8]| -> Option<u32> { u32::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok() };
    while i < b.len() {
        match b[i] {
            b'"' | b'\n' => return None,
            b'\\' => {
                let c = *b.get(i + 1)?;
                i += 2;
                match c {
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'v' => out.push(11),
                    b'\\' => out.push(b'\\'),
                    b'"' => out.push(b'"'),
                    b'0'..=b'7' => {
                        let d = b.get(i - 1..i + 2)?;
                        if !d.iter().all(|c| (b'0'..=b'7').contains(c)) {
                            return None;
                        }
                        let v = u32::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()?;
                        out.push(u8::try_from(v).ok()?);
                        i += 2;
                    }
                    b'x' => {
                        let v = hex(b.get(i..i + 2)?)?;
                        out.push(v as u8);
                        i += 2;
                    }
                    b'u' | b'U' => {
                        let n = if c == b'u' { 4 } else { 8 };
                        let v = hex(b.get(i..i + n)?)?;
                        let ch = char::from_u32(v)?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        i += n;
                    }
                    _ => return None,
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `parseString`: unquotes `"…"`, refuses other quotes in bare words.
fn parse_string(t: &str) -> Result<String, String> {
    if t.starts_with('"') {
        unquote(t).ok_or_else(|| "invalid syntax".to_string())
    } else if t.contains(['"', '\'', '`']) {
        Err("unquoted string cannot contain quote".into())
    } else {
        Ok(t.to_string())
    }
}

fn parse_version(verb: &str, path: &str, s: &str) -> Result<String, Inner> {
    let t = parse_string(s).map_err(|e| Inner {
        verb: verb.into(),
        module_path: path.into(),
        message: format!("version {} invalid: {e}", go_quote(s)),
    })?;
    let cv = canonical_version(&t);
    if cv.is_empty() {
        return Err(Inner {
            verb: verb.into(),
            module_path: path.into(),
            message: format!("version {} invalid: must be of the form v1.2.3", go_quote(&t)),
        });
    }
    Ok(cv)
}

fn module_path_major(path: &str) -> Result<&str, Inner> {
    module::split_path_version(path).map(|(_, m)| m).ok_or_else(|| Inner::plain("invalid module path"))
}

/// Go's `modfile.IsDirectoryPath`.
pub fn is_directory_path(ns: &str) -> bool {
    let b = ns.as_bytes();
    ns == "."
        || ns.starts_with("./")
        || ns.starts_with(".\\")
        || ns == ".."
        || ns.starts_with("../")
        || ns.starts_with("..\\")
        || ns.starts_with('/')
        || ns.starts_with('\\')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
}

fn directive_comment(block: Option<&Block>, line: &Line) -> String {
    let (before, suffix): (&[String], Option<&String>) =
        if block.is_some() && line.before.is_empty() && line.suffix.is_none() {
            (block.map_or(&[][..], |b| &b.before[..]), None)
        } else {
            (&line.before[..], line.suffix.as_ref())
        };
    before.iter().chain(suffix).filter_map(|c| c.strip_prefix("//")).map(str::trim).collect::<Vec<_>>().join("\n")
}

/// `(?s)(?:^|\n\n)Deprecated: *(.*?)(?:$|\n\n)`.
fn deprecation(text: &str) -> String {
    let mut starts = vec![0];
    starts.extend(text.match_indices("\n\n").map(|(i, _)| i + 2));
    for s in starts {
        if let Some(rest) = text[s..].strip_prefix("Deprecated:") {
            let rest = rest.trim_start_matches(' ');
            let end = rest.find("\n\n").unwrap_or(rest.len());
            return rest[..end].to_string();
        }
    }
    String::new()
}

fn is_indirect(line: &Line) -> bool {
    let Some(s) = &line.suffix else { return false };
    let f: Vec<&str> = s.strip_prefix("//").unwrap_or(s).split_whitespace().collect();
    (f.len() == 1 && f[0] == "indirect") || (f.len() > 1 && f[0] == "indirect;")
}

impl Ctx<'_> {
    fn error(&mut self, pos: Position, message: String) {
        self.errs.push(SyntaxError {
            file: self.file.to_string(),
            pos,
            verb: String::new(),
            module_path: String::new(),
            message,
        });
    }

    fn error_mod(&mut self, pos: Position, verb: &str, path: &str, message: String) {
        self.errs.push(SyntaxError {
            file: self.file.to_string(),
            pos,
            verb: verb.to_string(),
            module_path: path.to_string(),
            message,
        });
    }

    fn nested(&mut self, pos: Position, inner: Inner) {
        let msg = inner.nested();
        self.error(pos, msg);
    }

    fn go_stmt(&mut self, slot: &mut Option<String>, l: &Line, args: &[String], strict: bool) {
        if slot.is_some() {
            return self.error(l.start, "repeated go statement".into());
        }
        if args.len() != 1 {
            return self.error(l.start, "go directive expects exactly one argument".into());
        }
        let mut v = args[0].clone();
        if !is_go_version(&v) {
            match lax_go_version(&v).filter(|_| !strict) {
                Some(fixed) => v = fixed.to_string(),
                None => return self.error(l.start, format!("invalid go version '{v}': must match format 1.23.0")),
            }
        }
        *slot = Some(v);
    }

    fn toolchain_stmt(&mut self, slot: &mut Option<String>, l: &Line, args: &[String]) {
        if slot.is_some() {
            return self.error(l.start, "repeated toolchain statement".into());
        }
        if args.len() != 1 {
            return self.error(l.start, "toolchain directive expects exactly one argument".into());
        }
        if !is_toolchain_name(&args[0]) {
            let msg = format!("invalid toolchain version '{}': must match format go1.23.0 or default", args[0]);
            return self.error(l.start, msg);
        }
        *slot = Some(args[0].clone());
    }

    fn godebug_stmt(&mut self, out: &mut Vec<Godebug>, l: &Line, args: &[String]) {
        let parsed =
            (args.len() == 1 && !args[0].contains(['"', '`', '\'', ','])).then(|| args[0].split_once('=')).flatten();
        match parsed {
            Some((k, v)) => out.push(Godebug { key: k.into(), value: v.into(), line: l.start.line }),
            None => self.error(l.start, "usage: godebug key=value".into()),
        }
    }

    fn replace_stmt(&mut self, l: &Line, verb: &str, args: &[String]) -> Option<Replace> {
        let arrow = if args.len() >= 2 && args[1] == "=>" { 1 } else { 2 };
        if args.len() < arrow + 2 || args.len() > arrow + 3 || args[arrow] != "=>" {
            self.error(
                l.start,
                format!(
                    "usage: {verb} module/path [v1.2.3] => other/module v1.4\n\t or {verb} module/path [v1.2.3] => ../local/directory"
                ),
            );
            return None;
        }
        let s = match parse_string(&args[0]) {
            Ok(s) => s,
            Err(e) => {
                self.error(l.start, format!("invalid quoted string: {e}"));
                return None;
            }
        };
        let path_major = match module_path_major(&s) {
            Ok(m) => m.to_string(),
            Err(e) => {
                self.error_mod(l.start, verb, &s, e.message);
                return None;
            }
        };
        let mut v = String::new();
        if arrow == 2 {
            v = match parse_version(verb, &s, &args[1]) {
                Ok(v) => v,
                Err(e) => {
                    self.nested(l.start, e);
                    return None;
                }
            };
            if let Err(e) = check_path_major(&v, &path_major) {
                self.error_mod(l.start, verb, &s, e.to_string());
                return None;
            }
        }
        let ns = match parse_string(&args[arrow + 1]) {
            Ok(s) => s,
            Err(e) => {
                self.error(l.start, format!("invalid quoted string: {e}"));
                return None;
            }
        };
        let mut nv = String::new();
        if args.len() == arrow + 2 {
            if !is_directory_path(&ns) {
                let msg = if ns.contains('@') {
                    "replacement module must match format 'path version', not 'path@version'"
                } else {
                    "replacement module without version must be directory path (rooted or starting with . or ..)"
                };
                self.error(l.start, msg.into());
                return None;
            }
            if ns.contains('\\') {
                self.error(
                    l.start,
                    "replacement directory appears to be Windows path (on a non-windows system)".into(),
                );
                return None;
            }
        }
        if args.len() == arrow + 3 {
            nv = match parse_version(verb, &ns, &args[arrow + 2]) {
                Ok(v) => v,
                Err(e) => {
                    self.nested(l.start, e);
                    return None;
                }
            };
            if is_directory_path(&ns) {
                self.error(l.start, format!("replacement module directory path {} cannot have version", go_quote(&ns)));
                return None;
            }
        }
        Some(Replace { old: ModuleVersion::new(s, v), new: ModuleVersion::new(ns, nv), line: l.start.line })
    }

    fn add_mod(&mut self, f: &mut ModFile, block: Option<&Block>, l: &Line, verb: &str, args: &[String], strict: bool) {
        if !strict && !matches!(verb, "go" | "module" | "retract" | "require" | "ignore") {
            return;
        }
        match verb {
            "go" => self.go_stmt(&mut f.go, l, args, strict),
            "toolchain" => self.toolchain_stmt(&mut f.toolchain, l, args),
            "module" => {
                if f.module.is_some() {
                    return self.error(l.start, "repeated module statement".into());
                }
                let deprecated = deprecation(&directive_comment(block, l));
                f.module = Some(ModuleStmt { path: String::new(), deprecated, line: l.start.line });
                if args.len() != 1 {
                    return self.error(l.start, "usage: module module/path".into());
                }
                match parse_string(&args[0]) {
                    Ok(s) => {
                        if let Some(m) = f.module.as_mut() {
                            m.path = s;
                        }
                    }
                    Err(e) => self.error(l.start, format!("invalid quoted string: {e}")),
                }
            }
            "godebug" => self.godebug_stmt(&mut f.godebug, l, args),
            "require" | "exclude" => {
                if args.len() != 2 {
                    return self.error(l.start, format!("usage: {verb} module/path v1.2.3"));
                }
                let s = match parse_string(&args[0]) {
                    Ok(s) => s,
                    Err(e) => return self.error(l.start, format!("invalid quoted string: {e}")),
                };
                let v = match parse_version(verb, &s, &args[1]) {
                    Ok(v) => v,
                    Err(e) => return self.nested(l.start, e),
                };
                let pm = match module_path_major(&s) {
                    Ok(m) => m.to_string(),
                    Err(e) => return self.nested(l.start, e),
                };
                if let Err(e) = check_path_major(&v, &pm) {
                    return self.error_mod(l.start, verb, &s, e.to_string());
                }
                let m = ModuleVersion::new(s, v);
                if verb == "require" {
                    f.require.push(Require { module: m, indirect: is_indirect(l), line: l.start.line });
                } else {
                    f.exclude.push((m, l.start.line));
                }
            }
            "replace" => {
                if let Some(r) = self.replace_stmt(l, verb, args) {
                    f.replace.push(r);
                }
            }
            "retract" => {
                let rationale = directive_comment(block, l);
                match parse_version_interval(verb, "", args) {
                    Ok((low, high, rest)) => {
                        if !rest.is_empty() && strict {
                            return self
                                .error(l.start, format!("unexpected token after version: {}", go_quote(&rest[0])));
                        }
                        f.retract.push(Retract { low, high, rationale, line: l.start.line });
                    }
                    Err(e) => {
                        if strict {
                            self.nested(l.start, e);
                        }
                    }
                }
            }
            "tool" | "ignore" => {
                if args.len() != 1 {
                    return self.error(l.start, format!("{verb} directive expects exactly one argument"));
                }
                match parse_string(&args[0]) {
                    Ok(s) if verb == "tool" => f.tool.push(s),
                    Ok(s) => f.ignore.push(s),
                    Err(e) => self.error(l.start, format!("invalid quoted string: {e}")),
                }
            }
            _ => self.error(l.start, format!("unknown directive: {verb}")),
        }
    }

    fn add_work(&mut self, f: &mut WorkFile, l: &Line, verb: &str, args: &[String]) {
        match verb {
            "go" => self.go_stmt(&mut f.go, l, args, true),
            "toolchain" => self.toolchain_stmt(&mut f.toolchain, l, args),
            "godebug" => self.godebug_stmt(&mut f.godebug, l, args),
            "use" => {
                if args.len() != 1 {
                    return self.error(l.start, format!("usage: {verb} local/dir"));
                }
                match parse_string(&args[0]) {
                    Ok(s) => f.use_dirs.push((s, l.start.line)),
                    Err(e) => self.error(l.start, format!("invalid quoted string: {e}")),
                }
            }
            "replace" => {
                if let Some(r) = self.replace_stmt(l, verb, args) {
                    f.replace.push(r);
                }
            }
            _ => self.error(l.start, format!("unknown directive: {verb}")),
        }
    }
}

fn parse_version_interval<'a>(
    verb: &str,
    path: &str,
    toks: &'a [String],
) -> Result<(String, String, &'a [String]), Inner> {
    if toks.is_empty() || toks[0] == "(" {
        return Err(Inner::plain("expected '[' or version"));
    }
    if toks[0] != "[" {
        let v = parse_version(verb, path, &toks[0])?;
        return Ok((v.clone(), v, &toks[1..]));
    }
    let toks = &toks[1..];
    let low_tok = toks.first().ok_or_else(|| Inner::plain("expected version after '['"))?;
    let low = parse_version(verb, path, low_tok)?;
    let toks = &toks[1..];
    if toks.first().map(String::as_str) != Some(",") {
        return Err(Inner::plain("expected ',' after version"));
    }
    let toks = &toks[1..];
    let high_tok = toks.first().ok_or_else(|| Inner::plain("expected version after ','"))?;
    let high = parse_version(verb, path, high_tok)?;
    let toks = &toks[1..];
    if toks.first().map(String::as_str) != Some("]") {
        return Err(Inner::plain("expected ']' after version"));
    }
    Ok((low, high, &toks[1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpted_errors_quote_little_of_the_file() {
        let secret = format!("TOP{}SECRET-MARKER", "x".repeat(80));
        let mut text = format!("{secret}\n");
        for i in 0..8 {
            text.push_str(&format!("bogus{i} \"{secret}\"\n"));
        }
        let e = parse_mod("go.mod", text.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("SECRET-MARKER"), "Display keeps Go's text: {e}");
        let x = e.excerpted();
        assert!(x.starts_with("go.mod:1: unknown directive: TOPxxx"), "{x}");
        assert!(!x.contains("MARKER"), "{x}");
        assert_eq!(x.lines().count(), EXCERPTED_ERRORS + 1, "{x}");
        assert!(x.ends_with("(and 4 more errors)"), "{x}");
    }

    #[test]
    fn parses_a_go_mod() {
        let src = b"// leading\n\nmodule example.com/m // Deprecated: use v2\n\ngo 1.21\ntoolchain go1.22.1\n\nrequire (\n\tgolang.org/x/mod v0.14.0 // indirect\n\t\"rsc.io/quote\" v1.5\n)\n\nexclude rsc.io/sampler v1.99.99\nreplace rsc.io/quote v1.5.2 => ../quote\nretract [v1.0.0, v1.0.5] // broken\ngodebug default=go1.21\n";
        let f = parse_mod("go.mod", src).map_err(|e| e.to_string());
        let f = match f {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(f.module.as_ref().map(|m| m.deprecated.as_str()), Some("use v2"));
        assert_eq!(f.go.as_deref(), Some("1.21"));
        assert_eq!(f.require.len(), 2);
        assert!(f.require[0].indirect);
        assert_eq!(f.require[1].module, ModuleVersion::new("rsc.io/quote", "v1.5.0"));
        assert_eq!(f.replace[0].new.path, "../quote");
        assert_eq!(f.retract[0].rationale, "broken");
        assert_eq!(f.godebug[0].key, "default");
    }

    #[test]
    fn errors_carry_positions() {
        let e = parse_mod("go.mod", b"module m\nrequire (\n\tx.com/y 1.2\n)\nfoo bar\n").map_err(|e| e.to_string());
        assert_eq!(
            e,
            Err("go.mod:3:2: require x.com/y: version \"1.2\" invalid: must be of the form v1.2.3\ngo.mod:5: unknown directive: foo".to_string())
        );
        let e = parse_mod("go.mod", b"module m\nrequire (\n").map_err(|e| e.to_string());
        assert_eq!(e, Err("go.mod:3: syntax error (unterminated block started at go.mod:2:1)".to_string()));
    }
}
