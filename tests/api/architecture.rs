//! The layers of `src/` hold: read every source file's imports (use trees and inline
//! `crate::`/`super::` paths), resolve them to the module files they name, and check
//!
//! - that no file-level import circle exists (a parent `mod.rs` that uses its children
//!   while a child imports the parent counts as one);
//! - that every import runs down the layers, or stays inside one top-level folder;
//! - that `domain` uses no crate but std, serde and thiserror (dev-dependencies allowed:
//!   they exist only in its tests);
//! - that no source file is over 450 lines.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Top-level folders of `src/`, highest first. A module imports only modules of a lower
/// rank, or of its own top-level folder.
const LAYERS: &[(&str, u8)] = &[
    ("app", 7),
    ("config", 6),
    ("transport", 5),
    ("service", 4),
    ("storage", 3),
    ("telemetry", 2),
    ("metrics", 1),
    ("domain", 0),
];

const MAX_LINES: usize = 450;

type ModPath = Vec<String>;

struct Source {
    module: ModPath,
    tokens: Vec<Tok>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Comments, string and char literals removed; identifiers, `::` and punctuation kept.
fn tokenize(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = at(i);
        if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && at(i) != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r'
            && (at(i + 1) == '"' || (at(i + 1) == '#' && matches!(at(i + 2), '"' | '#')))
        {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if at(j) == '"' && (0..hashes).all(|h| at(j + 1 + h) == '#') {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && at(i) != '"' {
                if at(i) == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if at(i + 1) == '\\' {
                i += 2;
                while i < chars.len() && at(i) != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if c == ':' && at(i + 1) == ':' {
            out.push(Tok::PathSep);
            i += 2;
        } else if c.is_whitespace() || c.is_ascii_digit() {
            i += 1;
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

/// Expands a use tree starting at `tokens[*i]` into full paths, appended to `out`.
fn use_tree(tokens: &[Tok], i: &mut usize, prefix: &[String], out: &mut Vec<ModPath>) {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(*i) {
            Some(Tok::Ident(name)) if name == "as" => {
                *i += 2;
                out.push(path);
                return;
            }
            Some(Tok::Ident(name)) => {
                path.push(name.clone());
                *i += 1;
                if tokens.get(*i) == Some(&Tok::PathSep) {
                    *i += 1;
                } else {
                    // `name as alias`: the alias names nothing new.
                    if matches!(tokens.get(*i), Some(Tok::Ident(w)) if w == "as") {
                        *i += 2;
                    }
                    out.push(path);
                    return;
                }
            }
            Some(Tok::Punct('*')) => {
                *i += 1;
                out.push(path);
                return;
            }
            Some(Tok::Punct('{')) => {
                *i += 1;
                loop {
                    match tokens.get(*i) {
                        Some(Tok::Punct('}')) => {
                            *i += 1;
                            return;
                        }
                        Some(Tok::Punct(',')) => *i += 1,
                        None => return,
                        _ => use_tree(tokens, i, &path, out),
                    }
                }
            }
            _ => {
                out.push(path);
                return;
            }
        }
    }
}

/// Every path this file names, made absolute from the crate root where it can be, and the
/// external crates it names.
fn named_paths(source: &Source, externals: &BTreeSet<String>) -> (Vec<ModPath>, BTreeSet<String>) {
    let toks = &source.tokens;
    let children: BTreeSet<String> = toks
        .windows(3)
        .filter_map(|w| match w {
            [Tok::Ident(m), Tok::Ident(name), Tok::Punct(';')] if m == "mod" => Some(name.clone()),
            _ => None,
        })
        .collect();
    // Inline modules (`mod tests { .. }`) and the brace depth inside which each is open;
    // the crates named inside a `#[cfg(test)]` one are the tests', not the module's.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut test_depth: Option<usize> = None;
    let mut depth = 0usize;
    let absolute = |inline: &[(String, usize)], path: &[String]| -> Option<ModPath> {
        let current: ModPath = source
            .module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        let (first, rest) = path.split_first()?;
        match first.as_str() {
            "crate" => Some(rest.to_vec()),
            "self" => Some(current.into_iter().chain(rest.iter().cloned()).collect()),
            "super" => {
                let mut up = current;
                up.pop();
                let mut rest = rest;
                while let Some((s, r)) = rest.split_first() {
                    if s != "super" {
                        break;
                    }
                    up.pop();
                    rest = r;
                }
                Some(up.into_iter().chain(rest.iter().cloned()).collect())
            }
            name if inline.is_empty() && children.contains(name) => {
                Some(current.into_iter().chain(path.iter().cloned()).collect())
            }
            _ => None,
        }
    };
    let mut paths = Vec::new();
    let mut crates = BTreeSet::new();
    let mut i = 0;
    while i < toks.len() {
        let prev_is_sep = i > 0 && toks.get(i - 1) == Some(&Tok::PathSep);
        match &toks[i] {
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d > depth) {
                    inline.pop();
                }
                if test_depth.is_some_and(|d| d > depth) {
                    test_depth = None;
                }
                i += 1;
            }
            Tok::Ident(word) if word == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Punct('{'))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    depth += 1;
                    inline.push((name.clone(), depth));
                    if test_depth.is_none() && i >= 7 && toks.get(i - 7..i) == Some(&cfg_test()[..])
                    {
                        test_depth = Some(depth);
                    }
                    i += 3;
                } else {
                    i += 1;
                }
            }
            Tok::Ident(word) if word == "use" => {
                i += 1;
                if toks.get(i) == Some(&Tok::PathSep) {
                    i += 1;
                }
                let mut found = Vec::new();
                use_tree(toks, &mut i, &[], &mut found);
                for path in found {
                    if let Some(first) = path.first().filter(|f| externals.contains(*f))
                        && test_depth.is_none()
                    {
                        crates.insert(first.clone());
                    }
                    paths.extend(absolute(&inline, &path));
                }
            }
            Tok::Ident(first) if !prev_is_sep && toks.get(i + 1) == Some(&Tok::PathSep) => {
                let mut path = vec![first.clone()];
                let mut j = i + 1;
                while toks.get(j) == Some(&Tok::PathSep) {
                    match toks.get(j + 1) {
                        Some(Tok::Ident(next)) => {
                            path.push(next.clone());
                            j += 2;
                        }
                        _ => break,
                    }
                }
                if externals.contains(first) && test_depth.is_none() {
                    crates.insert(first.clone());
                }
                if matches!(first.as_str(), "crate" | "self" | "super") {
                    paths.extend(absolute(&inline, &path));
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    (paths, crates)
}

/// `#[cfg(test)]` as tokens.
fn cfg_test() -> [Tok; 7] {
    [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ]
}

fn sources(root: &Path) -> Vec<(PathBuf, Source)> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .filter(|p| !p.ends_with("main.rs"))
        .map(|path| {
            let rel = path.strip_prefix(root).unwrap().with_extension("");
            let mut module: ModPath = rel
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            let is_dir_module = matches!(module.last().map(String::as_str), Some("mod" | "lib"));
            if is_dir_module {
                module.pop();
            }
            let tokens = tokenize(&std::fs::read_to_string(&path).unwrap());
            (path, Source { module, tokens })
        })
        .collect()
}

/// Dependency names of Cargo.toml as they appear in paths, and those only in
/// dev-dependencies.
fn dependencies(manifest: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut section = String::new();
    let (mut normal, mut dev) = (BTreeSet::new(), BTreeSet::new());
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_owned();
            continue;
        }
        let Some((name, _)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim().replace('-', "_");
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        match section.as_str() {
            "dependencies" => {
                normal.insert(name);
            }
            "dev-dependencies" => {
                dev.insert(name);
            }
            _ => {}
        }
    }
    let dev_only = dev.difference(&normal).cloned().collect();
    let all = normal.union(&dev).cloned().collect();
    (all, dev_only)
}

struct Graph {
    edges: BTreeMap<ModPath, BTreeSet<ModPath>>,
    crates: BTreeMap<ModPath, BTreeSet<String>>,
    lines: BTreeMap<ModPath, (PathBuf, usize)>,
}

fn graph() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let (externals, _) = dependencies(&manifest);
    let sources = sources(&root.join("src"));
    let modules: BTreeSet<ModPath> = sources.iter().map(|(_, s)| s.module.clone()).collect();
    let mut graph = Graph {
        edges: BTreeMap::new(),
        crates: BTreeMap::new(),
        lines: BTreeMap::new(),
    };
    for (path, source) in &sources {
        let (paths, crates) = named_paths(source, &externals);
        let targets = paths
            .iter()
            .filter_map(|p| {
                (1..=p.len())
                    .rev()
                    .map(|n| p[..n].to_vec())
                    .find(|m| modules.contains(m))
            })
            .filter(|m| *m != source.module && !m.is_empty())
            .collect();
        graph.edges.insert(source.module.clone(), targets);
        graph.crates.insert(source.module.clone(), crates);
        let lines = std::fs::read_to_string(path).unwrap().lines().count();
        graph.lines.insert(
            source.module.clone(),
            (path.strip_prefix(root).unwrap().to_path_buf(), lines),
        );
    }
    graph
}

/// Strongly connected components of more than one module (Tarjan).
fn circles(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        edges: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    state.out
}

fn name(m: &ModPath) -> String {
    m.join("::")
}

fn rank(m: &ModPath) -> Option<u8> {
    let top = m.first()?;
    LAYERS.iter().find(|(name, _)| name == top).map(|(_, r)| *r)
}

#[test]
fn no_import_circle_in_src() {
    let g = graph();
    let found: Vec<String> = circles(&g.edges)
        .iter()
        .map(|c| c.iter().map(name).collect::<Vec<_>>().join(" <-> "))
        .collect();
    assert!(
        found.is_empty(),
        "import circles in src/:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_import_runs_down_the_layers() {
    let g = graph();
    let mut upward = Vec::new();
    for (from, targets) in &g.edges {
        let Some(r_from) = rank(from) else {
            // lib.rs declares the layers.
            assert!(
                from.is_empty(),
                "{} is in no layer: add its folder to LAYERS",
                name(from)
            );
            continue;
        };
        for to in targets {
            let same_folder = from.first() == to.first();
            let r_to = rank(to).unwrap_or(u8::MAX);
            if !same_folder && r_to >= r_from {
                upward.push(format!("{} -> {}", name(from), name(to)));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not run down a layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn domain_uses_only_std_serde_and_thiserror() {
    let g = graph();
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let (_, dev_only) = dependencies(&manifest);
    let mut bad = Vec::new();
    for (module, crates) in &g.crates {
        if module.first().map(String::as_str) != Some("domain")
            || module.last().is_some_and(|m| m == "tests")
        {
            continue;
        }
        for c in crates {
            if !matches!(c.as_str(), "serde" | "thiserror") && !dev_only.contains(c) {
                bad.push(format!("{} uses {c}", name(module)));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "domain must use std, serde and thiserror only:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_source_file_over_450_lines() {
    let g = graph();
    let big: Vec<String> = g
        .lines
        .values()
        .filter(|(_, n)| *n > MAX_LINES)
        .map(|(p, n)| format!("{} ({n})", p.display()))
        .collect();
    assert!(
        big.is_empty(),
        "source files over {MAX_LINES} lines:\n{}",
        big.join("\n")
    );
}

/// The checker itself: a circle and an upward import are found where they are.
#[test]
fn the_checker_finds_a_circle_and_resolves_relative_paths() {
    let src = Source {
        module: vec!["service".into(), "auth".into()],
        tokens: tokenize(
            "mod token; use token::Claims; use crate::{storage::{cache::X, store}, domain::Email};
             use super::{session as s, keys::Ring};
             fn f() { super::session::start(); let s = \"crate::app::fake\"; } // crate::app
             mod tests { use super::Grant; use token::Fake; }",
        ),
    };
    let externals = BTreeSet::new();
    let (paths, _) = named_paths(&src, &externals);
    let names: BTreeSet<String> = paths.iter().map(name).collect();
    for expected in [
        "service::auth::token::Claims",
        "storage::cache::X",
        "storage::store",
        "domain::Email",
        "service::session::start",
        "service::auth::Grant",
        "service::session",
        "service::keys::Ring",
    ] {
        assert!(
            names.contains(expected),
            "{expected} not found in {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.starts_with("app")),
        "paths in strings and comments count: {names:?}"
    );
    assert!(
        !names.contains("service::auth::tests::token::Fake"),
        "{names:?}"
    );
    let a: ModPath = vec!["a".into()];
    let b: ModPath = vec!["b".into()];
    let c: ModPath = vec!["c".into()];
    let edges = BTreeMap::from([
        (a.clone(), BTreeSet::from([b.clone()])),
        (b.clone(), BTreeSet::from([a.clone(), c.clone()])),
        (c.clone(), BTreeSet::new()),
    ]);
    assert_eq!(circles(&edges), vec![vec![a, b]]);
}
