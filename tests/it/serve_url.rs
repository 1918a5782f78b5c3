//! A verify job's reference given as an https URL, with the real `reprove serve` process,
//! an HTTPS file server on 127.0.0.1 whose test CA the server trusts through
//! `SSL_CERT_FILE`, and the real pipeline (the `verify_e2e` fixture):
//!
//! - the job is keyed by the download's SHA-256 (`referenceDigest`): the same URL again
//!   and the same content at another URL are the same job, new content at the URL a new
//!   one; it is reproduced against exactly that content, and its report names the URL;
//!   a Git source's job is about the main module of the binary (`?module=`, the module's
//!   page and badge);
//! - refused, with nothing kept: a file over the bound, a URL that answers 404, a server
//!   whose certificate is not trusted, plain http (unless the config allows it for
//!   loopback addresses, which then works);
//! - a `reprove worker` (no data directory) downloads the URL itself and checks it
//!   against the digest: other content fails the job (class `input`), the content it was
//!   keyed by is reproduced;
//! - a URL given with its digest is keyed by it without a download; the worker downloads
//!   it and checks it (a URL with nothing there yet, or with other content, fails the
//!   job, class `input`; uploaded and retried, it is reproduced);
//! - a Git watch whose reference template is an https URL verifies each tag, a tag whose
//!   binary is not uploaded yet waiting for a later poll.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::serve::{Options, Serve, TOKEN};
use crate::serve_workers::Worker;
use crate::support::server::{make_identity, Behavior, Serve as Files, Server};
use crate::verify_e2e::{git, shared, Project};

/// The fixture's main module.
const MODULE: &str = "example.com/verifyapp";

fn sha256_hex(path: &Path) -> String {
    stdx::sha256_hex(&std::fs::read(path).unwrap_or_else(|e| panic!("{e}")))
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap_or(to)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("{e}"));
}

