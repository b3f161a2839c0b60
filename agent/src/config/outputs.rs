//! `[output.collector]` and its `tls` table: the address, the token (never
//! quoted back), the spool bound and the timeouts; and `[output.prometheus]`,
//! where `/metrics` listens and the token a scrape needs.

use super::raw::{RawAddresses, RawCollector, RawPrometheus, RawTls};
use super::validate::Validator;
use super::{DEFAULT_SPOOL_MAX, MIN_SPOOL_MAX};
use crate::exporter::{self, PrometheusSettings};
use crate::output::collector::{
    self, AddressOrder, CollectorAddress, CollectorSettings, Secret, TlsSettings, TokenSource,
};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

impl Validator<'_> {
    pub(super) fn collector(&mut self, raw: &Spanned<RawCollector>) -> Option<CollectorSettings> {
        let c = raw.get_ref();
        let table_at = raw.span().start;
        let addresses = self.collector_addresses(c.address.as_ref(), table_at);
        let order = match &c.order {
            None => Some(AddressOrder::InOrder),
            Some(o) => match o.get_ref().as_str() {
                "in_order" => Some(AddressOrder::InOrder),
                "shuffled" => Some(AddressOrder::Shuffled),
                other => {
                    self.error(
                        o,
                        format!("unknown collector order `{other}`"),
                        Some(
                            "write order = \"in_order\" (the first address is preferred) or \"shuffled\" (spread a fleet)"
                                .into(),
                        ),
                    );
                    None
                }
            },
        };
        let token = match (&c.token, &c.token_file) {
            (Some(_), Some(file)) => {
                self.error(
                    file,
                    "`token` and `token_file` are both set in [output.collector]",
                    Some("keep one: token_file keeps the secret out of this file".into()),
                );
                None
            }
            (Some(t), None) if t.get_ref().trim().is_empty() => {
                self.error(
                    t,
                    "`token` is empty",
                    Some("set the agent token the collector expects".into()),
                );
                None
            }
            (Some(t), None) if t.get_ref().trim().len() < collector::MIN_TOKEN_BYTES => {
                self.error(
                    t,
                    format!(
                        "`token` is shorter than {} bytes",
                        collector::MIN_TOKEN_BYTES
                    ),
                    Some("use the longer token the collector gave this agent".into()),
                );
                None
            }
            (Some(t), None) => Some(TokenSource::Inline(Secret::new(t.get_ref().trim()))),
            (None, Some(f)) if f.get_ref().is_empty() => {
                self.error(
                    f,
                    "`token_file` is empty",
                    Some("name the file that holds the token, e.g. \"/etc/hopwatch/token\"".into()),
                );
                None
            }
            (None, Some(f)) => Some(TokenSource::File(PathBuf::from(f.get_ref()))),
            (None, None) => {
                self.error_at(
                    table_at,
                    "[output.collector] needs `token` or `token_file`",
                    Some(
                        "add token_file = \"/etc/hopwatch/token\" (a file only root can read)"
                            .into(),
                    ),
                );
                None
            }
        };
        let spool_max = match &c.spool_max {
            None => Some(DEFAULT_SPOOL_MAX),
            Some(v) => {
                let parsed = v
                    .get_ref()
                    .bytes()
                    .map_err(|e| format!("bad size for `spool_max`: {e}"));
                match parsed {
                    Ok(n) if n < MIN_SPOOL_MAX => {
                        self.error(
                            v,
                            format!("spool_max {n} bytes is too small"),
                            Some("use at least \"4KiB\"; the default is \"64MiB\"".into()),
                        );
                        None
                    }
                    Ok(n) => Some(n),
                    Err(e) => {
                        self.error(
                            v,
                            e,
                            Some("write a size like \"64MiB\", \"512KiB\", \"1GB\"".into()),
                        );
                        None
                    }
                }
            }
        };
        let ack_timeout = self.bounded_duration(
            c.ack_timeout.as_ref(),
            "ack_timeout",
            Duration::from_secs(30),
            (Duration::from_secs(1), Duration::from_secs(3600)),
            "wait between 1s and 1h for an acknowledgement; 30s is usual",
        );
        let backoff_max = self.bounded_duration(
            c.backoff_max.as_ref(),
            "backoff_max",
            Duration::from_secs(5),
            (Duration::from_millis(200), Duration::from_secs(3600)),
            "back off between 200ms and 1h at most; 5s finds a returning collector soon",
        );
        let tls = match &c.tls {
            None => Some(None),
            Some(t) => self.tls(t).map(Some),
        };
        Some(CollectorSettings {
            addresses: addresses?,
            order: order?,
            token: token?,
            tls: tls?,
            spool_max: spool_max?,
            ack_timeout: ack_timeout?,
            backoff_max: backoff_max?,
        })
    }

    /// `address`: one collector or a non-empty list of distinct ones.
    fn collector_addresses(
        &mut self,
        raw: Option<&Spanned<RawAddresses>>,
        table_at: usize,
    ) -> Option<Vec<CollectorAddress>> {
        const EXAMPLE: &str = "address = \"collector.example.net:7000\"";
        let Some(raw) = raw else {
            self.error_at(
                table_at,
                "[output.collector] has no `address`",
                Some(format!("add {EXAMPLE}")),
            );
            return None;
        };
        let list = match raw.get_ref() {
            RawAddresses::One(text) => {
                return match CollectorAddress::parse(text) {
                    Ok(address) => Some(vec![address]),
                    Err(e) => {
                        self.error(raw, e, Some(format!("write {EXAMPLE}")));
                        None
                    }
                };
            }
            RawAddresses::List(list) => list,
        };
        if list.is_empty() {
            self.error(
                raw,
                "`address` lists no collector",
                Some(
                    "list at least one: address = [\"c1.example.net:7000\", \"c2.example.net:7000\"]"
                        .into(),
                ),
            );
            return None;
        }
        let mut addresses: Vec<CollectorAddress> = Vec::new();
        let mut ok = true;
        for (i, entry) in list.iter().enumerate() {
            let text = entry.get_ref();
            let address = match CollectorAddress::parse(text) {
                Ok(address) => address,
                Err(e) => {
                    self.error(
                        entry,
                        format!("`address[{i}]` = \"{text}\": {e}"),
                        Some("write each entry as \"collector.example.net:7000\"".into()),
                    );
                    ok = false;
                    continue;
                }
            };
            let same = |a: &CollectorAddress| {
                a.port == address.port && a.host.eq_ignore_ascii_case(&address.host)
            };
            if let Some(earlier) = addresses.iter().find(|a| same(a)) {
                let first = list
                    .iter()
                    .position(|e| e.get_ref() == &earlier.text)
                    .unwrap_or_default();
                self.error(
                    entry,
                    format!(
                        "`address[{i}]` = \"{text}\" names the same collector as `address[{first}]` = \"{}\"",
                        earlier.text
                    ),
                    Some("list each collector once".into()),
                );
                ok = false;
                continue;
            }
            addresses.push(address);
        }
        ok.then_some(addresses)
    }

    fn tls(&mut self, raw: &Spanned<RawTls>) -> Option<TlsSettings> {
        let t = raw.get_ref();
        let mut ok = true;
        let mut file = |v: &Option<Spanned<String>>, key: &str| -> Option<PathBuf> {
            let v = v.as_ref()?;
            if v.get_ref().is_empty() {
                self.error(
                    v,
                    format!("`{key}` is empty"),
                    Some("name a PEM file, or remove the key".into()),
                );
                ok = false;
            }
            Some(PathBuf::from(v.get_ref()))
        };
        let ca_file = file(&t.ca_file, "ca_file");
        let cert_file = file(&t.cert_file, "cert_file");
        let key_file = file(&t.key_file, "key_file");
        match (&t.cert_file, &t.key_file) {
            (Some(c), None) => {
                self.error(
                    c,
                    "`cert_file` is set without `key_file` in [output.collector.tls]",
                    Some("a client certificate needs its key: set both cert_file and key_file, or neither".into()),
                );
                ok = false;
            }
            (None, Some(k)) => {
                self.error(
                    k,
                    "`key_file` is set without `cert_file` in [output.collector.tls]",
                    Some("a client certificate needs its key: set both cert_file and key_file, or neither".into()),
                );
                ok = false;
            }
            _ => {}
        }
        let server_name = match &t.server_name {
            Some(n) => {
                if rustls::pki_types::ServerName::try_from(n.get_ref().as_str()).is_err() {
                    self.error(
                        n,
                        format!("`server_name` {:?} is no DNS name or IP address", n.get_ref()),
                        Some("the name in the collector's certificate, e.g. \"collector.example.net\"".into()),
                    );
                    ok = false;
                }
                Some(n.get_ref().clone())
            }
            None => None,
        };
        ok.then_some(TlsSettings {
            ca_file,
            cert_file,
            key_file,
            server_name,
        })
    }
}

