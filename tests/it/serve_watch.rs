//! `[[watch]]` in `reprove serve`, with the real process, the real registry on 127.0.0.1,
//! a real Git server over HTTP (`git http-backend`) and the real pipelines:
//!
//! - an image repository: two tags pushed are audited (the `audit_e2e` program), the
//!   image VSA of each signed with the server's key and pushed (found by `attest verify
//!   --image`, admitted by `reprove admit`); a third tag pushed later is picked up by the
//!   next poll; a tag that does not match is left alone; re-tagging an audited digest
//!   audits nothing again;
//! - a Git repository with tags v1.0.0 and v1.1.0 whose release images are published as
//!   the reference template says: both verified (reproduced) against the pinned images,
//!   and listed under the binary's main module (`serve_url` has the template of URLs);
//! - a registry that answers 500 and 429 before it recovers: the polls back off
//!   (exponentially, jittered, logged and counted in `/metrics`), then succeed; and the
//!   rate limit of a host holds with three watches on it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::serve::{prometheus, Serve, TOKEN};
use crate::support::registry::{Fault, FaultProxy};
use crate::support::server::{Behavior, Server};
use crate::support::{reprove_bin, run};
use crate::verify_e2e::{git, shared, Project};
use crate::verify_module::{install, proxy, published, Scratch, MAIN_GO, VERSION};

/// The value of metric `name` with exactly `labels`.
fn metric(serve: &Serve, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = serve.metrics();
    let samples = prometheus::parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let want: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    samples.iter().find(|s| s.name == name && s.labels == want).map(|s| s.value)
}

/// The jobs `watch` submitted.
fn jobs_of(serve: &Serve, watch: &str) -> Vec<Value> {
    let (status, list) = serve.request("GET", &format!("/v1/jobs?watch={watch}"), None, "");
    assert_eq!(status, 200, "{list}");
    list["jobs"].as_array().cloned().unwrap_or_default()
}