/// The files under `data/references/sha256` (what the server kept).
fn kept(data: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data.join("references/sha256"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A plain HTTP GET of `path`: the status and the body.
fn get(serve: &Serve, path: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(&serve.addr).unwrap_or_else(|e| panic!("{e}"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", serve.addr).unwrap_or_else(|e| panic!("{e}"));
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap_or_else(|e| panic!("{e}"));
    let status = answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, answer.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string()))
}

fn job_spec(p: &Project, reference: &str) -> Value {
    json!({
        "kind": "verify",
        "source": p.repo.display().to_string(),
        "rev": "main",
        "reference": reference,
        "toolchain": shared().toolchain,
        "recipe": {"ldflags": ""},
        "fromReference": true,
    })
}

fn finished(j: &Value) -> bool {
    j["state"] == "done" || j["state"] == "failed"
}

/// The test CA (for `SSL_CERT_FILE`) and an HTTPS server of `files` it signed.
fn https_files(p: &Project, files: &Path) -> (PathBuf, Server) {
    let tls = p.path("tls");
    std::fs::create_dir_all(&tls).unwrap_or_else(|e| panic!("{e}"));
    let (id, ca) = make_identity(&tls);
    (ca, Server::start_tls(Behavior::Serve(Files::dir(files)), &id))
}

#[test]
fn a_verify_job_downloads_its_https_reference_and_is_keyed_by_its_content() {
    let s = shared();
    let p = Project::new();
    let binary = p.reference("verifyapp", "go", &[]);
    let files = p.path("files");
    copy(&binary, &files.join("releases/app"));
    copy(&binary, &files.join("mirror/app"));
    let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or_else(|e| panic!("{e}"));
    let max = size + 1000;
    std::fs::write(files.join("releases/huge"), vec![7u8; usize::try_from(max + 1).unwrap_or(usize::MAX)])
        .unwrap_or_else(|e| panic!("{e}"));
    let (ca, https) = https_files(&p, &files);
    let base = https.url().trim_end_matches('/').to_string();
    // Another server with a certificate of another CA: not trusted.
    let other = p.path("other-tls");
    std::fs::create_dir_all(&other).unwrap_or_else(|e| panic!("{e}"));
    let (other_id, _) = make_identity(&other);
    let untrusted = Server::start_tls(Behavior::Serve(Files::dir(&files)), &other_id);
    let plain = Server::start(Behavior::Serve(Files::dir(&files)));

    let config = p.path("reprove-server.toml");
    std::fs::write(&config, format!("max-reference-bytes = {max}\n")).unwrap_or_else(|e| panic!("{e}"));
    let config = config.display().to_string();
    let data = p.path("data");
    let env = [("SSL_CERT_FILE", ca.display().to_string())];
    let options = Options { args: &["--config", &config], env: &env, ..Options::default() };
    let serve = Serve::start_with(&p.path(""), &data, &s.cache, &s.proxy.url(), &options);
    let submit = |reference: &str| serve.request("POST", "/v1/jobs", Some(TOKEN), &job_spec(&p, reference).to_string());

    let url = format!("{base}/releases/app");
    let (status, a) = submit(&url);
    assert_eq!(status, 201, "{a}\n{}", serve.log_text());
    let digest = format!("sha256:{}", sha256_hex(&binary));
    assert_eq!(
        (a["referenceDigest"].as_str(), a["spec"]["reference"].as_str()),
        (Some(digest.as_str()), Some(url.as_str()))
    );
    // The same URL, and the same content at another URL: the same work.
    let (status, again) = submit(&url);
    assert_eq!((status, &again["id"]), (200, &a["id"]), "{again}");
    let (status, mirrored) = submit(&format!("{base}/mirror/app"));
    assert_eq!((status, &mirrored["id"]), (200, &a["id"]), "{mirrored}");
    let id = a["id"].as_str().unwrap_or_default().to_string();
    let done = serve.wait(&id, finished, Duration::from_secs(600));
    assert_eq!((done["state"].as_str(), done["verdict"].as_str()), (Some("done"), Some("reproduced")), "{done:#}");
    let reference = &done["report"]["inputs"]["reference"];
    assert_eq!(
        (reference["path"].as_str(), reference["sha256"].as_str()),
        (Some(url.as_str()), digest.strip_prefix("sha256:"))
    );
    assert_eq!(reference["mainModule"], MODULE);
    crate::support::schema::assert_valid("report.schema.json", &done["report"]);

    // A Git source's verdict is about the binary's main module: its history and badge.
    assert_eq!(done["module"], MODULE, "{done:#}");
    let (status, listed) = serve.request("GET", &format!("/v1/jobs?module={MODULE}"), None, "");
    assert_eq!(status, 200, "{listed}");
    let ids: Vec<&str> = listed["jobs"].as_array().into_iter().flatten().filter_map(|j| j["id"].as_str()).collect();
    assert_eq!(ids, [id.as_str()], "{listed}");
    let (status, page) = get(&serve, &format!("/modules/{MODULE}"));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("id=\"job-{id}\"")), "{page}");
    let encoded: String = MODULE.bytes().map(|b| format!("%{b:02X}")).collect();
    let (status, badge) = get(&serve, &format!("/badge/{encoded}.svg"));
    assert_eq!(status, 200, "{badge}");
    assert!(badge.contains("reproduced 1/1"), "{badge}");

    // New content at the URL: another job.
    std::fs::write(files.join("releases/app"), b"not the release any more").unwrap_or_else(|e| panic!("{e}"));
    let (status, b) = submit(&url);
    assert_eq!(status, 201, "{b}");
    assert_ne!(b["id"], a["id"]);
    assert_eq!(
        b["referenceDigest"].as_str(),
        Some(format!("sha256:{}", stdx::sha256_hex(b"not the release any more")).as_str())
    );
    let before = kept(&data);
    assert_eq!(before.len(), 2, "{before:?}");

    // Refused, and nothing more kept.
    let refused = |reference: &str, want: (u16, &str)| {
        let (status, e) = submit(reference);
        assert_eq!((status, e["error"]["code"].as_str().unwrap_or_default()), want, "{reference}: {e}");
        e["error"]["message"].as_str().unwrap_or_default().to_string()
    };
    let m = refused(&format!("{base}/releases/huge"), (422, "reference-too-large"));
    assert!(m.contains(&max.to_string()), "{m}");
    refused(&format!("{base}/releases/missing"), (422, "reference-not-found"));
    let m = refused(&format!("{}/releases/app", untrusted.url().trim_end_matches('/')), (502, "reference-untrusted"));
    assert!(m.contains("not trusted") && m.contains("SSL_CERT_FILE"), "{m}");
    let m = refused(&format!("{}/mirror/app", plain.url().trim_end_matches('/')), (422, "insecure-reference"));
    assert!(m.contains("loopback-http-references"), "{m}");
    refused("http://192.0.2.1/app", (422, "invalid-reference"));
    refused(
        &format!("https://user:secret@{}/mirror/app", base.trim_start_matches("https://")),
        (422, "invalid-reference"),
    );
    assert_eq!(kept(&data), before);
    drop(serve);

    // Allowed by the config: plain http to a loopback address.
    std::fs::write(p.path("loopback.toml"), "loopback-http-references = true\n").unwrap_or_else(|e| panic!("{e}"));
    let config = p.path("loopback.toml").display().to_string();
    let serve = Serve::start(&p.path(""), &p.path("data-2"), &s.cache, &s.proxy.url(), 0, 2, &["--config", &config]);
    let spec = job_spec(&p, &format!("{}/mirror/app", plain.url().trim_end_matches('/')));
    let (status, c) = serve.request("POST", "/v1/jobs", Some(TOKEN), &spec.to_string());
    assert_eq!((status, c["referenceDigest"].as_str()), (201, Some(digest.as_str())), "{c}");
}

