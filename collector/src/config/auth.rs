//! `[auth]` of `collector.toml`: tokens, inline or in files, the token
//! files bound to agent names and the client certificate names bound the
//! same way. Apart from the rest of the validator because a token is checked
//! without ever being quoted, and a binding is read from plain TOML values.

use super::{AgentCert, AuthSettings, BoundTokenFile, RawAuth, Secret, Validator};
use hopwatch_wire::matcher::InterfaceMatcher;
use std::path::PathBuf;
use toml::Spanned;

impl Validator<'_> {
    fn tokens(&mut self, list: &Option<Spanned<Vec<Spanned<String>>>>, key: &str) -> Vec<Secret> {
        let Some(list) = list else {
            return Vec::new();
        };
        let mut tokens = Vec::new();
        for token in list.get_ref() {
            if let Some(t) = self.token(token, key) {
                tokens.push(t);
            }
        }
        tokens
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
                Some(Secret(t.clone()))
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
        let api_tokens = self.tokens(&raw.api_tokens, "api_tokens");
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::errors;

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
