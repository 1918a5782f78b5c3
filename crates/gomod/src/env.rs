//! The Go module environment: the variables that decide where modules come
//! from and how they are checked, resolved as the go command resolves them.
//!
//! What goes in: the output of `go env -json` when a `go` command is
//! available ([`GoEnv::from_go_env_json`]), otherwise the process environment,
//! the go env file (`$GOENV`, default `$XDG_CONFIG_HOME/go/env`) and Go's own
//! derived defaults ([`GoEnv::from_process`]): a variable set to the empty
//! string falls back to the env file, GONOPROXY and GONOSUMDB default to
//! GOPRIVATE, GOMODCACHE to `GOPATH[0]/pkg/mod`, GOPATH to `$HOME/go`.
//! What comes out: a [`GoEnv`] that answers each variable with its value and
//! where the value came from ([`Origin`]), plus the HTTP proxy variables
//! (which are not Go variables and are read from the process environment only).
//!
//! What it is not: a source of defaults that only the go command knows. The
//! default GOPROXY and GOSUMDB live in the Go distribution (`$GOROOT/go.env`);
//! without `go`, an unset GOPROXY is an error ([`EnvError::NoGoProxy`]) rather
//! than a value written into reprove.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The Go variables reprove reads (a subset of `go env`).
pub const MODULE_VARS: &[&str] = &[
    "GOPROXY",
    "GONOPROXY",
    "GOPRIVATE",
    "GONOSUMDB",
    "GOSUMDB",
    "GOINSECURE",
    "GOFLAGS",
    "GOMODCACHE",
    "GOPATH",
    "GOTOOLCHAIN",
    "GOAUTH",
    "GOWORK",
    "GO111MODULE",
    "GOVCS",
    "GOENV",
    "GOROOT",
    "GOVERSION",
];

/// The process variables that change how modules are fetched but are not Go
/// variables: proxies (upper case first, as Go's `httpproxy` reads them),
/// credentials and trust anchors.
pub const PROCESS_VARS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
    "NETRC",
    "HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSH_COMMAND",
    "GIT_TERMINAL_PROMPT",
];

/// Where a variable's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The process environment.
    Environment,
    /// The go env file (`go env -w`).
    EnvFile,
    /// Computed by `go env` (a default of the go command or the Go distribution).
    GoCommand,
    /// Derived by reprove with Go's rule (e.g. GONOPROXY from GOPRIVATE).
    Derived,
    /// Not set, and no `go` to ask.
    Unset,
}

impl Origin {
    /// A stable lowercase name for reports.
    pub fn code(self) -> &'static str {
        match self {
            Origin::Environment => "environment",
            Origin::EnvFile => "env-file",
            Origin::GoCommand => "go-env",
            Origin::Derived => "derived",
            Origin::Unset => "unset",
        }
    }
}

/// One variable: its value (empty when unset) and origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    /// The value.
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

/// Why the module environment could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// `go env -json` printed something else than a JSON object of strings.
    #[error("reading go env -json output: {0}")]
    GoEnvJson(String),
    /// `go env -json` could not be run or failed.
    #[error("running {program} env -json: {message}")]
    GoEnvRun {
        /// The go command.
        program: String,
        /// What went wrong (its stderr, or the error).
        message: String,
    },
    /// GOPROXY is unset and there is no go command to ask for its default.
    #[error("GOPROXY is not set and no go command was found to ask for its default: set GOPROXY (for example to the proxy URL your organisation uses, followed by \",direct\")")]
    NoGoProxy,
    /// Neither GOMODCACHE, GOPATH nor HOME is set.
    #[error("cannot find the module cache: set GOMODCACHE (or GOPATH or HOME)")]
    NoModCache,
}

/// The resolved Go module environment.
#[derive(Debug, Clone)]
pub struct GoEnv {
    vars: BTreeMap<String, Var>,
    process: BTreeMap<String, String>,
    from_go: bool,
}

