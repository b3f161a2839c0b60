//! What the store's unit tests share: a way to run one test body on both
//! stores ([`each_store`]), and the throwaway cluster's own tests.

use super::pgcluster;
use super::{Pg, PostgresSettings, SslMode, UrlSource};
use crate::store::StoreSettings;
use crate::store::sql::{PgSql, Sql};
use hopwatch_wire::Secret;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Runs `f` on a fresh SQLite store, then on a fresh PostgreSQL database
/// (skipped with the reason printed when no cluster can start here, except
/// under `CI=true`, where that fails).
pub fn each_store(f: impl Fn(TestStore)) {
    f(TestStore::sqlite());
    if pgcluster::can_use("the PostgreSQL half of a store test") {
        f(TestStore::postgres());
    }
}

/// One fresh store for a test body: its settings, its data dir, and a
/// connection to ask or prepare it through [`Sql`].
pub struct TestStore {
    dir: PathBuf,
    postgres: Option<(PostgresSettings, Pg, tokio::runtime::Runtime)>,
}

impl TestStore {
    fn new_dir(kind: &str) -> PathBuf {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hopwatch-store-test-{kind}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// An empty SQLite store in a new temp dir.
    pub fn sqlite() -> TestStore {
        let dir = TestStore::new_dir("sqlite");
        crate::store::open_writer(&dir).unwrap();
        TestStore {
            dir,
            postgres: None,
        }
    }

    /// A new database on the test process's cluster, migrated, with a
    /// runtime of its own for the pool (so the body may block on it).
    pub fn postgres() -> TestStore {
        let url = pgcluster::shared().database("store");
        let settings = PostgresSettings {
            url: UrlSource::Inline(Secret::new(url)),
            pool_size: 4,
            ssl_mode: SslMode::Disable,
            ca_file: None,
            connect_timeout: Duration::from_secs(5),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let pg = runtime.block_on(Pg::open(&settings)).unwrap();
        TestStore {
            dir: TestStore::new_dir("postgres"),
            postgres: Some((settings, pg, runtime)),
        }
    }

    /// "sqlite" or "postgres", for a failing assertion to say which.
    pub fn kind(&self) -> &'static str {
        if self.postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// What `[store]` would say for this store.
    pub fn settings(&self) -> StoreSettings {
        match &self.postgres {
            Some((settings, _, _)) => StoreSettings::Postgres(settings.clone()),
            None => StoreSettings::Sqlite,
        }
    }

    /// The collector's `data_dir` (the SQLite file's home; empty on
    /// PostgreSQL).
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// The open PostgreSQL store, on PostgreSQL.
    pub fn pg(&self) -> Option<&Pg> {
        self.postgres.as_ref().map(|(_, pg, _)| pg)
    }

    /// Runs `f` on a connection that may read and write (no transaction
    /// around it: each statement commits). Call it outside any runtime.
    pub fn with<T>(&self, f: impl FnOnce(&dyn Sql) -> T) -> T {
        match &self.postgres {
            Some((_, pg, runtime)) => {
                let client = runtime.block_on(pg.client()).unwrap();
                f(&PgSql {
                    client: &client,
                    runtime: runtime.handle(),
                })
            }
            None => f(&crate::store::open_writer(&self.dir).unwrap()),
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgcluster::Cluster;
    use std::time::{Duration, Instant};

    /// Whether a loopback port accepts connections now.
    fn listening(port: u16) -> bool {
        std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(500),
        )
        .is_ok()
    }

    #[test]
    fn each_store_runs_the_body_on_both_with_the_same_queries() {
        let seen = std::sync::Mutex::new(Vec::new());
        each_store(|store| {
            let n = store.with(|sql| {
                sql.execute(
                    "INSERT INTO agents (name, last_seen_ms) VALUES ($1, $2)",
                    &[&"leaf1", &5_i64],
                )
                .unwrap();
                sql.one_i64(
                    "SELECT CAST(sum(last_seen_ms) AS BIGINT) FROM agents WHERE name = $1",
                    &[&"leaf1"],
                )
                .unwrap()
            });
            assert_eq!(n, 5, "{}", store.kind());
            assert_eq!(
                matches!(store.settings(), StoreSettings::Postgres(_)),
                store.pg().is_some()
            );
            assert!(store.data_dir().is_dir());
            seen.lock().unwrap().push(store.kind());
        });
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen[0], "sqlite");
        if pgcluster::available().is_ok() {
            assert_eq!(seen, ["sqlite", "postgres"]);
        }
    }

    #[test]
    fn root_pgcluster_gives_each_test_a_fresh_database() {
        if !pgcluster::can_use("root_pgcluster_gives_each_test_a_fresh_database") {
            return;
        }
        let cluster = pgcluster::shared();
        let began = Instant::now();
        let a = cluster.database("fresh");
        let b = cluster.database("fresh");
        eprintln!(
            "cluster started in {:?}; two databases in {:?}",
            cluster.started_in,
            began.elapsed()
        );
        assert_ne!(a, b);
        let name = |url: &str| url.rsplit('/').next().unwrap().to_string();
        cluster.execute(
            &name(&a),
            "CREATE TABLE t (x BIGINT); INSERT INTO t VALUES (1)",
        );
        // The other database does not see it: each test starts empty.
        cluster.execute(&name(&b), "CREATE TABLE t (x BIGINT)");
        assert!(a.contains(&format!("127.0.0.1:{}", cluster.port())));
    }

    #[test]
    fn root_pgcluster_own_keeps_committed_data_across_restarts() {
        if !pgcluster::can_use("root_pgcluster_own_keeps_committed_data_across_restarts") {
            return;
        }
        let cluster = Cluster::own();
        let url = cluster.database("restart");
        let name = url.rsplit('/').next().unwrap().to_string();
        cluster.execute(&name, "CREATE TABLE t (x BIGINT); INSERT INTO t VALUES (7)");
        cluster.stop();
        assert!(!listening(cluster.port()), "stopped, yet listening");
        cluster.start();
        cluster.execute(&name, "INSERT INTO t VALUES (8)");
        cluster.crash();
        cluster.start();
        // A unique index over the rows fails unless both survived once each.
        cluster.execute(
            &name,
            "DO $$ BEGIN IF (SELECT count(*) FROM t WHERE x IN (7, 8)) <> 2 THEN \
             RAISE EXCEPTION 'lost rows'; END IF; END $$",
        );
    }

    /// Run by the test below in a child process: starts the shared cluster,
    /// prints the server's port, and exits without any destructor running.
    #[test]
    fn root_pgcluster_child_exits_leaving_its_cluster() {
        if std::env::var_os("HOPWATCH_PGCLUSTER_CHILD").is_none() {
            return;
        }
        let cluster = pgcluster::shared();
        println!("port={}", cluster.port());
        std::process::exit(0);
    }

    #[test]
    fn root_pgcluster_server_dies_with_the_test_process() {
        if !pgcluster::can_use("root_pgcluster_server_dies_with_the_test_process") {
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "store::postgres::testing::tests::root_pgcluster_child_exits_leaving_its_cluster",
                "--exact",
                "--nocapture",
            ])
            .env("HOPWATCH_PGCLUSTER_CHILD", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let port: u16 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("port="))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "the child printed no port:\n{stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while listening(port) {
            assert!(
                Instant::now() < deadline,
                "postgres on port {port} outlived its test process"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
