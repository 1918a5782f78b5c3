//! Clones of URLs with libgit2: `file://`, `https://` and `http://`, `ssh://`
//! and scp-like `user@host:path`, `git://`. One code path, no `git` command.
//!
//! ssh authenticates with the ssh agent (`SSH_AUTH_SOCK`) as the URL's user
//! (else `$USER`), and the server's host key must be in a known_hosts file
//! (checked here, by [`super::known_hosts`], never accepted on first use).
//! https trusts what OpenSSL trusts: the system store, and `SSL_CERT_FILE` /
//! `SSL_CERT_DIR` when set; no credentials are sent. The whole clone has a
//! deadline: every callback checks it, and a transfer that stalls without
//! calling back is abandoned when it passes (its thread ends with the process).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::known_hosts::{self, Verdict};
use super::{CloneOptions, HostKeyProblem, SourceError};

/// The ssh destination of a URL: user (if the URL names one), host, port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SshTarget {
    pub(crate) user: Option<String>,
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// `ssh://[user@]host[:port]/path` (also `ssh+git://`, `git+ssh://`) or scp-like `[user@]host:path`.
pub(crate) fn ssh_target(url: &str) -> Option<SshTarget> {
    let split_user = |authority: &str| match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user.to_string()).filter(|u| !u.is_empty()), host.to_string()),
        None => (None, authority.to_string()),
    };
    for scheme in ["ssh://", "ssh+git://", "git+ssh://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let authority = rest.split('/').next().unwrap_or_default();
            let (user, hostport) = split_user(authority);
            let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
                let (host, after) = v6.split_once(']')?;
                (host.to_string(), after.strip_prefix(':'))
            } else {
                match hostport.rsplit_once(':') {
                    Some((h, p)) => (h.to_string(), Some(p)),
                    None => (hostport.clone(), None),
                }
            };
            let port = match port {
                Some("") | None => 22,
                Some(p) => p.parse().ok()?,
            };
            return (!host.is_empty()).then_some(SshTarget { user, host, port });
        }
    }
    if url.contains("://") {
        return None;
    }
    let (authority, _path) = url.split_once(':')?;
    let (user, host) = split_user(authority);
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).map(str::to_string).unwrap_or(host);
    (!host.is_empty()).then_some(SshTarget { user, host, port: 22 })
}

/// The host of an `http(s)://` or `git://` URL, for messages.
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    authority.rsplit_once('@').map_or(authority, |(_, h)| h).to_string()
}

/// What the callbacks saw: a refusal to map into a precise error.
#[derive(Default)]
struct Seen {
    host_key: Option<(String, String, String, HostKeyProblem)>,
    auth: Option<(Option<String>, String)>,
    certificate: Option<String>,
    timed_out: bool,
    ssh_attempts: u32,
}

/// Fetches every branch and tag of `url` into a new bare repository at `dir`
/// (whose parent `tmp` is owned by the returned value), within `opts.timeout`.
pub(crate) fn clone(
    url: &str,
    tmp: tempfile::TempDir,
    dir: PathBuf,
    opts: &CloneOptions,
) -> Result<(git2::Repository, tempfile::TempDir), SourceError> {
    let (tx, rx) = mpsc::channel();
    let deadline = Instant::now() + opts.timeout;
    let (url2, opts2) = (url.to_string(), opts.clone());
    let worker = std::thread::Builder::new().name("reprove-clone".into()).spawn(move || {
        let result = fetch(&url2, &dir, &opts2, deadline).map(|repo| (repo, tmp));
        // The receiver is gone when the clone was abandoned: the temporary directory goes with `result`.
        let _ = tx.send(result);
    });
    if let Err(e) = worker {
        return Err(SourceError::Clone { url: url.to_string(), message: format!("cannot start the clone: {e}") });
    }
    // A little grace after the deadline: the callbacks abort the transfer themselves when they run.
    let grace = (opts.timeout / 10).min(Duration::from_secs(5));
    match rx.recv_timeout(opts.timeout + grace) {
        Ok(result) => result,
        Err(_) => Err(timeout(url, opts.timeout)),
    }
}

fn timeout(url: &str, limit: Duration) -> SourceError {
    SourceError::Clone {
        url: url.to_string(),
        message: format!("the clone did not finish within {}s", limit.as_secs()),
    }
}

