//! The syslog output against a real rsyslogd: what a production receiver
//! makes of hopwatch's messages over each transport and protocol, and how
//! the output rides out a server that is down or restarts.

use crate::rsyslog::{Proto, Rsyslog, RsyslogLine, free_port};
use hopwatch::event::{Alert, AlertState, Body, Event, Link, LinkState, Sequencer, Severity};
use hopwatch::output::OutputHandle;
use hopwatch::output::syslog::{
    Format, Protocol, SendError, SyslogOutput, SyslogSettings, SyslogTarget, parse_facility,
};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, getsockname, listen, socket,
};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

/// Generous: rsyslogd writes within milliseconds, CI machines stall.
const WAIT: Duration = Duration::from_secs(10);

const ALERT_MESSAGE: &str = "Eth1-1 tx_errors increased by 7 in 5s (threshold 3)";
const LINK_MESSAGE: &str = "swp1 went down (carrier changes: 3)";

fn output(address: &str, protocol: Protocol, format: Format) -> SyslogOutput {
    SyslogOutput::new(SyslogSettings {
        target: SyslogTarget::parse(address).unwrap(),
        facility: parse_facility("local7").unwrap(),
        protocol,
        format,
        hostname: "leaf1".into(),
        types: vec![],
    })
}

fn alert() -> Event {
    Sequencer::new("leaf1", "boot1").stamp(
        SystemTime::now(),
        Body::Alert(Alert {
            state: AlertState::Firing,
            rule: "tx-errors".into(),
            severity: Severity::Critical,
            interface: "Eth1-1".into(),
            expr: "increase(tx_errors[5s]) > 3".into(),
            value: Some(7.0),
            threshold: 3.0,
            message: ALERT_MESSAGE.into(),
            labels: Default::default(),
            silenced: false,
            silence: None,
        }),
    )
}

fn link_down(message: &str) -> Event {
    Sequencer::new("leaf1", "boot1").stamp(
        SystemTime::now(),
        Body::Link(Link {
            interface: "swp1".into(),
            state: LinkState::Down,
            previous: LinkState::Up,
            carrier_changes: 3,
            oper_state: "down".into(),
            message: message.into(),
            admin: None,
            reason: None,
        }),
    )
}

fn wait_for_msg(rsyslog: &Rsyslog, msg: &str) -> RsyslogLine {
    rsyslog
        .wait_for(|l| l.msg == msg, WAIT)
        .unwrap_or_else(|| panic!("{msg:?} never arrived; rsyslog got {:#?}", rsyslog.lines()))
}

/// What every record from hopwatch has, whatever the transport.
fn assert_record(line: &RsyslogLine, protocol: Protocol, severity: &str, kind: &str) {
    assert_eq!(line.rfc5424, protocol == Protocol::Rfc5424, "{line:?}");
    assert_eq!(line.facility, "local7", "{line:?}");
    assert_eq!(line.severity, severity, "{line:?}");
    assert_eq!(line.app_name, "hopwatch", "{line:?}");
    assert_eq!(line.procid, std::process::id().to_string(), "{line:?}");
    let msgid = match protocol {
        Protocol::Rfc5424 => kind,
        Protocol::Rfc3164 => "-",
    };
    assert_eq!(line.msgid, msgid, "{line:?}");
}

/// Sends a firing critical alert and a link-down and checks both records.
fn alert_and_link_down(proto: Proto, protocol: Protocol) {
    let Some(rsyslog) = Rsyslog::start(proto) else {
        return;
    };
    let mut out = output(&rsyslog.address(), protocol, Format::Text);
    out.send(&alert()).unwrap();
    out.send(&link_down(LINK_MESSAGE)).unwrap();
    let line = wait_for_msg(&rsyslog, ALERT_MESSAGE);
    assert_record(&line, protocol, "crit", "alert");
    assert_eq!(line.hostname, "leaf1");
    let line = wait_for_msg(&rsyslog, LINK_MESSAGE);
    assert_record(&line, protocol, "warning", "link");
    assert_eq!(rsyslog.lines().len(), 2, "{:#?}", rsyslog.lines());
}

