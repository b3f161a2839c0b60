//! Agents over TLS with client certificates: one signed by the agents' CA
//! is served; one without a certificate is turned away at the handshake and
//! counted; a certificate bound to agent names admits only those. And
//! `check-config` points at a certificate it cannot read.

use crate::util::{AGENT_TOKEN, Server, TempDir, event, heartbeat, http_get, metric, now_ms};
use hopwatch_collector::config::Config;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// PEM files: the CA, the collector's certificate and key (for 127.0.0.1),
/// and an agent's.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    agent_cert: rcgen::Certificate,
    agent_key: rcgen::KeyPair,
    ca_der: CertificateDer<'static>,
}

fn pki(dir: &TempDir) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "hopwatch test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["collector.test".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = params.signed_by(&key, &ca).unwrap();
    let agent_key = rcgen::KeyPair::generate().unwrap();
    let agent_cert = rcgen::CertificateParams::new(vec!["leaf1".to_string()])
        .unwrap()
        .signed_by(&agent_key, &ca)
        .unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", &ca.pem()),
        cert: write("collector.pem", &cert.pem()),
        key: write("collector.key", &key.serialize_pem()),
        ca_der: CertificateDer::from(ca.der().to_vec()),
        agent_cert,
        agent_key,
    }
}

/// A TLS client trusting the CA, with the agent's certificate or none.
fn client(pki: &Pki, with_cert: bool) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = if with_cert {
        builder
            .with_client_auth_cert(
                vec![CertificateDer::from(pki.agent_cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.agent_key.serialize_der())),
            )
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(config)
}

fn tls_server(name: &str, pki: &Pki) -> Server {
    tls_server_with(name, pki, "")
}

fn tls_server_with(name: &str, pki: &Pki, extra: &str) -> Server {
    Server::start(
        name,
        &format!(
            "[collector.tls]\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\n",
            pki.cert.display().to_string(),
            pki.key.display().to_string(),
            pki.ca.display().to_string()
        ),
        extra,
    )
}

/// Says hello as `agent` over TLS with the agent's certificate; the
/// collector's first line.
fn tls_hello(server: &Server, pki: &Pki, agent: &str) -> String {
    let tcp = TcpStream::connect(server.agents).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = rustls::ClientConnection::new(
        client(pki, true),
        ServerName::try_from("127.0.0.1").unwrap(),
    )
    .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    writeln!(
        tls,
        r#"{{"type":"hello","protocol":2,"token":"{AGENT_TOKEN}","agent":"{agent}","boot":"b1","boots":["b1"],"version":"x","addresses":[]}}"#
    )
    .unwrap();
    tls.flush().unwrap();
    let mut line = String::new();
    BufReader::new(tls).read_line(&mut line).unwrap();
    line
}

#[test]
fn a_client_certificate_admits_only_the_agents_bound_to_it() {
    let dir = TempDir::new("pki-bound");
    let pki = pki(&dir);
    // The agent's certificate names "leaf1".
    let server = tls_server_with(
        "tls-bound",
        &pki,
        "[[auth.agent_certs]]\nnames = [\"leaf1\"]\nagents = [\"leaf1\"]\n",
    );
    let answer = tls_hello(&server, &pki, "leaf1");
    assert!(answer.contains(r#""type":"welcome""#), "{answer}");
    let answer = tls_hello(&server, &pki, "leaf2");
    assert!(answer.contains(r#""type":"refused""#), "{answer}");
    assert!(
        answer.contains(r#"\"leaf1\""#) && answer.contains(r#"agent \"leaf2\""#),
        "{answer}"
    );
}

#[test]
fn agents_with_a_client_certificate_are_served_over_tls() {
    let dir = TempDir::new("pki");
    let pki = pki(&dir);
    let server = tls_server("tls", &pki);
    let tcp = TcpStream::connect(server.agents).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = rustls::ClientConnection::new(
        client(&pki, true),
        ServerName::try_from("127.0.0.1").unwrap(),
    )
    .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    writeln!(
        tls,
        r#"{{"type":"hello","protocol":2,"token":"{AGENT_TOKEN}","agent":"leaf1","boot":"b1","boots":["b1"],"version":"x","addresses":[]}}"#
    )
    .unwrap();
    let events: String = (1..=3)
        .map(|seq| {
            event("leaf1", "b1", seq, now_ms(), heartbeat(&[("swp1", true)])).to_json() + "\n"
        })
        .collect();
    tls.write_all(events.as_bytes()).unwrap();
    tls.flush().unwrap();
    let mut reader = BufReader::new(tls);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains(r#""type":"welcome""#), "{line}");
    let mut acked = 0;
    while acked < 3 {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "ack", "{line}");
        acked = v["seq"].as_u64().unwrap();
    }

    // No client certificate: no handshake, nothing served.
    let tcp = TcpStream::connect(server.agents).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = rustls::ClientConnection::new(
        client(&pki, false),
        ServerName::try_from("127.0.0.1").unwrap(),
    )
    .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let _ = writeln!(tls, "{{}}");
    let mut buf = String::new();
    let refused = BufReader::new(tls).read_line(&mut buf);
    assert!(refused.is_err() || buf.is_empty(), "{buf}");
    let rejected = crate::util::wait_for(Duration::from_secs(5), || {
        let text = http_get(server.http, "/metrics", None).body;
        let n = metric(
            &text,
            "hopwatch_collector_connections_rejected_total{reason=\"tls\"}",
        );
        (n == 1.0).then_some(n)
    });
    assert_eq!(rejected, Some(1.0));
}

#[test]
fn check_config_points_at_an_unreadable_certificate() {
    let dir = TempDir::new("badtls");
    let key = dir.path.join("key.pem");
    std::fs::write(&key, "not a key").unwrap();
    let text = format!(
        "[collector.tls]\ncert_file = \"/nonexistent/cert.pem\"\nkey_file = {:?}\n",
        key.display().to_string()
    );
    let config = Config::parse(&text, "c.toml").unwrap();
    let error = config.check_files().unwrap_err().to_string();
    assert!(
        error.starts_with("c.toml:2:13: cannot read certificates from /nonexistent/cert.pem"),
        "{error}"
    );
}