/// Waits until `done` holds for the jobs of `watch`.
fn wait_jobs(serve: &Serve, watch: &str, within: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let jobs = jobs_of(serve, watch);
        if done(&jobs) {
            return jobs;
        }
        assert!(Instant::now() < deadline, "jobs of {watch}: {jobs:#?}\nlog:\n{}", serve.log_text());
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn finished(j: &Value) -> bool {
    j["state"] == "done" || j["state"] == "failed"
}

/// Pushes `img` to the test registry as `tagged`.
fn push(img: &oci::build::Image, tagged: &str) {
    let s = shared();
    let io = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    img.push_blocking(&io, &tagged.parse().unwrap_or_else(|e| panic!("{e}")), &s.registry.options())
        .unwrap_or_else(|e| panic!("{e}"));
}

/// An image of the tool and a release note that makes its digest its own.
fn release(scratch: &Scratch, tool: &Path, tag: &str) -> oci::build::Image {
    let note = scratch.path(&format!("release-{tag}"));
    std::fs::write(&note, format!("{tag}\n")).unwrap_or_else(|e| panic!("{e}"));
    crate::audit_e2e::image(&[("/usr/local/bin/modtool", tool), ("/etc/release", &note)])
}

/// The auditor's directory of `serve::an_audit_job_…`: the toolchain for the Go version,
/// the ldflags the binary cannot record.
/// The server's directory `here`, with a cosign key pair `server.key`/`server.pub` in it.
fn signing_dir(scratch: &Scratch) -> PathBuf {
    let here = scratch.path("here");
    std::fs::create_dir_all(&here).unwrap_or_else(|e| panic!("{e}"));
    crate::attest_registry::keygen(&here, "server").unwrap_or_else(|e| panic!("{e}"));
    here
}

fn auditor(scratch: &Scratch) -> String {
    let s = shared();
    let dir = scratch.path("auditor");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let version = s.toolchain.split('@').next().and_then(|t| t.rsplit(':').next()).unwrap_or_default();
    std::fs::write(
        dir.join("reprove.toml"),
        format!(
            "[audit.toolchains]\n\"go{version}\" = \"{}\"\n\n[[audit.binary]]\npath = \"/usr/local/bin/modtool\"\nldflags = \"\"\n",
            s.toolchain
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    dir.display().to_string()
}

#[test]
fn a_watched_repository_gets_each_new_digest_audited_and_its_vsa_pushed() {
    let s = shared();
    let goproxy = proxy(published(VERSION, MAIN_GO, &[]));
    let scratch = Scratch::new();
    let tool = install(&scratch, "trimmed", &goproxy.url(), &["-trimpath"]);
    let repo = format!("{}/watched/modtool", s.registry.addr);
    let (v1, v2, v3, dev) = (
        release(&scratch, &tool, "v1"),
        release(&scratch, &tool, "v2"),
        release(&scratch, &tool, "v3"),
        release(&scratch, &tool, "dev"),
    );
    push(&v1, &format!("{repo}:v1"));
    push(&v2, &format!("{repo}:v2"));
    push(&dev, &format!("{repo}:dev"));

    let here = signing_dir(&scratch);
    let config = scratch.path("reprove-server.toml");
    std::fs::write(
        &config,
        format!(
            "key = {:?}\naudit-dir = {:?}\n\n[[watch]]\nname = \"modtool\"\nimage = \"{repo}\"\ntags = \"v*\"\ninterval = \"2s\"\n",
            here.join("server.key").display().to_string(),
            auditor(&scratch),
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config_s = config.display().to_string();
    let serve = Serve::start(&here, &scratch.path("data"), &s.cache, &goproxy.url(), 1, 1, &["--config", &config_s]);

    // v1 and v2 are audited; dev does not match `v*`.
    let jobs = wait_jobs(&serve, "modtool", Duration::from_secs(900), |j| j.len() == 2 && j.iter().all(finished));
    let digests: std::collections::BTreeSet<String> =
        jobs.iter().filter_map(|j| j["imageDigest"].as_str().map(str::to_string)).collect();
    let want: std::collections::BTreeSet<String> =
        [v1.manifest_digest.to_string(), v2.manifest_digest.to_string()].into_iter().collect();
    assert_eq!(digests, want);
    for j in &jobs {
        let id = j["id"].as_str().unwrap_or_default();
        let job = serve.job(id);
        assert_eq!((job["state"].as_str(), job["verdict"].as_str()), (Some("done"), Some("reproduced")), "{job:#}");
        assert_eq!((job["spec"]["push"].as_bool(), job["spec"]["watch"].as_str()), (Some(true), Some("modtool")));
        let names: Vec<&str> =
            job["attestations"].as_array().into_iter().flatten().filter_map(|a| a["name"].as_str()).collect();
        assert_eq!(names, ["image-vsa"], "{job:#}");
    }

    // The image VSA of each digest is in the registry and verifies with the server's key.
    for d in &want {
        let pinned = format!("{repo}@{d}");
        let mut verify = Command::new(reprove_bin());
        verify.current_dir(&here).args(["attest", "verify", "--image", &pinned, "--key", "server.pub", "--json"]);
        verify.args(["--predicate-type", "https://slsa.dev/verification_summary/v1"]);
        let out = run(&mut verify).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status, Some(0), "{pinned}: {}{}", out.stdout_str(), out.stderr_str());
    }
    // Admission of both digests on the server's VSAs alone; the unwatched tag is refused.
    std::fs::write(
        here.join("policy.toml"),
        "version = 1\n[[verifiers]]\nname = \"server\"\nkey = \"server.pub\"\n[default]\nmax_age = \"1d\"\ncoverage = \"image\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let pod = |images: &[String]| {
        let containers: String =
            images.iter().enumerate().map(|(i, im)| format!("    - name: c{i}\n      image: {im}\n")).collect();
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n{containers}")
    };
    let admit = |images: &[String]| {
        std::fs::write(here.join("pod.yaml"), pod(images)).unwrap_or_else(|e| panic!("{e}"));
        let mut admit = Command::new(reprove_bin());
        admit.current_dir(&here).args(["admit", "--policy", "policy.toml", "pod.yaml"]);
        run(&mut admit).unwrap_or_else(|e| panic!("{e}"))
    };
    let watched: Vec<String> = want.iter().map(|d| format!("{repo}@{d}")).collect();
    let out = admit(&watched);
    assert_eq!(out.status, Some(0), "{}{}", out.stdout_str(), out.stderr_str());
    let out = admit(&[format!("{repo}@{}", dev.manifest_digest)]);
    assert_eq!(out.status, Some(1), "{}{}", out.stdout_str(), out.stderr_str());

    // A third tag is picked up by a later poll.
    push(&v3, &format!("{repo}:v3"));
    let jobs = wait_jobs(&serve, "modtool", Duration::from_secs(600), |j| j.len() == 3 && j.iter().all(finished));
    assert!(jobs.iter().any(|j| j["imageDigest"] == v3.manifest_digest.to_string()), "{jobs:#?}");

    // Re-tagging an audited digest audits nothing again, however many polls see it.
    push(&v1, &format!("{repo}:v1-again"));
    let polls =
        metric(&serve, "reprove_serve_watch_polls_total", &[("watch", "modtool"), ("result", "ok")]).unwrap_or(0.0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&serve, "reprove_serve_watch_polls_total", &[("watch", "modtool"), ("result", "ok")]).unwrap_or(0.0)
        < polls + 2.0
    {
        assert!(Instant::now() < deadline, "no polls:\n{}", serve.log_text());
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(jobs_of(&serve, "modtool").len(), 3);
    assert_eq!(metric(&serve, "reprove_serve_watch_new_total", &[("watch", "modtool")]), Some(3.0));
    assert_eq!(
        metric(&serve, "reprove_serve_watch_polls_total", &[("watch", "modtool"), ("result", "error")]),
        Some(0.0)
    );
    let (_, all) = serve.request("GET", "/v1/jobs", None, "");
    assert_eq!(all["jobs"].as_array().map(Vec::len), Some(3), "only the watch's jobs: {all:#}");
    // The watch's badge on the dashboard counts its three audited digests.
    let (status, badge) = serve.request("GET", "/badge/modtool.svg", None, "");
    let badge = badge.as_str().unwrap_or_default().to_string();
    assert_eq!(status, 200, "{badge}");
    assert!(badge.starts_with("<svg") && badge.contains("reproduced 3/3"), "{badge}");
    let _ = TOKEN;
}

#[test]
fn a_watched_git_repository_gets_each_release_tag_verified() {
    let s = shared();
    let p = Project::new();
    let repo_img = format!("{}/gitwatch/app", s.registry.addr);
    // v1.0.0 (the fixture's tag) and its release image.
    let r1 = p.reference("app-v1.0.0", "go", &[]);
    push(&crate::audit_e2e::image(&[("/usr/local/bin/app", &r1)]), &format!("{repo_img}:v1.0.0"));
    let first = p.commit.clone();
    // v1.1.0: another commit, another release.
    std::fs::write(p.repo.join("NEWS"), "v1.1.0\n").unwrap_or_else(|e| panic!("{e}"));
    git(&p.repo, &["add", "NEWS"]);
    git(&p.repo, &["commit", "-q", "-m", "v1.1.0"]);
    git(&p.repo, &["tag", "-a", "v1.1.0", "-m", "v1.1.0"]);
    git(&p.repo, &["tag", "not-a-release"]);
    let second = git(&p.repo, &["rev-parse", "HEAD"]);
    let r2 = p.reference("app-v1.1.0", "go", &[]);
    push(&crate::audit_e2e::image(&[("/usr/local/bin/app", &r2)]), &format!("{repo_img}:v1.1.0"));

    let served = p.path("served");
    std::fs::create_dir_all(&served).unwrap_or_else(|e| panic!("{e}"));
    git(&served, &["clone", "-q", "--bare", &p.repo.display().to_string(), "repo.git"]);
    let srv = Server::start(Behavior::GitHttpBackend(served));
    let url = format!("{}/repo.git", srv.url().trim_end_matches('/'));
    let config = p.path("reprove-server.toml");
    std::fs::write(
        &config,
        format!(
            "[[watch]]\nname = \"app-src\"\ngit = \"{url}\"\ntags = \"/^v[0-9]+\\\\.[0-9]+\\\\.[0-9]+$/\"\n\
             reference = \"oci://{repo_img}:{{tag}}#/usr/local/bin/app\"\ntoolchain = \"{}\"\ninterval = \"2s\"\n\
             recipe = {{ ldflags = \"\" }}\n",
            s.toolchain
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config_s = config.display().to_string();
    let serve = Serve::start(&p.path(""), &p.path("data"), &s.cache, &s.proxy.url(), 1, 1, &["--config", &config_s]);
    let jobs = wait_jobs(&serve, "app-src", Duration::from_secs(900), |j| j.len() == 2 && j.iter().all(finished));
    let mut seen = std::collections::BTreeMap::new();
    for j in &jobs {
        let job = serve.job(j["id"].as_str().unwrap_or_default());
        assert_eq!((job["state"].as_str(), job["verdict"].as_str()), (Some("done"), Some("reproduced")), "{job:#}");
        assert_eq!(job["spec"]["source"], url.as_str());
        let reference = job["spec"]["reference"].as_str().unwrap_or_default().to_string();
        assert!(reference.starts_with(&format!("oci://{repo_img}@sha256:")), "{reference}");
        seen.insert(
            job["spec"]["rev"].as_str().unwrap_or_default().to_string(),
            job["report"]["inputs"]["source"]["commit"].clone(),
        );
    }
    let want: std::collections::BTreeMap<String, Value> =
        [(first.clone(), Value::from(first)), (second.clone(), Value::from(second.clone()))].into_iter().collect();
    assert_eq!(seen, want);
    // A Git source's verdicts are about the main module of the binary (the module's
    // history and badge), as a module source's are.
    let (status, by_module) = serve.request("GET", "/v1/jobs?module=example.com/verifyapp", None, "");
    assert_eq!((status, by_module["jobs"].as_array().map(Vec::len)), (200, Some(2)), "{by_module}");

    // Submitted by hand, the tag is resolved over HTTP (an ls-remote of the same server)
    // to the commit the watch submitted: the same work, the same job.
    let watched = jobs.iter().map(|j| serve.job(j["id"].as_str().unwrap_or_default()));
    let watched = watched.into_iter().find(|j| j["spec"]["rev"] == second.as_str()).unwrap_or_default();
    let by_tag = json!({
        "kind": "verify", "source": url, "rev": "v1.1.0", "reference": watched["spec"]["reference"],
        "toolchain": s.toolchain, "recipe": {"ldflags": ""}, "fromReference": true,
    });
    let (status, same) = serve.request("POST", "/v1/jobs", Some(TOKEN), &by_tag.to_string());
    assert_eq!((status, &same["id"], &same["commit"]), (200, &watched["id"], &Value::from(second)), "{same:#}");
    let mut unknown = by_tag.clone();
    unknown["rev"] = json!("v9.9.9");
    let (status, e) = serve.request("POST", "/v1/jobs", Some(TOKEN), &unknown.to_string());
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("unknown-revision")), "{e}");
}

#[test]
fn a_failing_registry_is_backed_off_and_the_rate_limit_holds() {
    let s = shared();
    let scratch = Scratch::new();
    let note = scratch.path("note");
    std::fs::write(&note, "no Go here\n").unwrap_or_else(|e| panic!("{e}"));
    let img = crate::audit_e2e::image(&[("/etc/note", &note)]);
    push(&img, &format!("{}/flaky/app:v1", s.registry.addr));
    // One poll that fails after the client's own retries (500s), then three 429s.
    let mut statuses = vec![500; 5];
    statuses.extend([429, 429, 429]);
    let flaky =
        FaultProxy::start(&s.registry.addr, "/tags/list", Fault::Statuses(statuses)).unwrap_or_else(|e| panic!("{e}"));
    let steady = FaultProxy::start(&s.registry.addr, "/tags/list", Fault::None).unwrap_or_else(|e| panic!("{e}"));

    let here = signing_dir(&scratch);
    let mut config = format!(
        "key = {:?}\nwatch-backoff = \"1s\"\nwatch-backoff-max = \"4s\"\nwatch-rate = \"100/s\"\n\
         [watch-rates]\n\"{}\" = \"2/5s\"\n\n[[watch]]\nname = \"flaky\"\nimage = \"{}/flaky/app\"\ninterval = \"1s\"\n",
        here.join("server.key").display().to_string(),
        steady.addr,
        flaky.addr
    );
    for n in ["a", "b", "c"] {
        config.push_str(&format!(
            "\n[[watch]]\nname = \"steady-{n}\"\nimage = \"{}/steady/{n}\"\ninterval = \"1s\"\n",
            steady.addr
        ));
    }
    std::fs::write(scratch.path("reprove-server.toml"), config).unwrap_or_else(|e| panic!("{e}"));
    let config_s = scratch.path("reprove-server.toml").display().to_string();
    let started = Instant::now();
    let serve = Serve::start(&here, &scratch.path("data"), &s.cache, "off", 0, 1, &["--config", &config_s]);

    // The flaky registry recovers; its watch polls successfully and submits the digest.
    let deadline = Instant::now() + Duration::from_secs(90);
    while metric(&serve, "reprove_serve_watch_new_total", &[("watch", "flaky")]) != Some(1.0) {
        assert!(Instant::now() < deadline, "{}", serve.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let recovered = started.elapsed();
    assert_eq!(
        metric(&serve, "reprove_serve_watch_polls_total", &[("watch", "flaky"), ("result", "error")]),
        Some(4.0)
    );
    assert_eq!(metric(&serve, "reprove_serve_watch_failing", &[("watch", "flaky")]), Some(0.0));
    // Backoff: each failure waited longer (between half and all of 1 s, 2 s, 4 s, 4 s).
    let waits: Vec<(u64, u64)> = serve
        .log_lines()
        .iter()
        .filter(|l| l["message"] == "watch: poll failed" && l["watch"] == "flaky")
        .map(|l| {
            let n = |k: &str| l[k].as_str().and_then(|v| v.parse().ok()).unwrap_or(0);
            (n("failures"), n("retry_in_ms"))
        })
        .collect();
    assert_eq!(waits.iter().map(|w| w.0).collect::<Vec<_>>(), [1, 2, 3, 4], "{waits:?}");
    for (failures, wait) in &waits {
        let full = (1000u64 << (failures - 1)).min(4000);
        assert!(
            (full / 2..=full).contains(wait),
            "failure {failures}: waited {wait} ms, not in [{}, {full}]",
            full / 2
        );
    }
    // Without backoff a 1 s interval would have polled about once a second.
    let requests = flaky.hits.load(std::sync::atomic::Ordering::Relaxed);
    assert!(requests <= 5 + 3 + 3, "{requests} tag list requests in {recovered:?}");
    assert!(recovered >= Duration::from_millis(3500), "{recovered:?}");

    // The rate limit: three watches of one host wanting a poll a second get 2 per 5 s
    // (after the first 2 at once), whatever the interval says.
    let before = steady.hits.load(std::sync::atomic::Ordering::Relaxed);
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let polls = steady.hits.load(std::sync::atomic::Ordering::Relaxed) - before;
    let secs = window.elapsed().as_secs_f64();
    assert!(polls as f64 <= 2.0 + 2.0 * secs / 5.0 + 1.0, "{polls} polls of one host in {secs:.1} s");
    assert!(polls >= 2, "{polls} polls: the bucket refills");
    let total: f64 = ["a", "b", "c"]
        .iter()
        .filter_map(|n| {
            metric(
                &serve,
                "reprove_serve_watch_polls_total",
                &[("watch", format!("steady-{n}").as_str()), ("result", "ok")],
            )
        })
        .sum();
    let all_secs = started.elapsed().as_secs_f64();
    assert!(total <= 2.0 + 2.0 * all_secs / 5.0 + 1.0, "{total} polls in {all_secs:.1} s");
}

/// `oci`'s tag listing against the real registry: pages of two followed through the
/// `Link` header to every tag, and the bound says when it cut the list.
#[test]
fn tags_are_listed_page_by_page_up_to_the_bound() {
    let registry = crate::support::registry::Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let scratch = Scratch::new();
    let note = scratch.path("note");
    std::fs::write(&note, "tags\n").unwrap_or_else(|e| panic!("{e}"));
    let img = crate::audit_e2e::image(&[("/etc/note", &note)]);
    let io = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let tags = ["a1", "b2", "c3", "d4", "e5"];
    for t in tags {
        let r: oci::ImageRef = format!("{}/paged/app:{t}", registry.addr).parse().unwrap_or_else(|e| panic!("{e}"));
        img.push_blocking(&io, &r, &registry.options()).unwrap_or_else(|e| panic!("{e}"));
    }
    let repo: oci::ImageRef = format!("{}/paged/app", registry.addr).parse().unwrap_or_else(|e| panic!("{e}"));
    let client = oci::referrers::Repository::new(&repo, &registry.options()).unwrap_or_else(|e| panic!("{e}"));
    let (all, cut) = io.block_on(client.tags_paged(100, 2)).unwrap_or_else(|e| panic!("{e}"));
    // (Debian's registry does not keep the order across pages: every tag, once.)
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!((sorted(all), cut), (tags.map(String::from).to_vec(), false));
    let (some, cut) = io.block_on(client.tags_paged(3, 2)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((some.len(), cut), (3, true), "{some:?}");
    assert!(some.iter().all(|t| tags.contains(&t.as_str())), "{some:?}");
    let none: oci::ImageRef = format!("{}/no/such", registry.addr).parse().unwrap_or_else(|e| panic!("{e}"));
    let client = oci::referrers::Repository::new(&none, &registry.options()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(io.block_on(client.tags(10)).unwrap_or_else(|e| panic!("{e}")), (Vec::new(), false));
}

/// Two `reprove serve` on one PostgreSQL with one image watch polled every second: they
/// take turns (the queue's `watch_polls` claim), so the registry is listed about once a
/// second between them, not twice; the polls both count in `/metrics` add up to the
/// listings the registry saw; and each digest pushed (one before they start, one while
/// they run) is audited once.
#[test]
fn two_servers_on_one_postgres_poll_a_watch_once_per_interval() {
    let s = shared();
    let scratch = Scratch::new();
    let image = |n: &str| {
        let note = scratch.path(&format!("note-{n}"));
        std::fs::write(&note, format!("no Go here, {n}\n")).unwrap_or_else(|e| panic!("{e}"));
        crate::audit_e2e::image(&[("/etc/note", &note)])
    };
    push(&image("v1"), &format!("{}/shared/app:v1", s.registry.addr));
    let counted = FaultProxy::start(&s.registry.addr, "/tags/list", Fault::None).unwrap_or_else(|e| panic!("{e}"));
    let here = signing_dir(&scratch);
    let config = scratch.path("reprove-server.toml");
    std::fs::write(
        &config,
        format!(
            "key = {:?}\nwatch-rate = \"100/s\"\n\n[[watch]]\nname = \"shared\"\nimage = \"{}/shared/app\"\n\
             interval = \"1s\"\n",
            here.join("server.key").display().to_string(),
            counted.addr
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config_s = config.display().to_string();
    let pg = crate::serve::postgres::Cluster::start();
    let url = pg.database("watch");
    let args = ["--config", config_s.as_str(), "--database", url.as_str()];
    let a = Serve::start(&here, &scratch.path("data-a"), &s.cache, "off", 1, 1, &args);
    let b = Serve::start(&here, &scratch.path("data-b"), &s.cache, "off", 1, 2, &args);
    wait_jobs(&a, "shared", Duration::from_secs(120), |j| j.len() == 1 && j.iter().all(finished));

    let polls = |serve: &Serve| {
        metric(serve, "reprove_serve_watch_polls_total", &[("watch", "shared"), ("result", "ok")]).unwrap_or(0.0)
            + metric(serve, "reprove_serve_watch_polls_total", &[("watch", "shared"), ("result", "error")])
                .unwrap_or(0.0)
    };
    let hits = || counted.hits.load(std::sync::atomic::Ordering::Relaxed);
    let (before, window) = (hits(), Instant::now());
    std::thread::sleep(Duration::from_secs(8));
    push(&image("v2"), &format!("{}/shared/app:v2", s.registry.addr));
    std::thread::sleep(Duration::from_secs(4));
    let (listed, secs) = (hits() - before, window.elapsed().as_secs_f64());
    // Alone, each server would list about once a second: 2 a second between the two.
    assert!(
        (listed as f64) <= secs + 2.0 && (listed as f64) >= secs / 2.0,
        "{listed} tag listings in {secs:.1} s by two servers polling every second"
    );
    let (pa, pb) = (polls(&a), polls(&b));
    let total = hits() as f64;
    // A poll under way has listed but is not counted yet: at most one per server.
    assert!((pa + pb - total).abs() <= 2.0, "polls {pa} + {pb} counted, {total} listings seen");

    // The digest pushed while they ran: one job, each audited once; no filter, and the tags
    // the audits' own attestations hang on are not audited.
    let jobs = wait_jobs(&b, "shared", Duration::from_secs(120), |j| j.len() == 2 && j.iter().all(finished));
    let digests: std::collections::BTreeSet<&str> = jobs.iter().filter_map(|j| j["imageDigest"].as_str()).collect();
    assert_eq!(digests.len(), 2, "{jobs:#?}");
    for j in &jobs {
        assert_eq!((j["attempts"].as_u64(), j["resultsStored"].as_u64()), (Some(1), Some(1)), "{j:#}");
    }
}
