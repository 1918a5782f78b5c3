//! Failure classification: what went wrong when `go`, `git` or reprove's own
//! GOPROXY client failed, as a stable [`Code`] with one remediation line.
//!
//! What goes in: a failed command's exit status and output ([`classify_output`]),
//! or a [`FetchError`] from the GOPROXY client ([`code_for_fetch`]). What comes
//! out: [`Diagnosis`] values whose codes later commands put in their reports,
//! so that CI can tell "the proxy does not have it" from "the credentials are
//! wrong" from "the machine ran out of processes" — the "exit status 128"
//! family that otherwise all look alike.
//!
//! The patterns come from real output of git 2.x and the go command (the
//! tests produce each one against local failing servers): git's `fatal:` lines
//! (HTTP and SSH transports, local paths, fork failures) and the go command's
//! `modfetch` and `web` errors (`reading URL: 404 Not Found`, `dial tcp:
//! lookup …: no such host`, `tls: …`, `verifying …: checksum mismatch`,
//! `missing go.sum entry`, `go.mod requires go >= …`).
//!
//! What it is not: a parser of every message either tool can print. Output
//! that matches nothing is [`Code::Unknown`] (or [`Code::GitExit128`] for an
//! unexplained git exit 128), with the first error line as evidence.

use crate::proxy::{FetchError, FetchErrorKind};

/// A stable failure code. [`Code::as_str`] is what reports carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Code {
    /// git could not authenticate (HTTP credentials, SSH key).
    GitAuth,
    /// ssh refused the server's host key (unknown or changed).
    GitHostKey,
    /// The repository does not exist (or is hidden from these credentials).
    GitRepoNotFound,
    /// git could not reach the server (DNS, TCP, TLS, HTTP errors).
    GitNetwork,
    /// git could not start processes or allocate memory.
    GitResources,
    /// git exited with 128 for a reason not recognised.
    GitExit128,
    /// A proxy answered 404 or 410 (the module version is not there).
    NotFound,
    /// A server answered 401 or 403.
    Auth,
    /// The TLS handshake or certificate verification failed.
    Tls,
    /// A host name did not resolve.
    Dns,
    /// No answer in time.
    Timeout,
    /// The TCP connection failed (refused, reset, unreachable).
    Connect,
    /// The server answered with an error status (5xx, 429…).
    HttpStatus,
    /// The answer was not valid HTTP or not what the protocol says.
    BadResponse,
    /// Downloaded content differs from go.sum or the checksum database.
    ChecksumMismatch,
    /// go.sum has no line for a module that needs one.
    MissingGoSum,
    /// The local toolchain does not satisfy the go.mod `go`/`toolchain` line.
    ToolchainMismatch,
    /// The checksum database could not be used or did not verify.
    SumDb,
    /// Fetching is disabled (GOPROXY=off, -mod=vendor, GONOPROXY without direct).
    LookupDisabled,
    /// Nothing recognised.
    Unknown,
}

/// Every code, in the order of the documentation table.
pub const ALL_CODES: &[Code] = &[
    Code::GitAuth,
    Code::GitHostKey,
    Code::GitRepoNotFound,
    Code::GitNetwork,
    Code::GitResources,
    Code::GitExit128,
    Code::NotFound,
    Code::Auth,
    Code::Tls,
    Code::Dns,
    Code::Timeout,
    Code::Connect,
    Code::HttpStatus,
    Code::BadResponse,
    Code::ChecksumMismatch,
    Code::MissingGoSum,
    Code::ToolchainMismatch,
    Code::SumDb,
    Code::LookupDisabled,
    Code::Unknown,
];

