//! From syntax trees to the validated `Pipeline`: named passes over one context, the
//! `Lowerer`, each in its own file and run in this order by `Lowerer::lower`:
//!
//! 1. `sources`: the root file and its includes, read and parsed (and params files, read
//!    when the top-level items name them);
//! 2. `items`: the top-level items: the pipeline's name, params (files, `param`, `--set`),
//!    `env`, `executor` (settings checked in `executor`) and `cache`;
//! 3. `expand`: `for` loops expanded into one raw stage per value;
//! 4. `names`: stage names, valid and unique;
//! 5. `outputs`: every stage's outputs, before anything reads them, and the output index;
//! 6. `stage`: each stage's items, with `interp` (strings), `command` (`run`, `fallback`)
//!    and `conditions` (`check`, `gate`, `when`);
//! 7. `order`: cycles and the topological order;
//! 8. `inputs`: warnings for input paths that do not exist and that no stage writes
//!    (only for a pipeline without errors: it stats files under the root).
//!
//! Each pass reads the tables the passes before it filled in and reports into the
//! context's diagnostics.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use mlp_syntax::ast::{self, Span};

use crate::diag::{Diagnostic, Diagnostics, SourceMap};
use crate::model::{Dep, Executor, Output, Pipeline, Stage};
use crate::paths::OutputIndex;
use crate::value::Value;

mod cache;
mod command;
mod conditions;
mod executor;
mod expand;
mod inputs;
mod interp;
mod items;
mod names;
mod order;
mod outputs;
mod ray;
mod remote;
mod sources;
mod stage;
mod tracking;

/// What the caller adds to the sources.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--set key=value` overrides, in order.
    pub overrides: Vec<(String, String)>,
    /// Texts that stand in for files on disk (an editor's unsaved buffers), by path as
    /// `std::fs::canonicalize` gives it (or as given when the file does not exist).
    pub overlay: BTreeMap<PathBuf, std::sync::Arc<String>>,
}

/// A planned pipeline and what it was planned from.
#[derive(Clone, Debug)]
pub struct Plan {
    pub pipeline: Pipeline,
    /// The workspace root: the directory of the root `.mlp` file.
    pub root: PathBuf,
    pub sources: SourceMap,
    /// Warnings (`Severity::Warning`), in `sources`: shown, but the plan stands.
    pub warnings: Vec<Diagnostic>,
}

impl Plan {
    /// The warnings with the sources they point into, to render or print as JSON.
    pub fn warning_report(&self) -> Diagnostics {
        Diagnostics {
            sources: self.sources.clone(),
            items: self.warnings.clone(),
        }
    }
}

/// Read, parse and validate the pipeline in `path` and everything it includes.
pub fn load(path: &Path, opts: &Options) -> Result<Plan, Diagnostics> {
    let root = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut l = Lowerer::new(root.clone());
    l.overlay = opts.overlay.clone();
    let display = path.display().to_string();
    let file_name = path
        .file_name()
        .map_or_else(|| display.clone(), |n| n.to_string_lossy().into_owned());
    let Some(root_file) = l.read_source(path, display, file_name, None) else {
        return Err(l.finish_err());
    };
    let pipeline = l.lower(root_file, opts);
    if l.n_errors() == 0
        && let Some(pipeline) = pipeline
    {
        return Ok(Plan {
            pipeline,
            root,
            warnings: l.warnings,
            sources: l.sources,
        });
    }
    Err(l.finish_err())
}

/// Plan from a text held in memory (tests, fuzzing, `mlp fmt --check`): includes and params
/// files are read relative to `root`.
pub fn load_str(name: &str, text: &str, root: &Path, opts: &Options) -> Result<Plan, Diagnostics> {
    let mut l = Lowerer::new(root.to_path_buf());
    l.overlay = opts.overlay.clone();
    let id = l.sources.add(name.to_string(), text.to_string());
    l.rel_names.push(name.to_string());
    let parsed = match mlp_syntax::parse(text) {
        Ok(f) => f,
        Err(errs) => {
            l.syntax_errors(id, errs);
            return Err(l.finish_err());
        }
    };
    let pipeline = l.lower((id, parsed), opts);
    match pipeline {
        Some(p) if l.n_errors() == 0 => Ok(Plan {
            pipeline: p,
            root: root.to_path_buf(),
            warnings: l.warnings,
            sources: l.sources,
        }),
        _ => Err(l.finish_err()),
    }
}

