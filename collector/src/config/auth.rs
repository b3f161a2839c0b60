//! `[auth]` of `collector.toml`: tokens, inline or in files, the token
//! files bound to agent names and the client certificate names bound the
//! same way. Apart from the rest of the validator because a token is checked
//! without ever being quoted, and a binding is read from plain TOML values.

use super::raw::RawAuth;
use super::validate::Validator;
use crate::auth::{AgentCert, AuthSettings, BoundTokenFile, NamedApiToken, Secret, TokenSource};
use hopwatch_wire::matcher::InterfaceMatcher;
use std::path::PathBuf;
use toml::Spanned;

/// The longest API token name: it is written into every silence made with
/// the token.
pub const MAX_TOKEN_NAME: usize = 64;

impl Validator<'_> {
    /// `api_tokens`: plain tokens, and tables naming a token or a token
    /// file.
    fn api_tokens(&mut self, raw: &RawAuth) -> (Vec<Secret>, Vec<NamedApiToken>) {
        let (mut plain, mut named) = (Vec::new(), Vec::<NamedApiToken>::new());
        let hint = "name a token: { name = \"alice\", token_file = \"/etc/hopwatch/api-alice\" }";
        for entry in raw.api_tokens.iter().flat_map(|l| l.get_ref()) {
            let table = match entry.get_ref() {
                toml::Value::String(t) => {
                    let spanned = Spanned::new(entry.span(), t.clone());
                    plain.extend(self.token(&spanned, "api_tokens"));
                    continue;
                }
                toml::Value::Table(table) => table,
                _ => {
                    self.error(
                        entry,
                        "an `api_tokens` entry is a token or a table { name, token_file } or { name, token }",
                        Some(hint.into()),
                    );
                    continue;
                }
            };
            if let Some(k) = table
                .keys()
                .find(|k| !["name", "token", "token_file"].contains(&k.as_str()))
            {
                self.error(
                    entry,
                    format!("unknown key `{k}` in an `api_tokens` entry"),
                    Some("valid keys: name, token, token_file".into()),
                );
            }
            let name = match table.get("name").and_then(toml::Value::as_str) {
                Some(n) if !token_name_ok(n) => {
                    self.error(
                        entry,
                        format!("bad API token name {n:?}"),
                        Some(format!(
                            "a name is 1 to {MAX_TOKEN_NAME} letters, digits, `.`, `_`, `@` or `-`, not starting with `token-` (the tag unnamed tokens go by)"
                        )),
                    );
                    None
                }
                Some(n) if named.iter().any(|t| t.name == n) => {
                    self.error(
                        entry,
                        format!("the API token name {n:?} is given twice"),
                        Some("give each named entry its own name; a token file may hold several tokens of one name".into()),
                    );
                    None
                }
                Some(n) => Some(n.to_string()),
                None => {
                    self.error(
                        entry,
                        "this entry needs `name`, who the token's changes are made by",
                        Some(hint.into()),
                    );
                    None
                }
            };
            let source = match (
                table.get("token").and_then(toml::Value::as_str),
                table.get("token_file").and_then(toml::Value::as_str),
            ) {
                (Some(t), None) => self
                    .token(&Spanned::new(entry.span(), t.to_string()), "api_tokens")
                    .map(TokenSource::Inline),
                (None, Some(f)) if !f.trim().is_empty() => Some(TokenSource::File(
                    self.locate_span(entry.span().start, PathBuf::from(f)),
                )),
                (Some(_), Some(_)) => {
                    self.error(
                        entry,
                        "this entry has both `token` and `token_file`",
                        Some("keep one of them".into()),
                    );
                    None
                }
                _ => {
                    self.error(
                        entry,
                        "this entry needs `token_file` (or `token`), a non-empty string",
                        Some(hint.into()),
                    );
                    None
                }
            };
            if let (Some(name), Some(source)) = (name, source) {
                named.push(NamedApiToken { name, source });
            }
        }
        (plain, named)
    }

    fn token(&mut self, token: &Spanned<String>, key: &str) -> Option<Secret> {
        {
            let t = token.get_ref();
            if t.len() < crate::auth::MIN_TOKEN_LEN && !t.is_empty() {
                self.error(
                    token,
                    format!(
                        "a token in `{key}` is {} bytes; tokens must be at least {} bytes",
                        t.len(),
                        crate::auth::MIN_TOKEN_LEN
                    ),
                    Some("generate one with `head -c 32 /dev/urandom | xxd -p -c 64`".into()),
                );
                None
            } else if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                // The message never quotes the token: the output may be
                // pasted into a ticket.
                self.error(
                    token,
                    format!("a token in `{key}` is empty or holds whitespace"),
                    Some("tokens are printable characters without spaces; generate one with `head -c 32 /dev/urandom | xxd -p -c 64`".into()),
                );
                None
            } else {
                Some(Secret::new(t.clone()))
            }
        }
    }

    /// A list of agent-name globs at `at`.
    fn globs(
        &mut self,
        at: &Spanned<toml::Value>,
        value: Option<&toml::Value>,
        key: &str,
    ) -> Option<InterfaceMatcher> {
        let hint = format!("`{key}` is a list of names or globs such as [\"leaf1\", \"spine*\"]");
        let list: Option<Vec<&str>> = match value {
            Some(toml::Value::Array(items)) if !items.is_empty() => {
                items.iter().map(toml::Value::as_str).collect()
            }
            _ => None,
        };
        let Some(list) = list else {
            self.error(
                at,
                format!("this entry needs `{key}`, a non-empty list of strings"),
                Some(hint),
            );
            return None;
        };
        match InterfaceMatcher::new(&list) {
            Ok(m) => Some(m),
            Err(e) => {
                self.error(
                    at,
                    format!("bad glob {:?} in `{key}`: {}", e.pattern, e.reason),
                    Some(hint),
                );
                None
            }
        }
    }

    /// `agent_tokens`: tokens any agent may use, and tables binding a token
    /// file to the agents that may use it.
    fn agent_tokens(&mut self, raw: &RawAuth) -> (Vec<Secret>, Vec<BoundTokenFile>) {
        let (mut free, mut bound) = (Vec::new(), Vec::new());
        for entry in raw.agent_tokens.iter().flat_map(|l| l.get_ref()) {
            match entry.get_ref() {
                toml::Value::String(t) => {
                    let spanned = Spanned::new(entry.span(), t.clone());
                    free.extend(self.token(&spanned, "agent_tokens"));
                }
                toml::Value::Table(table) => {
                    let unknown: Vec<&String> = table
                        .keys()
                        .filter(|k| *k != "token_file" && *k != "agents")
                        .collect();
                    if let Some(k) = unknown.first() {
                        self.error(
                            entry,
                            format!("unknown key `{k}` in an `agent_tokens` entry"),
                            Some("valid keys: token_file, agents".into()),
                        );
                    }
                    let agents = self.globs(entry, table.get("agents"), "agents");
                    let file = match table.get("token_file").and_then(toml::Value::as_str) {
                        Some(f) if !f.trim().is_empty() => {
                            Some(self.locate_span(entry.span().start, PathBuf::from(f)))
                        }
                        _ => {
                            self.error(entry, "this entry needs `token_file`, the file holding the token", Some("bind a token to agents: { token_file = \"/etc/hopwatch/tokens/leaf1\", agents = [\"leaf1\"] }".into()));
                            None
                        }
                    };
                    if let (Some(token_file), Some(agents)) = (file, agents) {
                        bound.push(BoundTokenFile { token_file, agents });
                    }
                }
                _ => self.error(
                    entry,
                    "an `agent_tokens` entry is a token or a table { token_file, agents }",
                    None,
                ),
            }
        }
        (free, bound)
    }

    /// `[[auth.agent_certs]]`: certificate names bound to agents.
    fn agent_certs(&mut self, raw: &RawAuth) -> Vec<AgentCert> {
        let mut certs = Vec::new();
        for entry in raw.agent_certs.iter().flat_map(|l| l.get_ref()) {
            let Some(table) = entry.get_ref().as_table() else {
                self.error(
                    entry,
                    "an `agent_certs` entry is a table { names, agents }",
                    None,
                );
                continue;
            };
            if let Some(k) = table.keys().find(|k| *k != "names" && *k != "agents") {
                self.error(
                    entry,
                    format!("unknown key `{k}` in an `agent_certs` entry"),
                    Some("valid keys: names, agents".into()),
                );
            }
            let names = self.globs(entry, table.get("names"), "names");
            let agents = self.globs(entry, table.get("agents"), "agents");
            if let (Some(names), Some(agents)) = (names, agents) {
                certs.push(AgentCert { names, agents });
            }
        }
        certs
    }

    pub(super) fn auth(&mut self, raw: &RawAuth) -> AuthSettings {
        let (agent_tokens, bound_tokens) = self.agent_tokens(raw);
        let agent_certs = self.agent_certs(raw);
        let (api_tokens, named_api_tokens) = self.api_tokens(raw);
        let agent_tokens_file = raw
            .agent_tokens_file
            .as_ref()
            .and_then(|v| self.path(v, "agent_tokens_file"));
        let api_tokens_file = raw
            .api_tokens_file
            .as_ref()
            .and_then(|v| self.path(v, "api_tokens_file"));
        AuthSettings {
            agent_tokens,
            api_tokens,
            agent_tokens_file,
            api_tokens_file,
            bound_tokens,
            agent_certs,
            named_api_tokens,
        }
    }
}

