//! Alert events the collector stores reach a webhook (a real HTTP server in
//! the test, on hyper) as the JSON the agent sent, in order, with the
//! configured headers and bearer token, after failed POSTs are retried; a
//! refused or never-taken event is counted as given up, and a full queue
//! counts what it drops. Over https the webhook's certificate must chain to
//! the configured `ca_file`.

use crate::util::{
    AGENT_TOKEN, FakeAgent, Server, TempDir, alert, event, heartbeat, link, metric, now_ms,
    wait_for,
};
use hopwatch_wire::event::Body;
use http_body_util::BodyExt;
use hyper::body::Bytes;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the test's webhook answers.
#[derive(Clone, Copy)]
enum Answer {
    /// 503 to the first n POSTs, then 200.
    FailFirst(usize),
    /// Always this status.
    Always(u16),
    /// Never: the request hangs.
    Hang,
}

/// One POST the webhook took.
#[derive(Debug)]
struct Received {
    target: String,
    headers: HashMap<String, String>,
    body: Value,
}

/// A webhook on a loopback port, counting every request.
struct Hook {
    addr: SocketAddr,
    attempts: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Hook {
    fn start(answer: Answer) -> Hook {
        Hook::start_with(answer, None)
    }

    /// Over TLS, with a certificate for 127.0.0.1 signed by a CA of its
    /// own, written to `dir`; returns the CA's PEM file too.
    fn start_tls(answer: Answer, dir: &TempDir) -> (Hook, std::path::PathBuf) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hopwatch webhook test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        let cert = params.signed_by(&key, &ca).unwrap();
        let ca_file = dir.path.join("webhook-ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        (Hook::start_with(answer, Some(acceptor)), ca_file)
    }

    fn start_with(answer: Answer, tls: Option<tokio_rustls::TlsAcceptor>) -> Hook {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let attempts = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (count, keep) = (Arc::clone(&attempts), Arc::clone(&received));
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (count, keep) = (Arc::clone(&count), Arc::clone(&keep));
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let (count, keep) = (Arc::clone(&count), Arc::clone(&keep));
                        async move {
                            let n = count.fetch_add(1, Ordering::SeqCst);
                            let target = request.uri().to_string();
                            let headers = request
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                                })
                                .collect();
                            let body = request.into_body().collect().await?.to_bytes();
                            let status = match answer {
                                Answer::FailFirst(failing) if n < failing => 503,
                                Answer::FailFirst(_) => 200,
                                Answer::Always(status) => status,
                                Answer::Hang => std::future::pending().await,
                            };
                            if status == 200 {
                                keep.lock().unwrap().push(Received {
                                    target,
                                    headers,
                                    body: serde_json::from_slice(&body).unwrap(),
                                });
                            }
                            let mut response = hyper::Response::new(http_body_util::Full::new(
                                Bytes::from_static(b"{}"),
                            ));
                            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, hyper::Error>(response)
                        }
                    },
                );
                match tls.clone() {
                    None => {
                        tokio::spawn(
                            hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                        );
                    }
                    Some(tls) => {
                        tokio::spawn(async move {
                            // A client that does not trust the CA gives up
                            // in the handshake.
                            let Ok(stream) = tls.accept(stream).await else {
                                return;
                            };
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        });
                    }
                }
            }
        });
        Hook {
            addr,
            attempts,
            received,
            runtime: Some(runtime),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    fn wait_received(&self, n: usize) -> Vec<Value> {
        wait_for(Duration::from_secs(20), || {
            let got = self.received.lock().unwrap();
            (got.len() >= n).then(|| got.iter().map(|r| r.body.clone()).collect())
        })
        .unwrap_or_else(|| panic!("the webhook never received {n} events"))
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn wait_metric(server: &Server, series: &str, at_least: f64) -> f64 {
    let mut last = String::new();
    wait_for(Duration::from_secs(20), || {
        last = server.get("/metrics").body;
        let value = metric(&last, series);
        (value >= at_least).then_some(value)
    })
    .unwrap_or_else(|| panic!("{series} never reached {at_least}:\n{last}"))
}

#[test]
fn alert_events_reach_a_webhook_in_order_after_failed_posts_are_retried() {
    let hook = Hook::start(Answer::FailFirst(2));
    let secrets = TempDir::new("webhook-token");
    let token_file = secrets.path.join("hook.token");
    std::fs::write(&token_file, "hook-token-0123456789\n").unwrap();
    // Syslog forwarding beside it still gets its events.
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let server = Server::start(
        "webhook",
        "",
        &format!(
            "[[output.webhook]]\nname = \"ops\"\nurl = {:?}\nheaders = {{ \"X-Team\" = \"dc-ops\" }}\nbearer_token_file = {:?}\n\
             [output.syslog]\naddress = \"udp://{}\"\n",
            hook.url("/hook?key=abc"),
            token_file.display().to_string(),
            syslog.local_addr().unwrap()
        ),
    );
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let t = now_ms();
    let mut quiet = alert("swp9", true);
    if let Body::Alert(a) = &mut quiet {
        a.silenced = true;
        a.silence = Some("l-0011223344556677".into());
    }
    let mut labelled = alert("swp1", true);
    if let Body::Alert(a) = &mut labelled {
        a.labels.insert("team".into(), "dc-ops".into());
    }
    let events = vec![
        event("leaf1", "b1", 1, t, heartbeat(&[("swp1", true)])),
        event("leaf1", "b1", 2, t, link("swp1", false)),
        event("leaf1", "b1", 3, t, labelled),
        event("leaf1", "b1", 4, t, quiet),
        event("leaf1", "b1", 5, t, alert("swp1", false)),
    ];
    agent.send(&events).unwrap();
    assert!(agent.wait_acked("b1", 5, Duration::from_secs(10)));
    // A resend is a duplicate: stored once, forwarded once.
    agent.send(&events[2..3]).unwrap();
    agent
        .send(&[event("leaf1", "b1", 6, t, alert("swp2", true))])
        .unwrap();
    assert!(agent.wait_acked("b1", 6, Duration::from_secs(10)));

    let got = hook.wait_received(3);
    let seqs: Vec<u64> = got.iter().map(|b| b["seq"].as_u64().unwrap()).collect();
    // Only alert events, the silenced one left out, each once, in order.
    assert_eq!(seqs, [3, 5, 6]);
    assert_eq!(got[0]["type"], "alert");
    assert_eq!(got[0]["agent"], "leaf1");
    assert_eq!(got[0]["state"], "firing");
    assert_eq!(got[0]["interface"], "swp1");
    assert_eq!(got[0]["labels"]["team"], "dc-ops");
    assert_eq!(got[1]["state"], "resolved");
    // The event as the agent sent it.
    assert_eq!(
        serde_json::from_value::<hopwatch_wire::event::Event>(got[0].clone()).unwrap(),
        events[2]
    );
    // Two 503s, then every POST taken.
    assert_eq!(hook.attempts.load(Ordering::SeqCst), 5);
    let first = &hook.received.lock().unwrap()[0];
    assert_eq!(first.target, "/hook?key=abc");
    assert_eq!(first.headers["content-type"], "application/json");
    assert_eq!(first.headers["x-team"], "dc-ops");
    assert_eq!(
        first.headers["authorization"],
        "Bearer hook-token-0123456789"
    );

    let mut buf = [0u8; 4096];
    let n = syslog
        .recv(&mut buf)
        .expect("syslog forwarding got nothing");
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(first.ends_with("swp1 went down"), "{first}");

    let text = server.get("/metrics").body;
    assert_eq!(
        metric(
            &text,
            "hopwatch_collector_webhook_sent_total{webhook=\"ops\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            "hopwatch_collector_webhook_failures_total{webhook=\"ops\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "hopwatch_collector_webhook_given_up_total{webhook=\"ops\"}"
        ),
        0.0
    );
    assert_eq!(
        metric(
            &text,
            "hopwatch_collector_webhook_dropped_total{webhook=\"ops\"}"
        ),
        0.0
    );
}

#[test]
fn a_refused_or_never_taken_event_is_given_up_and_counted() {
    let refusing = Hook::start(Answer::Always(400));
    let down = Hook::start(Answer::Always(503));
    let server = Server::start(
        "webhook-give-up",
        "",
        &format!(
            "[[output.webhook]]\nname = \"refusing\"\nurl = {:?}\n\
             [[output.webhook]]\nname = \"down\"\nurl = {:?}\nmax_retries = 2\nbackoff_max = \"200ms\"\n",
            refusing.url("/"),
            down.url("/")
        ),
    );
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf3", "b1").unwrap();
    agent
        .send(&[event("leaf3", "b1", 1, now_ms(), alert("swp1", true))])
        .unwrap();
    assert!(agent.wait_acked("b1", 1, Duration::from_secs(10)));
    wait_metric(
        &server,
        "hopwatch_collector_webhook_given_up_total{webhook=\"refusing\"}",
        1.0,
    );
    wait_metric(
        &server,
        "hopwatch_collector_webhook_given_up_total{webhook=\"down\"}",
        1.0,
    );
    let text = server.get("/metrics").body;
    // A 400 is not tried again; a 503 is, max_retries times.
    assert_eq!(
        metric(
            &text,
            "hopwatch_collector_webhook_failures_total{webhook=\"refusing\"}"
        ),
        1.0
    );
    assert_eq!(refusing.attempts.load(Ordering::SeqCst), 1);
    assert_eq!(
        metric(
            &text,
            "hopwatch_collector_webhook_failures_total{webhook=\"down\"}"
        ),
        3.0
    );
    assert_eq!(down.attempts.load(Ordering::SeqCst), 3);
}

#[test]
fn a_full_webhook_queue_counts_what_it_drops() {
    let hook = Hook::start(Answer::Hang);
    let server = Server::start(
        "webhook-full",
        "",
        &format!(
            "[[output.webhook]]\nname = \"slow\"\nurl = {:?}\nqueue = 1\ntimeout = \"60s\"\n",
            hook.url("/")
        ),
    );
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf4", "b1").unwrap();
    let t = now_ms();
    let events: Vec<_> = (1..=5)
        .map(|seq| event("leaf4", "b1", seq, t, alert(&format!("swp{seq}"), true)))
        .collect();
    agent.send(&events).unwrap();
    assert!(agent.wait_acked("b1", 5, Duration::from_secs(10)));
    // One event hangs in its POST and one waits in the queue (or, when the
    // hand-over was quicker than the task, one waits and none is taken):
    // three or four found the queue full.
    let dropped = wait_metric(
        &server,
        "hopwatch_collector_webhook_dropped_total{webhook=\"slow\"}",
        3.0,
    );
    assert!(dropped <= 4.0, "{dropped}");
    // The store took every event regardless.
    let text = server.get("/metrics").body;
    assert_eq!(
        metric(
            &text,
            "hopwatch_collector_events_ingested_total{type=\"alert\"}"
        ),
        5.0
    );
}

#[test]
fn a_webhook_over_https_is_reached_trusting_its_ca_and_not_otherwise() {
    let dir = TempDir::new("webhook-tls");
    let (hook, ca_file) = Hook::start_tls(Answer::FailFirst(0), &dir);
    let other = TempDir::new("webhook-tls-other");
    let (_, other_ca) = Hook::start_tls(Answer::FailFirst(0), &other);
    let server = Server::start(
        "webhook-tls-collector",
        "",
        &format!(
            "[[output.webhook]]\nname = \"trusted\"\nurl = {:?}\nca_file = {:?}\n\
             [[output.webhook]]\nname = \"untrusted\"\nurl = {:?}\nca_file = {:?}\nmax_retries = 0\n",
            hook.https_url("/tls"),
            ca_file.display().to_string(),
            hook.https_url("/untrusted"),
            other_ca.display().to_string()
        ),
    );
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf5", "b1").unwrap();
    agent
        .send(&[event("leaf5", "b1", 1, now_ms(), alert("swp1", true))])
        .unwrap();
    assert!(agent.wait_acked("b1", 1, Duration::from_secs(10)));
    let got = hook.wait_received(1);
    assert_eq!(got[0]["agent"], "leaf5");
    // The other CA did not sign the webhook's certificate: the handshake
    // fails, nothing is posted, and the event is given up.
    wait_metric(
        &server,
        "hopwatch_collector_webhook_given_up_total{webhook=\"untrusted\"}",
        1.0,
    );
    assert_eq!(hook.received.lock().unwrap().len(), 1);
    assert_eq!(hook.received.lock().unwrap()[0].target, "/tls");
}
