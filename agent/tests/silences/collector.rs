//! The collector's silences on the agent, from a collector in the test
//! that speaks the wire protocol (welcome, then `silences`) and records
//! the events it is sent: the set applies, outlives a restart while the
//! collector is away, and a new set without it lets the alert out.

use super::{Lab, is_alert, kept_off_stdout, silences_file};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const TOKEN: &str = "silences-fake-agent-token-0123456789";
const ID: &str = "c-00c0ffee00c0ffee";

#[derive(Default)]
struct Hub {
    /// Every event received, in order.
    events: Mutex<Vec<Value>>,
    /// The set sent after each welcome.
    silences: Mutex<Value>,
    /// The open connection's writing end.
    conn: Mutex<Option<TcpStream>>,
}

/// A collector that welcomes, sends its silences, and acknowledges.
struct FakeCollector {
    port: u16,
    hub: Arc<Hub>,
    listener: TcpListener,
}

impl FakeCollector {
    fn start(port: u16, silences: Value) -> FakeCollector {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let hub = Arc::new(Hub::default());
        *hub.silences.lock().unwrap() = silences;
        let (accepting, shared) = (listener.try_clone().unwrap(), Arc::clone(&hub));
        std::thread::spawn(move || {
            for stream in accepting.incoming() {
                let Ok(stream) = stream else { return };
                let hub = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &hub));
            }
        });
        FakeCollector {
            port,
            hub,
            listener,
        }
    }

    fn events(&self) -> Vec<Value> {
        self.hub.events.lock().unwrap().clone()
    }

    /// Stops listening and cuts the connection, as a collector going away.
    fn stop(self) {
        if let Some(conn) = self.hub.conn.lock().unwrap().take() {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        // Waking the accept loop with a connection it then fails on.
        let _ = nix::sys::socket::shutdown(
            std::os::fd::AsRawFd::as_raw_fd(&self.listener),
            nix::sys::socket::Shutdown::Both,
        );
    }
}

fn send(conn: &mut TcpStream, line: &Value) -> std::io::Result<()> {
    conn.write_all(format!("{line}\n").as_bytes())
}

fn serve(stream: TcpStream, hub: &Hub) {
    let mut write = stream.try_clone().unwrap();
    *hub.conn.lock().unwrap() = Some(stream.try_clone().unwrap());
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        let message: Value = serde_json::from_str(&line).unwrap();
        match message["type"].as_str() {
            Some("hello") => {
                assert_eq!(message["token"], TOKEN);
                assert!(message["protocol"].as_u64() >= Some(3), "{message}");
                let set = hub.silences.lock().unwrap().clone();
                let welcome = json!({"type": "welcome", "protocol": 3, "last_seq": {}});
                if send(&mut write, &welcome).is_err()
                    || send(&mut write, &json!({"type": "silences", "silences": set})).is_err()
                {
                    return;
                }
            }
            Some("goodbye") => return,
            _ if message.get("seq").is_some() => {
                let ack = json!({"type": "ack", "boot": message["boot"], "seq": message["seq"]});
                hub.events.lock().unwrap().push(message);
                if send(&mut write, &ack).is_err() {
                    return;
                }
            }
            _ => {}
        }
    }
}

fn at(offset: i64) -> String {
    let now = SystemTime::now();
    let t = if offset >= 0 {
        now + Duration::from_secs(offset as u64)
    } else {
        now - Duration::from_secs((-offset) as u64)
    };
    humantime::format_rfc3339_millis(t).to_string()
}

#[test]
fn collector_silences_apply_outlive_a_restart_and_release_when_withdrawn() {
    let silence = json!({
        "id": ID,
        "interface": "eth*",
        "agent": "sil*",
        "starts_at": at(-60),
        "ends_at": at(3600),
        "reason": "fabric upgrade",
        "author": "alice",
    });
    let fake = FakeCollector::start(0, json!([silence]));
    let port = fake.port;
    let lab = Lab::new("hopwatch-silence-pushed", "");
    let token = lab.dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let output = format!(
        "[output.collector]\naddress = \"127.0.0.1:{port}\"\ntoken_file = \"{}\"\nbackoff_max = \"500ms\"\n",
        lab.dir.path().join("token").display()
    );
    let config = std::fs::read_to_string(&lab.config).unwrap() + &output;
    std::fs::write(&lab.config, config).unwrap();

    let mut agent = lab.start();
    let listed = crate::util::poll(Duration::from_secs(10), || {
        let list = lab.list();
        (!list.is_empty()).then_some(list)
    })
    .expect("the collector's silence reaches the agent");
    assert_eq!(listed, std::slice::from_ref(&silence));
    assert_eq!(
        silences_file(&lab.state_dir())["collector"],
        json!([silence])
    );
    let out = lab.silence(&["remove", ID]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("made on the collector"), "{stderr}");

    // It covers the alert: marked for the collector, kept off stdout.
    lab.set_tx_errors(5);
    lab.wait_firing();
    let fired = crate::util::poll(Duration::from_secs(10), || {
        fake.events().into_iter().find(|e| is_alert(e, "firing"))
    })
    .expect("the alert reaches the collector");
    assert_eq!(fired["silenced"], true, "{fired}");
    assert_eq!(fired["silence"], ID, "{fired}");
    kept_off_stdout(&mut agent);

    // The collector goes away and the agent restarts: the set holds.
    assert!(agent.stop().success());
    fake.stop();
    let mut agent = lab.start();
    assert_eq!(lab.list(), std::slice::from_ref(&silence));
    lab.wait_firing();
    kept_off_stdout(&mut agent);

    // Back, without the silence: the alert goes out, unsilenced.
    let fake = FakeCollector::start(port, json!([]));
    let again = agent
        .wait_for(Duration::from_secs(15), |e| is_alert(e, "firing"))
        .expect("the alert goes out once the collector withdraws its silence");
    assert!(again.get("silenced").is_none(), "{again}");
    assert!(lab.list().is_empty());
    assert_eq!(silences_file(&lab.state_dir())["collector"], json!([]));
    let stored = crate::util::poll(Duration::from_secs(10), || {
        fake.events()
            .into_iter()
            .find(|e| is_alert(e, "firing") && e.get("silenced").is_none())
    });
    assert!(stored.is_some(), "{:?}", fake.events());
    assert!(agent.stop().success());
    fake.stop();
}
