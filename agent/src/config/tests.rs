//! The validator's behaviour on whole config texts: defaults, bounds, and
//! mistakes located with their hints.

use super::*;
use crate::output::collector::{AddressOrder, CollectorSettings, Secret, TokenSource};
use std::time::Duration;

#[test]
fn sizes_parse_in_binary_and_decimal_units() {
    assert_eq!(parse_size("64MiB"), Ok(64 << 20));
    assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
    assert_eq!(parse_size("512kib"), Ok(512 << 10));
    assert_eq!(parse_size("1GiB"), Ok(1 << 30));
    assert_eq!(parse_size("1.5KiB"), Ok(1536));
    assert_eq!(parse_size("10MB"), Ok(10_000_000));
    assert_eq!(parse_size("2KB"), Ok(2_000));
    assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
    assert_eq!(parse_size("4096"), Ok(4096));
    assert_eq!(parse_size("100B"), Ok(100));
    for bad in [
        "",
        "MiB",
        "12 parsecs",
        "1.2.3MiB",
        "0.3B",
        "-5MiB",
        "99999999999GiB",
    ] {
        assert!(parse_size(bad).is_err(), "{bad}");
    }
}

#[test]
fn durations_from_the_file_are_bounded() {
    let errors = |text: &str| match Config::parse(text, "t.toml") {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics().iter().map(|d| d.to_string()).collect(),
    };
    let rule = "[[rule]]\nname = \"r\"\nwhen = \"increase(tx_errors[5s]) > 3\"\n";
    let e = errors("[agent]\nheartbeat = \"10000000000y\"\n");
    assert!(e.len() == 1 && e[0].contains("longer than 1h"), "{e:?}");
    let e = errors(&format!("{rule}for = \"10000000000y\"\n"));
    assert!(e.len() == 1 && e[0].contains("`for`"), "{e:?}");
    assert!(errors(&format!("{rule}for = \"7d\"\n")).is_empty());
    assert!(errors("[agent]\nheartbeat = \"1h\"\n").is_empty());
}

fn collector(table: &str) -> Result<Option<CollectorSettings>, Vec<String>> {
    Config::parse(&format!("[output.collector]\n{table}"), "t.toml")
        .map(|c| c.collector)
        .map_err(|e| e.diagnostics().iter().map(|d| d.to_string()).collect())
}

#[test]
fn a_collector_address_list_keeps_its_order_and_the_order_key() {
    let c = collector(
        "address = [\"c1.example.net:7000\", \"c2.example.net\", \"[2001:db8::5]:7001\"]\norder = \"shuffled\"\ntoken = \"s3cret-0123456789ab\"\n",
    )
    .unwrap()
    .unwrap();
    let listed: Vec<(&str, &str, u16)> = c
        .addresses
        .iter()
        .map(|a| (a.text.as_str(), a.host.as_str(), a.port))
        .collect();
    assert_eq!(
        listed,
        [
            ("c1.example.net:7000", "c1.example.net", 7000),
            ("c2.example.net", "c2.example.net", 7000),
            ("[2001:db8::5]:7001", "2001:db8::5", 7001),
        ]
    );
    assert_eq!(c.order, AddressOrder::Shuffled);
    let c = collector(
        "address = [\"c1:7000\"]\norder = \"in_order\"\ntoken = \"s3cret-0123456789ab\"\n",
    )
    .unwrap()
    .unwrap();
    assert_eq!((c.addresses.len(), c.order), (1, AddressOrder::InOrder));
}

#[test]
fn bad_collector_address_lists_are_named_at_their_entry_with_a_hint() {
    let token = "token = \"s3cret-0123456789ab\"\n";
    let e = collector(&format!("address = []\n{token}")).unwrap_err();
    assert!(
        e.len() == 1
            && e[0].starts_with("t.toml:2:11:")
            && e[0].contains("lists no collector")
            && e[0].contains("c2.example.net:7000"),
        "{e:?}"
    );
    // Every bad entry at once, each by its index and text, at its column.
    let e = collector(&format!(
        "address = [\"c1:7000\", \"tcp://c2:7000\", \"c3:0\"]\n{token}"
    ))
    .unwrap_err();
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("t.toml:2:23:")
            && e[0].contains("`address[1]` = \"tcp://c2:7000\"")
            && e[0].contains("has a scheme"),
        "{e:?}"
    );
    assert!(e[1].contains("`address[2]` = \"c3:0\""), "{e:?}");
    let e = collector(&format!(
        "address = [\"c1:7000\", \"c2:7000\", \"C1:7000\"]\n{token}"
    ))
    .unwrap_err();
    assert!(
        e.len() == 1
            && e[0].starts_with("t.toml:2:34:")
            && e[0].contains(
                "`address[2]` = \"C1:7000\" names the same collector as `address[0]` = \"c1:7000\""
            )
            && e[0].contains("list each collector once"),
        "{e:?}"
    );
    let e = collector(&format!("address = 7000\n{token}")).unwrap_err();
    assert!(e[0].contains("a collector address like"), "{e:?}");
    let e = collector(&format!(
        "address = \"c1:7000\"\norder = \"random\"\n{token}"
    ))
    .unwrap_err();
    assert!(
        e.len() == 1
            && e[0].contains("unknown collector order `random`")
            && e[0].contains("\"shuffled\""),
        "{e:?}"
    );
}