fn fetch(url: &str, dir: &Path, opts: &CloneOptions, deadline: Instant) -> Result<git2::Repository, SourceError> {
    let fail = |message: String| SourceError::Clone { url: url.to_string(), message };
    let repo = git2::Repository::init_bare(dir).map_err(|e| fail(e.message().to_string()))?;
    let ssh = ssh_target(url).filter(|_| !url.starts_with("file://"));
    let seen = RefCell::new(Seen::default());
    let result = {
        let mut remote = repo.remote_anonymous(url).map_err(|e| fail(e.message().to_string()))?;
        let callbacks = callbacks(&seen, ssh.as_ref(), opts, deadline);
        let mut fetch = git2::FetchOptions::new();
        fetch.remote_callbacks(callbacks).download_tags(git2::AutotagOption::All);
        let mut proxy = git2::ProxyOptions::new();
        proxy.auto();
        fetch.proxy_options(proxy);
        let result = remote.fetch(&["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"], Some(&mut fetch), None);
        if result.is_ok() {
            // HEAD of the clone follows the remote's default branch, when it has one.
            if let Ok(Some(head)) = remote.default_branch().map(|b| b.as_str().map(str::to_string)) {
                let _ = repo.set_head(&head);
            }
        }
        result
    };
    match result {
        Ok(()) => Ok(repo),
        Err(e) => Err(classify(url, ssh.as_ref(), seen.into_inner(), &e, opts)),
    }
}

/// The callbacks of every connection: the deadline, credentials (none over https, the
/// agent over ssh) and the host key or certificate check.
fn callbacks<'a>(
    seen: &'a RefCell<Seen>,
    ssh: Option<&'a SshTarget>,
    opts: &'a CloneOptions,
    deadline: Instant,
) -> git2::RemoteCallbacks<'a> {
    let mut callbacks = git2::RemoteCallbacks::new();
    let late = move || {
        let late = Instant::now() >= deadline;
        if late {
            seen.borrow_mut().timed_out = true;
        }
        late
    };
    callbacks.transfer_progress(move |_| !late());
    callbacks.sideband_progress(move |_| !late());
    callbacks.credentials(move |_url, user_from_url, allowed| {
        if late() {
            return Err(git2::Error::from_str("deadline passed"));
        }
        credentials(seen, ssh, user_from_url, allowed)
    });
    callbacks.certificate_check(move |cert, _host| {
        if late() {
            return Err(git2::Error::from_str("deadline passed"));
        }
        certificate_check(seen, ssh, opts, cert)
    });
    callbacks
}

/// The tags of `url` and the commit (or other object) each names, peeled through
/// annotated tags, as `git ls-remote --tags` lists them: the same transports, deadline,
/// credentials and host checks as a clone, and nothing written.
pub(crate) fn list_tags(url: &str, opts: &CloneOptions) -> Result<Vec<(String, String)>, SourceError> {
    let refs = list_refs(url, opts)?;
    let mut direct = std::collections::BTreeMap::new();
    let mut peeled = std::collections::BTreeMap::new();
    for (name, oid) in refs {
        let Some(name) = name.strip_prefix("refs/tags/") else { continue };
        match name.strip_suffix("^{}") {
            Some(tag) => peeled.insert(tag.to_string(), oid),
            None => direct.insert(name.to_string(), oid),
        };
    }
    Ok(direct
        .into_iter()
        .map(|(tag, oid)| {
            let oid = peeled.get(&tag).cloned().unwrap_or(oid);
            (tag, oid)
        })
        .collect())
}

/// The commit `rev` names at `url` now, from its advertised references (an ls-remote):
/// `HEAD`, a full reference name (`refs/…`), else `refs/tags/REV` (annotated tags
/// peeled), else `refs/heads/REV`, as git's own precedence. A full commit id needs no
/// listing; an abbreviated one cannot be found without a clone.
pub(crate) fn resolve(url: &str, rev: &str, opts: &CloneOptions) -> Result<String, SourceError> {
    let refs: std::collections::BTreeMap<String, String> = list_refs(url, opts)?.into_iter().collect();
    let candidates = if rev == "HEAD" || rev.starts_with("refs/") {
        vec![rev.to_string()]
    } else {
        vec![format!("refs/tags/{rev}"), format!("refs/heads/{rev}")]
    };
    for name in candidates {
        if let Some(oid) = refs.get(&format!("{name}^{{}}")).or_else(|| refs.get(&name)) {
            return Ok(oid.clone());
        }
    }
    let message = if rev.len() < 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        "no branch or tag has this name, and an abbreviated commit id cannot be resolved remotely (give all 40 hexadecimal digits)"
    } else {
        "no branch or tag of the remote has this name"
    };
    Err(SourceError::Revision { rev: rev.to_string(), location: url.to_string(), message: message.into() })
}

