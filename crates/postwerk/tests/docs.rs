//! The documentation against the code, so that neither drifts from the other:
//!
//! - every route the server registers (`.route(` in crates/api/src/lib.rs) is an
//!   operation of docs/openapi.json, and every operation there is registered;
//! - every operation of docs/openapi.json is named in docs/API.md, and every endpoint
//!   that API.md's headings and README's endpoint table name exists;
//! - every command and flag of the real binary (its `--help`) is in README.md or docs/,
//!   a flag beside its command, and every `postwerk …` command the docs name exists;
//! - every configuration key (the default configuration serialised to TOML, with one
//!   entry in each table and list, plus the optional keys) is in docs/CONFIG.md under its
//!   section, and every key documented there exists.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use postwerk_core::config::{Config, OPTIONAL_KEYS};
use serde_json::Value;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// README.md and every docs/*.md, one document after the other.
fn all_docs() -> Vec<(String, String)> {
    let mut docs = vec![("README.md".to_string(), read("README.md"))];
    let mut names: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".md"))
        .collect();
    names.sort();
    for n in names {
        let path = format!("docs/{n}");
        docs.push((path.clone(), read(&path)));
    }
    docs
}

/// `(METHOD, path template)` of every operation in docs/openapi.json.
fn openapi_operations() -> BTreeSet<(String, String)> {
    let doc: Value = serde_json::from_str(&read("docs/openapi.json")).unwrap();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let upper = method.to_ascii_uppercase();
            if METHODS.contains(&upper.as_str()) {
                ops.insert((upper, path.clone()));
            }
        }
    }
    ops
}

