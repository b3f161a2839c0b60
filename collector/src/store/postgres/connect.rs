//! Reaching the shared database: the URL (from the config or a file), TLS
//! as `sslmode` asks, a pool of connections, and the schema migrated under
//! an advisory lock before anything else touches it. Every message names
//! the database as `host:port/dbname`, never the URL, which holds the
//! password.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::Host;

use super::schema::{MIGRATION_LOCK, MIGRATIONS, SCHEMA_VERSION};
use super::{PostgresSettings, SslMode, UrlSource};
use crate::store::StoreError;
use crate::store::sql::{PgSql, Sql};
use hopwatch_wire::Secret;

/// What can go wrong reaching the database, each naming it safely.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "cannot read the PostgreSQL URL from {path}: {reason}; [store] url_file must name a file holding one line postgres://user:password@host:port/dbname"
    )]
    UrlFile { path: String, reason: String },
    #[error(
        "the PostgreSQL URL {origin} is not valid: {reason}; write it as postgres://user:password@host:port/dbname"
    )]
    Url { origin: String, reason: String },
    #[error("cannot set up TLS to the PostgreSQL store: {0}")]
    Tls(String),
    #[error(
        "cannot reach the PostgreSQL store at {target}: {reason}; check that the server runs and accepts this user there, and [store] url, sslmode and connect_timeout"
    )]
    Unreachable { target: String, reason: String },
    #[error(
        "the PostgreSQL store at {target} has schema version {found}, newer than this collector's {SCHEMA_VERSION}; run a newer hopwatch-collector"
    )]
    TooNew { target: String, found: i64 },
    #[error(
        "migrating the PostgreSQL store at {target} to schema version {version} failed: {source}"
    )]
    Migrate {
        target: String,
        version: i64,
        #[source]
        source: tokio_postgres::Error,
    },
}

/// The URL's text: as written, or read from `url_file` (one line; the
/// file's surrounding whitespace ignored).
pub fn url_text(url: &UrlSource) -> Result<Secret, PgError> {
    match url {
        UrlSource::Inline(url) => Ok(url.clone()),
        UrlSource::File(path) => {
            let fail = |reason: String| PgError::UrlFile {
                path: path.display().to_string(),
                reason,
            };
            let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
            let text = text.trim();
            if text.is_empty() {
                return Err(fail("the file is empty".into()));
            }
            Ok(Secret::new(text))
        }
    }
}

/// `url` parsed; `origin` says where it came from (`[store] url`, or the
/// file), as the URL itself may not be shown.
pub fn parse_url(url: &Secret, origin: &str) -> Result<tokio_postgres::Config, PgError> {
    let config: tokio_postgres::Config =
        url.expose()
            .parse()
            .map_err(|e: tokio_postgres::Error| PgError::Url {
                origin: origin.to_string(),
                reason: e.to_string(),
            })?;
    if config.get_hosts().is_empty() {
        return Err(PgError::Url {
            origin: origin.to_string(),
            reason: "it names no host".into(),
        });
    }
    Ok(config)
}

/// What went wrong, with the server's own message: tokio-postgres's
/// `Display` says only "db error" for everything the server answers.
pub fn reason(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        source = cause.source();
    }
    text
}

/// The database as logs and errors show it: `host:port/dbname`, the
/// password left out.
pub fn describe(config: &tokio_postgres::Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
            Host::Tcp(name) => format!("{name}:{port}"),
            Host::Unix(path) => format!("{}/.s.PGSQL.{port}", path.display()),
        })
        .collect();
    let user = config.get_user().unwrap_or("");
    let dbname = config.get_dbname().unwrap_or(user);
    format!("{}/{dbname}", hosts.join(","))
}

/// The shared store: a pool of connections to one migrated database.
/// Cloning is cheap; the clones share the pool.
#[derive(Clone)]
pub struct Pg {
    pool: Pool,
    runtime: tokio::runtime::Handle,
    target: Arc<str>,
}

impl Pg {
    /// Connects, then creates or migrates the schema. Called from within
    /// the runtime the pool's connections will run on. An unreachable
    /// database, a bad URL or a newer schema is an error.
    pub async fn open(settings: &PostgresSettings) -> Result<Pg, StoreError> {
        let url = url_text(&settings.url)?;
        let origin = match &settings.url {
            UrlSource::Inline(_) => "in [store] url".to_string(),
            UrlSource::File(path) => format!("in {}", path.display()),
        };
        let mut config = parse_url(&url, &origin)?;
        config.connect_timeout(settings.connect_timeout);
        config.ssl_mode(match settings.ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let target: Arc<str> = describe(&config).into();
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match settings.ssl_mode {
            SslMode::Disable => Manager::from_config(config, tokio_postgres::NoTls, manager_config),
            mode => Manager::from_config(
                config,
                tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(
                    mode,
                    settings.ca_file.as_deref(),
                )?),
                manager_config,
            ),
        };
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .build()
            .map_err(|e| PgError::Unreachable {
                target: target.to_string(),
                reason: e.to_string(),
            })?;
        let pg = Pg {
            pool,
            runtime: tokio::runtime::Handle::current(),
            target,
        };
        pg.migrate().await?;
        Ok(pg)
    }