#[test]
fn a_collector_table_validates_with_defaults() {
    let c = collector("address = \"col.example.net\"\ntoken = \"s3cret-0123456789ab\"\n")
        .unwrap()
        .unwrap();
    assert_eq!(
        (c.addresses[0].host.as_str(), c.addresses[0].port),
        ("col.example.net", 7000)
    );
    assert_eq!(c.addresses.len(), 1);
    assert_eq!(c.order, AddressOrder::InOrder);
    assert_eq!(
        c.token,
        TokenSource::Inline(Secret::new("s3cret-0123456789ab"))
    );
    assert_eq!(c.spool_max, DEFAULT_SPOOL_MAX);
    assert_eq!(c.ack_timeout, Duration::from_secs(30));
    assert_eq!(c.backoff_max, Duration::from_secs(5));
    assert!(c.tls.is_none());
    assert!(
        !format!("{c:?}").contains("s3cret-0123456789ab"),
        "Debug hides the token"
    );

    let c = collector(
        "address = \"10.0.0.5:7443\"\ntoken_file = \"/etc/hopwatch/token\"\nspool_max = \"1MB\"\nack_timeout = \"5s\"\nbackoff_max = \"2s\"\n[output.collector.tls]\nca_file = \"/etc/hopwatch/ca.pem\"\nserver_name = \"collector.example.net\"\n",
    )
    .unwrap()
    .unwrap();
    assert_eq!(c.token, TokenSource::File("/etc/hopwatch/token".into()));
    assert_eq!(c.spool_max, 1_000_000);
    assert_eq!(c.backoff_max, Duration::from_secs(2));
    let tls = c.tls.unwrap();
    assert_eq!(tls.ca_file, Some("/etc/hopwatch/ca.pem".into()));
    assert_eq!(tls.server_name.as_deref(), Some("collector.example.net"));
    assert_eq!(tls.cert_file, None);

    let c = collector("address = \"c:1\"\ntoken = \"t-0123456789abcdef\"\nspool_max = 65536\n")
        .unwrap()
        .unwrap();
    assert_eq!(c.spool_max, 65536);
}

#[test]
fn collector_mistakes_are_located_and_name_both_keys() {
    let errors = collector(
        "address = \"tcp://c:7000\"\ntoken = \"s3cret\"\ntoken_file = \"/t\"\nspool_max = \"64 parsecs\"\nack_timeout = \"0s\"\ntoken_fil = \"x\"\n[output.collector.tls]\ncert_file = \"/c.pem\"\nserver_name = \"not a name\"\n",
    )
    .unwrap_err();
    let all = errors.join("\n");
    assert!(!all.contains("s3cret"), "{all}");
    for (at, words) in [
        ("t.toml:2:11", "has a scheme"),
        ("t.toml:4:14", "`token` and `token_file` are both set"),
        ("t.toml:5:13", "unknown unit `parsecs`"),
        ("t.toml:6:15", "ack_timeout \"0s\" is out of range"),
        ("t.toml:7:1", "unknown key `token_fil`"),
        ("t.toml:9:13", "`cert_file` is set without `key_file`"),
        ("t.toml:10:15", "is no DNS name"),
    ] {
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(at) && e.contains(words)),
            "no {at} {words:?} in:\n{all}"
        );
    }
    assert!(all.contains("did you mean `token_file`"), "{all}");

    let errors = collector("spool_max = \"1KiB\"\n").unwrap_err();
    let all = errors.join("\n");
    assert!(all.contains("has no `address`"), "{all}");
    assert!(all.contains("needs `token` or `token_file`"), "{all}");
    assert!(all.contains("too small"), "{all}");
}

#[test]
fn spool_max_reads_sizes_as_the_shared_grammar_does() {
    for (text, expected) in hopwatch_wire::size::SIZE_CASES {
        let got = collector(&format!(
            "address = \"c:1\"\ntoken = \"t-0123456789abcdef\"\nspool_max = {text:?}\n"
        ));
        match expected {
            Some(n) if *n >= MIN_SPOOL_MAX => {
                assert_eq!(got.unwrap().unwrap().spool_max, *n, "{text:?}")
            }
            Some(_) => {
                let e = got.unwrap_err();
                assert!(
                    e.len() == 1 && e[0].contains("too small"),
                    "{text:?}: {e:?}"
                );
            }
            None => {
                let e = got.unwrap_err();
                assert!(
                    e.len() == 1 && e[0].contains("bad size for `spool_max`"),
                    "{text:?}: {e:?}"
                );
            }
        }
    }
}

