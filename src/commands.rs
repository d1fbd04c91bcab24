//! The commands that touch a workspace: `run`, `status`, `explain`, `gc`, and `fmt`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mlp_engine::history;
use mlp_engine::inspect::{self, State};
use mlp_engine::run::{self, EngineError, RunOptions};
use mlp_engine::store::Store;
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
    pub executor: Option<mlp_plan::ExecutorKind>,
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

/// `1 stage`, `2 stages`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The `--set` overrides and the pipeline file; on a problem, the exit code after saying it.
fn sets_and_file(cli: &Cli, set: &[String]) -> Result<(Vec<(String, String)>, PathBuf), u8> {
    let sets = parse_sets(set).map_err(|m| {
        eprintln!("{m}");
        code::USAGE
    })?;
    let file = pipeline_file(cli).map_err(fail)?;
    Ok((sets, file))
}

/// `-j` by default: the number of CPUs.
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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
        EngineError::InProgress(m) => {
            eprintln!("{m}");
            code::BUSY
        }
        other => fail(format!("mlp: {other}")),
    }
}

pub fn run(cli: &Cli, a: &RunArgs<'_>) -> u8 {
    let t0 = Instant::now();
    let (sets, file) = match sets_and_file(cli, a.set) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let (ws, name) = workspace_of(&file);
    if a.jobs == Some(0) {
        eprintln!("mlp: `-j 0`: give at least one job slot");
        return code::USAGE;
    }
    // The no-op path: the snapshot alone proves every stage fresh; no parsing, no store.
    let plain = sets.is_empty() && a.targets.is_empty() && a.force.is_empty() && !a.dry_run;
    if plain && run::nothing_to_do(&ws, &name) {
        if a.json {
            outln!(
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
    let jobs = a.jobs.unwrap_or_else(default_jobs);
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
        control: None,
        executor: a.executor,
    };
    let mut reporter = progress::reporter(a.json, a.verbose);
    match run::run(&ws, &plan.pipeline, &opts, reporter.as_mut()) {
        Err(EngineError::Busy(e)) => {
            eprintln!("mlp: {e}; wait for it to finish, or pass --wait to wait");
            code::BUSY
        }
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
        outln!(
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
        outln!("{:width$}  {}{detail}", s.stage, s.state.label());
    }
    let fresh = states.iter().filter(|s| s.state == State::Fresh).count();
    eprintln!("{fresh} of {} fresh", plural(states.len(), "stage"));
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
        outln!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
        return code::OK;
    }
    let k = &e.key;
    outln!("stage {}", e.stage);
    outln!("  identity  {}", e.identity);
    outln!("  format    {}", k.format);
    outln!("  command   {}", k.command);
    for (p, d) in &k.inputs {
        outln!("  input     {p}  {}", short(d));
    }
    for (p, v) in &k.params {
        outln!("  param     {p} = {v}");
    }
    for (p, v) in &k.env {
        outln!("  env       {p} = {v:?}");
    }
    for o in &k.outputs {
        outln!("  output    {o}");
    }
    for (stage, id) in &k.after {
        outln!("  after     {stage}  {}", short(id));
    }
    match &e.last_success {
        None => outln!("never succeeded: it runs on the next `mlp run`"),
        Some(l) => {
            outln!(
                "last success: run {} (identity {})",
                l.run.trim_start_matches('0'),
                &l.identity[..16.min(l.identity.len())]
            );
            if e.changes.is_empty() {
                outln!("nothing changed since: up to date");
            } else {
                outln!("changed since:");
                for c in &e.changes {
                    outln!("  - {c}");
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
                outln!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
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
            outln!("{}", f.display());
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

fn workspace(cli: &Cli) -> Result<Workspace, u8> {
    match pipeline_file(cli) {
        Ok(f) => Ok(workspace_of(&f).0),
        Err(m) => Err(fail(m)),
    }
}

fn when(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02}Z")
}

fn history_store(cli: &Cli) -> Result<mlp_engine::store::SledStore, u8> {
    let ws = workspace(cli)?;
    history::open(&ws).map_err(engine_error)
}

pub fn runs(cli: &Cli, json: bool, limit: usize) -> u8 {
    let store = match history_store(cli) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let list = match history::runs(&store, limit) {
        Ok(l) => l,
        Err(e) => return engine_error(e),
    };
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return code::OK;
    }
    outln!(
        "{:>5}  {:20}  {:>8}  {:11}  {:10}  stages",
        "run",
        "started",
        "took",
        "result",
        "commit"
    );
    for r in &list {
        let result = if r.interrupted {
            "interrupted"
        } else if r.ok {
            "ok"
        } else {
            "FAILED"
        };
        let commit = r.git["commit"].as_str().map_or("-".to_string(), |c| {
            format!(
                "{}{}",
                &c[..8.min(c.len())],
                if r.git["dirty"] == true { "+" } else { "" }
            )
        });
        let counts: Vec<String> = r.counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
        outln!(
            "{:>5}{} {:20}  {:>8}  {:11}  {:10}  {}",
            r.id,
            if r.baseline { "*" } else { " " },
            when(r.started_ms),
            run::human_ms(r.duration_ms),
            result,
            commit,
            counts.join(", ")
        );
    }
    if list.iter().any(|r| r.baseline) {
        eprintln!("* the baseline");
    }
    code::OK
}

pub fn show(cli: &Cli, name: &str, json: bool) -> u8 {
    let store = match history_store(cli) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let run = match history::resolve(&store, name)
        .and_then(|id| Ok(store.run(&id)?.unwrap_or_default()))
    {
        Ok(r) => r,
        Err(e) => return engine_error(e),
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&run).unwrap_or_default());
        return code::OK;
    }
    let id = history::short(run["id"].as_str().unwrap_or(""));
    let started = run["started_ms"].as_u64().unwrap_or(0);
    let took = run["ended_ms"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(started);
    outln!(
        "run {id}  {}  took {}  {}{}",
        when(started),
        run::human_ms(took),
        if run["ok"] == true { "ok" } else { "FAILED" },
        if run["promoted"] == true {
            "  (promoted)"
        } else {
            ""
        }
    );
    if let Some(g) = run["git"].as_object() {
        outln!(
            "git    {}{}",
            g["commit"].as_str().unwrap_or(""),
            if g["dirty"] == true { " (dirty)" } else { "" }
        );
    }
    if let Some(o) = run["overrides"].as_array().filter(|o| !o.is_empty()) {
        let sets: Vec<String> = o
            .iter()
            .map(|p| {
                format!(
                    "{}={}",
                    p[0].as_str().unwrap_or(""),
                    p[1].as_str().unwrap_or("")
                )
            })
            .collect();
        outln!("set    {}", sets.join(" "));
    }
    let flat = history::flatten_run(&serde_json::json!({"params": run["params"]}));
    for (k, v) in &flat {
        outln!("param  {} = {v}", k.trim_start_matches("params."));
    }
    if let Some(stages) = run["stages"].as_object() {
        // Pipeline order when the record has it.
        let order: Vec<&str> = match run["order"].as_array() {
            Some(o) => o.iter().filter_map(|v| v.as_str()).collect(),
            None => stages.keys().map(String::as_str).collect(),
        };
        for (name, s) in order
            .into_iter()
            .filter_map(|n| stages.get(n).map(|s| (n, s)))
        {
            let status = s["status"].as_str().unwrap_or("?");
            if status == "not_selected" {
                continue;
            }
            let mut line = format!("stage  {name:20} {status}");
            if let Some(d) = s["duration_ms"].as_u64() {
                line.push_str(&format!("  {}", run::human_ms(d)));
            }
            if let Some(c) = s["cpu_ms"].as_u64().filter(|c| *c > 0) {
                line.push_str(&format!("  cpu {}", run::human_ms(c)));
            }
            if let Some(m) = s["max_rss_kb"].as_u64().filter(|m| *m > 0) {
                line.push_str(&format!("  peak {} MiB", m / 1024));
            }
            if let Some(a) = s["attempts"].as_u64().filter(|a| *a > 1) {
                line.push_str(&format!("  {a} attempts"));
            }
            if s["fallback_used"] == true {
                line.push_str("  (fallback used)");
            }
            if let Some(r) = s["reason"].as_str() {
                line.push_str(&format!("  — {r}"));
            }
            outln!("{line}");
            if let Some(m) = s["metrics"].as_object() {
                let mut flat = std::collections::BTreeMap::new();
                for (k, v) in m {
                    flat.extend(history::flatten_run(&serde_json::json!({"params": {k: v}})));
                }
                for (k, v) in flat {
                    outln!("         {} = {v}", k.trim_start_matches("params."));
                }
            }
            if let Some(notes) = s["notes"].as_array() {
                for n in notes {
                    outln!("         note: {}", n.as_str().unwrap_or(""));
                }
            }
        }
    }
    code::OK
}

pub fn diff(cli: &Cli, a: Option<&str>, b: Option<&str>, all: bool, json: bool) -> u8 {
    let store = match history_store(cli) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let d = match history::diff(&store, a, b, all) {
        Ok(d) => d,
        Err(e) => return engine_error(e),
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
        return code::OK;
    }
    if d.rows.is_empty() {
        outln!("runs {} and {} have the same params and metrics", d.a, d.b);
        return code::OK;
    }
    let w = d.rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
    let show =
        |v: &Option<serde_json::Value>| v.as_ref().map_or("-".to_string(), |v| v.to_string());
    outln!(
        "{:w$}  {:>12}  {:>12}  {:>10}",
        "",
        format!("run {}", d.a),
        format!("run {}", d.b),
        "delta"
    );
    for r in &d.rows {
        let delta = r.delta.map_or(String::new(), |x| format!("{x:+.4}"));
        outln!(
            "{:w$}  {:>12}  {:>12}  {:>10}",
            r.key,
            show(&r.a),
            show(&r.b),
            delta
        );
    }
    code::OK
}

pub fn promote(cli: &Cli, name: &str) -> u8 {
    let ws = match workspace(cli) {
        Ok(w) => w,
        Err(c) => return c,
    };
    match history::promote(&ws, name) {
        Ok(id) => {
            eprintln!("run {id} is now the baseline");
            code::OK
        }
        Err(e) => engine_error(e),
    }
}

pub fn checkout(cli: &Cli, name: &str) -> u8 {
    let ws = match workspace(cli) {
        Ok(w) => w,
        Err(c) => return c,
    };
    match history::checkout(&ws, name) {
        Ok(r) => {
            for p in &r.restored {
                eprintln!("  restored {p}");
            }
            eprintln!(
                "checked out run {}: {} output{} restored, {} already as recorded",
                r.run,
                r.restored.len(),
                if r.restored.len() == 1 { "" } else { "s" },
                r.unchanged.len()
            );
            code::OK
        }
        Err(e) => engine_error(e),
    }
}

struct WatchUi {
    json: bool,
    verbose: bool,
}

impl mlp_watch::Ui for WatchUi {
    fn reporter(&self) -> Box<dyn run::Reporter> {
        progress::reporter(self.json, self.verbose)
    }

    fn diagnostics(&self, d: &mlp_plan::Diagnostics) {
        crate::cli::report(d, self.json);
    }

    fn event(&self, e: &mlp_watch::WatchEvent) {
        use mlp_watch::WatchEvent as W;
        if self.json {
            outln!("{}", mlp_watch::event_json(e));
            return;
        }
        match e {
            W::Watching { dirs, stages } => {
                eprintln!(
                    "watching {} ({}); Ctrl-C to stop",
                    plural(*stages, "stage"),
                    plural(*dirs, "directory").replace("directorys", "directories")
                )
            }
            W::Changed { paths } => {
                let shown: Vec<&str> = paths.iter().take(5).map(String::as_str).collect();
                let more = if paths.len() > 5 {
                    format!(" and {} more", paths.len() - 5)
                } else {
                    String::new()
                };
                eprintln!("── changed: {}{more}", shown.join(", "));
            }
            W::Restart { stage } => {
                eprintln!("  ↻ {stage}: its inputs changed while it ran; stopped, it runs again")
            }
            W::Timer { stages } => eprintln!("── `every` expired: {}", stages.join(", ")),
            W::PlanError { errors } => eprintln!(
                "the pipeline has {errors} error{}; watching until it is fixed",
                if *errors == 1 { "" } else { "s" }
            ),
            W::RunError { message } => eprintln!("mlp watch: {message}"),
            W::Stopped => eprintln!("stopped"),
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn watch(
    cli: &Cli,
    targets: &[String],
    jobs: Option<usize>,
    set: &[String],
    verbose: bool,
    debounce: u64,
    json: bool,
    executor: Option<mlp_plan::ExecutorKind>,
) -> u8 {
    let (sets, file) = match sets_and_file(cli, set) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let (_, name) = workspace_of(&file);
    let jobs = jobs.unwrap_or_else(default_jobs);
    let opts = mlp_watch::WatchOptions {
        file,
        run: RunOptions {
            targets: targets.to_vec(),
            jobs: jobs.max(1),
            verbose,
            overrides: sets,
            pipeline_file: name,
            executor,
            ..Default::default()
        },
        debounce: std::time::Duration::from_millis(debounce),
    };
    mlp_watch::watch(opts, &WatchUi { json, verbose })
}