#[test]
fn a_worker_process_downloads_an_https_reference_and_checks_its_digest() {
    let s = shared();
    let p = Project::new();
    let binary = p.reference("verifyapp", "go", &[]);
    let files = p.path("files");
    copy(&binary, &files.join("app"));
    let (ca, https) = https_files(&p, &files);
    let url = format!("{}/app", https.url().trim_end_matches('/'));
    let env = [("SSL_CERT_FILE", ca.display().to_string())];
    // No in-process workers, and no GOPROXY: only the worker can run the job.
    let serve = Serve::start_with(
        &p.path(""),
        &p.path("data"),
        &s.cache,
        "off",
        &Options { workers: 0, env: &env, ..Options::default() },
    );
    let (status, a) = serve.request("POST", "/v1/jobs", Some(TOKEN), &job_spec(&p, &url).to_string());
    assert_eq!(status, 201, "{a}");
    let id = a["id"].as_str().unwrap_or_default().to_string();

    // The URL serves other content by the time the worker runs the job: it fails, and
    // nothing else is verified.
    std::fs::write(files.join("app"), b"swapped after submission").unwrap_or_else(|e| panic!("{e}"));
    let server = format!("http://{}", serve.addr);
    let worker = Worker::start(&p.path(""), &server, TOKEN, &s.cache, &s.proxy.url(), "url-1", 1, &[], &env);
    let failed = serve.wait(&id, finished, Duration::from_secs(120));
    assert_eq!(
        (failed["state"].as_str(), failed["failure"]["class"].as_str()),
        (Some("failed"), Some("input")),
        "{failed:#}\n{}",
        worker.log_text()
    );
    let message = failed["failure"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&url) && message.contains(a["referenceDigest"].as_str().unwrap_or("?")), "{message}");

    // The content it was keyed by again: retried, it is reproduced on the worker.
    copy(&binary, &files.join("app"));
    let (status, retried) = serve.request("POST", &format!("/v1/jobs/{id}/retry"), Some(TOKEN), "");
    assert_eq!(status, 200, "{retried}");
    let done = serve.wait(&id, |j| j["state"] == "done", Duration::from_secs(600));
    assert_eq!(
        (done["state"].as_str(), done["verdict"].as_str()),
        (Some("done"), Some("reproduced")),
        "{done:#}\n{}",
        worker.log_text()
    );
    assert_eq!(done["report"]["inputs"]["reference"]["path"], url.as_str());
    assert_eq!(done["module"], MODULE);
}

