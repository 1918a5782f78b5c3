//! `examples/kubernetes/serve/` (the service on Kubernetes: PostgreSQL, `reprove serve`,
//! `reprove worker` and a KEDA ScaledObject on the queue's length) against the real API
//! server of tests/it/support/kube.rs, with KEDA's CRDs (v2.20.2, from its module:
//! `ci/setup-crds`): every object passes a server-side dry run with strict field
//! validation, a misspelt ScaledObject field is refused (the check has teeth), and the
//! flags the Deployments run are flags the binary has. The ScaledObject's SQL runs
//! against reprove's real PostgreSQL schema and counts the jobs that need a worker.

use std::path::PathBuf;
use std::process::Command;

use crate::support::kube;
use crate::support::reprove_bin;
use crate::webhook_kube::{dry_run, install_crd};

fn example_dir() -> PathBuf {
    crate::support::repo_root().join("examples/kubernetes/serve")
}

/// The `- --flag=…` lines of a manifest's container args, in order.
fn flags(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- --"))
        .filter_map(|f| f.split('=').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_service_example_applies_with_its_keda_scaler() {
    let kube = kube::shared();
    install_crd(kube, "crds/keda-v2.20.2/keda.sh_scaledobjects.yaml", "scaledobjects.keda.sh");
    install_crd(kube, "crds/keda-v2.20.2/keda.sh_triggerauthentications.yaml", "triggerauthentications.keda.sh");
    let dir = example_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let names: Vec<String> =
        files.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        ["00-namespace.yaml", "keda.yaml", "postgres.yaml", "secrets.yaml", "server.yaml", "workers.yaml"]
    );
    // The namespace for real (the rest is created in it), then every object as the API
    // server would store it, validated against its schemas (KEDA's CRDs for its kinds).
    let ns = kube.kubectl_with(&["apply", "-f", &files[0].to_string_lossy()], None);
    assert!(ns.success(), "{}", ns.stderr_str());
    let mut applied = String::new();
    for file in &files[1..] {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{e}"));
        let out = dry_run(kube, &text);
        assert!(out.success(), "{}: {}{}", file.display(), out.stdout_str(), out.stderr_str());
        applied.push_str(&out.stdout_str());
    }
    for want in [
        "secret/reprove-serve created",
        "statefulset.apps/reprove-postgres created",
        "service/reprove-postgres created",
        "configmap/reprove-server-config created",
        "deployment.apps/reprove-serve created",
        "service/reprove-serve created",
        "deployment.apps/reprove-worker created",
        "triggerauthentication.keda.sh/reprove-postgres created",
        "scaledobject.keda.sh/reprove-worker created",
    ] {
        assert!(applied.contains(want), "{want} in {applied}");
    }

    // KEDA's schema has teeth: a misspelt field of the ScaledObject is refused.
    let keda = std::fs::read_to_string(dir.join("keda.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(keda.contains("maxReplicaCount:"));
    let out = dry_run(kube, &keda.replacen("maxReplicaCount:", "maxReplicasCount:", 1));
    assert!(!out.success(), "a misspelt field is refused: {}", out.stdout_str());
    assert!(out.stderr_str().contains("unknown field") && out.stderr_str().contains("maxReplicasCount"));
    // The ScaledObject scales the workers' Deployment.
    assert!(keda.contains("name: reprove-worker"), "{keda}");

    // The Deployments run flags that `reprove serve` and `reprove worker` have.
    for (file, command, want) in [
        ("server.yaml", "serve", &["listen", "config", "data", "workers", "log-format"][..]),
        ("workers.yaml", "worker", &["server", "jobs", "runtime", "cache-dir", "log-format"][..]),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
        let used = flags(&text);
        assert_eq!(used, want, "{file}");
        let help = crate::support::run(Command::new(reprove_bin()).args([command, "--help"]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(help.status, Some(0), "reprove {command} --help: {}", help.stderr_str());
        for flag in used {
            assert!(help.stdout_str().contains(&format!("--{flag} <")), "--{flag} in reprove {command} --help");
        }
    }
}

/// The ScaledObject's query counts what the workers have to do in reprove's real
/// PostgreSQL schema (a throwaway cluster, the queue opened as `reprove serve` opens it):
/// queued and running jobs, not finished ones.
#[test]
fn the_keda_query_counts_queued_and_running_jobs() {
    use ::server::queue::Queue as _;
    let keda = std::fs::read_to_string(example_dir().join("keda.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let mut query = None;
    for doc in serde_yaml_ng::Deserializer::from_str(&keda) {
        let v = <serde_json::Value as serde::Deserialize>::deserialize(doc).unwrap_or_else(|e| panic!("{e}"));
        if v["kind"] == "ScaledObject" {
            query = v["spec"]["triggers"][0]["metadata"]["query"].as_str().map(str::to_string);
        }
    }
    let query = query.unwrap_or_else(|| panic!("no query in keda.yaml"));
    let pg = crate::serve::postgres::Cluster::start();
    let url = pg.database("keda");
    let queue = ::server::queue::postgres::Postgres::open(&url).unwrap_or_else(|e| panic!("{e}"));
    let count = || pg.psql("keda", &query).trim().to_string();
    assert_eq!(count(), "0");
    for n in 0..3 {
        let spec = ::server::job::JobSpec::parse_with(format!("{{\"kind\": \"noop\", \"n\": {n}}}").as_bytes(), true)
            .unwrap_or_else(|e| panic!("{e}"));
        queue.submit(&spec, 1_000 + n).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(count(), "3");
    let job = queue.claim("w", 2_000, 60_000, 3).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("none"));
    assert_eq!(count(), "3", "a running job still needs its worker");
    let done = ::server::queue::Outcome {
        state: ::server::queue::State::Done,
        verdict: Some("noop".into()),
        report: None,
        attestations: Vec::new(),
        module: None,
        failure_class: None,
        failure_message: None,
    };
    assert!(queue.finish(&job.id, "w", 3_000, &done).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(count(), "2");
}
