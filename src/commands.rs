//! The commands that touch a workspace: `run`, `status`, `explain`, `gc`, and `fmt`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mlp_engine::inspect::{self, State};
use mlp_engine::run::{self, EngineError, RunOptions};
use mlp_engine::workspace::Workspace;

use crate::cli::{Cli, code, load, parse_sets, pipeline_file};
use crate::progress;

pub struct RunArgs<'a> {
    pub targets: &'a [String],
    pub jobs: Option<usize>,
    pub keep_going: bool,
    pub dry_run: bool,
    pub force: &'a [String],
    pub downstream: bool,
    pub set: &'a [String],
    pub verbose: bool,
    pub wait: bool,
    pub json: bool,
}

/// The workspace of a pipeline file: the directory that holds it.
fn workspace_of(file: &Path) -> (Workspace, String) {
    let root = file.parent().unwrap_or(Path::new(""));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (Workspace::new(root), name)
}

fn fail(msg: impl std::fmt::Display) -> u8 {
    eprintln!("{msg}");
    code::FAILED
}

fn engine_error(e: EngineError) -> u8 {
    match e {
        EngineError::Busy(e) => {
            eprintln!("mlp: {e}");
            code::BUSY
        }
        EngineError::Usage(m) => {
            eprintln!("{m}");
            code::USAGE
        }
        other => fail(format!("mlp: {other}")),
    }
}

pub fn run(cli: &Cli, a: &RunArgs<'_>) -> u8 {
    let t0 = Instant::now();
    let sets = match parse_sets(a.set) {
        Ok(s) => s,
        Err(m) => {
            eprintln!("{m}");
            return code::USAGE;
        }
    };
    let file = match pipeline_file(cli) {
        Ok(f) => f,
        Err(m) => return fail(m),
    };
    let (ws, name) = workspace_of(&file);
    // The no-op path: the snapshot alone proves every stage fresh; no parsing, no store.
    let plain = sets.is_empty() && a.targets.is_empty() && a.force.is_empty() && !a.dry_run;
    if plain && run::nothing_to_do(&ws, &name) {
        if a.json {
            println!(
                "{}",
                serde_json::json!({"event": "finish", "run": null, "ok": true, "nothing_to_do": true, "elapsed_ms": t0.elapsed().as_millis() as u64})
            );
        } else {
            eprintln!(
                "nothing to do: every stage is up to date ({})",
                run::human_ms(t0.elapsed().as_millis() as u64)
            );
        }
        return code::OK;
    }
    let plan = match load(cli, sets.clone(), false) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        eprintln!("mlp: `-j 0`: give at least one job slot");
        return code::USAGE;
    }
    let opts = RunOptions {
        targets: a.targets.to_vec(),
        downstream: a.downstream,
        jobs,
        keep_going: a.keep_going,
        dry_run: a.dry_run,
        force: a.force.to_vec(),
        verbose: a.verbose,
        wait: a.wait,
        overrides: sets,
        pipeline_file: name,
    };
    let mut reporter = progress::reporter(a.json, a.verbose);
    match run::run(&ws, &plan.pipeline, &opts, reporter.as_mut()) {
        Ok(report) if report.interrupted => code::INTERRUPTED,
        Ok(report) if report.ok() => code::OK,
        Ok(report) if report.gate_failed() => code::GATE,
        Ok(_) => code::FAILED,
        Err(e) => engine_error(e),
    }
}

pub fn status(cli: &Cli, json: bool) -> u8 {
    let plan = match load(cli, Vec::new(), json) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let file = pipeline_file(cli).unwrap_or_default();
    let (ws, name) = workspace_of(&file);
    let states = match inspect::status(&ws, &plan.pipeline, &name) {
        Ok(s) => s,
        Err(e) => return engine_error(e),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&states).unwrap_or_default()
        );
        return code::OK;
    }
    let width = states.iter().map(|s| s.stage.len()).max().unwrap_or(0);
    for s in &states {
        let detail = match &s.state {
            State::Stale { reason } | State::Failed { reason } => format!(": {reason}"),
            _ => String::new(),
        };
        println!("{:width$}  {}{detail}", s.stage, s.state.label());
    }
    let fresh = states.iter().filter(|s| s.state == State::Fresh).count();
    eprintln!("{fresh} of {} stages fresh", states.len());
    code::OK
}

