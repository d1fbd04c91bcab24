//! Workspace paths as the plan writes them (`/`-separated, relative to the workspace root):
//! normalizing, containment, globs, and the index of every stage output that tells which
//! stage produces what an input reads. The engine and the watcher use these too.

use std::collections::{BTreeMap, HashSet};

use mlp_syntax::ast::Span;

use crate::model::InputKind;

/// `./a//b/` → `a/b`; `a/../b` → `b`. Keeps a leading `/` and leading `..`.
pub fn normalize(p: &str) -> String {
    // Most paths are normal already: no empty, `.` or `..` component.
    if !p.is_empty() && p.split('/').all(|c| !matches!(c, "" | "." | "..")) {
        return p.to_string();
    }
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if matches!(parts.last(), Some(l) if *l != "..") {
                    parts.pop();
                } else if !abs {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let j = parts.join("/");
    if abs { format!("/{j}") } else { j }
}

/// `a/b/c` is under `a/b` (or equal to it).
pub fn is_under(path: &str, dir: &str) -> bool {
    path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

/// Every output path, sorted, with its stage and span; and the first component of each,
/// to see at once that an input such as `src/train.py` reads no output at all.
#[derive(Default)]
pub struct OutputIndex {
    by_path: BTreeMap<String, (usize, Span)>,
    tops: HashSet<String>,
}

fn top(path: &str) -> &str {
    path.split('/').next().unwrap_or("")
}

impl OutputIndex {
    pub fn new(by_path: BTreeMap<String, (usize, Span)>) -> Self {
        // Each first component once (`to_string` for each of 100,000 outputs under `out/`
        // was a tenth of the outputs pass).
        let mut tops = HashSet::new();
        for k in by_path.keys() {
            let t = top(k);
            if !tops.contains(t) {
                tops.insert(t.to_string());
            }
        }
        OutputIndex { by_path, tops }
    }

    /// The stages of every output an input reads: the output it names or lies inside, the
    /// outputs inside it (a directory), or those it matches (a glob). Range queries on the
    /// sorted outputs, so that planning stays near-linear in the number of stages.
    pub fn covered(&self, path: &str, kind: InputKind) -> Vec<usize> {
        let mut out = Vec::new();
        match kind {
            InputKind::Path => {
                if !self.tops.contains(top(path)) {
                    return out;
                }
                out.extend(
                    ancestors(path)
                        .filter_map(|a| self.by_path.get(a))
                        .map(|(j, _)| *j),
                );
                let dir = format!("{path}/");
                out.extend(
                    self.by_path
                        .range(dir.clone()..)
                        .take_while(|(o, _)| o.starts_with(&dir))
                        .map(|(_, (j, _))| *j),
                );
            }
            InputKind::Glob => {
                // Whatever a glob matches starts with the text before its first wildcard.
                let lit = &path[..path.find(['*', '?', '[']).unwrap_or(path.len())];
                if lit.contains('/') && !self.tops.contains(top(lit)) {
                    return out;
                }
                out.extend(
                    self.by_path
                        .range(lit.to_string()..)
                        .take_while(|(o, _)| o.starts_with(lit))
                        .filter(|(o, _)| glob_match(path, o))
                        .map(|(_, (j, _))| *j),
                );
            }
        }
        out
    }

    /// The stage whose output an input is, or lies inside (the outermost such output, as
    /// the sorted outputs list it first). Globs have none.
    pub fn producer_of(&self, path: &str, kind: InputKind) -> Option<usize> {
        if kind == InputKind::Glob || !self.tops.contains(top(path)) {
            return None;
        }
        ancestors(path)
            .find_map(|a| self.by_path.get(a))
            .map(|(j, _)| *j)
    }
}

/// `a`, `a/b`, `a/b/c` for `a/b/c`: the path and every directory above it, shortest first.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/')
        .map(|(i, _)| &path[..i])
        .chain(std::iter::once(path))
}

/// A small glob matcher for `*`, `?`, `**` and `[...]` over `/`-separated paths.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = if p.get(2) == Some(&b'/') {
                    &p[3..]
                } else {
                    &p[2..]
                };
                (0..=s.len()).any(|i| (i == 0 || s[i - 1] == b'/') && m(rest, &s[i..]))
            }
            Some(b'*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| m(&p[1..], &s[i..])),
            Some(b'?') => !s.is_empty() && s[0] != b'/' && m(&p[1..], &s[1..]),
            Some(b'[') => {
                let Some(close) = p.iter().position(|&c| c == b']') else {
                    return !s.is_empty() && s[0] == b'[' && m(&p[1..], &s[1..]);
                };
                let set = &p[1..close];
                let (neg, set) = match set.first() {
                    Some(b'!') | Some(b'^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let Some(&c) = s.first() else { return false };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == b'-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != neg && m(&p[close + 1..], &s[1..])
            }
            Some(&c) => s.first() == Some(&c) && m(&p[1..], &s[1..]),
        }
    }
    m(pattern.as_bytes(), path.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize("./a//b/"), "a/b");
        assert_eq!(normalize("a/b.c/d"), "a/b.c/d");
        assert_eq!(normalize("/a/b"), "/a/b");
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("a/.."), "");
        assert_eq!(normalize("../../a"), "../../a");
        assert_eq!(normalize("a/../b"), "b");
        assert_eq!(normalize("../x"), "../x");
        assert!(is_under("a/b/c", "a/b"));
        assert!(!is_under("a/bc", "a/b"));
    }

    #[test]
    fn inputs_find_the_outputs_they_read() {
        let outs = OutputIndex::new(
            [
                ("data", 0),
                ("data-x/a.csv", 1),
                ("models/a.pkl", 2),
                ("models/b/c.pkl", 3),
                ("reports/r.json", 4),
            ]
            .into_iter()
            .map(|(p, j)| (p.to_string(), (j, Span::default())))
            .collect(),
        );
        let mut c = outs.covered("models", InputKind::Path);
        c.sort();
        assert_eq!(c, [2, 3]); // a directory input reads what is inside it
        assert_eq!(outs.covered("data/raw/x.csv", InputKind::Path), [0]);
        assert_eq!(outs.covered("data", InputKind::Path), [0]); // not `data-x/`
        assert_eq!(outs.covered("models/*.pkl", InputKind::Glob), [2]);
        assert_eq!(outs.covered("**/*.json", InputKind::Glob), [4]);
        assert_eq!(outs.producer_of("data/raw/x.csv", InputKind::Path), Some(0));
        assert_eq!(outs.producer_of("models", InputKind::Path), None);
        assert_eq!(outs.producer_of("models/b/c.pkl", InputKind::Path), Some(3));
        assert_eq!(outs.producer_of("src/x.py", InputKind::Path), None);
        assert!(outs.covered("src", InputKind::Path).is_empty());
        assert!(outs.covered("src/*.py", InputKind::Glob).is_empty());
        assert_eq!(outs.covered("mod*/a.pkl", InputKind::Glob), [2]);
    }

    #[test]
    fn globs() {
        assert!(glob_match("data/*.csv", "data/a.csv"));
        assert!(!glob_match("data/*.csv", "data/x/a.csv"));
        assert!(glob_match("src/**/*.py", "src/a/b/c.py"));
        assert!(glob_match("src/**/*.py", "src/c.py"));
        assert!(glob_match("d/[a-c]?.txt", "d/b1.txt"));
    }
}
