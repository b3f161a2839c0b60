//! Tokens: the agents' (checked on `hello`) and the API's (checked on every
//! request). Comparisons take the same time whatever the candidate, so a
//! client cannot find a token byte by byte from response times. With no token
//! configured, one is generated on first start and kept under `data_dir`.
//! A token (or a client certificate's name) may be bound to agent names, so
//! that one switch's secret cannot speak for another switch.

pub use hopwatch_wire::Secret;
use hopwatch_wire::diag::Located;
use hopwatch_wire::matcher::InterfaceMatcher;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// The shortest token accepted: anything shorter can be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

/// The file under `data_dir` holding the generated agent token.
pub const AGENT_TOKEN_FILE: &str = "agent-token";
/// The file under `data_dir` holding the generated API token.
pub const API_TOKEN_FILE: &str = "api-token";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read token file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "token file {path} holds no token; put one token per line (lines starting with # are comments)"
    )]
    Empty { path: String },
    #[error("cannot write token file {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read /dev/urandom to generate a token: {0}")]
    Random(#[source] io::Error),
    #[error(
        "token file {path} line {line}: the token is {len} bytes; tokens must be at least {MIN_TOKEN_LEN} bytes (generate one with `head -c 32 /dev/urandom | xxd -p -c 64`)"
    )]
    Short {
        path: String,
        line: usize,
        len: usize,
    },
}

/// `[auth]`: the tokens and the bindings of tokens and certificates to
/// agent names.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// Tokens any agent may use.
    pub agent_tokens: Vec<Secret>,
    pub api_tokens: Vec<Secret>,
    pub agent_tokens_file: Option<Located<PathBuf>>,
    pub api_tokens_file: Option<Located<PathBuf>>,
    /// `agent_tokens` entries `{ token_file, agents }`: tokens only the
    /// named agents may use.
    pub bound_tokens: Vec<BoundTokenFile>,
    /// `[[auth.agent_certs]]`: client certificate names bound to agents.
    pub agent_certs: Vec<AgentCert>,
    /// `api_tokens` entries `{ name, token_file }` or `{ name, token }`:
    /// API tokens whose changes (silences) are signed with a person's or a
    /// tool's name.
    pub named_api_tokens: Vec<NamedApiToken>,
}

/// API tokens with a name.
#[derive(Debug, Clone)]
pub struct NamedApiToken {
    pub name: String,
    pub source: TokenSource,
}

/// Where a named token is.
#[derive(Debug, Clone)]
pub enum TokenSource {
    Inline(Secret),
    /// Every token in the file goes by the name.
    File(Located<PathBuf>),
}

/// What an unnamed API token is called where a name is shown (a silence's
/// author): `token-` and the first 8 hex digits of its SHA-256, stable and
/// telling nothing usable about the token.
pub fn token_tag(token: &Secret) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.expose().as_bytes());
    let hex: String = digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("token-{hex}")
}

/// A token file whose tokens admit only the agents `agents` matches.
#[derive(Debug, Clone)]
pub struct BoundTokenFile {
    pub token_file: Located<PathBuf>,
    pub agents: InterfaceMatcher,
}

/// Agents whose client certificate's CN or DNS name matches `names` may say
/// hello as the agents `agents` matches.
#[derive(Debug, Clone)]
pub struct AgentCert {
    pub names: InterfaceMatcher,
    pub agents: InterfaceMatcher,
}

/// Whether an agent may say hello under the name it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// The token matches no agent token.
    BadToken,
    /// The token or the certificate is valid but admits other agents; why,
    /// naming both sides.
    Unbound(String),
}

/// Agent tokens admitting only the agents `agents` matches.
#[derive(Debug, Clone)]
pub struct BoundTokens {
    pub tokens: Vec<Secret>,
    pub agents: InterfaceMatcher,
    /// Where they came from, for the refusal.
    pub file: String,
}

/// Client certificates whose subject (CN) or DNS name matches `names` may
/// say hello as the agents `agents` matches.
#[derive(Debug, Clone)]
pub struct CertBinding {
    pub names: InterfaceMatcher,
    pub agents: InterfaceMatcher,
}

/// Which side a token admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Agent,
    Api,
}

/// A token made on this start; printed once by the caller.
#[derive(Debug, Clone)]
pub struct GeneratedToken {
    pub kind: TokenKind,
    pub path: PathBuf,
    pub token: Secret,
}