    /// `host:port/dbname`, for logs.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The runtime the pool's connections run on, for blocking callers.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// A connection of the pool (a new one when none is idle).
    pub async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| self.pool_error(e))
    }

    /// Runs `f` on one connection in a read-only REPEATABLE READ
    /// transaction, so every query of `f` sees the same snapshot, as a
    /// SQLite read transaction does. Blocks: call it from a blocking thread
    /// (`spawn_blocking`, the writer's), never from an async task.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&dyn Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut object = self.runtime.block_on(self.client())?;
        let client: &mut tokio_postgres::Client = &mut object;
        let transaction = self.runtime.block_on(
            client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start(),
        )?;
        // The fleet-wide reads run a subquery per interface, which the
        // planner costs past `jit_above_cost` from about 11,000 interfaces:
        // compiling it then costs more than it saves (over 10,000
        // interfaces, 25-50 ms at the first tier, over a second once it
        // inlines and optimizes from about 56,000).
        self.runtime
            .block_on(transaction.batch_execute("SET LOCAL jit = off"))?;
        let out = f(&PgSql {
            client: transaction.client(),
            runtime: &self.runtime,
        })?;
        self.runtime.block_on(transaction.commit())?;
        Ok(out)
    }

    fn pool_error(&self, error: deadpool_postgres::PoolError) -> StoreError {
        match error {
            deadpool_postgres::PoolError::Backend(e) => StoreError::Postgres(e),
            other => PgError::Unreachable {
                target: self.target.to_string(),
                reason: other.to_string(),
            }
            .into(),
        }
    }

    /// Brings the schema to [`SCHEMA_VERSION`], one step per transaction,
    /// each under the migration lock with the version read again inside
    /// it, so collectors starting together apply every step once.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut object = self.client().await.map_err(|e| match e {
            StoreError::Postgres(e) => PgError::Unreachable {
                target: self.target.to_string(),
                reason: reason(&e),
            }
            .into(),
            other => other,
        })?;
        let client: &mut tokio_postgres::Client = &mut object;
        loop {
            let transaction = client.transaction().await?;
            transaction
                .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            transaction
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (
                        version BIGINT PRIMARY KEY,
                        applied_ms BIGINT NOT NULL
                    )",
                )
                .await?;
            let found: i64 = transaction
                .query_one(
                    "SELECT CAST(COALESCE(max(version), 0) AS BIGINT) FROM schema_version",
                    &[],
                )
                .await?
                .get(0);
            if found > SCHEMA_VERSION {
                return Err(PgError::TooNew {
                    target: self.target.to_string(),
                    found,
                }
                .into());
            }
            let Some(&(version, step)) = MIGRATIONS.iter().find(|(v, _)| *v > found) else {
                return Ok(());
            };
            let failed = |source| PgError::Migrate {
                target: self.target.to_string(),
                version,
                source,
            };
            transaction.batch_execute(step).await.map_err(failed)?;
            transaction
                .execute(
                    "INSERT INTO schema_version (version, applied_ms) VALUES ($1, $2)",
                    &[&version, &now_ms()],
                )
                .await
                .map_err(failed)?;
            transaction.commit().await.map_err(failed)?;
            tracing::info!(target = %self.target, version, "PostgreSQL schema migrated.");
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The rustls client config for `mode` (never `Disable`).
pub(crate) fn tls_config(
    mode: SslMode,
    ca_file: Option<&Path>,
) -> Result<rustls::ClientConfig, PgError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Tls(e.to_string()))?;
    if mode == SslMode::Require {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth());
    }
    let ca_file = ca_file.unwrap_or(Path::new(crate::tls::SYSTEM_CA_FILE));
    let roots = crate::tls::roots(ca_file).map_err(PgError::Tls)?;
    if mode == SslMode::VerifyFull {
        return Ok(builder.with_root_certificates(roots).with_no_client_auth());
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| PgError::Tls(e.to_string()))?;
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyName(verifier)))
        .with_no_client_auth())
}

