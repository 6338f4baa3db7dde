//! The daemon's imports point one way, as `firmware/src/daemon/mod.rs` draws it:
//!
//! - admin → inbound, delivery, spool; inbound → delivery, spool; delivery → spool;
//!   spool → none of them; nothing imports admin;
//! - every subsystem may use the shared pieces at daemon level (`live`, `io`, `events`,
//!   `shutdown`); those import no subsystem, and nothing but the wiring (`daemon/mod.rs`)
//!   imports the wiring;
//! - inside a subsystem, no two files import each other in a circle;
//! - a path leaves its subsystem only as `crate::daemon::…` (never `super::super::…`), so
//!   this check, and a reader, can see where it goes.
//!
//! It reads the sources (code lines, not comments) of `firmware/src/daemon`; a reference
//! that breaks the rule fails here with its file, line and the rule it breaks. Known
//! exceptions are listed in [`EXCEPTIONS`]; one that is no longer needed fails too, so the
//! list stays true.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Each subsystem and what it may import besides itself and the shared pieces.
const SUBSYSTEMS: &[(&str, &[&str])] = &[
    ("admin", &["inbound", "delivery", "spool"]),
    ("inbound", &["delivery", "spool"]),
    ("delivery", &["spool"]),
    ("spool", &[]),
];
/// Shared pieces at daemon level (`daemon/NAME.rs`): any subsystem may use them; they use
/// none.
const COMMON: &[&str] = &["live", "io", "events", "shutdown", "task"];
/// Known breaks of the rule, to be removed: (file under `daemon/`, subsystem it reaches).
const EXCEPTIONS: &[(&str, &str)] = &[];

/// Where a file sits.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Unit {
    /// `daemon/mod.rs`: the wiring.
    Root,
    /// `daemon/NAME.rs`, NAME in [`COMMON`].
    Common(String),
    /// `daemon/SUB/FILE.rs`.
    Sub { sub: String, file: String },
}

fn daemon_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/daemon")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn unit_of(rel: &str) -> Result<Unit, String> {
    let parts: Vec<&str> = rel.split('/').collect();
    let stem = |f: &str| f.trim_end_matches(".rs").to_owned();
    match parts.as_slice() {
        ["mod.rs"] => Ok(Unit::Root),
        [f] if COMMON.contains(&stem(f).as_str()) => Ok(Unit::Common(stem(f))),
        [f] => Err(format!(
            "daemon/{f}: a new file at daemon level; move it into a subsystem, or list it in \
             COMMON (then it must import no subsystem)"
        )),
        [s, f] if SUBSYSTEMS.iter().any(|(n, _)| n == s) => Ok(Unit::Sub {
            sub: (*s).to_owned(),
            file: stem(f),
        }),
        _ => Err(format!(
            "daemon/{rel}: not in a known subsystem folder (or nested deeper): update SUBSYSTEMS"
        )),
    }
}