/// Where each side's tokens came from, for the start-up log (never the
/// tokens themselves).
#[derive(Debug, Clone, Default)]
pub struct TokenSources {
    pub agent: Vec<String>,
    pub api: Vec<String>,
    /// Token files others can read, each a sentence for the log.
    pub warnings: Vec<String>,
}

/// The accepted tokens.
#[derive(Debug, Clone)]
pub struct Tokens {
    agent: Vec<Secret>,
    api: Vec<Secret>,
    /// Each API token's name, by the same index.
    api_names: Vec<String>,
    bound: Vec<BoundTokens>,
    certs: Vec<CertBinding>,
}

impl Tokens {
    pub fn new(agent: Vec<Secret>, api: Vec<Secret>) -> Tokens {
        Tokens {
            agent,
            api_names: api.iter().map(token_tag).collect(),
            api,
            bound: Vec::new(),
            certs: Vec::new(),
        }
    }

    /// Collects the configured tokens and the files' ones; a side with none
    /// gets the token kept in `data_dir`, generated now if there is none yet.
    pub fn resolve(
        settings: &AuthSettings,
        data_dir: &Path,
    ) -> Result<(Tokens, Vec<GeneratedToken>, TokenSources), AuthError> {
        let mut generated = Vec::new();
        let mut sources = TokenSources::default();
        let mut side = |kind: TokenKind,
                        listed: &[Secret],
                        file: Option<&Path>,
                        sources: &mut Vec<String>|
         -> Result<Vec<Secret>, AuthError> {
            let mut tokens = listed.to_vec();
            if !listed.is_empty() {
                sources.push("the config".into());
            }
            if let Some(file) = file {
                tokens.extend(read_token_file(file)?);
                sources.push(file.display().to_string());
            }
            let bound_only = match kind {
                TokenKind::Agent => !settings.bound_tokens.is_empty(),
                TokenKind::Api => !settings.named_api_tokens.is_empty(),
            };
            if tokens.is_empty() && !bound_only {
                let name = match kind {
                    TokenKind::Agent => AGENT_TOKEN_FILE,
                    TokenKind::Api => API_TOKEN_FILE,
                };
                let path = data_dir.join(name);
                let (token, fresh) = kept_or_generated(&path)?;
                if fresh {
                    generated.push(GeneratedToken {
                        kind,
                        path: path.clone(),
                        token: token.clone(),
                    });
                }
                sources.push(path.display().to_string());
                tokens.push(token);
            }
            Ok(tokens)
        };
        let agent = side(
            TokenKind::Agent,
            &settings.agent_tokens,
            settings
                .agent_tokens_file
                .as_ref()
                .map(|f| f.value.as_path()),
            &mut sources.agent,
        )?;
        let mut api = side(
            TokenKind::Api,
            &settings.api_tokens,
            settings.api_tokens_file.as_ref().map(|f| f.value.as_path()),
            &mut sources.api,
        )?;
        let mut api_names: Vec<String> = api.iter().map(token_tag).collect();
        for named in &settings.named_api_tokens {
            let tokens = match &named.source {
                TokenSource::Inline(token) => {
                    sources.api.push(format!("the config ({})", named.name));
                    vec![token.clone()]
                }
                TokenSource::File(file) => {
                    sources
                        .api
                        .push(format!("{} ({})", file.value.display(), named.name));
                    read_token_file(&file.value)?
                }
            };
            api_names.extend(tokens.iter().map(|_| named.name.clone()));
            api.extend(tokens);
        }
        let mut bound = Vec::new();
        for b in &settings.bound_tokens {
            bound.push(BoundTokens {
                tokens: read_token_file(&b.token_file.value)?,
                agents: b.agents.clone(),
                file: b.token_file.value.display().to_string(),
            });
            sources.agent.push(format!(
                "{} (for {})",
                b.token_file.value.display(),
                b.agents.patterns().join(", ")
            ));
        }
        for file in settings.token_files() {
            sources.warnings.extend(readable_by_others(file));
        }
        let certs = settings
            .agent_certs
            .iter()
            .map(|c| CertBinding {
                names: c.names.clone(),
                agents: c.agents.clone(),
            })
            .collect();
        Ok((
            Tokens {
                agent,
                api,
                api_names,
                bound,
                certs,
            },
            generated,
            sources,
        ))
    }