impl Code {
    /// The stable code string.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::GitAuth => "git-auth",
            Code::GitHostKey => "git-host-key",
            Code::GitRepoNotFound => "git-repo-not-found",
            Code::GitNetwork => "git-network",
            Code::GitResources => "git-resources",
            Code::GitExit128 => "git-exit-128",
            Code::NotFound => "not-found",
            Code::Auth => "auth",
            Code::Tls => "tls",
            Code::Dns => "dns",
            Code::Timeout => "timeout",
            Code::Connect => "connect",
            Code::HttpStatus => "http-status",
            Code::BadResponse => "bad-response",
            Code::ChecksumMismatch => "checksum-mismatch",
            Code::MissingGoSum => "missing-go-sum",
            Code::ToolchainMismatch => "toolchain-mismatch",
            Code::SumDb => "sumdb",
            Code::LookupDisabled => "lookup-disabled",
            Code::Unknown => "unknown",
        }
    }

    /// One line saying what to do.
    pub fn remediation(self) -> &'static str {
        match self {
            Code::GitAuth => "git could not authenticate: provide credentials for the host (a ~/.netrc entry or a git credential helper for HTTPS, an ssh-agent key for SSH) and set GOPRIVATE for private modules",
            Code::GitHostKey => "ssh does not trust the server's host key: add the key to ~/.ssh/known_hosts after checking it out of band, or find out why it changed",
            Code::GitRepoNotFound => "the repository does not exist or is hidden from these credentials: check the module path, replace directives and access rights",
            Code::GitNetwork => "git could not reach the server: check DNS, HTTPS_PROXY/NO_PROXY, firewalls and TLS trust; try `git ls-remote URL` by hand",
            Code::GitResources => "the system could not start a process: raise the process limit (ulimit -u; docker --ulimit nproc, --pids-limit) or lower build concurrency",
            Code::GitExit128 => "git failed fatally (exit status 128): read its `fatal:` line; rerun the command with GIT_TRACE=1 GIT_CURL_VERBOSE=1",
            Code::NotFound => "the proxy does not have this module version: check that the version exists; fetch private modules directly (GOPRIVATE/GONOPROXY) or add `,direct` to GOPROXY",
            Code::Auth => "the server refused the credentials (401/403): add a ~/.netrc (or $NETRC) entry for the host or credentials in the GOPROXY URL, and check GOAUTH",
            Code::Tls => "the TLS connection failed: check the server's certificate chain and trust store (SSL_CERT_FILE), and that the URL really speaks HTTPS",
            Code::Dns => "the host name does not resolve: check the host in GOPROXY or the module path, /etc/resolv.conf, and whether the network requires HTTPS_PROXY",
            Code::Timeout => "no answer in time: check connectivity and proxies, retry, or use a closer GOPROXY",
            Code::Connect => "the TCP connection failed: check host and port, firewalls, and HTTP_PROXY/HTTPS_PROXY/NO_PROXY",
            Code::HttpStatus => "the server answered with an error: retry later, or list a fallback after `|` in GOPROXY",
            Code::BadResponse => "the answer is not a module proxy's: check that the GOPROXY URL points at a module proxy and uses the right scheme (http or https)",
            Code::ChecksumMismatch => "SECURITY: the downloaded content differs from what go.sum (or the checksum database) records: do not build; find out whether the proxy, the origin or go.sum changed",
            Code::MissingGoSum => "go.sum has no hash for this module: run `go mod download MODULE` or `go mod tidy` in a trusted environment and commit go.sum",
            Code::ToolchainMismatch => "the local Go toolchain does not satisfy go.mod's go or toolchain line: install that toolchain or pin it in the build image (GOTOOLCHAIN=local forbids switching)",
            Code::SumDb => "the checksum database could not vouch for the module: check GOSUMDB (name+key [URL]) and access to it, or list private modules in GONOSUMDB",
            Code::LookupDisabled => "fetching is disabled (GOPROXY=off, -mod=vendor, or GONOPROXY without `direct`): fill the module cache first (reprove mod download) or enable a proxy",
            Code::Unknown => "unrecognised failure: read the tool's message",
        }
    }

    /// Whether the code is about the network or a server (a retry or a
    /// configuration change may help), as opposed to the modules themselves.
    pub fn is_infrastructure(self) -> bool {
        !matches!(self, Code::ChecksumMismatch | Code::MissingGoSum | Code::ToolchainMismatch)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which program produced the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// The go command.
    Go,
    /// git.
    Git,
}

/// One classified failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// The code.
    pub code: Code,
    /// The line of output that decided it.
    pub evidence: String,
}

impl Diagnosis {
    /// The remediation line for the code.
    pub fn remediation(&self) -> &'static str {
        self.code.remediation()
    }
}

/// The code for a GOPROXY client error.
pub fn code_for_fetch(e: &FetchError) -> Code {
    match e.kind {
        FetchErrorKind::NotFound | FetchErrorKind::Gone => Code::NotFound,
        FetchErrorKind::Unauthorized | FetchErrorKind::Forbidden | FetchErrorKind::InsecureCredentials => Code::Auth,
        FetchErrorKind::Status => Code::HttpStatus,
        FetchErrorKind::Dns => Code::Dns,
        FetchErrorKind::Connect => Code::Connect,
        FetchErrorKind::Tls => Code::Tls,
        FetchErrorKind::Timeout => Code::Timeout,
        FetchErrorKind::Read | FetchErrorKind::TooLarge | FetchErrorKind::Invalid | FetchErrorKind::Redirect => {
            Code::BadResponse
        }
        FetchErrorKind::ProxyOff | FetchErrorKind::NoProxy | FetchErrorKind::UseProxy => Code::LookupDisabled,
        FetchErrorKind::File | FetchErrorKind::Other => Code::Unknown,
    }
}

