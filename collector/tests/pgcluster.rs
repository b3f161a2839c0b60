//! A throwaway PostgreSQL cluster for tests, so nothing depends on a system
//! service: Debian's `initdb` into a temp dir owned by the `postgres` user,
//! the `postgres` server on a free loopback port, killed when the test
//! process exits. One [`shared`] cluster per test process hands each test a
//! fresh database; [`Cluster::own`] gives a restart test a private one.
//!
//! Compiled into the integration tests and, through `#[path]`, into the
//! collector's unit tests, so it uses only std, nix and tokio-postgres.

#![allow(dead_code)]

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid, User};

/// The superuser's password over TCP (the unix socket trusts it), so a
/// test can tell that a URL's password never reaches a log or an error.
pub const PASSWORD: &str = "pg-test-secret-4f1d";

/// The superuser every URL names.
pub const USER: &str = "postgres";

/// How long the server may take to accept connections after starting.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Why a cluster cannot be started here, if it cannot: tests skip with
/// this reason outside CI and fail with it under `CI=true`.
pub fn available() -> Result<(), String> {
    if !Uid::effective().is_root() {
        return Err("not root (the cluster runs as the postgres user)".into());
    }
    bin_dir()?;
    postgres_user()?;
    if Command::new("setpriv").arg("--version").output().is_err() {
        return Err("no setpriv: install util-linux".into());
    }
    Ok(())
}

/// Whether a test needing PostgreSQL may run: false (with the reason
/// printed) when no cluster can start here, except under `CI=true`, where
/// the test is mandatory and fails instead.
pub fn can_use(test: &str) -> bool {
    match available() {
        Ok(()) => true,
        Err(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: {reason}, and CI=true makes this test mandatory")
        }
        Err(reason) => {
            eprintln!("skipping {test}: {reason}");
            false
        }
    }
}

/// The test process's cluster, started on first use (fsync off: it holds
/// only test data and a crash of the machine loses nothing wanted).
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| Cluster::start_new(false))
}

/// A running (or, for [`Cluster::own`], stoppable) PostgreSQL cluster.
pub struct Cluster {
    /// Owned by the postgres user: `data/`, `sock/`, `postgres.log`.
    dir: PathBuf,
    port: u16,
    fsync: bool,
    server: Mutex<Option<Server>>,
    /// Makes database names unique within the cluster.
    next: AtomicU32,
    /// How long `initdb` and the first start took.
    pub started_in: Duration,
}

/// The server process, waited for by the thread that started it.
struct Server {
    pid: Pid,
    exited: Receiver<ExitStatus>,
}