/// Diagnostics for a file that does not parse (for `mlp fmt`, which needs no planning).
pub fn syntax_diagnostics(
    name: &str,
    text: &str,
    errs: Vec<mlp_syntax::SyntaxError>,
) -> Diagnostics {
    let mut l = Lowerer::new(PathBuf::new());
    let id = l.sources.add(name.to_string(), text.to_string());
    l.syntax_errors(id, errs);
    l.finish_err()
}

/// The lowering's one context: the sources read so far and the diagnostics, then the
/// tables each pass fills in for the passes after it. Diagnostics sit in a `RefCell` so
/// that a pass can report while it reads the tables (`&self`).
struct Lowerer {
    root: PathBuf,
    sources: SourceMap,
    /// Workspace-relative name of each source.
    rel_names: Vec<String>,
    diags: RefCell<Vec<Diagnostic>>,
    /// (code, file, primary span) of every diagnostic so far: a `for` loop body is checked
    /// once per value, and the same mistake is reported once.
    reported: RefCell<HashSet<(&'static str, usize, Span)>>,
    /// A params file could not be read: unknown-key errors would only follow from that.
    params_failed: bool,
    /// Unsaved texts read instead of the files (`Options::overlay`).
    overlay: BTreeMap<PathBuf, std::sync::Arc<String>>,

    // Filled by `items`.
    params: BTreeMap<String, Value>,
    env: BTreeMap<String, String>,
    /// The pipeline's executor (`local` unless an `executor` item says otherwise).
    executor: Executor,
    /// The pipeline's cache mode (`copy` unless a `cache` item says otherwise).
    cache: crate::model::CacheMode,
    // Filled by `names`.
    by_name: HashMap<String, usize>,
    /// Every stage's name, by index (duplicates included).
    stage_names: Vec<String>,
    // Filled by `outputs`.
    outputs: Vec<Vec<Output>>,
    /// The span of each output's path, parallel to `outputs`.
    out_spans: Vec<Vec<Span>>,
    out_index: OutputIndex,
    // Filled by `stage`: path inputs that no stage writes (file, span of the string,
    // normalized path), for `inputs` to look for on disk.
    unproduced: RefCell<Vec<(usize, Span, String)>>,
    // Filled by `inputs`.
    warnings: Vec<Diagnostic>,
}

/// A stage after `for` expansion, before resolution.
struct RawStage {
    file: usize,
    ast: StageAst,
    name: String,
    name_span: Span,
    vars: Vars,
    /// Its name could not be interpolated (already reported): not checked further.
    bad_name: bool,
}

/// A stage's syntax tree, owned with the top-level item it is written in (a `stage`, or
/// the `for` loop around it) and shared with the other stages that loop makes. The stage
/// loop of [`Lowerer::lower`] drops each raw stage once it is lowered, so the tree of a
/// top-level item is freed as soon as its last stage is lowered: the syntax tree and the
/// plan are not both whole at once (at 100,000 stages each is over 100 MB).
struct StageAst {
    item: std::rc::Rc<ast::Item>,
    /// The index of the item in each `for` body down to the stage (empty: `item` is it).
    path: Box<[usize]>,
}

impl std::ops::Deref for StageAst {
    type Target = ast::Stage;

    fn deref(&self) -> &ast::Stage {
        let mut item: &ast::Item = &self.item;
        for &i in &self.path {
            if let ast::ItemKind::For(l) = &item.kind {
                item = &l.items[i];
            }
        }
        match &item.kind {
            ast::ItemKind::Stage(s) => s,
            _ => unreachable!("`expand` makes a StageAst only for the path to a stage"),
        }
    }
}

/// The loop variables in scope, outermost first.
type Vars = Vec<(String, Value)>;

/// What an interpolation may name besides `in`, `out`, `metrics` and stages: the loop
/// variables and the params.
#[derive(Clone, Copy)]
struct Scope<'v> {
    vars: &'v [(String, Value)],
    params: &'v BTreeMap<String, Value>,
}

/// No loop variables and no params: include paths, params file paths, the pipeline's name.
static NO_PARAMS: BTreeMap<String, Value> = BTreeMap::new();

impl Scope<'static> {
    fn empty() -> Self {
        Scope {
            vars: &[],
            params: &NO_PARAMS,
        }
    }
}

