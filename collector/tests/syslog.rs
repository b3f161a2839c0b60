//! Events the collector stores are forwarded to a real rsyslogd, named by
//! the agent they came from (its HOSTNAME, or the text's first word when one
//! HOSTNAME is configured), and each once even when an agent resends.

use crate::rsyslog::{Proto, Rsyslog};
use crate::util::{AGENT_TOKEN, FakeAgent, Server, alert, event, heartbeat, link, now_ms};
use std::time::Duration;

#[test]
fn stored_events_reach_rsyslog_once() {
    let Some(rsyslog) = Rsyslog::start(Proto::Tcp) else {
        return;
    };
    let server = Server::start(
        "syslog",
        "",
        &format!(
            "[output.syslog]\naddress = {:?}\nfacility = \"local3\"\nhostname = \"collector1\"\n",
            rsyslog.address()
        ),
    );
    let (mut agent, _) = FakeAgent::connect(server.agents, AGENT_TOKEN, "leaf1", "b1").unwrap();
    let t = now_ms();
    let events = vec![
        event("leaf1", "b1", 1, t, heartbeat(&[("swp1", true)])),
        event("leaf1", "b1", 2, t, link("swp1", false)),
        event("leaf1", "b1", 3, t, alert("swp2", true)),
    ];
    agent.send(&events).unwrap();
    assert!(agent.wait_acked("b1", 3, Duration::from_secs(10)));
    // A resend is stored once and so forwarded once.
    agent.send(&events).unwrap();
    agent
        .send(&[event("leaf1", "b1", 4, t, heartbeat(&[("swp1", false)]))])
        .unwrap();
    assert!(agent.wait_acked("b1", 4, Duration::from_secs(10)));

    let down = rsyslog
        .wait_for(
            |l| l.msg == "leaf1: swp1 went down",
            Duration::from_secs(10),
        )
        .expect("the link event never reached rsyslog");
    assert!(down.rfc5424);
    assert_eq!(down.facility, "local3");
    assert_eq!(down.severity, "warning");
    assert_eq!(down.hostname, "collector1");
    assert_eq!(down.app_name, "hopwatch");
    assert_eq!(down.msgid, "link");
    let fired = rsyslog
        .wait_for(|l| l.msgid == "alert", Duration::from_secs(10))
        .expect("the alert never reached rsyslog");
    assert_eq!(fired.severity, "crit");
    assert_eq!(
        fired.msg,
        "leaf1: swp2 tx_errors increased by 7 in 5s (threshold 3)"
    );
    // Heartbeats are not forwarded by default, and nothing twice.
    std::thread::sleep(Duration::from_millis(300));
    let lines = rsyslog.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");

    // Without `hostname`, HOSTNAME is the agent's, and the text is bare.
    let relay = Server::start(
        "syslog-relay",
        "",
        &format!("[output.syslog]\naddress = {:?}\n", rsyslog.address()),
    );
    let (mut agent, _) = FakeAgent::connect(relay.agents, AGENT_TOKEN, "leaf2", "b2").unwrap();
    agent
        .send(&[event("leaf2", "b2", 1, t, link("swp9", false))])
        .unwrap();
    assert!(agent.wait_acked("b2", 1, Duration::from_secs(10)));
    let relayed = rsyslog
        .wait_for(|l| l.hostname == "leaf2", Duration::from_secs(10))
        .expect("the relayed event never reached rsyslog");
    assert_eq!(relayed.msg, "swp9 went down");
    assert_eq!(relayed.msgid, "link");
}