impl Cluster {
    /// A private cluster (fsync on, so a restart test proves durability),
    /// stopped and removed on drop.
    pub fn own() -> Cluster {
        Cluster::start_new(true)
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` as the superuser, password included.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        )
    }

    /// Creates a fresh, empty database named after `name` (made unique and
    /// lower-case) and answers its URL.
    pub fn database(&self, name: &str) -> String {
        let mut clean: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        clean.truncate(40);
        let name = format!(
            "{clean}_{}_{}",
            std::process::id(),
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        self.execute("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.url(&name)
    }

    /// Runs `sql` (one or more statements) on database `name`, panicking
    /// with the server's error.
    pub fn execute(&self, name: &str, sql: &str) {
        block_on(async {
            let client = self.connect(name).await?;
            client.batch_execute(sql).await
        })
        .unwrap_or_else(|e| panic!("{sql} on {name}: {}", said(&e)));
    }

    /// The one integer `sql` answers on database `name` (`count(*)`, or an
    /// aggregate cast to BIGINT).
    pub fn one_i64(&self, name: &str, sql: &str) -> i64 {
        block_on(async {
            let client = self.connect(name).await?;
            client.query_one(sql, &[]).await?.try_get::<_, i64>(0)
        })
        .unwrap_or_else(|e| panic!("{sql} on {name}: {}", said(&e)))
    }

    /// Turns TLS on with this certificate and key (PEM), for clients that
    /// ask for it; plain connections are still accepted.
    pub fn enable_tls(&self, cert_pem: &str, key_pem: &str) {
        use std::os::unix::fs::PermissionsExt;
        let user = postgres_user().unwrap();
        for (file, text, mode) in [
            ("server.crt", cert_pem, 0o644),
            ("server.key", key_pem, 0o600),
        ] {
            let path = self.dir.join("data").join(file);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            nix::unistd::chown(path.as_path(), Some(user.uid), Some(user.gid)).unwrap();
        }
        // Two calls: ALTER SYSTEM may not share a batch's transaction.
        self.execute("postgres", "ALTER SYSTEM SET ssl = on");
        self.execute("postgres", "SELECT pg_reload_conf()");
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let on = block_on(async {
                let client = self.connect("postgres").await?;
                let rows = client.simple_query("SHOW ssl").await?;
                Ok::<_, tokio_postgres::Error>(rows.iter().any(|m| {
                    matches!(m, tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("on"))
                }))
            });
            if on.unwrap_or(false) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "TLS never came on; the server's log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `sql` (e.g. `LOCK TABLE ...`) on database `name` inside a
    /// transaction left open until the answer is released, so a test can
    /// hold what it locks while it watches a collector wait.
    pub fn hold(&self, name: &str, sql: &str) -> Held {
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let begin = format!("BEGIN; {sql}");
        let name = name.to_string();
        let sock = self.dir.join("sock");
        let port = self.port;
        let thread = std::thread::spawn(move || {
            block_on(async move {
                let (client, connection) = tokio_postgres::Config::new()
                    .host_path(sock)
                    .port(port)
                    .user(USER)
                    .dbname(&name)
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| said(&e))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client.batch_execute(&begin).await.map_err(|e| said(&e))?;
                let _ = held_tx.send(());
                let _ = released.await;
                client.batch_execute("COMMIT").await.map_err(|e| said(&e))
            })
        });
        if held_rx.recv().is_err() {
            let error = thread.join().expect("the holding thread").err();
            panic!("cannot hold {sql:?}: {}", error.unwrap_or_default());
        }
        Held {
            release: Some(release),
            thread: Some(thread),
        }
    }

    /// Stops the server with a fast shutdown (clients are disconnected,
    /// everything committed is on disk) and waits until it has exited.
    pub fn stop(&self) {
        self.signal_and_wait(Signal::SIGINT);
    }

    /// Stops the server as a crash would (immediate shutdown: no
    /// checkpoint, recovery from the WAL at the next start).
    pub fn crash(&self) {
        self.signal_and_wait(Signal::SIGQUIT);
    }

    /// Starts the stopped server again on the same port and data.
    pub fn start(&self) {
        let mut server = self.server.lock().unwrap();
        assert!(server.is_none(), "the cluster is already running");
        *server = Some(self.launch().unwrap_or_else(|e| panic!("{e}")));
    }

    /// The last lines the server logged.
    pub fn log_tail(&self) -> String {
        tail(&self.dir.join("postgres.log"))
    }

    /// A connection to database `name` through the unix socket, which
    /// trusts the superuser: SCRAM's hashing costs a debug build a good
    /// part of a second per connection.
    async fn connect(&self, name: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::Config::new()
            .host_path(self.dir.join("sock"))
            .port(self.port)
            .user(USER)
            .dbname(name)
            .connect_timeout(Duration::from_secs(5))
            .connect(tokio_postgres::NoTls)
            .await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    fn signal_and_wait(&self, signal: Signal) {
        let Some(server) = self.server.lock().unwrap().take() else {
            return;
        };
        let _ = kill(server.pid, signal);
        match server.exited.recv_timeout(READY_WITHIN) {
            Ok(_) | Err(RecvTimeoutError::Disconnected) => {}
            Err(RecvTimeoutError::Timeout) => {
                let _ = kill(server.pid, Signal::SIGKILL);
                panic!(
                    "postgres did not stop on {signal}; its log:\n{}",
                    self.log_tail()
                );
            }
        }
    }

    fn start_new(fsync: bool) -> Cluster {
        let began = Instant::now();
        if let Err(reason) = available() {
            panic!("no PostgreSQL cluster: {reason}");
        }
        sweep_stale();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sock")).unwrap();
        let user = postgres_user().unwrap();
        for path in [&dir, &dir.join("sock")] {
            nix::unistd::chown(path.as_path(), Some(user.uid), Some(user.gid)).unwrap();
        }
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        nix::unistd::chown(pwfile.as_path(), Some(user.uid), Some(user.gid)).unwrap();
        let out = as_postgres(&bin_dir().unwrap().join("initdb"), &dir)
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", USER, "-A", "trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args([
                "--no-sync",
                "--no-locale",
                "-E",
                "UTF8",
                "--no-instructions",
            ])
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut last = String::new();
        // A port free when picked may be taken before the server binds it
        // (other test processes pick too): try a few.
        for _ in 0..5 {
            let mut cluster = Cluster {
                dir: dir.clone(),
                port: free_port(),
                fsync,
                server: Mutex::new(None),
                next: AtomicU32::new(0),
                started_in: Duration::ZERO,
            };
            match cluster.launch() {
                Ok(server) => {
                    *cluster.server.lock().unwrap() = Some(server);
                    cluster.started_in = began.elapsed();
                    return cluster;
                }
                Err(e) => last = e,
            }
            // Not dropped as a whole: that would remove the data dir.
            cluster.dir = PathBuf::new();
        }
        panic!("{last}");
    }

    /// Starts the server from a thread that lives as long as it does: the
    /// server's parent-death signal fires when the thread that forked it
    /// exits, and it must fire only when the test process does.
    fn launch(&self) -> Result<Server, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("postgres.log"))
            .unwrap();
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let user = postgres_user()?;
        nix::unistd::chown(
            self.dir.join("postgres.log").as_path(),
            Some(user.uid),
            Some(user.gid),
        )
        .unwrap();
        let mut command = as_postgres(&bin_dir()?.join("postgres"), &self.dir);
        command
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.join("sock"))
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "max_connections=300"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if !self.fsync {
            command.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        let (pid_tx, pid_rx) = std::sync::mpsc::channel();
        let (exit_tx, exited) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("postgres-{}", self.port))
            .spawn(move || match command.spawn() {
                Ok(mut child) => {
                    let _ = pid_tx.send(Ok(child.id()));
                    if let Ok(status) = child.wait() {
                        let _ = exit_tx.send(status);
                    }
                }
                Err(e) => {
                    let _ = pid_tx.send(Err(e));
                }
            })
            .unwrap();
        let pid = pid_rx
            .recv()
            .unwrap()
            .map_err(|e| format!("postgres did not start: {e}"))?;
        let server = Server {
            pid: Pid::from_raw(pid as i32),
            exited,
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let attempt = block_on(async {
                let client = self.connect("postgres").await?;
                client.simple_query("SELECT 1").await.map(|_| ())
            });
            let Err(error) = attempt else {
                return Ok(server);
            };
            let log = tail_from(&self.dir.join("postgres.log"), log_start);
            if let Ok(status) = server.exited.try_recv() {
                return Err(format!(
                    "postgres on port {} exited ({status}) before accepting connections; its log:\n{log}",
                    self.port
                ));
            }
            if Instant::now() > deadline {
                let _ = kill(server.pid, Signal::SIGKILL);
                return Err(format!(
                    "postgres on port {} did not accept connections within {READY_WITHIN:?} ({error}); its log:\n{log}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.dir.as_os_str().is_empty() {
            return;
        }
        self.crash();
        if std::thread::panicking() {
            eprintln!(
                "kept {} for a look; the server's log:\n{}",
                self.dir.display(),
                self.log_tail()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A transaction held open by [`Cluster::hold`].
pub struct Held {
    release: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Held {
    /// Commits the transaction, releasing what it held.
    pub fn release(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
        if let Some(thread) = self.thread.take() {
            let result = thread.join().expect("the holding thread");
            if !std::thread::panicking() {
                result.unwrap();
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Names every cluster's temp dir, followed by the test process's pid.
const PREFIX: &str = "hopwatch-pgcluster-";

/// Removes the dirs of clusters whose test process has exited (the shared
/// cluster is never dropped, so its dir outlives its process).
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `program` run as the postgres user in `dir`, through util-linux's
/// `setpriv`, which arms the parent-death signal after the uid change
/// (changing credentials clears it): the program is killed when the thread
/// that spawned it exits, with no `unsafe` `pre_exec` here.
fn as_postgres(program: &Path, dir: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid=postgres",
            "--regid=postgres",
            "--clear-groups",
            "--pdeathsig=KILL",
            "--",
        ])
        .arg(program)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .env("HOME", dir);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            command.env_remove(key);
        }
    }
    command
}

/// Debian's binaries for the newest PostgreSQL installed.
fn bin_dir() -> Result<PathBuf, String> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(|e| format!("no {} ({e}): install Debian's postgresql", root.display()))?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("postgres").exists()).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        format!(
            "no initdb and postgres under {}/*/bin: install Debian's postgresql",
            root.display()
        )
    })
}

struct PostgresUser {
    uid: Uid,
    gid: Gid,
}

fn postgres_user() -> Result<PostgresUser, String> {
    match User::from_name("postgres") {
        Ok(Some(user)) => Ok(PostgresUser {
            uid: user.uid,
            gid: user.gid,
        }),
        _ => Err("no postgres user: install Debian's postgresql".into()),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `f` on its own runtime in its own thread, so callers may be inside
/// a runtime or not.
fn block_on<T: Send>(f: impl std::future::Future<Output = T> + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f)
        })
        .join()
        .unwrap()
    })
}

/// The server's own message when it sent one (tokio-postgres's `Display`
/// says only "db error").
fn said(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => error.to_string(),
    }
}

fn tail(path: &Path) -> String {
    tail_from(path, 0)
}

/// The last 40 lines of `path` written after byte `from`.
fn tail_from(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.seek(SeekFrom::Start(from));
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