pub fn explain(cli: &Cli, stage: &str, json: bool) -> u8 {
    let plan = match load(cli, Vec::new(), json) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let file = pipeline_file(cli).unwrap_or_default();
    let (ws, _) = workspace_of(&file);
    let e = match inspect::explain(&ws, &plan.pipeline, stage) {
        Ok(e) => e,
        Err(e) => return engine_error(e),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
        return code::OK;
    }
    let k = &e.key;
    println!("stage {}", e.stage);
    println!("  identity  {}", e.identity);
    println!("  format    {}", k.format);
    println!("  command   {}", k.command);
    for (p, d) in &k.inputs {
        println!("  input     {p}  {}", short(d));
    }
    for (p, v) in &k.params {
        println!("  param     {p} = {v}");
    }
    for (p, v) in &k.env {
        println!("  env       {p} = {v:?}");
    }
    for o in &k.outputs {
        println!("  output    {o}");
    }
    match &e.last_success {
        None => println!("never succeeded: it runs on the next `mlp run`"),
        Some(l) => {
            println!(
                "last success: run {} (identity {})",
                l.run.trim_start_matches('0'),
                &l.identity[..16.min(l.identity.len())]
            );
            if e.changes.is_empty() {
                println!("nothing changed since: up to date");
            } else {
                println!("changed since:");
                for c in &e.changes {
                    println!("  - {c}");
                }
            }
        }
    }
    code::OK
}

fn short(d: &str) -> String {
    match d.rsplit_once(':') {
        Some((kind, h)) => format!("{kind}:{}", &h[..16.min(h.len())]),
        None => d[..16.min(d.len())].to_string(),
    }
}

pub fn gc(cli: &Cli, keep: usize, dry_run: bool, json: bool) -> u8 {
    let file = match pipeline_file(cli) {
        Ok(f) => f,
        Err(m) => return fail(m),
    };
    let (ws, _) = workspace_of(&file);
    if !ws.store_path().exists() {
        eprintln!("nothing to collect: this workspace has never run");
        return code::OK;
    }
    match inspect::gc(&ws, keep, &HashSet::new(), dry_run) {
        Ok(r) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                eprintln!(
                    "{}{} object{} ({} MiB), {} run-cache record{}; {} object{} kept",
                    if dry_run { "would remove " } else { "removed " },
                    r.objects_removed,
                    if r.objects_removed == 1 { "" } else { "s" },
                    r.bytes_freed / (1024 * 1024),
                    r.records_dropped,
                    if r.records_dropped == 1 { "" } else { "s" },
                    r.objects_kept,
                    if r.objects_kept == 1 { "" } else { "s" },
                );
            }
            code::OK
        }
        Err(e) => engine_error(e),
    }
}

/// `mlp fmt`: rewrite files in canonical layout; with `--check`, only report.
pub fn fmt(cli: &Cli, check: bool, files: &[PathBuf]) -> u8 {
    let files: Vec<PathBuf> = if files.is_empty() {
        match pipeline_file(cli) {
            Ok(f) => sources_of(&f),
            Err(m) => return fail(m),
        }
    } else {
        files.to_vec()
    };
    let mut unformatted = 0;
    let mut errors = 0;
    for f in &files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                errors += 1;
                eprintln!("mlp fmt: cannot read {}: {e}", f.display());
                continue;
            }
        };
        let Ok(text) = String::from_utf8(bytes) else {
            errors += 1;
            eprintln!(
                "mlp fmt: {} is not UTF-8 text; save it as UTF-8",
                f.display()
            );
            continue;
        };
        let out = match mlp_syntax::format(&text) {
            Ok(o) => o,
            Err(errs) => {
                errors += 1;
                let d = mlp_plan::syntax_diagnostics(&f.display().to_string(), &text, errs);
                eprint!("{}", d.render(crate::cli::style()));
                continue;
            }
        };
        if out == text {
            continue;
        }
        unformatted += 1;
        if check {
            println!("{}", f.display());
        } else if let Err(e) = write_atomic(f, &out) {
            errors += 1;
            eprintln!("mlp fmt: cannot write {}: {e}", f.display());
        }
    }
    if errors > 0 {
        code::FAILED
    } else if check && unformatted > 0 {
        eprintln!(
            "{unformatted} file{} not formatted; run `mlp fmt`",
            if unformatted == 1 { "" } else { "s" }
        );
        code::UNFORMATTED
    } else {
        code::OK
    }
}

/// The pipeline file and every `.mlp` file it includes (when they parse).
fn sources_of(file: &Path) -> Vec<PathBuf> {
    match mlp_plan::load(file, &mlp_plan::Options::default()) {
        Ok(plan) => {
            let root = file.parent().unwrap_or(Path::new(""));
            plan.pipeline
                .sources
                .iter()
                .filter(|s| s.ends_with(".mlp"))
                .map(|s| root.join(s))
                .collect()
        }
        Err(_) => vec![file.to_path_buf()],
    }
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("mlp.fmt{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path)
}