/// Whether `name(` occurs in `text` as a call of `name` (not the end of a longer name).
fn calls(text: &str, name: &str) -> bool {
    let needle = format!("{name}(");
    text.match_indices(&needle).any(|(at, _)| {
        !text[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// `(METHOD, path)` of every `.route("path", method(…)…)` in the API's router.
fn registered_routes() -> BTreeSet<(String, String)> {
    let source = read("crates/api/src/lib.rs");
    let router = &source[source.find("pub fn router(").expect("the router")..];
    let router = &router[..router.find(".fallback(").expect("the fallback")];
    let mut routes = BTreeSet::new();
    for segment in router.split(".route(").skip(1) {
        let path = segment.split('"').nth(1).expect("a path literal");
        let handlers = &segment[segment.find(',').expect("handlers")..];
        let methods: Vec<&str> = METHODS
            .iter()
            .copied()
            .filter(|m| calls(handlers, &m.to_ascii_lowercase()))
            .collect();
        assert!(!methods.is_empty(), "no method for {path}");
        for m in methods {
            routes.insert((m.to_string(), path.to_string()));
        }
    }
    routes
}

#[test]
fn the_server_registers_exactly_the_operations_of_openapi_json() {
    let routes = registered_routes();
    let ops = openapi_operations();
    assert!(routes.len() > 50, "{routes:?}");
    let undocumented: Vec<_> = routes.difference(&ops).collect();
    let missing: Vec<_> = ops.difference(&routes).collect();
    assert!(
        undocumented.is_empty(),
        "registered but not in openapi.json: {undocumented:?}"
    );
    assert!(
        missing.is_empty(),
        "in openapi.json but not registered: {missing:?}"
    );
}

/// Whether a documented `path` names the operation path `template`: `{x}` segments
/// match any segment, and a segment `…` matches the rest.
fn names(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    for (i, seg) in p.iter().enumerate() {
        if *seg == "…" {
            return t.len() > i;
        }
        let Some(want) = t.get(i) else { return false };
        let variable = |s: &str| s.starts_with('{') && s.ends_with('}');
        if want != seg && !variable(want) && !variable(seg) {
            return false;
        }
    }
    t.len() == p.len()
}

/// The endpoints in `text` written `METHOD /path` or `GET/POST /path`.
fn endpoints_in(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == '`' || c == ',')
        .collect();
    for pair in words.windows(2) {
        let methods: Vec<&str> = pair[0].split('/').collect();
        if !pair[1].starts_with('/') || !methods.iter().all(|m| METHODS.contains(m)) {
            continue;
        }
        let path = pair[1]
            .split(['?', ')', '('])
            .next()
            .unwrap_or("")
            .trim_end_matches(['.', ':']);
        for m in methods {
            found.push((m.to_string(), path.to_string()));
        }
    }
    found
}

#[test]
fn api_md_names_every_operation_and_the_docs_name_only_real_ones() {
    let api = read("docs/API.md");
    let ops = openapi_operations();
    for (method, path) in &ops {
        let mention = format!("{method} {path}");
        let named = api.match_indices(&mention).any(|(at, _)| {
            !api[at + mention.len()..]
                .starts_with(|c: char| c.is_alphanumeric() || "/{}_-".contains(c))
        });
        assert!(named, "docs/API.md does not mention `{mention}`");
    }
    let headings: String = api
        .lines()
        .filter(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let readme = read("README.md");
    let table: String = readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.split(" | ").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut checked = 0;
    for (source, text) in [("docs/API.md headings", &headings), ("README.md", &table)] {
        for (method, path) in endpoints_in(text) {
            checked += 1;
            assert!(
                ops.iter().any(|(m, t)| *m == method && names(t, &path)),
                "{source} names `{method} {path}`, which is no operation of openapi.json"
            );
        }
    }
    assert!(checked > 80, "only {checked} endpoints found in the docs");
}

/// The binary's short help for `path` (`-h` of that command: one line per entry).
fn help(path: &[String]) -> String {
    let out = Command::new(common::bin())
        .args(path)
        .arg("-h")
        .output()
        .expect("run postwerk");
    assert!(out.status.success(), "{path:?} -h");
    String::from_utf8(out.stdout).unwrap()
}

/// The lines of a help section (`Commands:`, `Options:`).
fn section<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| *l != title)
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect()
}

/// Every command path of the binary with its own flags (long names).
fn command_tree() -> BTreeMap<Vec<String>, Vec<String>> {
    let mut tree = BTreeMap::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let text = help(&path);
        for line in section(&text, "Commands:") {
            let sub = line.split_whitespace().next().unwrap_or("help");
            if sub != "help" {
                let mut child = path.clone();
                child.push(sub.to_string());
                todo.push(child);
            }
        }
        let flags: Vec<String> = section(&text, "Options:")
            .into_iter()
            .flat_map(|l| l.split_whitespace().take(3))
            .filter(|w| w.starts_with("--"))
            .map(|w| w.trim_end_matches(',').to_string())
            .filter(|f| f != "--help" && f != "--version")
            .collect();
        tree.insert(path, flags);
    }
    tree
}

/// Table rows are units of their own; other text goes by paragraph.
fn passages(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut paragraph = String::new();
    for line in text.lines() {
        if line.starts_with('|') {
            out.push(line.to_string());
        } else if line.trim().is_empty() {
            out.push(std::mem::take(&mut paragraph));
        } else {
            paragraph.push_str(line);
            paragraph.push('\n');
        }
    }
    out.push(paragraph);
    out
}

#[test]
fn every_command_and_flag_is_documented_and_every_documented_command_exists() {
    let tree = command_tree();
    assert!(tree.len() > 40, "{tree:?}");
    let docs = all_docs();
    let passages: Vec<String> = docs.iter().flat_map(|(_, t)| passages(t)).collect();
    let mut missing = Vec::new();
    for (path, flags) in &tree {
        if path.is_empty() {
            continue;
        }
        let command = path.join(" ");
        let beside: Vec<&String> = passages
            .iter()
            .filter(|p| {
                p.match_indices(&command).any(|(at, _)| {
                    !p[at + command.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '-')
                })
            })
            .collect();
        if beside.is_empty() {
            missing.push(format!("command `postwerk {command}`"));
        }
        for flag in flags {
            let documented = flag == "--config" || beside.iter().any(|p| p.contains(flag.as_str()));
            if !documented {
                missing.push(format!("flag `{flag}` of `postwerk {command}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not documented beside their command:\n{}",
        missing.join("\n")
    );

    // The reverse: `postwerk WORD [WORD]` in the docs is a command (but for the log
    // line `postwerk listening …`).
    let top: BTreeSet<&str> = tree
        .keys()
        .filter(|p| p.len() == 1)
        .map(|p| p[0].as_str())
        .collect();
    for (file, text) in &docs {
        let words: Vec<&str> = text
            .split(|c: char| c.is_whitespace() || "`|(".contains(c))
            .collect();
        for (i, w) in words.iter().enumerate() {
            let next = words.get(i + 1).copied().unwrap_or("");
            if *w != "postwerk"
                || next == "listening"
                || !next.starts_with(|c: char| c.is_ascii_lowercase())
            {
                continue;
            }
            assert!(
                top.contains(next),
                "{file} names `postwerk {next}`, which is no command"
            );
            let sub = words.get(i + 2).copied().unwrap_or("");
            let path = vec![next.to_string(), sub.to_string()];
            let has_subcommands = tree.keys().any(|p| p.len() == 2 && p[0] == next);
            if has_subcommands
                && sub.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                && !sub.is_empty()
            {
                assert!(
                    tree.contains_key(&path),
                    "{file} names `postwerk {next} {sub}`, which is no command"
                );
            }
        }
    }
}

/// A configuration with one entry in every table and list that is empty by default,
/// and the optional keys set, so that their keys show when it is serialised.
const FILLED: &str = r#"
[delivery]
shaping = "/etc/postwerk/shaping.toml"
[delivery.routes]
"example.test" = "127.0.0.1:2626"
[[smtp.submission.trusted]]
cidr = "127.0.0.0/8"
[[privacy.sub_processors]]
name = "n"
purpose = "p"
location = "l"
[retention.streams.s]
content = "1d"
[retention.tenants.t]
content = "1d"
[retention.tenants.t.streams.s]
content = "1d"
[auth.tenants.t]
[egress]
default_pool = "p"
stream_pools = { s = "p" }
tenant_pools = { t = "p" }
[[egress.sources]]
name = "a"
address = "127.0.0.2"
[[egress.pools]]
name = "p"
sources = [{ source = "a" }]
"#;

/// Every key path of the configuration: tables, their keys, the keys inside lists of
/// tables; the default configuration's, [`FILLED`]'s and [`OPTIONAL_KEYS`].
fn config_paths() -> BTreeSet<Vec<String>> {
    fn walk(value: &toml::Value, path: &mut Vec<String>, out: &mut BTreeSet<Vec<String>>) {
        if !path.is_empty() {
            out.insert(path.clone());
        }
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    path.push(k.clone());
                    walk(v, path, out);
                    path.pop();
                }
            }
            toml::Value::Array(items) => items.iter().for_each(|v| walk(v, path, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    let filled: Config = toml::from_str(FILLED).expect("FILLED is a configuration");
    for config in [Config::default(), filled] {
        let value = toml::Value::try_from(config).unwrap();
        walk(&value, &mut Vec::new(), &mut out);
    }
    for key in OPTIONAL_KEYS {
        out.insert(key.split('.').map(String::from).collect());
    }
    out
}

/// docs/CONFIG.md's reference: section (`""` for the top level, `smtp.submission`) →
/// the keys of the first table under its heading (`streams.<stream>` → `streams`).
fn config_reference() -> BTreeMap<String, Vec<String>> {
    let text = read("docs/CONFIG.md");
    let mut sections = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with('#') {
            current = if line == "### Top level" {
                Some(String::new())
            } else {
                line.strip_prefix("### `[")
                    .and_then(|r| r.split_once("]`"))
                    .map(|(name, _)| name.to_string())
            };
            in_table = false;
            if let Some(name) = &current {
                sections.insert(name.clone(), Vec::new());
            }
            continue;
        }
        let Some(name) = &current else { continue };
        if let Some(row) = line.strip_prefix("| `") {
            let key = row.split('`').next().unwrap_or("");
            let key = key.split(['.', '<']).next().unwrap_or("").to_string();
            sections.get_mut(name).unwrap().push(key);
            in_table = true;
        } else if in_table && !line.starts_with('|') {
            current = None;
        }
    }
    sections
}

#[test]
fn every_config_key_is_documented_under_its_section_and_the_reverse() {
    let paths = config_paths();
    let reference = config_reference();
    assert!(paths.len() > 100 && reference.len() > 15, "{reference:?}");
    let section_of = |path: &[String]| -> Option<(usize, &Vec<String>)> {
        (0..path.len())
            .rev()
            .find_map(|n| reference.get(&path[..n].join(".")).map(|keys| (n, keys)))
    };
    let mut missing = Vec::new();
    for path in &paths {
        let dotted = path.join(".");
        let heads_a_section = reference
            .keys()
            .any(|s| *s == dotted || s.starts_with(&format!("{dotted}.")));
        if heads_a_section {
            continue;
        }
        match section_of(path) {
            Some((n, keys)) if keys.contains(&path[n]) => {}
            _ => missing.push(dotted),
        }
    }
    assert!(
        missing.is_empty(),
        "keys not in docs/CONFIG.md: {missing:?}"
    );

    let mut unknown = Vec::new();
    for (section, keys) in &reference {
        let prefix: Vec<&str> = section.split('.').filter(|s| !s.is_empty()).collect();
        for key in keys {
            let exists = paths.iter().any(|p| {
                p.len() > prefix.len()
                    && p.iter().zip(&prefix).all(|(a, b)| a == b)
                    && p[prefix.len()..].contains(key)
            });
            if !exists {
                unknown.push(format!("[{section}] {key}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "documented in docs/CONFIG.md but no key: {unknown:?}"
    );
}