struct Rule {
    code: Code,
    any: &'static [&'static str],
}

/// Messages of git itself (also found inside go's output when go ran git).
/// Order matters: resources before auth (a fork failure can follow a prompt
/// failure), host keys before auth (ssh prints both), auth before not-found
/// (hosting services answer 404 to unauthenticated requests for private repos
/// only after asking for credentials).
const GIT_RULES: &[Rule] = &[
    Rule {
        code: Code::GitResources,
        any: &[
            "unable to fork",
            "cannot fork",
            "fork: retry",
            "resource temporarily unavailable",
            "cannot allocate memory",
            "out of memory",
            "too many open files",
            "unable to create thread",
            // The Go runtime's words (go itself, or any Go program) under the same limit.
            "failed to create new os thread",
            "may need to increase max user processes",
        ],
    },
    Rule {
        code: Code::GitHostKey,
        any: &[
            "host key verification failed",
            "remote host identification has changed",
            "host key is known for",
            "no matching host key type",
            "host key for",
        ],
    },
    Rule {
        code: Code::GitAuth,
        any: &[
            "could not read username",
            "could not read password",
            "authentication failed",
            "terminal prompts disabled",
            "permission denied (",
            "permission denied, please try again",
            "invalid username or password",
            "http basic: access denied",
            "the requested url returned error: 401",
            "the requested url returned error: 403",
            "access denied",
        ],
    },
    Rule {
        code: Code::GitRepoNotFound,
        any: &[
            "repository not found",
            "' not found",
            "' does not exist",
            "does not appear to be a git repository",
            "the requested url returned error: 404",
            "no such repository",
        ],
    },
    Rule {
        code: Code::GitNetwork,
        any: &[
            "could not resolve host",
            "could not resolve hostname",
            "failed to connect",
            "couldn't connect to server",
            "connection refused",
            "connection timed out",
            "operation timed out",
            "network is unreachable",
            "no route to host",
            "connection reset",
            "ssl",
            "gnutls",
            "tls",
            "certificate",
            "early eof",
            "remote end hung up unexpectedly",
            "the requested url returned error",
            "received http/0.9",
            "unable to access",
            "kex_exchange_identification",
            "connection closed by",
            // The go command's words when every protocol's `git ls-remote` failed.
            "no secure protocol found for repository",
            "no protocol found for repository",
        ],
    },
];

/// Messages of the go command's own fetching and checking.
const GO_RULES: &[Rule] = &[
    Rule { code: Code::ChecksumMismatch, any: &["checksum mismatch", "security error"] },
    Rule { code: Code::MissingGoSum, any: &["missing go.sum entry", "go.sum: no such file"] },
    Rule {
        code: Code::ToolchainMismatch,
        any: &[
            "go.mod requires go >=",
            "go.work requires go >=",
            "toolchain not available",
            "requires go >= ",
            "invalid toolchain",
            "switching to go",
        ],
    },
    Rule {
        code: Code::SumDb,
        any: &["checksum database", "/sumdb/", "sumdb", "verifying module:", "verifying go.mod:", "gosumdb"],
    },
    Rule {
        code: Code::LookupDisabled,
        any: &[
            "module lookup disabled by goproxy=off",
            "module lookup disabled by -mod=",
            "disabled by goprivate/gonoproxy",
            "cannot find module providing package",
        ],
    },
    Rule {
        code: Code::NotFound,
        any: &[": 404 not found", ": 410 gone", "unknown revision", "invalid version: unknown"],
    },
    Rule {
        code: Code::Auth,
        any: &[": 401 unauthorized", ": 403 forbidden", "refusing to pass credentials to insecure url"],
    },
    Rule { code: Code::Tls, any: &["tls:", "x509:", "certificate", "server gave http response to https client"] },
    Rule { code: Code::Dns, any: &["no such host", "server misbehaving", "lookup "] },
    Rule {
        code: Code::Timeout,
        any: &["i/o timeout", "timeout exceeded", "deadline exceeded", "handshake timeout", "timed out"],
    },
    Rule {
        code: Code::Connect,
        any: &["connection refused", "connection reset", "network is unreachable", "no route to host", "broken pipe"],
    },
    Rule {
        code: Code::BadResponse,
        any: &[
            "malformed http",
            // A garbage answer can also race net/http's idle-connection reader,
            // which then reports it in these words instead.
            "unsolicited response received on idle http channel",
            "readlooppeekfaillocked",
            "transport connection broken",
            "invalid response from proxy",
            "proxy returned info for version",
            "unexpected eof",
        ],
    },
    Rule { code: Code::HttpStatus, any: &[": 5", ": 429 too many requests", "reading http"] },
];