impl Validator<'_> {
    pub(super) fn prometheus(
        &mut self,
        raw: &Spanned<RawPrometheus>,
    ) -> Option<PrometheusSettings> {
        let p = raw.get_ref();
        let example = format!("listen = \"127.0.0.1:{}\"", exporter::DEFAULT_PORT);
        let listen = match &p.listen {
            None => {
                self.error_at(
                    raw.span().start,
                    "[output.prometheus] has no `listen`",
                    Some(format!(
                        "add {example} (an address of the management VRF in practice)"
                    )),
                );
                None
            }
            Some(v) => {
                let text = v.get_ref().trim();
                match (text.parse::<SocketAddr>(), text.parse::<IpAddr>()) {
                    (Ok(addr), _) => Some(addr),
                    (Err(_), Ok(ip)) => {
                        self.error(
                            v,
                            format!("`listen` {text:?} has no port"),
                            Some(format!(
                                "add one: listen = \"{}\"",
                                SocketAddr::new(ip, exporter::DEFAULT_PORT)
                            )),
                        );
                        None
                    }
                    (Err(e), Err(_)) => {
                        self.error(
                            v,
                            format!("`listen` {text:?} is no IP address and port: {e}"),
                            Some(format!(
                                "write {example}, or \"[::1]:9101\"; names are not resolved"
                            )),
                        );
                        None
                    }
                }
            }
        };
        let token = match &p.token_file {
            None => Some(None),
            Some(f) if f.get_ref().trim().is_empty() => {
                self.error(
                    f,
                    "`token_file` is empty",
                    Some("name the file that holds the scrape token, or remove the key to serve without one".into()),
                );
                None
            }
            Some(f) => Some(Some(TokenSource::File(PathBuf::from(f.get_ref().trim())))),
        };
        Some(PrometheusSettings {
            listen: listen?,
            token: token?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::exporter::PrometheusSettings;
    use crate::output::collector::TokenSource;

    fn prometheus(table: &str) -> Result<Option<PrometheusSettings>, Vec<String>> {
        Config::parse(&format!("[output.prometheus]\n{table}"), "t.toml")
            .map(|c| c.prometheus)
            .map_err(|e| e.diagnostics().iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn prometheus_is_off_unless_its_table_is_there() {
        assert_eq!(Config::parse("", "t.toml").unwrap().prometheus, None);
        let p = prometheus("listen = \"127.0.0.1:9101\"\n")
            .unwrap()
            .unwrap();
        assert_eq!(p.listen, "127.0.0.1:9101".parse().unwrap());
        assert_eq!(p.token, None);
        let p = prometheus("listen = \"[::1]:9101\"\ntoken_file = \"/etc/hopwatch/scrape\"\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            p.token,
            Some(TokenSource::File("/etc/hopwatch/scrape".into()))
        );
    }

    #[test]
    fn a_bad_prometheus_table_is_refused_with_every_error_and_a_hint() {
        let e = prometheus("").unwrap_err();
        assert!(
            e[0].contains("[output.prometheus] has no `listen`"),
            "{e:?}"
        );
        assert!(e[0].contains("127.0.0.1:9101"), "{e:?}");
        let e = prometheus("listen = \"10.0.0.1\"\ntoken_file = \"\"\n").unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].contains("t.toml:2:") && e[0].contains("has no port"),
            "{e:?}"
        );
        assert!(e[0].contains("listen = \"10.0.0.1:9101\""), "{e:?}");
        assert!(e[1].contains("`token_file` is empty"), "{e:?}");
        let e = prometheus("listen = \"localhost:9101\"\n").unwrap_err();
        assert!(e[0].contains("no IP address and port"), "{e:?}");
        let e = prometheus("listen = \"127.0.0.1:9101\"\ntoken = \"x\"\n").unwrap_err();
        assert!(
            e[0].contains("token") && e[0].contains("token_file"),
            "{e:?}"
        );
    }
}