/// Parses the go env file format: `KEY=VALUE` lines, `#` comments.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// The go env file's path, as Go's `cfg.EnvFile`: `$GOENV`, else
/// `$XDG_CONFIG_HOME/go/env`, else `$HOME/.config/go/env`; `None` when GOENV is `off`.
pub fn env_file_path(lookup: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let get = |k: &str| lookup(k).filter(|v| !v.is_empty());
    match get("GOENV") {
        Some(v) if v == "off" => None,
        Some(v) => Some(PathBuf::from(v)),
        None => get("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| get("HOME").map(|h| PathBuf::from(h).join(".config")))
            .map(|d| d.join("go/env")),
    }
}

fn snapshot_process(lookup: &dyn Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    PROCESS_VARS.iter().filter_map(|k| lookup(k).map(|v| (k.to_string(), v))).collect()
}

impl GoEnv {
    /// The environment as `go env -json` reported it; `lookup` (the process
    /// environment) tells where each value came from and supplies the proxy variables.
    pub fn from_go_env_json(json: &[u8], lookup: &dyn Fn(&str) -> Option<String>) -> Result<GoEnv, EnvError> {
        let map: BTreeMap<String, String> =
            serde_json::from_slice(json).map_err(|e| EnvError::GoEnvJson(e.to_string()))?;
        let file = read_env_file(lookup);
        let mut vars = BTreeMap::new();
        let private = map.get("GOPRIVATE").cloned().unwrap_or_default();
        for k in MODULE_VARS {
            let mut value = map.get(*k).cloned().unwrap_or_default();
            let origin = if lookup(k).is_some_and(|v| !v.is_empty()) {
                if value.is_empty() {
                    // `go env` shows GOENV=off as empty.
                    value = lookup(k).unwrap_or_default();
                }
                Origin::Environment
            } else if file.iter().any(|(fk, fv)| fk == k && !fv.is_empty()) {
                Origin::EnvFile
            } else if matches!(*k, "GONOPROXY" | "GONOSUMDB") && !private.is_empty() && value == private {
                Origin::Derived
            } else {
                Origin::GoCommand
            };
            vars.insert(k.to_string(), Var { value, origin });
        }
        Ok(GoEnv { vars, process: snapshot_process(lookup), from_go: true })
    }

    /// The environment without a go command: process environment, then the
    /// go env file, then Go's derived defaults. GOPROXY and GOSUMDB, whose
    /// defaults only the Go distribution knows, stay [`Origin::Unset`] when not given.
    pub fn from_process(lookup: &dyn Fn(&str) -> Option<String>) -> GoEnv {
        let file = read_env_file(lookup);
        let mut vars = BTreeMap::new();
        for k in MODULE_VARS {
            let v = if let Some(v) = lookup(k).filter(|v| !v.is_empty()) {
                Var { value: v, origin: Origin::Environment }
            } else if let Some((_, v)) = file.iter().rev().find(|(fk, fv)| fk == k && !fv.is_empty()) {
                Var { value: v.clone(), origin: Origin::EnvFile }
            } else {
                Var { value: String::new(), origin: Origin::Unset }
            };
            vars.insert(k.to_string(), v);
        }
        let mut env = GoEnv { vars, process: snapshot_process(lookup), from_go: false };
        env.derive_defaults(lookup);
        env
    }

    fn derive_defaults(&mut self, lookup: &dyn Fn(&str) -> Option<String>) {
        let private = self.get("GOPRIVATE").to_string();
        for k in ["GONOPROXY", "GONOSUMDB"] {
            if self.origin(k) == Origin::Unset && !private.is_empty() {
                self.vars.insert(k.into(), Var { value: private.clone(), origin: Origin::Derived });
            }
        }
        if self.origin("GOPATH") == Origin::Unset {
            if let Some(home) = lookup("HOME").filter(|h| !h.is_empty()) {
                let gp = PathBuf::from(home).join("go").display().to_string();
                self.vars.insert("GOPATH".into(), Var { value: gp, origin: Origin::Derived });
            }
        }
        if self.origin("GOMODCACHE") == Origin::Unset {
            if let Some(first) = std::env::split_paths(self.get("GOPATH")).next().filter(|p| !p.as_os_str().is_empty())
            {
                let mc = first.join("pkg/mod").display().to_string();
                self.vars.insert("GOMODCACHE".into(), Var { value: mc, origin: Origin::Derived });
            }
        }
    }

    /// Whether the values came from `go env`.
    pub fn from_go(&self) -> bool {
        self.from_go
    }

    /// A Go variable's value (empty when unset).
    pub fn get(&self, key: &str) -> &str {
        self.vars.get(key).map_or("", |v| v.value.as_str())
    }

    /// Where a Go variable came from.
    pub fn origin(&self, key: &str) -> Origin {
        self.vars.get(key).map_or(Origin::Unset, |v| v.origin)
    }

    /// Every Go variable read, by name.
    pub fn vars(&self) -> &BTreeMap<String, Var> {
        &self.vars
    }

    /// A process variable (HTTP_PROXY, NETRC…), if set.
    pub fn process(&self, key: &str) -> Option<&str> {
        self.process.get(key).map(String::as_str)
    }

    /// Every process variable read that is set.
    pub fn process_vars(&self) -> &BTreeMap<String, String> {
        &self.process
    }

    /// Overrides a Go variable (flags, tests).
    pub fn set(&mut self, key: &str, value: &str) {
        self.vars.insert(key.to_string(), Var { value: value.to_string(), origin: Origin::Environment });
    }

    /// GOPROXY, or [`EnvError::NoGoProxy`] when nothing says what it is.
    pub fn goproxy(&self) -> Result<&str, EnvError> {
        if self.origin("GOPROXY") == Origin::Unset {
            return Err(EnvError::NoGoProxy);
        }
        Ok(self.get("GOPROXY"))
    }

    /// The module cache directory (GOMODCACHE).
    pub fn modcache(&self) -> Result<PathBuf, EnvError> {
        let v = self.get("GOMODCACHE");
        if v.is_empty() {
            return Err(EnvError::NoModCache);
        }
        Ok(PathBuf::from(v))
    }

    /// The directory where Go keeps checksum database state (`GOPATH[0]/pkg/sumdb`), if GOPATH is known.
    pub fn sumdb_dir(&self) -> Option<PathBuf> {
        std::env::split_paths(self.get("GOPATH")).next().filter(|p| p.is_absolute()).map(|p| p.join("pkg/sumdb"))
    }
}

fn read_env_file(lookup: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    env_file_path(lookup).and_then(|p| std::fs::read_to_string(p).ok()).map(|t| parse_env_file(&t)).unwrap_or_default()
}

/// Finds an executable named `name` on `$PATH`, as `exec.LookPath` does.
pub fn look_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(pk, _)| *pk == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn defaults_without_go() {
        let env = GoEnv::from_process(&lookup(&[("GOENV", "off"), ("HOME", "/h"), ("GOPRIVATE", "corp.example")]));
        assert_eq!(env.get("GONOPROXY"), "corp.example");
        assert_eq!(env.origin("GONOSUMDB"), Origin::Derived);
        assert_eq!(env.get("GOMODCACHE"), "/h/go/pkg/mod");
        assert!(matches!(env.goproxy(), Err(EnvError::NoGoProxy)));
        let env = GoEnv::from_process(&lookup(&[("GOENV", "off"), ("GOPROXY", "off"), ("GONOPROXY", "x.example")]));
        assert_eq!(env.goproxy().ok(), Some("off"));
        assert_eq!(env.get("GONOPROXY"), "x.example");
    }

    #[test]
    fn env_file() {
        assert_eq!(
            parse_env_file("# c\nGOFLAGS=-mod=mod\nbad\n"),
            vec![("GOFLAGS".to_string(), "-mod=mod".to_string())]
        );
    }
}
