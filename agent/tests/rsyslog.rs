//! A real rsyslogd for the integration tests, so the syslog output is checked
//! against what a production receiver parses rather than against our own
//! idea of the format. Each instance runs in a temp dir of its own, on its
//! own loopback port or socket, and never touches the system's `/dev/log`,
//! spool or pid file.

use std::fs;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// How long rsyslogd may take to open its input; it takes milliseconds,
/// but CI machines stall.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

const POLL: Duration = Duration::from_millis(10);

/// One field per property the tests look at. `protocol-version` tells
/// whether rsyslog parsed the message as RFC 5424 (1) or fell back to
/// RFC 3164 (0); `msg` comes last because it may hold the separator (the
/// tests put none in structured data).
const TEMPLATE: &str = "%protocol-version%|%syslogfacility-text%|%syslogseverity-text%|\
                        %hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\\n";

/// How the instance receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
    /// A datagram socket in the temp dir, read as rsyslog reads `/dev/log`.
    Unix,
}

/// One received message, as rsyslog parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsyslogLine {
    /// rsyslog recognised the RFC 5424 header (otherwise it parsed RFC 3164).
    pub rfc5424: bool,
    /// `local7`, `daemon`, …
    pub facility: String,
    /// `crit`, `warning`, `info`, …
    pub severity: String,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    /// `-` for RFC 3164.
    pub msgid: String,
    /// RFC 5424's STRUCTURED-DATA as received; `-` for none and for RFC 3164.
    pub structured_data: String,
    /// The message, with control characters as rsyslog escapes them
    /// (`#012` for a newline).
    pub msg: String,
}

impl RsyslogLine {
    fn parse(line: &str) -> Option<RsyslogLine> {
        let mut fields = line.splitn(9, '|');
        let mut next = || fields.next().map(str::to_string);
        let rfc5424 = next()? == "1";
        let (facility, severity, hostname) = (next()?, next()?, next()?);
        let (app_name, procid, msgid) = (next()?, next()?, next()?);
        let structured_data = next()?;
        let mut msg = next()?;
        // RFC 3164 counts the space after the tag's colon as part of the
        // message, and rsyslog keeps it; drop it so both protocols compare
        // alike.
        if !rfc5424 && msg.starts_with(' ') {
            msg.remove(0);
        }
        Some(RsyslogLine {
            rfc5424,
            facility,
            severity,
            hostname,
            app_name,
            procid,
            msgid,
            structured_data,
            msg,
        })
    }
}

/// A running rsyslogd, killed and its dir removed on drop (the dir stays
/// when the test failed, for a look at `rsyslogd.log`).
pub struct Rsyslog {
    child: Child,
    proto: Proto,
    port: u16,
    dir: PathBuf,
}

impl Rsyslog {
    /// Starts rsyslogd on a free loopback port (or a socket for `Unix`).
    /// None, with the reason printed, when rsyslogd is not installed and
    /// this is not CI.
    pub fn start(proto: Proto) -> Option<Rsyslog> {
        if !installed() {
            return None;
        }
        // Another process may take the free port before rsyslogd binds it;
        // a fresh port then does.
        let mut errors = Vec::new();
        for _ in 0..3 {
            let port = match proto {
                Proto::Unix => 0,
                _ => free_port(proto),
            };
            match launch(proto, port, None) {
                Ok(rsyslog) => return Some(rsyslog),
                Err(error) => errors.push(error),
            }
        }
        panic!("rsyslogd did not start:\n{}", errors.join("\n"));
    }

    /// Starts rsyslogd on `port`, for tests that talk to the port before
    /// the server is up or that restart it.
    pub fn start_on(proto: Proto, port: u16) -> Option<Rsyslog> {
        assert_ne!(proto, Proto::Unix, "a unix socket has no port");
        if !installed() {
            return None;
        }
        Some(
            launch(proto, port, None)
                .unwrap_or_else(|error| panic!("rsyslogd did not start: {error}")),
        )
    }

    /// Starts rsyslogd inside the network namespace `netns`, listening on
    /// that namespace's loopback, for an agent that runs there too.
    pub fn start_in_netns(proto: Proto, netns: &str) -> Option<Rsyslog> {
        assert_ne!(proto, Proto::Unix, "a unix socket needs no namespace");
        if !installed() {
            return None;
        }
        // A fresh namespace has every port free.
        Some(
            launch(proto, 5514, Some(netns))
                .unwrap_or_else(|error| panic!("rsyslogd did not start in {netns}: {error}")),
        )
    }

    pub fn port(&self) -> u16 {
        assert_ne!(self.proto, Proto::Unix, "a unix socket has no port");
        self.port
    }

    /// The address as hopwatch's `[output.syslog] address` takes it.
    pub fn address(&self) -> String {
        match self.proto {
            Proto::Udp => format!("udp://127.0.0.1:{}", self.port),
            Proto::Tcp => format!("tcp://127.0.0.1:{}", self.port),
            Proto::Unix => format!("unix://{}", socket_path(&self.dir).display()),
        }
    }