    /// Whether `candidate` is an agent token (of any binding).
    pub fn check_agent(&self, candidate: &str) -> bool {
        !matches!(self.admit_agent(candidate, "", &[]), Admission::BadToken)
    }

    /// Whether `token`, and the client certificate's names when
    /// certificates are bound, let an agent say hello as `agent`. Every
    /// token is compared, bound or not, so the time taken tells nothing.
    pub fn admit_agent(&self, token: &str, agent: &str, cert_names: &[String]) -> Admission {
        let free = find(&self.agent, token).is_some();
        let mut bound = None;
        for (i, b) in self.bound.iter().enumerate() {
            if find(&b.tokens, token).is_some() && bound.is_none() {
                bound = Some(i);
            }
        }
        if !free {
            match bound {
                None => return Admission::BadToken,
                Some(i) if !self.bound[i].agents.matches(agent) => {
                    let b = &self.bound[i];
                    return Admission::Unbound(format!(
                        "the token from {} admits only agents matching {}, not {agent:?}: give this agent its own token, or add its name to that token's `agents`",
                        b.file,
                        b.agents.patterns().join(", ")
                    ));
                }
                Some(_) => {}
            }
        }
        if !self.certs.is_empty()
            && !self
                .certs
                .iter()
                .any(|c| c.agents.matches(agent) && cert_names.iter().any(|n| c.names.matches(n)))
        {
            let names = if cert_names.is_empty() {
                "no client certificate".to_string()
            } else {
                let quoted: Vec<String> = cert_names.iter().map(|n| format!("{n:?}")).collect();
                format!("a client certificate for {}", quoted.join(", "))
            };
            return Admission::Unbound(format!(
                "{names} does not admit agent {agent:?}: [[auth.agent_certs]] binds certificate names to the agents they may speak for"
            ));
        }
        Admission::Admitted
    }

    /// The index of the API token `candidate` is, which names its rate
    /// limit bucket.
    pub fn check_api(&self, candidate: &str) -> Option<usize> {
        find(&self.api, candidate)
    }

    /// The name of API token `index` (as [`Tokens::check_api`] gave it):
    /// its configured name, else its [`token_tag`].
    pub fn api_name(&self, index: usize) -> &str {
        self.api_names.get(index).map_or("unknown", String::as_str)
    }
}

impl AuthSettings {
    /// Every token file named, for the checks of their modes and contents.
    pub fn token_files(&self) -> impl Iterator<Item = &Path> {
        let named = self
            .named_api_tokens
            .iter()
            .filter_map(|n| match &n.source {
                TokenSource::File(file) => Some(&file.value),
                TokenSource::Inline(_) => None,
            });
        [&self.agent_tokens_file, &self.api_tokens_file]
            .into_iter()
            .flatten()
            .map(|f| &f.value)
            .chain(self.bound_tokens.iter().map(|b| &b.token_file.value))
            .chain(named)
            .map(PathBuf::as_path)
    }
}

/// Compares against every token, never stopping early, so the time taken
/// tells nothing about which token (if any) matched or how far.
fn find(tokens: &[Secret], candidate: &str) -> Option<usize> {
    let mut found = None;
    for (i, token) in tokens.iter().enumerate() {
        if ct_eq(token.expose().as_bytes(), candidate.as_bytes()) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

/// Equality in time that depends only on the lengths, through `subtle`.
/// Its slice comparison returns at once when the lengths differ, so both
/// sides are padded to the longer one first and the lengths compared apart:
/// a short guess takes as long as a full one.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let padded = |s: &[u8]| {
        let mut v = Vec::with_capacity(len);
        v.extend_from_slice(s);
        v.resize(len, 0);
        v
    };
    let same_bytes = padded(a).ct_eq(&padded(b));
    let same_len = (a.len() as u64).ct_eq(&(b.len() as u64));
    bool::from(same_bytes & same_len)
}

/// One token per line; blank lines and lines starting with `#` skipped. A
/// token shorter than [`MIN_TOKEN_LEN`] is refused, naming its line.
pub fn read_token_file(path: &Path) -> Result<Vec<Secret>, AuthError> {
    let text = fs::read_to_string(path).map_err(|source| AuthError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.len() < MIN_TOKEN_LEN {
            return Err(AuthError::Short {
                path: path.display().to_string(),
                line: i + 1,
                len: line.len(),
            });
        }
        tokens.push(Secret::new(line));
    }
    if tokens.is_empty() {
        return Err(AuthError::Empty {
            path: path.display().to_string(),
        });
    }
    Ok(tokens)
}