/// The code of `src` without comment lines and trailing comments, line numbers kept.
fn code(src: &str) -> String {
    src.lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("//") {
                ""
            } else {
                l.find(" //").map_or(l, |i| &l[..i])
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Parses a use tree or path at `i` (after a `prefix::`), pushing each leaf path's
/// segments; returns where it stopped.
fn tree(s: &[u8], i: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut i = skip_ws(s, i);
    if i >= s.len() {
        return i;
    }
    if s[i] == b'{' {
        i += 1;
        loop {
            i = skip_ws(s, i);
            if i >= s.len() {
                return i;
            }
            if s[i] == b'}' {
                return i + 1;
            }
            let before = i;
            i = tree(s, i, prefix, out);
            i = skip_ws(s, i);
            if i < s.len() && s[i] == b',' {
                i += 1;
            } else if i == before {
                // Not a use tree after all: stop here.
                return i + 1;
            }
        }
    }
    if s[i] == b'*' {
        let mut p = prefix.to_vec();
        p.push("*".into());
        out.push(p);
        return i + 1;
    }
    let start = i;
    while i < s.len() && is_ident(s[i]) {
        i += 1;
    }
    if i == start {
        return i;
    }
    let mut p = prefix.to_vec();
    p.push(String::from_utf8_lossy(&s[start..i]).into_owned());
    if s[i..].starts_with(b"::") {
        return tree(s, i + 2, &p, out);
    }
    out.push(p);
    // `x as y`
    let j = skip_ws(s, i);
    if s[j..].starts_with(b"as ") {
        let mut k = skip_ws(s, j + 3);
        while k < s.len() && is_ident(s[k]) {
            k += 1;
        }
        return k;
    }
    i
}

/// One reference out of a file: how it was written (`supers` levels of `super::`, or 0 for
/// `crate::daemon::`) and the leaf path after that prefix.
struct Ref {
    line: usize,
    supers: usize,
    path: Vec<String>,
}

fn refs(code: &str) -> Vec<Ref> {
    let s = code.as_bytes();
    let line_of = |i: usize| code[..i].bytes().filter(|&b| b == b'\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let starts_path = i == 0 || !(is_ident(s[i - 1]) || s[i - 1] == b':');
        let crate_daemon = s[i..].starts_with(b"crate::daemon::");
        if starts_path && (crate_daemon || s[i..].starts_with(b"super::")) {
            let (mut j, mut supers) = (i, 0);
            if crate_daemon {
                j += "crate::daemon::".len();
            } else {
                while s[j..].starts_with(b"super::") {
                    j += "super::".len();
                    supers += 1;
                }
            }
            let mut leaves = Vec::new();
            let end = tree(s, j, &[], &mut leaves);
            for path in leaves {
                out.push(Ref {
                    line: line_of(i),
                    supers,
                    path,
                });
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// What a reference reaches, seen from the daemon's level.
enum Target {
    Sub(String, Vec<String>),
    Common,
    Root(String),
    /// Inside the file's own subsystem: the path after the subsystem.
    Sibling(Vec<String>),
    /// Cannot be told (a glob in a test module, the file's own items).
    Local,
}

fn classify(path: &[String]) -> Target {
    let Some(first) = path.first() else {
        return Target::Local;
    };
    if SUBSYSTEMS.iter().any(|(n, _)| n == first) {
        Target::Sub(first.clone(), path[1..].to_vec())
    } else if COMMON.contains(&first.as_str()) {
        Target::Common
    } else {
        Target::Root(first.clone())
    }
}

fn may_import(from: &str, to: &str) -> bool {
    from == to
        || SUBSYSTEMS
            .iter()
            .any(|(n, allowed)| *n == from && allowed.contains(&to))
}

/// Checks the tree under `dir`: the broken rules, and the exceptions that were used.
fn check(dir: &Path) -> (Vec<String>, BTreeSet<(String, String)>) {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    // Per subsystem: file -> files it names, and mod.rs's re-exports (name -> file).
    let mut edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut siblings: Vec<(String, String, usize, Vec<String>)> = Vec::new();
    let mut reexports: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        let unit = match unit_of(&rel) {
            Ok(u) => u,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let code = code(&fs::read_to_string(f).unwrap());
        if let Unit::Sub { sub, file } = &unit {
            edges
                .entry(sub.clone())
                .or_default()
                .entry(file.clone())
                .or_default();
            if file == "mod" {
                for l in code.lines() {
                    if let Some(rest) = l.trim_start().strip_prefix("pub use ") {
                        let mut leaves = Vec::new();
                        tree(rest.as_bytes(), 0, &[], &mut leaves);
                        for p in leaves.iter().filter(|p| p.len() >= 2) {
                            let name = p.last().unwrap().clone();
                            reexports
                                .entry(sub.clone())
                                .or_default()
                                .insert(name, p[0].clone());
                            siblings.push((sub.clone(), file.clone(), 0, vec![p[0].clone()]));
                        }
                    }
                }
            }
        }
        for r in refs(&code) {
            let at = format!("daemon/{rel}:{}", r.line);
            let shown = r.path.join("::");
            let target = match (&unit, r.supers) {
                (Unit::Root, _) => continue,
                (_, 0) => classify(&r.path),
                (Unit::Sub { file, .. }, 1) if file != "mod" => Target::Sibling(r.path.clone()),
                (Unit::Sub { .. }, _) if r.path == ["*"] => Target::Local,
                (Unit::Sub { .. }, _) => {
                    problems.push(format!(
                        "{at}: `{}{shown}` leaves its subsystem by `super::`; write \
                         `crate::daemon::…`",
                        "super::".repeat(r.supers)
                    ));
                    continue;
                }
                // From a daemon-level file, `super::` is the daemon (or, in its test
                // module, the file itself).
                (Unit::Common(_), _) => match classify(&r.path) {
                    Target::Sub(s, rest) => Target::Sub(s, rest),
                    _ => Target::Local,
                },
            };
            match (&unit, target) {
                (_, Target::Common | Target::Local) => {}
                (_, Target::Root(name)) => problems.push(format!(
                    "{at}: `{shown}` reaches into the daemon's wiring (`daemon::{name}`); only \
                     the wiring imports the subsystems"
                )),
                (Unit::Common(c), Target::Sub(s, _)) => problems.push(format!(
                    "{at}: `{shown}`: the shared piece `{c}` imports subsystem `{s}`; shared \
                     pieces import none"
                )),
                (Unit::Sub { sub, file }, Target::Sub(s, rest)) if *sub == s => {
                    siblings.push((sub.clone(), file.clone(), r.line, rest));
                }
                (Unit::Sub { sub, file }, Target::Sub(s, _)) => {
                    let key = (format!("{sub}/{file}.rs"), s.clone());
                    if EXCEPTIONS.iter().any(|(f, t)| *f == key.0 && *t == s) {
                        used.insert(key);
                    } else if !may_import(sub, &s) {
                        problems.push(format!(
                            "{at}: `crate::daemon::{shown}`: {sub} may not import {s} (the \
                             rule in daemon/mod.rs)"
                        ));
                    }
                }
                (Unit::Sub { sub, file }, Target::Sibling(rest)) => {
                    siblings.push((sub.clone(), file.clone(), r.line, rest));
                }
                (Unit::Root, _) | (_, Target::Sibling(_)) => {}
            }
        }
    }
    // Files inside a subsystem: resolve names to files, then look for circles.
    for (sub, file, _, rest) in siblings {
        let Some(first) = rest.first() else { continue };
        let files = edges.entry(sub.clone()).or_default();
        let to = if files.contains_key(first) {
            Some(first.clone())
        } else {
            reexports.get(&sub).and_then(|m| m.get(first)).cloned()
        };
        if let Some(to) = to.filter(|t| *t != file) {
            files.entry(file).or_default().insert(to);
        }
    }
    for (sub, graph) in &edges {
        if let Some(cycle) = find_cycle(graph) {
            problems.push(format!(
                "daemon/{sub}: files import each other in a circle: {}",
                cycle.join(" -> ")
            ));
        }
    }
    (problems, used)
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.to_owned());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_owned());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn daemon_imports_point_one_way() {
    let (problems, used) = check(&daemon_dir());
    let stale: Vec<String> = EXCEPTIONS
        .iter()
        .filter(|(f, t)| !used.contains(&((*f).to_owned(), (*t).to_owned())))
        .map(|(f, t)| {
            format!("EXCEPTIONS lists daemon/{f} -> {t}, which no longer happens: remove it")
        })
        .collect();
    let all: Vec<String> = problems.into_iter().chain(stale).collect();
    assert!(all.is_empty(), "\n{}\n", all.join("\n"));
}

/// The check itself: a tree with each kind of break is caught, a clean one passes.
#[test]
fn the_check_sees_each_kind_of_break() {
    let dir = std::env::temp_dir().join(format!("mailbag-layers-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let write = |rel: &str, text: &str| {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    write("mod.rs", "pub mod admin;\npub use shutdown::GRACE;\n");
    write("shutdown.rs", "pub const GRACE: u8 = 1;\n");
    write(
        "live.rs",
        "pub struct Live;\n#[cfg(test)]\nmod tests { use super::*; }\n",
    );
    write(
        "spool/mod.rs",
        "pub mod thread;\npub use thread::SpoolHandle;\n",
    );
    write("spool/thread.rs", "pub struct SpoolHandle;\n");
    write(
        "delivery/mod.rs",
        "pub mod a;\npub mod b;\npub use a::Deliverer;\n",
    );
    write(
        "delivery/a.rs",
        "use crate::daemon::spool::SpoolHandle;\nuse crate::daemon::{live::Live, shutdown::GRACE};\n\
         // crate::daemon::admin in a comment is no import\npub struct Deliverer;\n",
    );
    write("delivery/b.rs", "use super::Deliverer;\n");
    write(
        "admin/x.rs",
        "use crate::daemon::delivery::{self, Deliverer};\nuse crate::daemon::inbound;\n",
    );
    let (problems, _) = check(&dir);
    assert!(problems.is_empty(), "a clean tree: {problems:?}");

    // Each break alone, then put back.
    let breaks: &[(&str, &str, &str)] = &[
        (
            "delivery/b.rs",
            "use crate::daemon::admin::x;\n",
            "delivery may not import admin",
        ),
        (
            "spool/thread.rs",
            "fn f() { crate::daemon::{delivery::a}; }\n",
            "spool may not import delivery",
        ),
        (
            "delivery/b.rs",
            "use super::super::live::Live;\n",
            "leaves its subsystem by `super::`",
        ),
        (
            "live.rs",
            "use crate::daemon::spool::SpoolHandle;\n",
            "the shared piece `live` imports",
        ),
        (
            "delivery/a.rs",
            "use super::b;\npub struct Deliverer;\n",
            "in a circle: a -> b -> a",
        ),
        (
            "admin/x.rs",
            "fn f() { crate::daemon::serve(); }\n",
            "reaches into the daemon's wiring",
        ),
        (
            "delivery/a.rs",
            "use crate::daemon::GRACE;\npub struct Deliverer;\n",
            "reaches into the daemon's wiring",
        ),
        ("helpers.rs", "\n", "a new file at daemon level"),
    ];
    for (file, text, expect) in breaks {
        let path = dir.join(file);
        let before = fs::read_to_string(&path).ok();
        write(file, text);
        let (problems, _) = check(&dir);
        assert!(
            problems.iter().any(|p| p.contains(expect)),
            "{file}: expected '{expect}' in {problems:?}"
        );
        match before {
            Some(b) => write(file, &b),
            None => fs::remove_file(&path).unwrap(),
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}
