//! Tokens and TLS: a wrong token is refused, retried, counted and never
//! logged; a token file is checked; TLS to a collector with a private CA.

use super::*;

#[test]
fn a_wrong_token_is_refused_retried_counted_and_never_logged() {
    let fx = Fixture::new();
    let collector = FakeCollector::start(
        0,
        Behaviour {
            token: "the-right-one-0123".into(),
            ..Behaviour::default()
        },
    );
    let token_file = fx.dir.write("token", "wrong-token-7f3a9c\n");
    let mut agent = fx.spawn(&fx.config(
        "300ms",
        &format!(
            "address = \"127.0.0.1:{}\"\ntoken_file = \"{}\"\n",
            collector.port(),
            token_file.display()
        ),
    ));
    let status = fx.collector_until(Duration::from_secs(10), "two refusals", |c| {
        c["refused"].as_u64() >= Some(2)
    });
    assert!(
        status["state"] == "refused" || status["state"] == "connecting",
        "{status:#}"
    );
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("unknown agent token"),
        "{status:#}"
    );
    assert_eq!(status["connects"], 0);
    assert!(collector.hellos().len() >= 2);
    assert!(
        collector.events().is_empty(),
        "nothing is sent before a welcome"
    );
    let full = fx.status().unwrap().to_string();
    assert!(
        !full.contains("wrong-token-7f3a9c"),
        "status shows no token"
    );

    // A corrected token file is read at the next attempt.
    std::fs::write(&token_file, "the-right-one-0123\n").unwrap();
    fx.collector_until(Duration::from_secs(10), "a connection", |c| {
        c["state"] == "connected" && c["spool_events"].as_u64() < Some(3)
    });
    assert!(!collector.events().is_empty());
    assert!(agent.stop());
    let stderr = agent.stderr();
    assert!(stderr.contains("refused this agent"), "{stderr}");
    assert!(
        !stderr.contains("wrong-token-7f3a9c"),
        "the token leaked into the log:\n{stderr}"
    );
    assert!(
        !stderr.contains("the-right-one-0123"),
        "the token leaked into the log:\n{stderr}"
    );
}

#[test]
fn check_config_refuses_a_short_token_file_and_warns_of_a_readable_one() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    let token = fx.dir.write("token", "short\n");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let body = format!(
        "address = \"127.0.0.1:{}\"\ntoken_file = \"{}\"\n",
        free_port(),
        token.display()
    );
    let config = fx.config("1s", &body);
    let out = hopwatch()
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&token.display().to_string())
            && stderr.contains("shorter than 16")
            && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!stderr.contains("short\n"), "{stderr}");
    std::fs::write(&token, "long-enough-token-0123\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = hopwatch()
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A token file provisioned after the config is only a warning: the
    // agent reads it at every connection attempt.
    std::fs::remove_file(&token).unwrap();
    let out = hopwatch()
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("does not exist yet") && stderr.contains(&token.display().to_string()),
        "{stderr}"
    );
}

/// A CA, and a collector certificate it signed for `collector.test` and
/// 127.0.0.1.
pub(super) fn test_pki(dir: &TempDir) -> (Arc<rustls::ServerConfig>, PathBuf) {
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
    let ca_path = dir.write("ca.pem", &ca.pem());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (Arc::new(config), ca_path)
}

#[test]
fn tls_to_a_collector_with_a_private_ca() {
    let fx = Fixture::new();
    let (server, ca_path) = test_pki(&fx.dir);
    let collector = FakeCollector::start_with(0, Behaviour::default(), Some(server), None);
    let tls = format!(
        "[output.collector.tls]\nca_file = \"{}\"\nserver_name = \"collector.test\"\n",
        ca_path.display()
    );
    let mut agent = fx.spawn(&fx.config("200ms", &collector_table(collector.port(), &tls)));
    let events = collector.wait(Duration::from_secs(10), "events over TLS", |s| {
        let events = events_of(s);
        (events.len() >= 3).then_some(events)
    });
    assert_eq!(seqs(&events)[..3], [1, 2, 3]);
    let status = fx.collector_until(Duration::from_secs(5), "acks over TLS", |c| {
        c["state"] == "connected"
            && c["tls"] == true
            && c["boots"][0]["acked_seq"].as_u64() >= Some(3)
    });
    assert_eq!(status["disk_errors"], 0);
    assert!(agent.stop());

    // A CA that did not sign the collector's certificate: no connection.
    let other = TempDir::new("hopwatch-other-ca");
    let (_, wrong_ca) = test_pki(&other);
    let tls = format!(
        "[output.collector.tls]\nca_file = \"{}\"\n",
        wrong_ca.display()
    );
    let _agent = fx.spawn(&fx.config("200ms", &collector_table(collector.port(), &tls)));
    let status = fx.collector_until(Duration::from_secs(10), "a certificate error", |c| {
        c["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("certificate"))
    });
    assert_eq!(status["connects"], 0, "{status:#}");
}
