//! The server's state: the open documents (the editor's unsaved texts), and for each
//! pipeline file checked, its last plan or diagnostics and every file it read. A pipeline
//! is checked with `mlp_plan::load`, the same as `mlp check`, with the open documents laid
//! over the files on disk.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use lsp_types::{
    Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString,
};
use mlp_plan::{Diagnostics, Options, Plan};
use mlp_syntax::ast;

use crate::text::LineIndex;
use crate::uri;

/// An open document.
pub struct Doc {
    pub text: Arc<String>,
    pub version: i32,
    /// Its syntax tree, parsed when first asked for (a keystroke needs only the check).
    parsed: OnceLock<Option<Arc<ast::File>>>,
    /// The tree of its last text that parsed: completion and navigation keep working while
    /// the user types.
    last_good: Option<Arc<ast::File>>,
}

impl Doc {
    /// Its syntax tree, or the last one that parsed.
    pub fn ast(&self) -> Option<Arc<ast::File>> {
        let parsed = self
            .parsed
            .get_or_init(|| mlp_syntax::parse(&self.text).ok().map(Arc::new));
        parsed.clone().or_else(|| self.last_good.clone())
    }
}

/// One source a pipeline was planned from.
pub struct Source {
    pub path: PathBuf,
    pub text: Arc<String>,
    ast: OnceLock<Option<Arc<ast::File>>>,
}

impl Source {
    /// Its syntax tree (`.mlp` files only; `None` when it does not parse).
    pub fn ast(&self) -> Option<&Arc<ast::File>> {
        self.ast
            .get_or_init(|| {
                if !is_mlp(&self.path) {
                    return None;
                }
                mlp_syntax::parse(&self.text).ok().map(Arc::new)
            })
            .as_ref()
    }
}

/// A pipeline file, checked.
pub struct Root {
    pub path: PathBuf,
    /// Every file read: the root first, then includes and params files.
    pub sources: Vec<Source>,
    /// The plan when the pipeline checks.
    pub plan: Option<Arc<Plan>>,
    /// Its diagnostics, by file.
    pub diags: HashMap<PathBuf, Vec<Diagnostic>>,
}

impl Root {
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }
    pub fn source(&self, path: &Path) -> Option<&Source> {
        self.sources.iter().find(|s| s.path == path)
    }
}

#[derive(Default)]
pub struct World {
    pub docs: HashMap<PathBuf, Doc>,
    pub roots: BTreeMap<PathBuf, Root>,
    /// Each pipeline's last plan that checked: hover and completion use it while the text
    /// is broken.
    pub good: BTreeMap<PathBuf, Arc<Plan>>,
}

pub fn is_mlp(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "mlp")
}

/// The path as the planner names it: canonical when the file exists.
pub fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

impl World {
    pub fn open(&mut self, path: PathBuf, text: String, version: i32) {
        // The last good tree: the old text's if it was parsed and parses, else its own.
        let last_good = self.docs.get(&path).and_then(|d| match d.parsed.get() {
            Some(Some(t)) => Some(t.clone()),
            _ => d.last_good.clone(),
        });
        let parsed = OnceLock::new();
        if !is_mlp(&path) {
            let _ = parsed.set(None);
        }
        self.docs.insert(
            path,
            Doc {
                text: Arc::new(text),
                version,
                parsed,
                last_good,
            },
        );
    }

    pub fn close(&mut self, path: &Path) {
        self.docs.remove(path);
    }

    /// The text of a file: the open document's, else the file's on disk.
    pub fn text(&self, path: &Path) -> Option<Arc<String>> {
        if let Some(d) = self.docs.get(path) {
            return Some(d.text.clone());
        }
        let bytes = mlp_plan::read_source_file(path).ok()?;
        String::from_utf8(bytes).ok().map(Arc::new)
    }

    /// The pipelines a change to `path` must re-check: those that read it, or the `.mlp`
    /// files beside it (or one level up) that include it; else the file itself when it is
    /// a `.mlp` file.
    pub fn roots_of(&self, path: &Path) -> Vec<PathBuf> {
        let mut out: BTreeSet<PathBuf> = self
            .roots
            .values()
            .filter(|r| r.path != path && r.sources.iter().any(|s| s.path == path))
            .map(|r| r.path.clone())
            .collect();
        if out.is_empty() {
            out.extend(self.includers_on_disk(path));
        }
        if out.is_empty() && is_mlp(path) {
            out.insert(path.to_path_buf());
        }
        out.into_iter().collect()
    }