    /// Every message received so far, in order.
    pub fn lines(&self) -> Vec<RsyslogLine> {
        let text = fs::read_to_string(self.dir.join("messages")).unwrap_or_default();
        // Only whole lines: rsyslogd may be halfway through writing one.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete.lines().filter_map(RsyslogLine::parse).collect()
    }

    /// Polls the received messages until one matches or `timeout` passes.
    pub fn wait_for(
        &self,
        pred: impl Fn(&RsyslogLine) -> bool,
        timeout: Duration,
    ) -> Option<RsyslogLine> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| pred(l)) {
                return Some(line);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL);
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("rsyslogd's files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether rsyslogd can run here; outside CI a missing one skips the test,
/// in CI it fails it, since CI must run every test.
fn installed() -> bool {
    if Path::new(RSYSLOGD).exists() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{RSYSLOGD} not found; CI must run the syslog tests: install the rsyslog package");
    }
    eprintln!("skipping: {RSYSLOGD} not found (install the rsyslog package to run this test)");
    false
}

/// A loopback port nobody listens on right now.
pub fn free_port(proto: Proto) -> u16 {
    match proto {
        Proto::Udp => UdpSocket::bind("127.0.0.1:0").unwrap().local_addr(),
        Proto::Tcp => TcpListener::bind("127.0.0.1:0").unwrap().local_addr(),
        Proto::Unix => panic!("a unix socket has no port"),
    }
    .unwrap()
    .port()
}

fn socket_path(dir: &Path) -> PathBuf {
    dir.join("log.sock")
}

fn launch(proto: Proto, port: u16, netns: Option<&str>) -> Result<Rsyslog, String> {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hopwatch-rsyslog-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let conf = dir.join("rsyslog.conf");
    fs::write(&conf, config(proto, port, &dir)).map_err(|e| e.to_string())?;
    let log = fs::File::create(dir.join("rsyslogd.log")).map_err(|e| e.to_string())?;
    let mut command = match netns {
        Some(netns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", netns, RSYSLOGD]);
            c
        }
        None => Command::new(RSYSLOGD),
    };
    let child = command
        .arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("running {RSYSLOGD}: {e}"))?;
    // Built before waiting, so a failure below kills the child on drop.
    let mut rsyslog = Rsyslog {
        child,
        proto,
        port,
        dir,
    };
    rsyslog.wait_ready()?;
    Ok(rsyslog)
}

/// The whole configuration. No imuxsock on the system socket, internal
/// messages kept in this instance instead of being handed to the system
/// logger, and a work directory of its own: nothing outside `dir` changes.
fn config(proto: Proto, port: u16, dir: &Path) -> String {
    let dir = dir.display();
    let input = match proto {
        Proto::Udp => format!(
            "module(load=\"imudp\")\n\
             input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"received\")"
        ),
        Proto::Tcp => format!(
            "module(load=\"imtcp\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"received\")"
        ),
        Proto::Unix => format!(
            "module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{dir}/log.sock\" ruleset=\"received\")"
        ),
    };
    format!(
        "global(workDirectory=\"{dir}\" processInternalMessages=\"on\" net.enableDNS=\"off\" \
                maxMessageSize=\"64k\")\n\
         template(name=\"record\" type=\"string\" string=\"{TEMPLATE}\")\n\
         ruleset(name=\"received\") {{\n\
           action(type=\"omfile\" file=\"{dir}/messages\" template=\"record\")\n\
         }}\n\
         {input}\n\
         # rsyslogd's own messages, for when a test fails.\n\
         action(type=\"omfile\" file=\"{dir}/rsyslogd.log\")\n"
    )
}

impl Rsyslog {
    /// Waits until this rsyslogd (not some other process that took the
    /// port) has its input open. rsyslogd starts its outputs before its
    /// inputs, so from then on every message is written.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("rsyslogd exited with {status}: {}", self.log()));
            }
            let ready = match self.proto {
                Proto::Unix => socket_path(&self.dir).exists(),
                _ => self.owns_port(),
            };
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "rsyslogd did not open {} within {READY_TIMEOUT:?}: {}",
                    self.address(),
                    self.log()
                ));
            }
            thread::sleep(POLL);
        }
    }

    /// Whether one of the child's sockets is bound to the port (listening,
    /// for TCP), from /proc/net and the child's file descriptors.
    fn owns_port(&self) -> bool {
        let pid = self.child.id();
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        let inodes: Vec<String> = fds
            .filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
            .filter_map(|link| {
                let link = link.to_string_lossy().into_owned();
                Some(
                    link.strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .to_string(),
                )
            })
            .collect();
        let (table, state) = match self.proto {
            Proto::Udp => ("udp", "07"),
            _ => ("tcp", "0A"),
        };
        let table = fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        let port = format!(":{:04X}", self.port);
        table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 9
                && fields[1].ends_with(&port)
                && fields[3] == state
                && inodes.iter().any(|inode| inode == fields[9])
        })
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("rsyslogd.log")).unwrap_or_default()
    }
}