fn first_match(rules: &[Rule], lines: &[&str]) -> Option<Diagnosis> {
    for rule in rules {
        for line in lines {
            let lower = line.to_lowercase();
            if rule.any.iter().any(|p| lower.contains(p)) {
                return Some(Diagnosis { code: rule.code, evidence: line.trim().to_string() });
            }
        }
    }
    None
}

fn is_http_status_line(line: &str) -> bool {
    // `reading http://…: 500 Internal Server Error` (a status after the URL).
    line.contains("reading http")
        && line.rsplit(": ").next().is_some_and(|s| s.starts_with(|c: char| c.is_ascii_digit()))
}

/// Classifies the output of a failed `go` or `git` command. `status` is the
/// exit status when the process exited.
pub fn classify_output(tool: Tool, status: Option<i32>, output: &str) -> Diagnosis {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    let first_error = || {
        lines
            .iter()
            .find(|l| {
                let t = l.trim_start();
                t.starts_with("fatal:") || t.starts_with("error:") || t.starts_with("go:")
            })
            .or(lines.first())
            .map(|l| l.trim().to_string())
            .unwrap_or_default()
    };
    // The go command wraps git's output (`git ls-remote … : exit status 128:`):
    // what git said decides, as it would if git had been run alone.
    let ran_git = tool == Tool::Git
        || output.contains("exit status 128")
        || output.contains("git ")
        || output.contains("protocol found for repository");
    if tool == Tool::Go {
        // Go's own verdicts come first: they are about the modules, not the transport.
        if let Some(d) = first_match(&GO_RULES[..3], &lines) {
            return d;
        }
    }
    if ran_git {
        if let Some(d) = first_match(GIT_RULES, &lines) {
            return d;
        }
    }
    if tool == Tool::Go {
        if let Some(d) = first_match(&GO_RULES[3..], &lines) {
            if d.code != Code::HttpStatus || lines.iter().any(|l| is_http_status_line(l)) {
                return d;
            }
        }
    }
    let exit128 = status == Some(128) || output.contains("exit status 128");
    Diagnosis { code: if exit128 { Code::GitExit128 } else { Code::Unknown }, evidence: first_error() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_documented() {
        let mut seen = std::collections::BTreeSet::new();
        for c in ALL_CODES {
            assert!(seen.insert(c.as_str()), "{c}");
            assert!(!c.remediation().is_empty());
        }
    }

    #[test]
    fn go_status_lines() {
        let d = classify_output(
            Tool::Go,
            Some(1),
            "go: x.example/m@v1.0.0: reading http://127.0.0.1:1/x.example/m/@v/v1.0.0.mod: 500 Internal Server Error\n",
        );
        assert_eq!(d.code, Code::HttpStatus);
        let d = classify_output(Tool::Go, Some(1), "go: m@v1: reading http://h/m/@v/v1.mod: 410 Gone\n");
        assert_eq!(d.code, Code::NotFound);
    }

    /// The words go printed in a CI run when a garbage answer raced
    /// net/http's idle-connection reader (instead of "malformed HTTP response").
    #[test]
    fn garbage_answers_in_either_of_go_s_words() {
        let raced = "Unsolicited response received on idle HTTP channel starting with \"garbage\\r\\n\\r\\n\"; err=<nil>\n\
                     go: github.com/spf13/pflag@v1.0.5: Get \"http://127.0.0.1:35929/github.com/spf13/pflag/@v/v1.0.5.mod\": readLoopPeekFailLocked: %!w(<nil>)\n";
        assert_eq!(classify_output(Tool::Go, Some(1), raced).code, Code::BadResponse);
        let usual = "go: m@v1: Get \"http://127.0.0.1:1/m/@v/v1.mod\": net/http: HTTP/1.x transport connection broken: malformed HTTP response \"garbage\"\n";
        assert_eq!(classify_output(Tool::Go, Some(1), usual).code, Code::BadResponse);
    }
}