/// Every reference `url` advertises (`HEAD`, branches, tags and their peeled `^{}`
/// entries), within `opts.timeout`, on a thread of its own that is abandoned at the deadline.
fn list_refs(url: &str, opts: &CloneOptions) -> Result<Vec<(String, String)>, SourceError> {
    let (tx, rx) = mpsc::channel();
    let deadline = Instant::now() + opts.timeout;
    let (url2, opts2) = (url.to_string(), opts.clone());
    let worker = std::thread::Builder::new().name("reprove-ls-remote".into()).spawn(move || {
        let _ = tx.send(ls_remote(&url2, &opts2, deadline));
    });
    if let Err(e) = worker {
        return Err(SourceError::Clone { url: url.to_string(), message: format!("cannot start the listing: {e}") });
    }
    let grace = (opts.timeout / 10).min(Duration::from_secs(5));
    match rx.recv_timeout(opts.timeout + grace) {
        Ok(result) => result,
        Err(_) => Err(timeout(url, opts.timeout)),
    }
}

fn ls_remote(url: &str, opts: &CloneOptions, deadline: Instant) -> Result<Vec<(String, String)>, SourceError> {
    let ssh = ssh_target(url).filter(|_| !url.starts_with("file://"));
    let seen = RefCell::new(Seen::default());
    let result = (|| {
        let mut remote = git2::Remote::create_detached(url)?;
        let mut proxy = git2::ProxyOptions::new();
        proxy.auto();
        let connection = remote.connect_auth(
            git2::Direction::Fetch,
            Some(callbacks(&seen, ssh.as_ref(), opts, deadline)),
            Some(proxy),
        )?;
        Ok::<_, git2::Error>(
            connection.list()?.iter().map(|head| (head.name().to_string(), head.oid().to_string())).collect(),
        )
    })();
    result.map_err(|e| classify(url, ssh.as_ref(), seen.into_inner(), &e, opts))
}

fn credentials(
    seen: &RefCell<Seen>,
    ssh: Option<&SshTarget>,
    user_from_url: Option<&str>,
    allowed: git2::CredentialType,
) -> Result<git2::Cred, git2::Error> {
    let refuse = |user: Option<String>, message: String| {
        let e = git2::Error::from_str(&message);
        seen.borrow_mut().auth = Some((user, message));
        Err(e)
    };
    if ssh.is_none() {
        return refuse(
            None,
            "the server asks for credentials; reprove clones https:// and http:// URLs anonymously \
             (clone the repository yourself and give its path)"
                .into(),
        );
    }
    let user = user_from_url
        .map(str::to_string)
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .or_else(|| std::env::var("LOGNAME").ok().filter(|u| !u.is_empty()));
    let Some(user) = user else {
        return refuse(None, "the URL names no user and neither USER nor LOGNAME is set".into());
    };
    if allowed.contains(git2::CredentialType::USERNAME) {
        return git2::Cred::username(&user);
    }
    if !allowed.contains(git2::CredentialType::SSH_KEY) {
        return refuse(Some(user), format!("the server offers no public-key authentication ({allowed:?})"));
    }
    let Some(sock) = std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) else {
        return refuse(
            Some(user),
            "no ssh agent: SSH_AUTH_SOCK is not set (start ssh-agent and ssh-add the key)".into(),
        );
    };
    if !Path::new(&sock).exists() {
        let sock = Path::new(&sock).display().to_string();
        return refuse(Some(user), format!("no ssh agent: SSH_AUTH_SOCK names {sock}, which does not exist"));
    }
    let attempts = {
        let mut s = seen.borrow_mut();
        s.ssh_attempts += 1;
        s.ssh_attempts
    };
    if attempts > 1 {
        return refuse(Some(user), "the server accepted none of the ssh agent's keys".into());
    }
    git2::Cred::ssh_key_from_agent(&user)
}

