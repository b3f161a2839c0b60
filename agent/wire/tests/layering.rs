//! No module cycles in the agent, the collector or this crate. A cycle
//! between top-level modules (`config → output → trace → config`) means no
//! module can be read, tested or moved without the others; so every crate's
//! `src/` tree is read here, the graph of its top-level modules is built
//! from `crate::…` and `super::…` paths, and a cycle fails naming every step
//! and the file that makes it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A crate's top-level modules and, for each edge, the first file making it.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// The source with comments, strings and character literals blanked, so a
/// path in a doc comment or a message is no dependency.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(b' ');
        } else if b[i] == b'r'
            && (rest.starts_with(b"r\"") || rest.starts_with(b"r#"))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            if rest.get(1 + hashes) != Some(&b'"') {
                // A raw identifier (`r#type`).
                out.push(b[i]);
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            i += 2 + hashes;
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.extend_from_slice(b"\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.extend_from_slice(b"\"\"");
        } else if b[i] == b'\'' {
            // A character literal (`'x'`, `'\n'`, `'\u{1F600}'`), or a
            // lifetime, which is kept.
            let end = if rest.get(1) == Some(&b'\\') {
                rest.iter().skip(2).position(|&c| c == b'\'').map(|p| p + 2)
            } else {
                let len = std::str::from_utf8(&rest[1..])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
                (rest.get(1 + len) == Some(&b'\'')).then_some(1 + len)
            };
            match end {
                Some(end) => {
                    i += end + 1;
                    out.extend_from_slice(b"' '");
                }
                None => {
                    out.push(b'\'');
                    i += 1;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    Path,
    Open,
    Close,
    Comma,
    Semi,
    Other,
}

fn tokens(code: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c.is_alphabetic() || c == '_' {
            let mut end = at + c.len_utf8();
            while let Some(&(i, n)) = chars.peek() {
                if !(n.is_alphanumeric() || n == '_') {
                    break;
                }
                end = i + n.len_utf8();
                chars.next();
            }
            out.push(Token::Ident(code[at..end].to_string()));
        } else if c == ':' && chars.peek().map(|&(_, n)| n) == Some(':') {
            chars.next();
            out.push(Token::Path);
        } else if !c.is_whitespace() {
            out.push(match c {
                '{' => Token::Open,
                '}' => Token::Close,
                ',' => Token::Comma,
                ';' => Token::Semi,
                _ => Token::Other,
            });
        }
    }
    out
}

/// The first segments a path continues with after `at` (a `::`): one name,
/// or each item's first name in a `{…}` group.
fn first_segments(tokens: &[Token], at: usize) -> Vec<&str> {
    match tokens.get(at + 1) {
        Some(Token::Ident(name)) => vec![name.as_str()],
        Some(Token::Open) => {
            let mut names = Vec::new();
            let mut depth = 0;
            let mut item_start = true;
            for t in &tokens[at + 1..] {
                match t {
                    Token::Open => {
                        depth += 1;
                        item_start = depth == 1;
                    }
                    Token::Close => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Token::Comma if depth == 1 => item_start = true,
                    Token::Ident(name) if item_start && depth == 1 => {
                        names.push(name.as_str());
                        item_start = false;
                    }
                    _ => item_start = false,
                }
            }
            names
        }
        _ => Vec::new(),
    }
}

/// The crate's top-level modules that the code of module `module` (its path
/// from the crate root) names.
fn references(module: &[String], code: &str) -> BTreeSet<String> {
    let tokens = tokens(code);
    let mut found = BTreeSet::new();
    // Inline modules (`mod tests { … }`) open at these brace depths.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    for (i, t) in tokens.iter().enumerate() {
        let after_path = i > 0 && tokens[i - 1] == Token::Path;
        match t {
            Token::Open => depth += 1,
            Token::Close => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d > depth) {
                    inline.pop();
                }
            }
            Token::Ident(kw) if kw == "mod" => {
                if let (Some(Token::Ident(name)), Some(Token::Open)) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    inline.push((name.clone(), depth + 1));
                }
            }
            Token::Ident(kw)
                if kw == "crate" && !after_path && tokens.get(i + 1) == Some(&Token::Path) =>
            {
                found.extend(first_segments(&tokens, i + 1).into_iter().map(String::from));
            }
            Token::Ident(kw) if kw == "super" && !after_path => {
                let mut climbs = 0;
                let mut at = i;
                while matches!(tokens.get(at), Some(Token::Ident(s)) if s == "super")
                    && tokens.get(at + 1) == Some(&Token::Path)
                {
                    climbs += 1;
                    at += 2;
                }
                let here = module.len() + inline.len();
                // Climbing to the crate root names a top-level module; any
                // shorter climb stays inside this one.
                if climbs > 0 && climbs >= here {
                    found.extend(
                        first_segments(&tokens, at - 1)
                            .into_iter()
                            .map(String::from),
                    );
                }
            }
            _ => {}
        }
    }
    found
}