#[test]
fn nx_os_is_polled_every_10s_unless_set_and_never_below_1s() {
    let parse = |text: &str| Config::parse(text, "t.toml");
    let errors = |text: &str| match parse(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics().iter().map(|d| d.to_string()).collect(),
    };
    let socket =
        std::env::temp_dir().join(format!("hopwatch-interval-{}.sock", std::process::id()));
    std::fs::write(&socket, "").unwrap();
    let auto_here = format!(
        "[agent]\nnxapi_socket = {:?}\n",
        socket.display().to_string()
    );
    let absent = "[agent]\nnxapi_socket = \"/nonexistent/nxapi.sock\"\n";
    let interval = |text: &str| parse(text).unwrap().agent.interval;
    assert_eq!(interval(absent), Duration::from_secs(1));
    assert_eq!(
        interval("[agent]\nsource = \"procfs\"\n"),
        Duration::from_secs(1)
    );
    assert_eq!(
        interval("[agent]\nsource = \"nxapi\"\n"),
        Duration::from_secs(10)
    );
    assert_eq!(interval(&auto_here), Duration::from_secs(10));
    assert_eq!(
        interval(&format!("{auto_here}interval = \"30s\"\n")),
        Duration::from_secs(30)
    );
    // A rule window the default allows elsewhere stays valid on NX-OS, so the
    // embedded config and a file written for Linux both load there.
    let rule = "[[rule]]\nname = \"r\"\nwhen = \"increase(tx_errors[5s]) > 3\"\n";
    assert!(errors(&format!("{auto_here}{rule}")).is_empty());

    // Below 1 s is refused on NX-OS only, naming the value and the way out.
    let e = errors("[agent]\nsource = \"nxapi\"\ninterval = \"500ms\"\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("t.toml:3:12")
            && e[0].contains("\"500ms\" is shorter than 1s")
            && e[0].contains("use 10s"),
        "{e:?}"
    );
    assert_eq!(
        errors(&format!("{auto_here}interval = \"999ms\"\n")).len(),
        1
    );
    assert!(errors("[agent]\nsource = \"procfs\"\ninterval = \"500ms\"\n").is_empty());

    // Under 5 s on NX-OS is allowed, with a warning that says why.
    let warning = |text: &str| parse(text).unwrap().agent.interval_warning();
    let w = warning(&format!("{auto_here}interval = \"2s\"\n")).expect("a warning");
    assert!(
        w.contains("[agent] interval 2s") && w.contains("VSH") && w.contains("5s"),
        "{w}"
    );
    assert_eq!(warning(&format!("{auto_here}interval = \"5s\"\n")), None);
    assert_eq!(warning(&auto_here), None);
    assert_eq!(
        warning("[agent]\nsource = \"procfs\"\ninterval = \"2s\"\n"),
        None
    );
    std::fs::remove_file(&socket).unwrap();
}

#[test]
fn memory_limit_is_a_size_with_a_default_and_a_floor() {
    let limit = |text: &str| {
        Config::parse(text, "t.toml")
            .map(|c| c.agent.memory_limit)
            .map_err(|e| e.to_string())
    };
    assert_eq!(limit(""), Ok(crate::memory::DEFAULT_LIMIT));
    assert_eq!(limit("[agent]\nmemory_limit = \"64MiB\"\n"), Ok(64 << 20));
    assert_eq!(limit("[agent]\nmemory_limit = \"1.5 GiB\"\n"), Ok(3 << 29));
    assert_eq!(limit("[agent]\nmemory_limit = 1048576\n"), Ok(1 << 20));
    assert_eq!(limit("[agent]\nmemory_limit = \"64KiB\"\n"), Ok(64 << 10));
    assert!(limit("[agent]\nmemory_limit = \"63KiB\"\n").is_err());
    let e = limit("[agent]\nmemory_limit = \"64\"\n").unwrap_err();
    assert!(e.contains("t.toml:2:16"), "{e}");
    assert!(e.contains("memory_limit 64 bytes is too small"), "{e}");
    assert!(e.contains("at least \"64KiB\""), "{e}");
    let e = limit("[agent]\nmemory_limit = \"64 parsecs\"\n").unwrap_err();
    assert!(e.contains("bad size for `memory_limit`"), "{e}");
    let e = limit("[agent]\nmemory_limt = \"64MiB\"\n").unwrap_err();
    assert!(e.contains("memory_limit"), "did you mean: {e}");
}