fn certificate_check(
    seen: &RefCell<Seen>,
    ssh: Option<&SshTarget>,
    opts: &CloneOptions,
    cert: &git2::cert::Cert<'_>,
) -> Result<git2::CertificateCheckStatus, git2::Error> {
    if let Some(x509) = cert.as_x509() {
        // libgit2 (OpenSSL) decides; remember which certificate, for the message.
        seen.borrow_mut().certificate = Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(x509.data())));
        return Ok(git2::CertificateCheckStatus::CertificatePassthrough);
    }
    let (Some(hostkey), Some(target)) = (cert.as_hostkey(), ssh) else {
        return Err(git2::Error::from_str("unexpected certificate type"));
    };
    let name = known_hosts::lookup_name(&target.host, target.port);
    let Some(blob) = hostkey.hostkey() else {
        let problem = HostKeyProblem::Unreadable { reason: "libgit2 gave no raw host key".into() };
        seen.borrow_mut().host_key = Some((name, String::new(), String::new(), problem));
        return Err(git2::Error::from_str("host key refused"));
    };
    let (kind, fp) = (known_hosts::key_type(blob).unwrap_or_else(|| "unknown".into()), known_hosts::fingerprint(blob));
    let problem = match known_hosts::check(&opts.known_hosts, &target.host, target.port, blob) {
        Ok(Verdict::Known) => return Ok(git2::CertificateCheckStatus::CertificateOk),
        Ok(Verdict::Mismatch { at, expected }) => HostKeyProblem::Mismatch { at, expected },
        Ok(Verdict::Revoked { at }) => HostKeyProblem::Revoked { at },
        Ok(Verdict::Unknown { other_types }) => {
            let port = if target.port == 22 { String::new() } else { format!(" -p {}", target.port) };
            let keyscan = format!("ssh-keyscan{port} {}", target.host);
            HostKeyProblem::Unknown { files: opts.known_hosts.clone(), other_types, keyscan }
        }
        Err(e) => HostKeyProblem::Unreadable { reason: format!("reading known_hosts: {e}") },
    };
    seen.borrow_mut().host_key = Some((name, kind, fp, problem));
    Err(git2::Error::from_str("host key refused"))
}

fn classify(url: &str, ssh: Option<&SshTarget>, seen: Seen, e: &git2::Error, opts: &CloneOptions) -> SourceError {
    if seen.timed_out {
        return timeout(url, opts.timeout);
    }
    if let Some((host, key_type, fingerprint, problem)) = seen.host_key {
        return SourceError::HostKey { url: url.to_string(), host, key_type, fingerprint, problem: Box::new(problem) };
    }
    let host = match ssh {
        Some(t) => known_hosts::lookup_name(&t.host, t.port),
        None => url_host(url),
    };
    if let Some((user, message)) = seen.auth {
        return SourceError::Auth { url: url.to_string(), host, user, message };
    }
    if e.code() == git2::ErrorCode::Auth {
        let user = ssh.and_then(|t| t.user.clone());
        return SourceError::Auth { url: url.to_string(), host, user, message: e.message().to_string() };
    }
    if e.code() == git2::ErrorCode::Certificate || e.class() == git2::ErrorClass::Ssl {
        let mut message = e.message().to_string();
        if let Some(sha) = seen.certificate {
            message.push_str(&format!(" (server certificate sha256 {sha})"));
        }
        return SourceError::Certificate { url: url.to_string(), host, message };
    }
    SourceError::Clone { url: url.to_string(), message: e.message().to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_targets() {
        let t =
            |user: Option<&str>, host: &str, port| SshTarget { user: user.map(Into::into), host: host.into(), port };
        assert_eq!(ssh_target("ssh://git@h.invalid/a/b.git"), Some(t(Some("git"), "h.invalid", 22)));
        assert_eq!(ssh_target("ssh://root@127.0.0.1:2222/srv/r.git"), Some(t(Some("root"), "127.0.0.1", 2222)));
        assert_eq!(ssh_target("ssh://h.invalid:/x"), Some(t(None, "h.invalid", 22)));
        assert_eq!(ssh_target("ssh://u@[::1]:2200/x"), Some(t(Some("u"), "::1", 2200)));
        assert_eq!(ssh_target("git@h.invalid:a/b.git"), Some(t(Some("git"), "h.invalid", 22)));
        assert_eq!(ssh_target("h.invalid:a/b.git"), Some(t(None, "h.invalid", 22)));
        assert_eq!(ssh_target("https://h.invalid/a"), None);
        assert_eq!(ssh_target("ssh://u@h.invalid:notaport/x"), None);
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(url_host("https://u@h.invalid:8443/a/b"), "h.invalid:8443");
        assert_eq!(url_host("git://h.invalid/a"), "h.invalid");
    }
}
