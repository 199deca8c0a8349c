//! The house rules that a reader checks by eye, checked on every run: no file in src/ over
//! 400 lines, and data flowing one way: no two modules of the crate import each other.
//!
//! "Imports" is read from the source text: a `crate::`, `super::` or `self::` path (in a `use`
//! or inline) names the deepest module it reaches, and a `mod child;` whose `child::` is then
//! used names the child. Unit-test files (`tests.rs`, `#[cfg(test)] mod tests { .. }`) and
//! comments are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 400;
const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Every file under src/.
fn src_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![Path::new(SRC).to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            match path.is_dir() {
                true => dirs.push(path),
                false => files.push(path),
            }
        }
    }
    files
}

/// Module path (`["server", "hub"]`) → source text, for every Rust file under src/.
fn modules() -> BTreeMap<Vec<String>, String> {
    let mut out = BTreeMap::new();
    for path in src_files() {
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(SRC).unwrap().with_extension("");
        let mut name: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into()).collect();
        match name.last().map(String::as_str) {
            Some("mod") => drop(name.pop()),
            Some("lib" | "main") if name.len() == 1 => name.clear(),
            Some("tests") => continue,
            _ => {}
        }
        out.insert(name, fs::read_to_string(&path).unwrap());
    }
    out
}

/// The text without comments, unit tests and visibility paths (`pub(super)` is no import).
fn code(text: &str) -> String {
    let text = text
        .split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or(text);
    let lines = text.lines().map(|l| l.split("//").next().unwrap_or(""));
    let joined = lines.collect::<Vec<_>>().join("\n");
    joined
        .replace("pub(super)", "pub")
        .replace("pub(crate)", "pub")
}

/// Every `head::a::b` path in `code` with `head` one of crate/super/self, as segments;
/// `{a, b::c}` groups expand to one path each.
fn paths(code: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for head in ["crate", "super", "self"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(head).map(|i| i + from) {
            from = at + head.len();
            let before = at.checked_sub(1).map(|i| bytes[i]);
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
                continue;
            }
            let rest = &code[from..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let segs: Vec<String> = rest[..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            out.push((head.to_string(), segs.clone()));
            if rest[end..].starts_with('{') && rest[..end].ends_with("::") {
                let group = &rest[end + 1..rest[end..].find('}').map_or(rest.len(), |i| end + i)];
                for part in group.split(',') {
                    let part = part.split(" as ").next().unwrap_or("").trim();
                    let mut path = segs.clone();
                    path.extend(
                        part.split("::")
                            .filter(|s| !s.is_empty() && *s != "self")
                            .map(String::from),
                    );
                    out.push((head.to_string(), path));
                }
            }
        }
    }
    out
}

/// Module → the modules it imports.
fn imports(mods: &BTreeMap<Vec<String>, String>) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let resolve = |path: &[String]| {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| mods.contains_key(p))
    };
    let mut edges = BTreeMap::new();
    for (module, text) in mods {
        let code = code(text);
        let mut to = BTreeSet::new();
        for (head, segs) in paths(&code) {
            let mut full = match head.as_str() {
                "crate" => Vec::new(),
                "self" => module.clone(),
                _ => module[..module.len().saturating_sub(1)].to_vec(),
            };
            full.extend(segs);
            to.extend(resolve(&full));
        }
        for line in code.lines() {
            let line = line.trim().trim_start_matches("pub ");
            if let Some(child) = line.strip_prefix("mod ").and_then(|l| l.strip_suffix(';')) {
                let used =
                    code.contains(&format!(" {child}::")) || code.contains(&format!("({child}::"));
                if used {
                    let mut full = module.clone();
                    full.push(child.to_string());
                    to.extend(resolve(&full));
                }
            }
        }
        to.remove(module);
        edges.insert(module.clone(), to);
    }
    edges
}

#[test]
fn no_file_in_src_is_over_400_lines() {
    let long: Vec<String> = src_files()
        .into_iter()
        .filter_map(|path| {
            let lines = fs::read_to_string(&path).ok()?.lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:#?}");
}

#[test]
fn no_two_modules_import_each_other() {
    let edges = imports(&modules());
    let name = |m: &Vec<String>| {
        if m.is_empty() {
            "crate".to_string()
        } else {
            m.join("::")
        }
    };
    let mut circles = Vec::new();
    for (a, tos) in &edges {
        for b in tos {
            if a < b && edges.get(b).is_some_and(|back| back.contains(a)) {
                circles.push(format!("{} <-> {}", name(a), name(b)));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules importing each other: {circles:#?}"
    );
    // The checker itself sees imports: a few that must be there.
    let has = |a: &str, b: &str| {
        let key = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
        edges.get(&key(a)).is_some_and(|t| t.contains(&key(b)))
    };
    assert!(
        has("server::hub", "server::fanout"),
        "use super::fanout::..."
    );
    assert!(has("backend", "events"), "use crate::events::{{..}}");
    assert!(
        has("backend", "backend::cgi"),
        "mod cgi; ... cgi::CgiBackend"
    );
}