/// The stage being lowered (by `stage`, `command` and `conditions`): which it is, and what
/// is built so far.
struct Building<'r> {
    me: usize,
    r: &'r RawStage,
    stage: Stage,
    deps: Vec<Dep>,
}

impl Lowerer {
    fn new(root: PathBuf) -> Self {
        Lowerer {
            root,
            sources: SourceMap::default(),
            rel_names: Vec::new(),
            diags: RefCell::default(),
            reported: RefCell::default(),
            params_failed: false,
            overlay: BTreeMap::new(),
            params: BTreeMap::new(),
            env: BTreeMap::new(),
            executor: Executor::default(),
            cache: crate::model::CacheMode::default(),
            by_name: HashMap::new(),
            stage_names: Vec::new(),
            outputs: Vec::new(),
            out_spans: Vec::new(),
            out_index: OutputIndex::default(),
            unproduced: RefCell::default(),
            warnings: Vec::new(),
        }
    }

    fn finish_err(self) -> Diagnostics {
        Diagnostics {
            sources: self.sources,
            items: self.diags.into_inner(),
        }
    }

    /// Report `d`, unless the same code was reported at the same place already.
    fn err(&self, d: Diagnostic) {
        if let (Some(file), Some(l)) = (d.file, d.labels.iter().find(|l| l.primary))
            && !self.reported.borrow_mut().insert((d.code, file, l.span))
        {
            return;
        }
        self.diags.borrow_mut().push(d);
    }

    /// A file's bytes: the overlay's text when it holds one, else the file on disk.
    fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        if !self.overlay.is_empty() {
            let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            if let Some(t) = self.overlay.get(&key) {
                return Ok(t.as_bytes().to_vec());
            }
        }
        read_source_file(path)
    }

    /// How many diagnostics so far.
    fn n_errors(&self) -> usize {
        self.diags.borrow().len()
    }

    /// Loop variables `vars` and the pipeline's params.
    fn scope<'v>(&'v self, vars: &'v [(String, Value)]) -> Scope<'v> {
        Scope {
            vars,
            params: &self.params,
        }
    }

    /// Run the passes over the parsed root file.
    fn lower(&mut self, root_file: (usize, ast::File), opts: &Options) -> Option<Pipeline> {
        let files = self.collect_sources(root_file);
        let top = self.top_level(&files, opts);
        let n_files = files.len();
        let raw = self.expand_all(files);
        self.names(&raw);
        self.outputs(&raw);
        let mut stages: Vec<Stage> = Vec::with_capacity(raw.len());
        // Each raw stage is dropped once lowered, and with the last one of an item, its tree.
        for (i, r) in raw.into_iter().enumerate() {
            stages.push(self.stage(i, &r));
        }
        if self.n_errors() > 0 {
            return None;
        }
        for (s, o) in stages.iter_mut().zip(std::mem::take(&mut self.outputs)) {
            s.outputs = o;
        }
        let order = self.order(&stages)?;
        self.warnings = self.missing_inputs(&stages);
        let mut sources = self.rel_names.clone();
        sources.truncate(n_files.max(1));
        sources.extend(top.params_sources);
        Some(Pipeline {
            name: top.name.unwrap_or_else(|| "pipeline".into()),
            sources,
            params: std::mem::take(&mut self.params),
            overrides: top.overrides,
            stages,
            order,
            tracking: top.tracking,
            remote: top.remote,
        })
    }
}

/// The largest pipeline, include or params file mlp reads: a generated 10,000-stage
/// pipeline is about 3 MB.
pub const MAX_SOURCE_BYTES: u64 = 64 << 20;

/// Read a pipeline, include or params file: a regular file (a directory, FIFO or device
/// would block or never end: `include "/dev/zero"`) of at most [`MAX_SOURCE_BYTES`]. The
/// error says which, so that `cannot read `PATH`: ...` names the fix.
pub fn read_source_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    use std::os::unix::fs::FileTypeExt;
    // Follows symlinks; a symlink loop is an error here (ELOOP).
    let meta = std::fs::metadata(path)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file"),
        ));
    }
    let too_big = || {
        Error::new(
            ErrorKind::InvalidData,
            format!(
                "it is larger than {} MiB, the limit for pipeline, include and params files",
                MAX_SOURCE_BYTES >> 20
            ),
        )
    };
    if meta.len() > MAX_SOURCE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    std::fs::File::open(path)?
        .take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(too_big());
    }
    Ok(bytes)
}