/// `sslmode = "require"`: encrypted, the certificate not checked (as
/// libpq's `require`), its handshake signature still verified.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode = "verify-ca"`: the chain must lead to the CA; the name in the
/// certificate is not compared with the host.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain is checked before the name, so a name mismatch means
        // the chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// How long connecting may take unless `[store] connect_timeout` says.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::super::pgcluster;
    use super::*;
    use std::path::PathBuf;

    fn settings(url: &str) -> PostgresSettings {
        PostgresSettings {
            url: UrlSource::Inline(Secret::new(url)),
            pool_size: 4,
            ssl_mode: SslMode::Disable,
            ca_file: None,
            connect_timeout: Duration::from_secs(5),
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    fn versions(pg: &Pg) -> Vec<i64> {
        pg.with(|sql| {
            sql.rows(
                "SELECT version FROM schema_version ORDER BY version",
                &[],
                |r| r.i64(0),
            )
        })
        .unwrap()
    }

    #[test]
    fn root_pg_open_migrates_a_fresh_database_and_with_reads_it() {
        if !pgcluster::can_use("root_pg_open_migrates_a_fresh_database_and_with_reads_it") {
            return;
        }
        let url = pgcluster::shared().database("migrate");
        let runtime = runtime();
        let pg = runtime.block_on(Pg::open(&settings(&url))).unwrap();
        let all: Vec<i64> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        assert_eq!(versions(&pg), all);
        assert_eq!(all.last(), Some(&SCHEMA_VERSION));
        // The writer numbers a block per nextval: the sequences move by it.
        for table in ["alerts", "interfaces"] {
            let step = pg
                .with(|sql| {
                    sql.one_i64(
                        "SELECT increment_by FROM pg_sequences
                         WHERE schemaname || '.' || sequencename = pg_get_serial_sequence($1, 'id')",
                        &[&table],
                    )
                })
                .unwrap();
            assert_eq!(step, super::super::schema::ID_BLOCK, "{table}");
        }
        let agents = pg
            .with(|sql| sql.one_i64("SELECT count(*) FROM agents WHERE name <> $1", &[&"x"]))
            .unwrap();
        assert_eq!(agents, 0);
        // A reader's transaction writes nothing.
        let write = pg.with(|sql| sql.execute("INSERT INTO agents (name) VALUES ($1)", &[&"a"]));
        assert!(
            write.unwrap_err().to_string().contains("read-only"),
            "a write inside with() was accepted"
        );
        // Reads compile no query (see `with`), while the server's default,
        // outside a read, still holds.
        let jit = |pg: &Pg| {
            pg.with(|sql| {
                sql.row("SELECT current_setting('jit')", &[], |r| r.text(0))
                    .map(Option::unwrap)
            })
            .unwrap()
        };
        assert_eq!(jit(&pg), "off");
        let outside = runtime.block_on(async {
            let client = pg.client().await.unwrap();
            let row = client
                .query_one("SELECT current_setting('jit')", &[])
                .await
                .unwrap();
            row.get::<_, String>(0)
        });
        assert_eq!(outside, "on");
        // Opening an up-to-date store again changes nothing.
        let again = runtime.block_on(Pg::open(&settings(&url))).unwrap();
        assert_eq!(versions(&again), all);
        assert!(pg.target().ends_with(url.rsplit('/').next().unwrap()));
    }

    #[test]
    fn root_pg_two_collectors_starting_at_once_migrate_once() {
        if !pgcluster::can_use("root_pg_two_collectors_starting_at_once_migrate_once") {
            return;
        }
        let url = pgcluster::shared().database("race");
        let runtime = runtime();
        let settings = settings(&url);
        let (a, b) = runtime.block_on(async {
            tokio::join!(
                tokio::spawn({
                    let settings = settings.clone();
                    async move { Pg::open(&settings).await }
                }),
                tokio::spawn({
                    let settings = settings.clone();
                    async move { Pg::open(&settings).await }
                }),
            )
        });
        let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
        let all: Vec<i64> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        assert_eq!(versions(&a), all);
        assert_eq!(versions(&b), all);
    }

    #[test]
    fn root_pg_refuses_a_newer_schema() {
        if !pgcluster::can_use("root_pg_refuses_a_newer_schema") {
            return;
        }
        let cluster = pgcluster::shared();
        let url = cluster.database("newer");
        let runtime = runtime();
        runtime.block_on(Pg::open(&settings(&url))).unwrap();
        cluster.execute(
            url.rsplit('/').next().unwrap(),
            &format!(
                "INSERT INTO schema_version VALUES ({}, 0)",
                SCHEMA_VERSION + 1
            ),
        );
        let error = runtime
            .block_on(Pg::open(&settings(&url)))
            .err()
            .expect("a newer schema was accepted")
            .to_string();
        assert!(
            error.contains(&format!("schema version {}", SCHEMA_VERSION + 1))
                && error.contains("run a newer hopwatch-collector"),
            "{error}"
        );
    }

    #[test]
    fn root_pg_bad_password_or_port_is_a_clear_error_without_the_password() {
        if !pgcluster::can_use("root_pg_bad_password_or_port_is_a_clear_error_without_the_password")
        {
            return;
        }
        let cluster = pgcluster::shared();
        let url = cluster.database("refused");
        let dbname = url.rsplit('/').next().unwrap().to_string();
        let runtime = runtime();
        let wrong = url.replace(pgcluster::PASSWORD, "wrong-secret-7c2e");
        let error = runtime
            .block_on(Pg::open(&settings(&wrong)))
            .err()
            .expect("a wrong password was accepted")
            .to_string();
        assert!(
            error.contains(&format!("127.0.0.1:{}/{dbname}", cluster.port()))
                && error.contains("password authentication failed")
                && !error.contains("wrong-secret-7c2e"),
            "{error}"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let nowhere = format!("postgres://postgres:wrong-secret-7c2e@127.0.0.1:{port}/db");
        let error = runtime
            .block_on(Pg::open(&settings(&nowhere)))
            .err()
            .expect("an unreachable database was accepted")
            .to_string();
        assert!(
            error.contains(&format!(
                "cannot reach the PostgreSQL store at 127.0.0.1:{port}/db"
            )) && error.contains("check that the server runs")
                && !error.contains("wrong-secret-7c2e"),
            "{error}"
        );
    }

    /// A CA, and a server certificate it signs for `localhost` only.
    fn pki(dir: &Path) -> (PathBuf, String, String) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hopwatch store test CA");
        let issuer =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, issuer.pem()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (ca_file, cert.pem(), key.serialize_pem())
    }

    #[test]
    fn root_pg_tls_checks_what_each_sslmode_promises() {
        if !pgcluster::can_use("root_pg_tls_checks_what_each_sslmode_promises") {
            return;
        }
        let dir = std::env::temp_dir().join(format!("hopwatch-pg-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca_file, cert, key) = pki(&dir);
        let other = dir.join("other");
        std::fs::create_dir_all(&other).unwrap();
        let (other_ca, _, _) = pki(&other);
        let cluster = pgcluster::Cluster::own();
        cluster.enable_tls(&cert, &key);
        let by_ip = cluster.database("tls");
        let name = by_ip.rsplit('/').next().unwrap().to_string();
        // The name the certificate holds, reached at the address it serves.
        let by_name = format!(
            "postgres://{}:{}@localhost:{}/{name}?hostaddr=127.0.0.1",
            pgcluster::USER,
            pgcluster::PASSWORD,
            cluster.port()
        );
        let runtime = runtime();
        let open = |url: &str, mode: SslMode, ca: Option<&Path>| {
            let mut settings = settings(url);
            settings.ssl_mode = mode;
            settings.ca_file = ca.map(Path::to_path_buf);
            runtime
                .block_on(Pg::open(&settings))
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let encrypted = |url: &str, mode: SslMode, ca: Option<&Path>| {
            let mut settings = settings(url);
            settings.ssl_mode = mode;
            settings.ca_file = ca.map(Path::to_path_buf);
            let pg = runtime.block_on(Pg::open(&settings)).unwrap();
            pg.with(|sql| {
                sql.one_i64(
                    "SELECT count(*) FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
                    &[],
                )
            })
            .unwrap()
        };
        assert_eq!(encrypted(&by_ip, SslMode::Disable, None), 0);
        assert_eq!(encrypted(&by_ip, SslMode::Require, None), 1);
        assert_eq!(encrypted(&by_ip, SslMode::VerifyCa, Some(&ca_file)), 1);
        assert_eq!(encrypted(&by_name, SslMode::VerifyFull, Some(&ca_file)), 1);
        let wrong_name = open(&by_ip, SslMode::VerifyFull, Some(&ca_file)).unwrap_err();
        assert!(wrong_name.contains("cannot reach"), "{wrong_name}");
        let wrong_ca = open(&by_name, SslMode::VerifyCa, Some(&other_ca)).unwrap_err();
        assert!(wrong_ca.contains("cannot reach"), "{wrong_ca}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn url_files_and_bad_urls_are_named_never_shown() {
        let dir = std::env::temp_dir().join(format!("hopwatch-pg-url-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let error = url_text(&UrlSource::File(empty.clone()))
            .unwrap_err()
            .to_string();
        assert!(error.contains(&empty.display().to_string()) && error.contains("empty"));
        let missing = dir.join("missing");
        let error = url_text(&UrlSource::File(missing.clone()))
            .unwrap_err()
            .to_string();
        assert!(error.contains(&missing.display().to_string()), "{error}");
        let good = dir.join("good");
        std::fs::write(&good, "postgres://u:s3cret@db.example:6432/hop\n").unwrap();
        let url = url_text(&UrlSource::File(good)).unwrap();
        assert_eq!(
            describe(&parse_url(&url, "in f").unwrap()),
            "db.example:6432/hop"
        );
        let error = parse_url(
            &Secret::new("postgres://u:s3cret@db:notaport/hop"),
            "in [store] url",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("in [store] url") && !error.contains("s3cret"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
