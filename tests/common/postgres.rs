//! A throwaway PostgreSQL cluster for tests, shared by `crates/server/tests` and
//! `tests/it` (each includes it with `#[path]`): Debian's `postgresql` binaries (installed
//! by ci/setup, under /usr/lib/postgresql/VERSION/bin), `initdb` into a temporary
//! directory, `postgres` listening on 127.0.0.1 at a free port with its socket in that
//! directory. It is stopped when dropped and can be stopped and started again on the same
//! port and data directory.
//!
//! PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user the
//! package creates, the directory given to it. Missing binaries fail the test (naming
//! ci/setup): a test of the PostgreSQL queue never passes without one.
//!
//! [`Cluster::start_tls`] starts one that speaks TLS only (`ssl = on`, `hostssl` lines in
//! pg_hba.conf, no `host` line: a plaintext connection is refused), with a server
//! certificate for 127.0.0.1 and `localhost` from a CA the test makes with the openssl
//! CLI (installed by ci/setup); a second CA signed nothing of it.
#![allow(dead_code)]

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The superuser of the cluster, and its password (in the URLs, to show it is redacted).
pub(crate) const USER: &str = "reprove";
pub(crate) const PASSWORD: &str = "pg-test-secret-7c41";

/// A running (or stopped) cluster.
pub(crate) struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// uid, gid to run the server as (when this process is root).
    owner: Option<(u32, u32)>,
    child: Option<Child>,
    extra: Vec<String>,
    tls: bool,
}

/// The newest `/usr/lib/postgresql/*/bin` holding `initdb` and `postgres`.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!(
            "PostgreSQL's initdb and postgres are not installed (looked in /usr/lib/postgresql/*/bin): \
             run ci/setup (it installs Debian's postgresql package)"
        )
    })
}

/// The uid and gid of `user` from /etc/passwd.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?))).flatten()
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("a free port: {e}"))
}

fn chown_all(path: &Path, (uid, gid): (u32, u32)) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap_or_else(|e| panic!("{e}")).flatten() {
            chown_all(&e.path(), (uid, gid));
        }
    }
}

