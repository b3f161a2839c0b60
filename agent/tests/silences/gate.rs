//! The gate with real receivers on both sides: an alert under an agent
//! silence reaches the real collector (marked) and not a real rsyslogd;
//! when the silence ends with the condition still true, rsyslogd gets it.

use super::{IFACE, Lab, RULE, RealCollector, is_alert};
use crate::rsyslog::{Proto, Rsyslog};
use crate::util::{TempDir, poll};
use serde_json::Value;
use std::time::Duration;

#[test]
fn a_silenced_alert_reaches_the_collector_marked_and_rsyslog_when_the_silence_ends() {
    let test = "a_silenced_alert_reaches_the_collector_marked_and_rsyslog_when_the_silence_ends";
    let Some(rsyslog) = Rsyslog::start(Proto::Udp) else {
        return;
    };
    let hub = TempDir::new("hopwatch-silence-hub");
    let Some(collector) = RealCollector::start(test, hub.path()) else {
        return;
    };
    let outputs = format!(
        "[output.syslog]\naddress = \"{}\"\nprotocol = \"rfc5424\"\n\n{}",
        rsyslog.address(),
        collector.output(hub.path())
    );
    let lab = Lab::new("hopwatch-silence-gate", &outputs);
    let mut agent = lab.start();

    // Short, so the test sees it end; long enough that the alert fires
    // inside it even on a slow machine.
    let silence = lab.add(&[
        "--interface",
        IFACE,
        "--rule",
        RULE,
        "--for",
        "4s",
        "--reason",
        "maintenance window",
    ]);
    let id = silence["id"].as_str().unwrap().to_string();
    lab.set_tx_errors(5);

    let silenced = poll(Duration::from_secs(10), || {
        collector
            .alerts()
            .into_iter()
            .find(|a| is_alert(a, "firing"))
    })
    .unwrap_or_else(|| panic!("no alert reached the collector: {}", collector.log()));
    assert_eq!(silenced["silenced"], true, "{silenced}");
    assert_eq!(silenced["silence"], id.as_str(), "{silenced}");
    assert_eq!(silenced["interface"], IFACE);
    let message = silenced["message"].as_str().unwrap().to_string();
    // The collector has it, through spool and acknowledgement; the UDP
    // datagram to rsyslogd would have been faster.
    let early: Vec<_> = rsyslog
        .lines()
        .into_iter()
        .filter(|l| l.msg.contains(RULE))
        .collect();
    assert!(early.is_empty(), "rsyslogd got a silenced alert: {early:?}");
    assert!(
        !agent.seen.iter().any(|e| e["type"] == "alert"),
        "stdout got a silenced alert: {:?}",
        agent.seen
    );

    // The silence ends with the condition still true: the alert goes out
    // to everyone, unsilenced, at the end.
    let line = rsyslog
        .wait_for(|l| l.msg == message, Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the alert never reached rsyslogd: {:?}", rsyslog.lines()));
    assert_eq!(line.severity, "crit");
    assert_eq!(line.msgid, "alert");
    let again = agent
        .wait_for(Duration::from_secs(5), |e| is_alert(e, "firing"))
        .expect("stdout gets the alert when the silence ends");
    assert!(again.get("silenced").is_none(), "{again}");
    let ends = humantime::parse_rfc3339_weak(silence["ends_at"].as_str().unwrap()).unwrap();
    let sent = humantime::parse_rfc3339_weak(again["ts"].as_str().unwrap()).unwrap();
    assert!(
        sent >= ends,
        "sent at {again}, before the silence's end {silence}"
    );
    let stored: Vec<Value> = poll(Duration::from_secs(10), || {
        let firing: Vec<Value> = collector
            .alerts()
            .into_iter()
            .filter(|a| is_alert(a, "firing"))
            .collect();
        (firing.len() == 2).then_some(firing)
    })
    .unwrap_or_else(|| panic!("the collector got {:?}", collector.alerts()));
    assert!(stored[1].get("silenced").is_none(), "{}", stored[1]);
    assert!(stored[0]["seq"].as_u64() < stored[1]["seq"].as_u64());
    // Exactly once in rsyslogd.
    let copies = rsyslog.lines().iter().filter(|l| l.msg == message).count();
    assert_eq!(copies, 1, "{:?}", rsyslog.lines());
    assert!(lab.list().is_empty(), "the ended silence is dropped");
    assert!(agent.stop().success());
}