#[test]
fn syslog_udp_rfc5424() {
    alert_and_link_down(Proto::Udp, Protocol::Rfc5424);
}

#[test]
fn syslog_udp_rfc3164() {
    alert_and_link_down(Proto::Udp, Protocol::Rfc3164);
}

#[test]
fn syslog_tcp_rfc5424() {
    alert_and_link_down(Proto::Tcp, Protocol::Rfc5424);
}

#[test]
fn syslog_tcp_rfc3164() {
    alert_and_link_down(Proto::Tcp, Protocol::Rfc3164);
}

/// The local socket takes the BSD layout whatever `protocol` says; rsyslog
/// must still see hopwatch as the app and keep the severity.
#[test]
fn syslog_unix_socket_either_protocol() {
    let Some(rsyslog) = Rsyslog::start(Proto::Unix) else {
        return;
    };
    for protocol in [Protocol::Rfc5424, Protocol::Rfc3164] {
        let mut out = output(&rsyslog.address(), protocol, Format::Text);
        let message = format!("swp1 went down ({protocol:?})");
        out.send(&link_down(&message)).unwrap();
        let line = wait_for_msg(&rsyslog, &message);
        assert_record(&line, Protocol::Rfc3164, "warning", "link");
    }
}

/// With `format = "json"` the message is the event, whole.
#[test]
fn syslog_json_format() {
    for (proto, protocol) in [
        (Proto::Tcp, Protocol::Rfc5424),
        (Proto::Udp, Protocol::Rfc3164),
    ] {
        let Some(rsyslog) = Rsyslog::start(proto) else {
            return;
        };
        let event = alert();
        let mut out = output(&rsyslog.address(), protocol, Format::Json);
        out.send(&event).unwrap();
        let line = rsyslog
            .wait_for(|l| l.msg.starts_with('{'), WAIT)
            .unwrap_or_else(|| panic!("no JSON record; rsyslog got {:#?}", rsyslog.lines()));
        assert_record(&line, protocol, "crit", "alert");
        let back: Event = serde_json::from_str(&line.msg).unwrap();
        assert_eq!(back, event);
    }
}

/// Over TCP a newline inside a message must neither split it nor swallow
/// the next one: RFC 5424 frames are counted, RFC 3164 lines lose the
/// newline.
#[test]
fn syslog_tcp_newline_inside_message() {
    for (protocol, want) in [
        (Protocol::Rfc5424, "swp1#012went down"),
        (Protocol::Rfc3164, "swp1 went down"),
    ] {
        let Some(rsyslog) = Rsyslog::start(Proto::Tcp) else {
            return;
        };
        let mut out = output(&rsyslog.address(), protocol, Format::Text);
        out.send(&link_down("swp1\nwent down")).unwrap();
        out.send(&link_down(LINK_MESSAGE)).unwrap();
        wait_for_msg(&rsyslog, LINK_MESSAGE);
        let msgs: Vec<String> = rsyslog.lines().into_iter().map(|l| l.msg).collect();
        assert_eq!(msgs, [want, LINK_MESSAGE], "{protocol:?}");
    }
}

/// A server that is down costs a quick error, not a hang or a panic, and
/// the first send after it comes up goes through.
#[test]
fn syslog_tcp_server_down_then_up() {
    let port = free_port(Proto::Tcp);
    let address = format!("tcp://127.0.0.1:{port}");
    let mut out = output(&address, Protocol::Rfc5424, Format::Text);
    let error = out.send(&alert()).unwrap_err();
    assert!(matches!(error, SendError::Connect { .. }), "{error}");
    assert!(error.to_string().contains(&address), "{error}");
    let Some(rsyslog) = Rsyslog::start_on(Proto::Tcp, port) else {
        return;
    };
    out.send(&alert()).unwrap();
    let line = wait_for_msg(&rsyslog, ALERT_MESSAGE);
    assert_record(&line, Protocol::Rfc5424, "crit", "alert");
}