/// A warning when users other than the file's owner and group may read the
/// token file `path`.
pub fn readable_by_others(path: &Path) -> Option<String> {
    let mode = fs::metadata(path).ok()?.mode();
    (mode & 0o004 != 0).then(|| {
        format!(
            "token file {} can be read by every user (mode {:o}); restrict it with `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )
    })
}

/// The token in `path`, or a new one written there (mode 0600) when the
/// file does not exist; the flag says which.
fn kept_or_generated(path: &Path) -> Result<(Secret, bool), AuthError> {
    match read_token_file(path) {
        Ok(mut tokens) => return Ok((tokens.swap_remove(0), false)),
        Err(AuthError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let token = generate()?;
    let write_error = |source| AuthError::Write {
        path: path.display().to_string(),
        source,
    };
    // create_new: two collectors starting on one data_dir must not each
    // write a different token.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_error)?;
    file.write_all(format!("{}\n", token.expose()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_error)?;
    Ok((token, true))
}

/// 32 bytes from the kernel's random source, as 64 hex digits.
pub fn generate() -> Result<Secret, AuthError> {
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(AuthError::Random)?;
    Ok(Secret::new(
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hopwatch-auth-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"", b"a"));
        assert!(ct_eq(b"", b""));
        // Padding to the longer side must not make a prefix equal.
        assert!(!ct_eq(b"ab", b"ab\0"));
    }

    #[test]
    fn checks_every_token_of_each_side() {
        let tokens = Tokens::new(
            vec![Secret::new("agent-a")],
            vec![Secret::new("api-1"), Secret::new("api-2")],
        );
        assert!(tokens.check_agent("agent-a"));
        assert!(!tokens.check_agent("api-1"));
        assert_eq!(tokens.check_api("api-2"), Some(1));
        assert_eq!(tokens.check_api("agent-a"), None);
        assert_eq!(tokens.check_api(""), None);
    }

    #[test]
    fn generates_once_then_keeps_with_mode_0600() {
        let dir = temp_dir("gen");
        let (first, generated, sources) = Tokens::resolve(&AuthSettings::default(), &dir).unwrap();
        assert_eq!(generated.len(), 2);
        assert_eq!(
            sources.api,
            vec![dir.join(API_TOKEN_FILE).display().to_string()]
        );
        let api = &generated
            .iter()
            .find(|g| g.kind == TokenKind::Api)
            .unwrap()
            .token;
        assert_eq!(api.expose().len(), 64);
        assert_eq!(first.check_api(api.expose()), Some(0));
        let mode = fs::metadata(dir.join(API_TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, again, _) = Tokens::resolve(&AuthSettings::default(), &dir).unwrap();
        assert!(again.is_empty());
        assert_eq!(second.check_api(api.expose()), Some(0));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn configured_tokens_prevent_generation() {
        let dir = temp_dir("conf");
        fs::write(dir.join("api"), "# ops\nfrom-file-0123456789\n\n").unwrap();
        let settings = AuthSettings {
            agent_tokens: vec![Secret::new("a1-0123456789abcdef")],
            api_tokens_file: Some(Located {
                value: dir.join("api"),
                file: "c.toml".into(),
                line: 1,
                col: 1,
            }),
            ..AuthSettings::default()
        };
        let (tokens, generated, _) = Tokens::resolve(&settings, &dir).unwrap();
        assert!(generated.is_empty());
        assert!(tokens.check_agent("a1-0123456789abcdef"));
        assert_eq!(tokens.check_api("from-file-0123456789"), Some(0));
        assert!(!dir.join(API_TOKEN_FILE).exists());
        fs::write(dir.join("empty"), "# nothing\n").unwrap();
        assert!(matches!(
            read_token_file(&dir.join("empty")),
            Err(AuthError::Empty { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn short_tokens_are_refused_naming_the_file_and_line() {
        let dir = temp_dir("short");
        let path = dir.join("tokens");
        fs::write(&path, "# ops\n0123456789abcdef0123\nabc12\n").unwrap();
        let error = read_token_file(&path).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "token file {} line 3: the token is 5 bytes; tokens must be at least 16 bytes",
                path.display()
            )),
            "{error}"
        );
        assert!(error.contains("/dev/urandom"), "{error}");
        assert!(!error.contains("abc12"), "tokens are never echoed: {error}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn token_files_others_can_read_are_named() {
        let dir = temp_dir("mode");
        let path = dir.join("tokens");
        fs::write(&path, "0123456789abcdef0123\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let warning = readable_by_others(&path).unwrap();
        assert!(warning.contains("mode 644"), "{warning}");
        assert!(
            warning.contains(&format!("chmod 600 {}", path.display())),
            "{warning}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(readable_by_others(&path), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn named_api_tokens_answer_by_name_and_unnamed_ones_by_their_tag() {
        let dir = temp_dir("named");
        let path = dir.join("alice");
        fs::write(&path, "alice-token-0123456789\nalice-token-9876543210\n").unwrap();
        let located = |value: PathBuf| Located {
            value,
            file: "c.toml".into(),
            line: 1,
            col: 1,
        };
        let settings = AuthSettings {
            api_tokens: vec![Secret::new("plain-token-0123456789")],
            named_api_tokens: vec![
                NamedApiToken {
                    name: "alice".into(),
                    source: TokenSource::File(located(path.clone())),
                },
                NamedApiToken {
                    name: "bot".into(),
                    source: TokenSource::Inline(Secret::new("bot-token-0123456789")),
                },
            ],
            ..AuthSettings::default()
        };
        let (tokens, generated, sources) = Tokens::resolve(&settings, &dir).unwrap();
        assert!(
            generated.iter().all(|g| g.kind != TokenKind::Api),
            "named tokens are tokens"
        );
        let name = |t: &str| tokens.check_api(t).map(|i| tokens.api_name(i).to_string());
        assert_eq!(name("alice-token-0123456789").as_deref(), Some("alice"));
        assert_eq!(name("alice-token-9876543210").as_deref(), Some("alice"));
        assert_eq!(name("bot-token-0123456789").as_deref(), Some("bot"));
        let tag = name("plain-token-0123456789").unwrap();
        assert_eq!(tag, token_tag(&Secret::new("plain-token-0123456789")));
        // SHA-256("plain-token-0123456789") begins with these 4 bytes.
        assert_eq!(
            tag,
            format!("token-{}", &sha256_hex("plain-token-0123456789")[..8])
        );
        assert!(!tag.contains("plain"));
        assert!(
            sources.api.iter().any(|s| s.contains("(alice)")),
            "{:?}",
            sources.api
        );
        // Only named ones: still nothing generated.
        let only = AuthSettings {
            named_api_tokens: settings.named_api_tokens[1..].to_vec(),
            ..AuthSettings::default()
        };
        let (tokens, generated, _) = Tokens::resolve(&only, &dir).unwrap();
        assert!(generated.iter().all(|g| g.kind != TokenKind::Api));
        assert_eq!(tokens.check_api("bot-token-0123456789"), Some(0));
        assert!(!dir.join(API_TOKEN_FILE).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// SHA-256 as `sha256sum` prints it, from the system's own tool.
    fn sha256_hex(text: &str) -> String {
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    }

    #[test]
    fn bound_tokens_admit_only_their_agents() {
        use super::BoundTokenFile;
        let dir = temp_dir("bound");
        let path = dir.join("leaf1.token");
        fs::write(&path, "leaf1-token-0123456789\n").unwrap();
        let settings = AuthSettings {
            agent_tokens: vec![Secret::new("shared-token-0123456789")],
            bound_tokens: vec![BoundTokenFile {
                token_file: Located {
                    value: path.clone(),
                    file: "c.toml".into(),
                    line: 1,
                    col: 1,
                },
                agents: InterfaceMatcher::new(&["leaf1"]).unwrap(),
            }],
            ..AuthSettings::default()
        };
        let (tokens, _, _) = Tokens::resolve(&settings, &dir).unwrap();
        assert_eq!(
            tokens.admit_agent("leaf1-token-0123456789", "leaf1", &[]),
            Admission::Admitted
        );
        match tokens.admit_agent("leaf1-token-0123456789", "leaf2", &[]) {
            Admission::Unbound(why) => {
                assert!(why.contains("leaf1") && why.contains("\"leaf2\""), "{why}");
                assert!(why.contains(&path.display().to_string()), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            tokens.admit_agent("shared-token-0123456789", "leaf2", &[]),
            Admission::Admitted
        );
        assert_eq!(
            tokens.admit_agent("nope-0123456789abcdef", "leaf1", &[]),
            Admission::BadToken
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