/// A source file's module path: `src/a.rs` and `src/a/mod.rs` are `a`,
/// `src/a/b.rs` is `a::b`; the crate roots are none.
fn module_path(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?.strip_suffix(".rs")?.to_string();
    if parts.is_empty() && (last == "lib" || last == "main") {
        return None;
    }
    if last != "mod" {
        parts.push(last);
    }
    Some(parts)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The graph of `sources` (module path, text); edges only between the
/// top-level modules the sources define.
fn graph(sources: &[(Vec<String>, String, String)]) -> Graph {
    let tops: BTreeSet<&str> = sources.iter().map(|(m, _, _)| m[0].as_str()).collect();
    let mut graph = Graph::new();
    for (module, file, text) in sources {
        let top = &module[0];
        let edges = graph.entry(top.clone()).or_default();
        for to in references(module, &code_only(text)) {
            if to != *top && tops.contains(to.as_str()) {
                edges.entry(to).or_insert_with(|| file.clone());
            }
        }
    }
    graph
}

/// A cycle, as `a → b (file) → a (file)`, if the graph has one.
fn find_cycle(graph: &Graph) -> Option<String> {
    fn visit(
        graph: &Graph,
        node: &str,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<String> {
        if let Some(start) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[start..].to_vec();
            cycle.push(node.to_string());
            let mut text = cycle[0].clone();
            for pair in cycle.windows(2) {
                let file = &graph[&pair[0]][&pair[1]];
                text.push_str(&format!(" → {} ({file})", pair[1]));
            }
            return Some(text);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            if let Some(cycle) = visit(graph, next, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(graph, node, &mut done, &mut Vec::new()))
}

/// Reads a crate's `src/` and fails naming a cycle if it has one.
fn assert_acyclic(src: &Path) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let root = crate_src("../..");
    let sources: Vec<_> = files
        .iter()
        .filter_map(|f| {
            let module = module_path(src, f)?;
            let text = std::fs::read_to_string(f).unwrap();
            let name = f.strip_prefix(&root).unwrap_or(f).display().to_string();
            Some((module, name, text))
        })
        .collect();
    assert!(
        sources.len() > 3,
        "no modules found under {}",
        src.display()
    );
    let graph = graph(&sources);
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "module cycle in {}: {cycle}\nmove what both sides need below them (settings beside the module that uses them)",
            src.strip_prefix(&root).unwrap_or(src).display()
        );
    }
}

/// A folder relative to this crate's, canonical so files are named from the
/// workspace root.
fn crate_src(relative: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    path.canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_agent_has_no_module_cycle() {
    assert_acyclic(&crate_src("../src"));
}

#[test]
fn the_collector_has_no_module_cycle() {
    assert_acyclic(&crate_src("../../collector/src"));
}

#[test]
fn the_wire_crate_has_no_module_cycle() {
    assert_acyclic(&crate_src("src"));
}

fn source(module: &str, text: &str) -> (Vec<String>, String, String) {
    let path = module.split("::").map(String::from).collect();
    (path, format!("{module}.rs"), text.to_string())
}

#[test]
fn a_cycle_is_found_and_named_with_its_files() {
    let graph = graph(&[
        source("a", "use crate::{b::X, self};\nfn f() {}"),
        source("b", "fn g() { crate::c::h() }"),
        source("c", "use super::a;"),
        source("d", "pub(crate) fn i() {}"),
    ]);
    assert_eq!(
        find_cycle(&graph).as_deref(),
        Some("a → b (a.rs) → c (b.rs) → a (c.rs)")
    );
    let graph = graph_without_cycle();
    assert_eq!(find_cycle(&graph), None, "{graph:?}");
}

fn graph_without_cycle() -> Graph {
    graph(&[
        source("a", "use crate::b::X;"),
        // Words in comments, strings and characters are no paths.
        source(
            "b",
            "// crate::a\n/* crate::a */ fn f() -> &'static str { let _ = '\"'; \"crate::a\" }\nconst R: &str = r#\"crate::a\"#;",
        ),
        // `super` inside a file's own test module is that file.
        source("c", "mod tests { use super::a; use super::*; }"),
        // In a nested file, one `super` stays in the parent module.
        source("d::e", "use super::a; use super::super::c;"),
    ])
}

#[test]
fn references_resolve_super_by_depth() {
    let graph = graph_without_cycle();
    let edges = |m: &str| graph[m].keys().cloned().collect::<Vec<_>>();
    assert_eq!(edges("a"), ["b"]);
    assert!(edges("b").is_empty());
    assert!(edges("c").is_empty());
    assert_eq!(edges("d"), ["c"]);
}