#[test]
fn a_reference_url_given_with_its_digest_is_downloaded_by_the_worker_and_checked() {
    let s = shared();
    let p = Project::new();
    let binary = p.reference("verifyapp", "go", &[]);
    let files = p.path("files");
    std::fs::create_dir_all(&files).unwrap_or_else(|e| panic!("{e}"));
    let (ca, https) = https_files(&p, &files);
    let base = https.url().trim_end_matches('/').to_string();
    let env = [("SSL_CERT_FILE", ca.display().to_string())];
    let data = p.path("data");
    let serve =
        Serve::start_with(&p.path(""), &data, &s.cache, &s.proxy.url(), &Options { env: &env, ..Options::default() });
    let submit = |reference: &str, digest: &str| {
        let mut spec = job_spec(&p, reference);
        spec["referenceDigest"] = json!(digest);
        serve.request("POST", "/v1/jobs", Some(TOKEN), &spec.to_string())
    };

    // Not uploaded yet: the submission is keyed by the digest given, without a download,
    // and the in-process worker finds nothing there (class input).
    let url = format!("{base}/releases/app");
    let digest = format!("sha256:{}", sha256_hex(&binary));
    let (status, a) = submit(&url, &digest);
    assert_eq!((status, a["referenceDigest"].as_str()), (201, Some(digest.as_str())), "{a}");
    let id = a["id"].as_str().unwrap_or_default().to_string();
    let failed = serve.wait(&id, finished, Duration::from_secs(120));
    assert_eq!(
        (failed["state"].as_str(), failed["failure"]["class"].as_str()),
        (Some("failed"), Some("input")),
        "{failed:#}"
    );
    let message = failed["failure"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("releases/app") && message.contains("404"), "{message}");

    // Uploaded and retried: downloaded by the worker, checked, reproduced.
    copy(&binary, &files.join("releases/app"));
    let (status, retried) = serve.request("POST", &format!("/v1/jobs/{id}/retry"), Some(TOKEN), "");
    assert_eq!(status, 200, "{retried}");
    let done = serve.wait(&id, |j| j["state"] == "done", Duration::from_secs(600));
    assert_eq!((done["verdict"].as_str(), done["module"].as_str()), (Some("reproduced"), Some(MODULE)), "{done:#}");
    let reference = &done["report"]["inputs"]["reference"];
    assert_eq!(
        (reference["path"].as_str(), reference["sha256"].as_str()),
        (Some(url.as_str()), digest.strip_prefix("sha256:"))
    );

    // A digest the URL does not serve: the job fails naming both, nothing is verified.
    copy(&binary, &files.join("mirror/app"));
    let wrong = format!("sha256:{}", stdx::sha256_hex(b"another release"));
    let mirror = format!("{base}/mirror/app");
    let (status, b) = submit(&mirror, &wrong);
    assert_eq!(status, 201, "{b}");
    let failed = serve.wait(b["id"].as_str().unwrap_or_default(), finished, Duration::from_secs(120));
    assert_eq!(
        (failed["state"].as_str(), failed["failure"]["class"].as_str(), failed["verdict"].as_str()),
        (Some("failed"), Some("input"), None),
        "{failed:#}"
    );
    let message = failed["failure"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&mirror) && message.contains(&wrong) && message.contains(&digest), "{message}");
    // The server downloaded nothing; the worker's downloads are gone with their jobs.
    assert_eq!(kept(&data), Vec::<String>::new());
}

