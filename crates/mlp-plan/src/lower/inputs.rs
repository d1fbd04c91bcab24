//! Pass 8, the inputs on disk: an input path that does not exist and that no stage writes
//! is a warning (`E0170`), not an error (the data may be fetched before the run), with a
//! "did you mean" over the files near it and the stages' outputs. Runs only on a pipeline
//! without errors; globs are not checked (matching nothing yet is fine).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use super::Lowerer;
use crate::codes::Code;
use crate::diag::Diagnostic;
use crate::model::Stage;

/// At most this many inputs get a warning of their own; the rest are counted in one more.
const MAX_WARNINGS: usize = 20;
/// At most this many names are read from the directories near one missing input.
const MAX_NEARBY: usize = 4096;

impl Lowerer {
    pub(super) fn missing_inputs(&self, stages: &[Stage]) -> Vec<Diagnostic> {
        let unproduced = std::mem::take(&mut *self.unproduced.borrow_mut());
        let mut seen = HashSet::new();
        // Whether each path exists, asked once: in a generated pipeline thousands of
        // stages read the same file.
        let mut exists: HashMap<&str, bool> = HashMap::new();
        let mut missing = Vec::new();
        for (file, span, path) in &unproduced {
            if !seen.insert((*file, *span, path.as_str())) {
                continue;
            }
            let there = *exists
                .entry(path.as_str())
                .or_insert_with(|| self.root.join(path).exists());
            if !there {
                missing.push((*file, *span, path.as_str()));
            }
        }
        if missing.is_empty() {
            return Vec::new();
        }
        let outputs: Vec<&str> = stages
            .iter()
            .flat_map(|s| s.outputs.iter().map(|o| o.path.as_str()))
            .collect();
        let mut listings = HashMap::new();
        // The guess for each path, made once (the same missing file is read by many stages).
        let mut guesses: HashMap<&str, Option<String>> = HashMap::new();
        let mut out: Vec<Diagnostic> = missing
            .iter()
            .take(MAX_WARNINGS)
            .map(|(file, span, path)| {
                let guess = guesses.entry(path).or_insert_with(|| {
                    let near = nearby(&self.root, path, &mut listings);
                    closest(path, near.iter().map(String::as_str).chain(outputs.iter().copied()))
                        .map(str::to_string)
                });
                let help = match guess {
                    Some(g) => format!("did you mean `{g}`?"),
                    None => "fix the path, or make sure the file is there before `mlp run` (a stage that reads a missing input fails)".to_string(),
                };
                Diagnostic::new(
                    Code::MissingInput,
                    format!("input `{path}` does not exist, and no stage writes it"),
                )
                .warning()
                .at(*file, *span, "not found")
                .help(help)
            })
            .collect();
        if missing.len() > MAX_WARNINGS {
            let more = missing.len() - MAX_WARNINGS;
            out.push(
                Diagnostic::new(
                    Code::MissingInput,
                    format!("{more} more inputs do not exist, and no stage writes them"),
                )
                .warning()
                .help("`mlp check --json` lists the first ones; fetch or create them before `mlp run`"),
            );
        }
        out
    }
}

/// The paths (workspace-relative, as inputs are written) near `path`: everything under the
/// deepest directory of `path` that exists, down to the depth of `path`. Listings are
/// kept in `cache` by directory, for pipelines with many missing inputs in one place.
fn nearby(
    root: &Path,
    path: &str,
    cache: &mut HashMap<(String, usize), Vec<String>>,
) -> Vec<String> {
    let parts: Vec<&str> = path.split('/').collect();
    let mut k = parts.len() - 1;
    while k > 0 && !root.join(parts[..k].join("/")).is_dir() {
        k -= 1;
    }
    let base = parts[..k].join("/");
    let depth = parts.len() - k;
    cache
        .entry((base.clone(), depth))
        .or_insert_with(|| {
            let mut found = BTreeSet::new();
            walk(root, &base, depth, &mut found);
            found.into_iter().collect()
        })
        .clone()
}

fn walk(root: &Path, dir: &str, depth: usize, out: &mut BTreeSet<String>) {
    if depth == 0 || out.len() >= MAX_NEARBY {
        return;
    }
    let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == ".mlp" || name == ".git" {
            continue;
        }
        let rel = if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        };
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &rel, depth - 1, out);
        }
        out.insert(rel);
        if out.len() >= MAX_NEARBY {
            return;
        }
    }
}