impl Cluster {
    /// Initializes and starts a cluster (fsync off: a test's data need not survive the machine).
    pub(crate) fn start() -> Cluster {
        Cluster::start_with(&["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
    }

    /// Initializes and starts a cluster with these extra `postgres` arguments.
    pub(crate) fn start_with(extra: &[&str]) -> Cluster {
        let mut c = Cluster::init(extra);
        c.start_again();
        c
    }

    /// A cluster that accepts TLS connections only, its certificate from [`Cluster::ca`].
    pub(crate) fn start_tls() -> Cluster {
        let mut c = Cluster::init(&["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
        let dir = c.dir.path().to_path_buf();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("openssl (installed by ci/setup): {e}"));
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        for ca in ["ca", "other-ca"] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=reprove test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
        }
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=reprove test postgres",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        let hba = c.data().join("pg_hba.conf");
        let text = std::fs::read_to_string(&hba).unwrap_or_else(|e| panic!("{e}"));
        let text: String = text
            .lines()
            .map(|l| match l.strip_prefix("host ") {
                Some(rest) => format!("hostssl {rest}\n"),
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&hba, text).unwrap_or_else(|e| panic!("{e}"));
        if let Some(o) = c.owner {
            chown_all(c.dir.path(), o);
        }
        std::fs::set_permissions(dir.join("server.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap_or_else(|e| panic!("{e}"));
        let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
        c.extra.extend([
            "-c".into(),
            "ssl=on".into(),
            "-c".into(),
            format!("ssl_cert_file={}", cert.display()),
            "-c".into(),
            format!("ssl_key_file={}", key.display()),
        ]);
        c.tls = true;
        c.start_again();
        c
    }

    /// The CA that signed a TLS cluster's certificate (PEM).
    pub(crate) fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A CA that signed nothing of the cluster's (PEM).
    pub(crate) fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    /// Initializes a cluster, not started.
    fn init(extra: &[&str]) -> Cluster {
        let bin = bin_dir();
        let owner = if is_root() {
            Some(user_ids("postgres").unwrap_or_else(|| {
                panic!("running as root, and there is no postgres user to run PostgreSQL as: run ci/setup")
            }))
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("reprove-pg-")
            .tempdir_in(std::env::temp_dir())
            .unwrap_or_else(|e| panic!("{e}"));
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap_or_else(|e| panic!("{e}"));
        if let Some(o) = owner {
            chown_all(dir.path(), o);
        }
        let c = Cluster {
            dir,
            bin,
            port: free_port(),
            owner,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            tls: false,
        };
        let mut initdb = c.command("initdb");
        initdb.arg("-D").arg(c.data()).args(["-U", USER, "--auth-local=trust", "--auth-host=scram-sha-256"]);
        initdb.args(["-E", "UTF8", "--locale=C", "--no-sync"]).arg(format!("--pwfile={}", pwfile.display()));
        let out = initdb.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("initdb: {e}"));
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid).env("HOME", self.dir.path());
        }
        cmd.current_dir(self.dir.path()).env_remove("PGPASSWORD").env_remove("PGDATABASE");
        cmd
    }

    /// The port it listens on (127.0.0.1).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db`: plaintext (`sslmode=disable`), or on a TLS cluster
    /// `sslmode=verify-full` trusting [`Cluster::ca`].
    pub(crate) fn url(&self, db: &str) -> String {
        let base = format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port);
        if self.tls {
            format!("{base}?sslmode=verify-full&sslrootcert={}", self.ca().display())
        } else {
            format!("{base}?sslmode=disable")
        }
    }

    /// Creates database `db`; its URL.
    pub(crate) fn database(&self, db: &str) -> String {
        let mut createdb = self.command("createdb");
        createdb.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER, db]);
        let out = createdb
            .env("PGPASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("createdb: {e}"));
        assert!(out.status.success(), "createdb {db}: {}", String::from_utf8_lossy(&out.stderr));
        self.url(db)
    }

    /// Runs SQL in database `db` with psql; its output (unaligned, tuples only).
    pub(crate) fn psql(&self, db: &str, sql: &str) -> String {
        let mut psql = self.command("psql");
        psql.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER, "-d", db]);
        psql.args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql]);
        let out =
            psql.env("PGPASSWORD", PASSWORD).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts the server (after [`Cluster::stop`]) on the same port and data, and waits until it accepts connections.
    pub(crate) fn start_again(&mut self) {
        assert!(self.child.is_none(), "PostgreSQL is already running");
        let log = std::fs::File::create(self.dir.path().join("postgres.log")).unwrap_or_else(|e| panic!("{e}"));
        if let Some((uid, gid)) = self.owner {
            let _ = std::os::unix::fs::chown(self.dir.path().join("postgres.log"), Some(uid), Some(gid));
        }
        let mut postgres = self.command("postgres");
        postgres.arg("-D").arg(self.data()).arg("-k").arg(self.dir.path());
        postgres.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]).args(&self.extra);
        let stderr = log.try_clone().unwrap_or_else(|e| panic!("{e}"));
        postgres.stdin(Stdio::null()).stdout(log).stderr(stderr);
        self.child = Some(postgres.spawn().unwrap_or_else(|e| panic!("starting postgres: {e}")));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut ready = self.command("pg_isready");
            ready.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER, "-d", "postgres", "-t", "2"]);
            if ready.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                panic!("postgres exited ({status}):\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "postgres did not accept connections within 60 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// Stops the server (fast shutdown: clients are disconnected, open transactions
    /// rolled back), waiting for it; killed if it does not stop within 30 s.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops and starts the server again.
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.start_again();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_root() -> bool {
    // The owner of /proc/self is this process's effective uid.
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}