#[test]
fn a_watched_git_repository_gets_each_release_binary_url_verified() {
    let s = shared();
    let p = Project::new();
    let files = p.path("files");
    // v1.0.0 (the fixture's tag) and its release binary.
    let r1 = p.reference("app-v1.0.0", "go", &[]);
    copy(&r1, &files.join("releases/v1.0.0/app"));
    // v1.1.0: another commit, whose binary is not uploaded yet.
    std::fs::write(p.repo.join("NEWS"), "v1.1.0\n").unwrap_or_else(|e| panic!("{e}"));
    git(&p.repo, &["add", "NEWS"]);
    git(&p.repo, &["commit", "-q", "-m", "v1.1.0"]);
    git(&p.repo, &["tag", "-a", "v1.1.0", "-m", "v1.1.0"]);
    let second = git(&p.repo, &["rev-parse", "HEAD"]);
    let r2 = p.reference("app-v1.1.0", "go", &[]);
    let (ca, https) = https_files(&p, &files);
    let base = https.url().trim_end_matches('/').to_string();

    let served = p.path("served");
    std::fs::create_dir_all(&served).unwrap_or_else(|e| panic!("{e}"));
    git(&served, &["clone", "-q", "--bare", &p.repo.display().to_string(), "repo.git"]);
    let srv = Server::start(Behavior::GitHttpBackend(served));
    let repo = format!("{}/repo.git", srv.url().trim_end_matches('/'));
    let config = p.path("reprove-server.toml");
    std::fs::write(
        &config,
        format!(
            "[[watch]]\nname = \"app-bin\"\ngit = \"{repo}\"\ntags = \"v*\"\n\
             reference = \"{base}/releases/{{tag}}/app\"\ntoolchain = \"{}\"\ninterval = \"2s\"\n\
             recipe = {{ ldflags = \"\" }}\n",
            s.toolchain
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config = config.display().to_string();
    let env = [("SSL_CERT_FILE", ca.display().to_string())];
    let options = Options { args: &["--config", &config], env: &env, ..Options::default() };
    let serve = Serve::start_with(&p.path(""), &p.path("data"), &s.cache, &s.proxy.url(), &options);
    let jobs = |serve: &Serve| -> Vec<Value> {
        let (status, list) = serve.request("GET", "/v1/jobs?watch=app-bin", None, "");
        assert_eq!(status, 200, "{list}");
        list["jobs"].as_array().cloned().unwrap_or_default()
    };
    let wait = |serve: &Serve, n: usize| -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            let j = jobs(serve);
            if j.len() == n && j.iter().all(finished) {
                return j;
            }
            assert!(Instant::now() < deadline, "{j:#?}\n{}", serve.log_text());
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    // v1.0.0 is verified; v1.1.0's URL answers 404 and waits.
    let first = wait(&serve, 1);
    assert_eq!(first[0]["verdict"], "reproduced", "{first:#?}");
    assert!(serve.log_text().contains("a tag's reference is not there yet"), "{}", serve.log_text());
    // Uploaded: the next poll verifies it.
    copy(&r2, &files.join("releases/v1.1.0/app"));
    let all = wait(&serve, 2);
    for j in &all {
        let job = serve.job(j["id"].as_str().unwrap_or_default());
        assert_eq!((job["state"].as_str(), job["verdict"].as_str()), (Some("done"), Some("reproduced")), "{job:#}");
        let tag = if job["spec"]["rev"] == second.as_str() { "v1.1.0" } else { "v1.0.0" };
        let file = if tag == "v1.1.0" { &r2 } else { &r1 };
        assert_eq!(job["spec"]["reference"], format!("{base}/releases/{tag}/app"));
        assert_eq!(job["referenceDigest"], format!("sha256:{}", sha256_hex(file)));
        assert_eq!(job["module"], MODULE);
    }
}
