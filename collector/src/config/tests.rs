//! The validator's behaviour on whole config texts: defaults, every key,
//! and every mistake at once with its place and hint.

use super::*;
use hopwatch_wire::size::{SIZE_CASES, format_size};

pub(super) fn errors(text: &str) -> Vec<String> {
    match Config::parse(text, "c.toml") {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics().iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn empty_config_is_the_embedded_default() {
    let c = Config::embedded();
    assert_eq!(c.collector.agents_listen.to_string(), "127.0.0.1:7000");
    assert_eq!(c.collector.http_listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.collector.data_dir, PathBuf::from("./hopwatch-data"));
    assert_eq!(c.collector.heartbeat_timeout, Duration::from_secs(30));
    assert_eq!(c.collector.read_timeout(), Duration::from_secs(90));
    assert_eq!(c.collector.retain, Duration::from_secs(400 * 86_400));
    assert_eq!(c.collector.max_line, 1 << 20);
    assert!(c.collector.tls.is_none());
    assert!(c.auth.agent_tokens.is_empty() && c.auth.api_tokens.is_empty());
    assert!(c.syslog.is_none());
    assert_eq!(
        c.rate_limit,
        RateLimitSettings {
            per_second: 10.0,
            burst: 50
        }
    );
    assert_eq!(c.log.max_size, 10 << 20);
    assert_eq!(c.log.keep, 5);
    assert_eq!(c.http, DEFAULT_HTTP);
}

#[test]
fn reads_every_key() {
    let c = Config::parse(
        r#"
[collector]
agents_listen = "0.0.0.0:7100"
http_listen = "[::1]:8100"
data_dir = "/var/lib/hopwatch-collector"
heartbeat_timeout = "45s"
retain = "30d"
max_line = "64KiB"
max_connections = 50
hello_timeout = "2s"
max_pending = 64
[collector.tls]
cert_file = "/etc/hopwatch/tls/cert.pem"
key_file = "/etc/hopwatch/tls/key.pem"
client_ca_file = "/etc/hopwatch/tls/ca.pem"
[auth]
agent_tokens = ["agent-secret-0001", { token_file = "/etc/hopwatch/leaf1.token", agents = ["leaf1", "leaf1-*"] }]
api_tokens = ["api-secret-000001", "api-secret-000002"]
api_tokens_file = "/etc/hopwatch/api-tokens"
[[auth.agent_certs]]
names = ["*.leaf.example.net"]
agents = ["leaf*"]
[output.syslog]
address = "udp://10.0.0.5:514"
format = "json"
events = ["alert"]
hostname = "collector1"
[rate_limit]
per_second = 2.5
burst = 5
[log]
file = ""
[http]
header_timeout = "2s"
idle_timeout = "30s"
max_connections = 64
"#,
        "c.toml",
    )
    .unwrap();
    assert_eq!(
        c.http,
        HttpSettings {
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
            max_connections: 64
        }
    );
    assert_eq!(c.collector.agents_listen.to_string(), "0.0.0.0:7100");
    assert_eq!(c.collector.http_listen.to_string(), "[::1]:8100");
    assert_eq!(c.collector.max_line, 65_536);
    assert_eq!(c.collector.max_connections, 50);
    assert_eq!(c.collector.hello_timeout, Duration::from_secs(2));
    assert_eq!(c.collector.max_pending, 64);
    let bound = &c.auth.bound_tokens[0];
    assert_eq!(
        bound.token_file.value,
        PathBuf::from("/etc/hopwatch/leaf1.token")
    );
    assert!(bound.agents.matches("leaf1-b") && !bound.agents.matches("leaf2"));
    let cert = &c.auth.agent_certs[0];
    assert!(cert.names.matches("sw1.leaf.example.net") && cert.agents.matches("leaf7"));
    let tls = c.collector.tls.unwrap();
    assert_eq!(
        tls.key_file.value,
        PathBuf::from("/etc/hopwatch/tls/key.pem")
    );
    assert_eq!((tls.key_file.line, tls.key_file.col), (14, 12));
    assert_eq!(c.auth.api_tokens.len(), 2);
    assert_eq!(c.auth.agent_tokens, vec![Secret::new("agent-secret-0001")]);
    let syslog = c.syslog.unwrap();
    assert_eq!(syslog.format, hopwatch_wire::syslog::Format::Json);
    assert_eq!(syslog.types, vec!["alert".to_string()]);
    assert_eq!(syslog.hostname, "collector1");
    assert_eq!(c.rate_limit.burst, 5);
    assert_eq!(c.log.file, None);
}

#[test]
fn reports_every_error_at_once_with_places_and_hints() {
    let errs = errors(
        r#"
[collector]
agents_listen = "localhost:7000"
heartbeat_timout = "30s"
retain = "soon"
max_line = "1 parsec"
[collector.tls]
cert_file = "cert.pem"
[auth]
api_tokens = ["has space, and is long"]
[output.syslog]
address = "10.0.0.5"
[rate_limit]
per_second = 0
burst = 0
"#,
    );
    let joined = errs.join("\n");
    assert_eq!(errs.len(), 9, "{joined}");
    assert!(
        joined
            .contains("c.toml:3:17: `agents_listen` \"localhost:7000\" is not an IP:PORT address"),
        "{joined}"
    );
    assert!(joined.contains("c.toml:4:1: unknown key `heartbeat_timout` in [collector]\n  hint: did you mean `heartbeat_timeout`?"), "{joined}");
    assert!(
        joined.contains("c.toml:5:10: bad duration \"soon\" for `retain`"),
        "{joined}"
    );
    assert!(
        joined.contains("c.toml:6:12: bad size for `max_line`: unknown unit `parsec`"),
        "{joined}"
    );
    assert!(
        joined.contains("c.toml:7:1: [collector.tls] has no `key_file`"),
        "{joined}"
    );
    assert!(
        joined.contains("c.toml:10:15: a token in `api_tokens` is empty or holds whitespace"),
        "{joined}"
    );
    assert!(
        !joined.contains("has space, and"),
        "tokens are never echoed: {joined}"
    );
    assert!(
        joined.contains("c.toml:12:11: syslog address `10.0.0.5` has no scheme"),
        "{joined}"
    );
    assert!(
        joined.contains("c.toml:14:14: `per_second` 0 is out of range"),
        "{joined}"
    );
    assert!(
        joined.contains("c.toml:15:9: `burst` 0 is out of range"),
        "{joined}"
    );
}

#[test]
fn same_port_for_agents_and_http_is_refused_naming_both() {
    let errs = errors(
        "[collector]\nagents_listen = \"127.0.0.1:9000\"\nhttp_listen = \"127.0.0.1:9000\"\n",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("`http_listen` and `agents_listen` are both 127.0.0.1:9000"),
        "{errs:?}"
    );
}

#[test]
fn http_limits_are_bounded() {
    let errs = errors(
        "[http]\nheader_timeout = \"0s\"\nidle_timeout = \"2h\"\nmax_connections = 0\nheader_timout = \"1s\"\n",
    );
    let joined = errs.join("\n");
    assert_eq!(errs.len(), 4, "{joined}");
    assert!(
        joined.contains("c.toml:2:18: `header_timeout` \"0s\" is out of range"),
        "{joined}"
    );
    assert!(
        joined.contains("c.toml:3:16: `idle_timeout` \"2h\" is out of range"),
        "{joined}"
    );
    assert!(
        joined.contains("c.toml:4:19: `max_connections` 0 is out of range"),
        "{joined}"
    );
    assert!(
        joined.contains("unknown key `header_timout` in [http]"),
        "{joined}"
    );
}

#[test]
fn rates_too_small_to_wait_for_are_refused() {
    for rate in ["1e-300", "0.0009", "-1.0", "nan", "inf"] {
        let errs = errors(&format!("[rate_limit]\nper_second = {rate}\n"));
        assert_eq!(errs.len(), 1, "{rate}: {errs:?}");
        assert!(errs[0].contains("`per_second`"), "{errs:?}");
    }
    assert!(errors("[rate_limit]\nper_second = 0.001\n").is_empty());
}

#[test]
fn toml_syntax_errors_are_located() {
    let errs = errors("[collector]\nretain = \n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("c.toml:2:"), "{errs:?}");
}

#[test]
fn unknown_tables_are_reported() {
    let errs = errors("[colector]\nretain = \"1d\"\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("unknown key `colector` at the top level"),
        "{errs:?}"
    );
    assert!(errs[0].contains("did you mean `collector`"), "{errs:?}");
}

#[test]
fn sizes() {
    assert_eq!(parse_size("1MiB"), Ok(1 << 20));
    assert_eq!(parse_size("64 KiB"), Ok(65_536));
    assert_eq!(parse_size("10MB"), Ok(10_000_000));
    assert_eq!(parse_size("4096"), Ok(4096));
    assert_eq!(parse_size("1.5KiB"), Ok(1536));
    assert!(parse_size("MiB").is_err());
    assert!(parse_size("1 XB").is_err());
    assert_eq!(format_size(1 << 30), "1 GiB");
    assert_eq!(format_size(1000), "1000 B");
}

#[test]
fn secrets_do_not_debug_print() {
    assert_eq!(format!("{:?}", Secret::new("s3cret")), "<redacted>");
}

#[test]
fn log_max_size_reads_sizes_as_the_shared_grammar_does() {
    let (min, max) = (64 << 10, 1 << 40);
    for (text, expected) in SIZE_CASES {
        let errs = errors(&format!("[log]\nmax_size = {text:?}\n"));
        match expected {
            Some(n) if (min..=max).contains(n) => {
                assert!(errs.is_empty(), "{text:?}: {errs:?}");
                let c = Config::parse(&format!("[log]\nmax_size = {text:?}\n"), "c.toml");
                assert_eq!(c.unwrap().log.max_size, *n, "{text:?}");
            }
            Some(_) => assert!(
                errs.len() == 1 && errs[0].contains("is out of range"),
                "{text:?}: {errs:?}"
            ),
            None => assert!(
                errs.len() == 1 && errs[0].contains("bad size for `max_size`"),
                "{text:?}: {errs:?}"
            ),
        }
    }
}

#[test]
fn size_ranges_are_named_in_the_units_they_are_read_in() {
    let errs = errors("[collector]\nmax_line = 10\n[log]\nmax_size = \"2TiB\"\n");
    let joined = errs.join("\n");
    assert!(
        joined.contains(
            "`max_line` of 10 bytes is out of range\n  hint: use between 1 KiB and 1 GiB"
        ),
        "{joined}"
    );
    assert!(
        joined.contains("`max_size` of 2199023255552 bytes is out of range\n  hint: use between 64 KiB and 1 TiB"),
        "{joined}"
    );
}

#[test]
fn unknown_keys_in_spanned_tables_name_their_table() {
    let errs = errors(
        "[collector.tls]\ncert_file = \"c\"\nkey_file = \"k\"\nca_file = \"x\"\n[output.syslog]\nadress = \"udp://h:514\"\n",
    );
    let joined = errs.join("\n");
    assert_eq!(errs.len(), 2, "{joined}");
    assert!(
        joined.contains("c.toml:4:1: unknown key `ca_file` in [collector.tls]\n  hint: did you mean `cert_file`? valid keys: cert_file, key_file, client_ca_file"),
        "{joined}"
    );
    assert!(
        joined.contains(
            "c.toml:6:1: unknown key `adress` in [output.syslog]\n  hint: did you mean `address`?"
        ),
        "{joined}"
    );
}
