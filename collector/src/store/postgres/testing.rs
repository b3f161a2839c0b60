//! What the store's unit tests share: the throwaway cluster's own tests,
//! and a way to run one test body on both stores.

#[cfg(test)]
mod tests {
    use super::super::pgcluster::{self, Cluster};
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