    /// `.mlp` files near `path` whose text names it in an `include` or `params` item.
    fn includers_on_disk(&self, path: &Path) -> Vec<PathBuf> {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return Vec::new();
        };
        let mut dirs = Vec::new();
        if let Some(d) = path.parent() {
            dirs.push(d.to_path_buf());
            if let Some(up) = d.parent() {
                dirs.push(up.to_path_buf());
            }
        }
        let mut out = Vec::new();
        for d in dirs {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = canonical(&e.path());
                if p == path || !is_mlp(&p) {
                    continue;
                }
                let Some(text) = self.text(&p) else { continue };
                let names_it = text.lines().any(|l| {
                    let l = l.trim_start();
                    (l.starts_with("include") || l.starts_with("params")) && l.contains(&name)
                });
                if names_it {
                    out.push(p);
                }
            }
        }
        out
    }

    /// Check the pipeline `root` again (with the open documents over the disk); the files
    /// whose diagnostics may have changed.
    pub fn check(&mut self, root: &Path) -> Vec<PathBuf> {
        let overlay: BTreeMap<PathBuf, Arc<String>> = self
            .docs
            .iter()
            .map(|(p, d)| (p.clone(), d.text.clone()))
            .collect();
        let opts = Options {
            overlay,
            ..Options::default()
        };
        let (plan, diags) = match mlp_plan::load(root, &opts) {
            Ok(plan) => {
                let d = plan.warning_report();
                let plan = Arc::new(plan);
                if let Some(prev) = self.good.insert(root.to_path_buf(), plan.clone()) {
                    std::thread::spawn(move || drop(prev));
                }
                (Some(plan), d)
            }
            Err(d) => (None, d),
        };
        let dir = root.parent().unwrap_or(Path::new("/"));
        let sources: Vec<Source> = diags
            .sources
            .files
            .iter()
            .map(|f| Source {
                path: canonical(&dir.join(&f.name)),
                text: f.text.clone(),
                ast: OnceLock::new(),
            })
            .collect();
        let by_file = to_lsp(&diags, &sources, root);
        let mut touched: BTreeSet<PathBuf> = sources.iter().map(|s| s.path.clone()).collect();
        touched.insert(root.to_path_buf());
        if let Some(old) = self.roots.get(&root.to_path_buf()) {
            touched.extend(old.sources.iter().map(|s| s.path.clone()));
        }
        let old = self.roots.insert(
            root.to_path_buf(),
            Root {
                path: root.to_path_buf(),
                sources,
                plan,
                diags: by_file,
            },
        );
        // Freeing a big plan piece by piece takes milliseconds the editor would wait for.
        if let Some(old) = old {
            std::thread::spawn(move || drop(old));
        }
        touched.into_iter().collect()
    }

    /// Every diagnostic in `path`, from every pipeline that read it.
    pub fn diagnostics_of(&self, path: &Path) -> Vec<Diagnostic> {
        let mut out: Vec<Diagnostic> = Vec::new();
        for r in self.roots.values() {
            for d in r.diags.get(path).into_iter().flatten() {
                if !out.contains(d) {
                    out.push(d.clone());
                }
            }
        }
        out
    }

    /// The pipeline a document belongs to (the first one that read it).
    pub fn root_of(&self, path: &Path) -> Option<&Root> {
        self.roots
            .get(path)
            .or_else(|| self.roots.values().find(|r| r.source(path).is_some()))
    }

    /// The pipeline of `path` and its last plan that checked.
    pub fn plan_of(&self, path: &Path) -> Option<(&Root, &Arc<Plan>)> {
        let r = self.root_of(path)?;
        Some((r, r.plan.as_ref().or_else(|| self.good.get(&r.path))?))
    }

    /// The syntax tree of a file: the open document's, else the pipeline's copy.
    pub fn ast(&self, path: &Path) -> Option<Arc<ast::File>> {
        if let Some(d) = self.docs.get(path) {
            return d.ast();
        }
        self.root_of(path)?.source(path)?.ast().cloned()
    }
}

/// mlp's diagnostics as the protocol's, by file: the primary label is the range, the
/// other labels are related information, the help ends the message (as `mlp check` prints).
fn to_lsp(
    diags: &Diagnostics,
    sources: &[Source],
    root: &Path,
) -> HashMap<PathBuf, Vec<Diagnostic>> {
    let indexes: Vec<LineIndex> = sources.iter().map(|s| LineIndex::new(&s.text)).collect();
    let mut out: HashMap<PathBuf, Vec<Diagnostic>> = HashMap::new();
    for d in &diags.items {
        let file = d.file.filter(|&f| f < sources.len());
        let (path, range, related) = match file {
            Some(f) => {
                let ix = &indexes[f];
                let primary = d.labels.iter().find(|l| l.primary).or(d.labels.first());
                let range = primary.map(|l| ix.range(l.span)).unwrap_or_default();
                let uri = uri::from_path(&sources[f].path);
                let related: Vec<DiagnosticRelatedInformation> = d
                    .labels
                    .iter()
                    .filter(|l| !l.primary && !l.text.is_empty())
                    .map(|l| DiagnosticRelatedInformation {
                        location: Location::new(uri.clone(), ix.range(l.span)),
                        message: l.text.clone(),
                    })
                    .collect();
                (sources[f].path.clone(), range, related)
            }
            None => (root.to_path_buf(), Default::default(), Vec::new()),
        };
        let mut message = d.message.clone();
        if let Some(l) = d.labels.iter().find(|l| l.primary && !l.text.is_empty()) {
            message.push_str(&format!("\n{}", l.text));
        }
        if let Some(h) = &d.help {
            message.push_str(&format!("\nhelp: {h}"));
        }
        out.entry(path).or_default().push(Diagnostic {
            range,
            severity: Some(if d.is_warning() {
                DiagnosticSeverity::WARNING
            } else {
                DiagnosticSeverity::ERROR
            }),
            code: Some(NumberOrString::String(d.code.to_string())),
            source: Some("mlp".into()),
            message,
            related_information: (!related.is_empty()).then_some(related),
            ..Default::default()
        });
    }
    out
}