/// A server restart: the send after the server went away reports the
/// failure rather than vanishing into the dead connection, and the send
/// after the restart reconnects.
#[test]
fn syslog_tcp_server_restart() {
    let Some(rsyslog) = Rsyslog::start(Proto::Tcp) else {
        return;
    };
    let port = rsyslog.port();
    let mut out = output(&rsyslog.address(), Protocol::Rfc5424, Format::Text);
    out.send(&link_down("before the restart")).unwrap();
    wait_for_msg(&rsyslog, "before the restart");
    drop(rsyslog);

    let error = out.send(&link_down("while down")).unwrap_err();
    assert!(matches!(error, SendError::Connect { .. }), "{error}");

    let Some(rsyslog) = Rsyslog::start_on(Proto::Tcp, port) else {
        return;
    };
    out.send(&link_down("after the restart")).unwrap();
    let line = wait_for_msg(&rsyslog, "after the restart");
    assert_record(&line, Protocol::Rfc5424, "warning", "link");
}

/// A TCP server that drops SYNs: a listener with a full accept queue, as
/// Linux drops further SYNs rather than refusing them. Returns what keeps
/// it so, and its port.
pub(crate) fn silent_server() -> (std::os::fd::OwnedFd, TcpStream, u16) {
    let listener = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    bind(listener.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    listen(&listener, Backlog::new(0).unwrap()).unwrap();
    let port = getsockname::<SockaddrIn>(listener.as_raw_fd())
        .unwrap()
        .port();
    // Takes the one place a backlog of 0 leaves; it is never accepted.
    let queued = TcpStream::connect(("127.0.0.1", port)).unwrap();
    (listener, queued, port)
}

/// Outputs stuck on servers that do not answer are closed together: the
/// grace bounds the whole wait, not each output's.
#[test]
fn syslog_outputs_stuck_connecting_close_within_one_grace() {
    let servers = [silent_server(), silent_server()];
    let outputs: Vec<OutputHandle> = servers
        .iter()
        .map(|(_, _, port)| {
            let output = output(
                &format!("tcp://127.0.0.1:{port}"),
                Protocol::Rfc5424,
                Format::Text,
            );
            let handle = OutputHandle::spawn(Box::new(output), 16).unwrap();
            handle.enqueue(Arc::new(alert()));
            handle
        })
        .collect();
    // Each thread is now in a 2 s connect; both must be there before the
    // close, or the wait would not be tested.
    let deadline = Instant::now() + Duration::from_secs(2);
    while outputs
        .iter()
        .any(|o| o.stats().queued.load(Ordering::Relaxed) != 1)
    {
        assert!(Instant::now() < deadline, "the events were never queued");
        std::thread::sleep(Duration::from_millis(5));
    }
    let grace = Duration::from_millis(600);
    let started = Instant::now();
    OutputHandle::close_all(outputs, grace);
    let took = started.elapsed();
    assert!(took >= grace - Duration::from_millis(50), "{took:?}");
    assert!(
        took < grace * 3 / 2,
        "closing took {took:?}: each output's grace, not one"
    );
}

/// A server that drops SYNs fails the send within the connect timeout
/// instead of the kernel's minutes. A listener with a full accept queue is
/// such a server: Linux drops further SYNs rather than refusing them.
#[test]
fn syslog_tcp_connect_times_out() {
    let (_listener, _queued, port) = silent_server();
    let mut out = output(
        &format!("tcp://127.0.0.1:{port}"),
        Protocol::Rfc5424,
        Format::Text,
    );
    let start = Instant::now();
    let error = out.send(&alert()).unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(error, SendError::Connect { .. }), "{error}");
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}