/// Whether `name` may name an API token: short, plain, and never taken for
/// an unnamed token's tag.
pub fn token_name_ok(name: &str) -> bool {
    (1..=MAX_TOKEN_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
        && !name.starts_with("token-")
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::errors;
    use crate::auth::TokenSource;

    #[test]
    fn api_tokens_may_be_named_and_plain_ones_stay_valid() {
        let c = Config::parse(
            r#"
[auth]
api_tokens = ["plain-token-0123456789", { name = "alice", token_file = "/etc/hopwatch/alice" }, { name = "ci.bot@dc-1", token = "bot-token-0123456789" }]
"#,
            "c.toml",
        )
        .unwrap();
        assert_eq!(c.auth.api_tokens.len(), 1);
        let named: Vec<&str> = c
            .auth
            .named_api_tokens
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(named, ["alice", "ci.bot@dc-1"]);
        assert!(
            matches!(&c.auth.named_api_tokens[0].source, TokenSource::File(f) if f.value.to_str() == Some("/etc/hopwatch/alice") && f.line == 3)
        );
        assert!(
            matches!(&c.auth.named_api_tokens[1].source, TokenSource::Inline(t) if t.expose() == "bot-token-0123456789")
        );
        let errs = errors(
            r#"[auth]
api_tokens = [{ token_file = "a" }, { name = "token-1234", token_file = "a" }, { name = "bob", token = "short" }, { name = "eve", token = "eve-token-0123456789", token_file = "b" }, { name = "x", role = "admin", token_file = "c" }, { name = "x", token_file = "d" }, { name = "carol" }, 7]
"#,
        );
        let joined = errs.join(
            "
",
        );
        for expected in [
            "c.toml:2:15: this entry needs `name`",
            "c.toml:2:37: bad API token name \"token-1234\"",
            "c.toml:2:80: a token in `api_tokens` is 5 bytes",
            "c.toml:2:115: this entry has both `token` and `token_file`",
            "c.toml:2:183: unknown key `role` in an `api_tokens` entry",
            "c.toml:2:233: the API token name \"x\" is given twice",
            "c.toml:2:267: this entry needs `token_file` (or `token`)",
            "c.toml:2:287: an `api_tokens` entry is a token or a table",
        ] {
            assert!(joined.contains(expected), "{expected}\n{joined}");
        }
        assert!(
            !joined.contains("short\""),
            "tokens are never echoed: {joined}"
        );
    }

    #[test]
    fn agent_bindings_and_short_tokens_are_checked() {
        let errs = errors(
            r#"
[collector]
hello_timeout = "1h"
max_pending = 0
[auth]
agent_tokens = ["short", { agents = ["leaf1"] }, { token_file = "t", agents = [] }, { token_file = "t", agents = ["leaf["] }]
[[auth.agent_certs]]
names = ["leaf1"]
agents = ["leaf1"]
"#,
        );
        let joined = errs.join("\n");
        for expected in [
            "c.toml:3:17: `hello_timeout` \"1h\" is out of range",
            "c.toml:4:15: `max_pending` 0 is out of range",
            "c.toml:6:17: a token in `agent_tokens` is 5 bytes; tokens must be at least 16 bytes",
            "c.toml:6:26: this entry needs `token_file`",
            "c.toml:6:50: this entry needs `agents`, a non-empty list of strings",
            "c.toml:6:85: bad glob \"leaf[\" in `agents`",
        ] {
            assert!(joined.contains(expected), "{expected}\n{joined}");
        }
        assert!(
            !joined.contains("short\""),
            "tokens are never echoed: {joined}"
        );
        let errs = errors("[[auth.agent_certs]]\nnames = [\"leaf1\"]\nagents = [\"leaf1\"]\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("`agent_certs` binds client certificates, but agents present none"),
            "{errs:?}"
        );
    }
}