/// The candidate closest to `path` by edit distance (transpositions count one), if close
/// enough to be a typo: a quarter of the path's length, at least 1, at most 3 edits.
fn closest<'a>(path: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (path.chars().count() / 4).clamp(1, 3);
    let bound = Bound::new(path);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c == path || !bound.may_be_within(c, limit) {
            continue;
        }
        let d = strsim::damerau_levenshtein(path, c);
        if d <= limit && best.is_none_or(|(b, bc)| d < b || (d == b && c < bc)) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// A cheap lower bound on the edit distance from one path, so that the distance itself
/// (which allocates) is computed only for the few candidates that pass: an insertion,
/// deletion or substitution changes the length by at most one, and the count of each
/// character by at most one on each side; a transposition changes neither. The
/// character counts are compared for ASCII text only.
struct Bound {
    chars: usize,
    /// The count of each byte of the path, when it is ASCII.
    counts: Option<[i32; 128]>,
}

impl Bound {
    fn new(path: &str) -> Bound {
        let counts = path.is_ascii().then(|| {
            let mut counts = [0i32; 128];
            for c in path.bytes() {
                counts[usize::from(c)] += 1;
            }
            counts
        });
        Bound {
            chars: path.chars().count(),
            counts,
        }
    }

    /// Whether `b` may be within `limit` edits of the path.
    fn may_be_within(&self, b: &str, limit: usize) -> bool {
        match &self.counts {
            Some(counts) if b.is_ascii() => {
                if self.chars.abs_diff(b.len()) > limit {
                    return false;
                }
                // What the path has more of (`more`) and `b` has more of (`fewer`).
                let mut counts = *counts;
                let mut more = self.chars;
                let mut fewer = 0;
                for c in b.bytes() {
                    let n = &mut counts[usize::from(c)];
                    if *n > 0 {
                        more -= 1;
                    } else {
                        fewer += 1;
                        if fewer > limit {
                            return false;
                        }
                    }
                    *n -= 1;
                }
                more <= limit
            }
            _ => self.chars.abs_diff(b.chars().count()) <= limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_a_typo_and_nothing_far() {
        let c = ["src/train.py", "src/utils.py", "data/raw.csv"];
        assert_eq!(closest("src/trian.py", c.into_iter()), Some("src/train.py"));
        assert_eq!(closest("data/raw.cvs", c.into_iter()), Some("data/raw.csv"));
        assert_eq!(closest("src/model.py", c.into_iter()), None);
        assert_eq!(closest("a", ["b"].into_iter()), Some("b"));
        assert_eq!(closest("ab", ["ba"].into_iter()), Some("ba"));
        assert_eq!(
            closest("dätä/x.csv", ["data/x.csv"].into_iter()),
            Some("data/x.csv")
        );
        assert_eq!(closest("dätä/x.csv", ["data/y.tsv"].into_iter()), None);
    }

    /// The bound never rules out a candidate the edit distance would accept.
    #[test]
    fn the_bound_is_below_the_distance() {
        let words = [
            "",
            "a",
            "ab",
            "ba",
            "abc",
            "acb",
            "src/train.py",
            "src/trian.py",
            "scr/train.py",
            "src/train.pyx",
            "data/raw.csv",
            "data/raw.cvs",
            "data/raw",
            "dätä/raw.csv",
            "out/1.txt",
            "out/12.txt",
            "out/21.txt",
            "out/all.txt",
        ];
        for a in words {
            for b in words {
                let d = strsim::damerau_levenshtein(a, b);
                for limit in 0..5 {
                    if d <= limit {
                        assert!(
                            Bound::new(a).may_be_within(b, limit),
                            "{a:?} {b:?} {d} {limit}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn nearby_lists_the_deepest_existing_directory() {
        let dir = std::env::temp_dir().join(format!("mlp-inputs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src/deep")).unwrap();
        std::fs::write(dir.join("src/train.py"), "").unwrap();
        std::fs::write(dir.join("src/deep/x.py"), "").unwrap();
        let mut cache = HashMap::new();
        let n = nearby(&dir, "src/trian.py", &mut cache);
        assert_eq!(n, vec!["src/deep", "src/train.py"]);
        let n = nearby(&dir, "scr/train.py", &mut cache);
        assert!(n.contains(&"src/train.py".to_string()), "{n:?}");
        assert!(!n.contains(&"src/deep/x.py".to_string()), "{n:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
