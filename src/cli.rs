//! Argument parsing and the commands. Each command is a function returning its exit code.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use mlp_plan::{Diagnostics, Options, Plan, Style};

use crate::commands;

/// Exit codes, documented in the book (`book/src/cli.md`).
pub mod code {
    /// Success.
    pub const OK: u8 = 0;
    /// A stage failed, or the pipeline has errors.
    pub const FAILED: u8 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: u8 = 2;
    /// A `check` or `gate` failed.
    pub const GATE: u8 = 3;
    /// The workspace is busy: another `mlp run` holds it.
    pub const BUSY: u8 = 4;
    /// `mlp fmt --check`: a file is not formatted.
    pub const UNFORMATTED: u8 = 5;
    /// Interrupted (Ctrl-C).
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Parser, Debug)]
#[command(
    name = "mlp",
    version,
    about = "A declarative DAG engine for machine-learning pipelines",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    /// The pipeline file (default: `pipeline.mlp`, searched upward from here).
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse and validate the pipeline; report every error at once.
    Check {
        /// Print the diagnostics as JSON.
        #[arg(long)]
        json: bool,
        /// Override a param (`--set train.lr=0.05`); may be repeated.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Print the DAG.
    Graph {
        #[arg(long, value_enum, default_value_t = GraphFormat::Ascii)]
        format: GraphFormat,
    },
    /// Run what is stale: all stages, or the named ones and what they need.
    Run {
        /// Stages to run (with what they need); default: all.
        stages: Vec<String>,
        /// Run at most N stages at once (default: the number of CPUs).
        #[arg(short = 'j', long = "jobs", value_name = "N")]
        jobs: Option<usize>,
        /// After a failure, let independent branches finish.
        #[arg(short = 'k', long)]
        keep_going: bool,
        /// Show what would run, and why, without running anything.
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// Run this stage even if it is up to date; may be repeated.
        #[arg(long, value_name = "STAGE")]
        force: Vec<String>,
        /// With STAGEs: also run everything downstream of them.
        #[arg(long)]
        downstream: bool,
        /// Override a param (`--set train.lr=0.05`); may be repeated; recorded in the run.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Stream every stage's output, prefixed with its name.
        #[arg(short, long)]
        verbose: bool,
        /// If another run holds this workspace, wait for it instead of failing.
        #[arg(long)]
        wait: bool,
        /// Print one JSON event per line on stdout (the event log).
        #[arg(long)]
        json: bool,
        /// Where stages run that do not name their own `executor` (default: as the pipeline
        /// says, else local).
        #[arg(long, value_enum, value_name = "EXECUTOR")]
        executor: Option<ExecutorArg>,
    },
    /// Run, then rerun exactly what each edit invalidates (and what `every` timers expire).
    Watch {
        /// Stages to keep up to date (with what they need); default: all.
        stages: Vec<String>,
        #[arg(short = 'j', long = "jobs", value_name = "N")]
        jobs: Option<usize>,
        /// Override a param (`--set train.lr=0.05`); may be repeated.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Stream every stage's output, prefixed with its name.
        #[arg(short, long)]
        verbose: bool,
        /// Quiet time after a change before acting, in milliseconds.
        #[arg(long, default_value_t = 50, value_name = "MS")]
        debounce: u64,
        /// Print one JSON event per line on stdout.
        #[arg(long)]
        json: bool,
        /// Where stages run that do not name their own `executor` (default: as the pipeline
        /// says, else local).
        #[arg(long, value_enum, value_name = "EXECUTOR")]
        executor: Option<ExecutorArg>,
    },
    /// Every stage: fresh, stale (with the first reason), never run, or failed.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// What a stage's identity is made of, and what changed since its last success.
    Explain {
        stage: String,
        #[arg(long)]
        json: bool,
    },
    /// The run history: id, when, outcome, what ran.
    Runs {
        #[arg(long)]
        json: bool,
        /// Show the last N runs.
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: usize,
    },
    /// One run: params, overrides, git state, and every stage with its metrics.
    Show {
        /// A run number, `last` or `baseline`.
        #[arg(default_value = "last")]
        run: String,
        #[arg(long)]
        json: bool,
    },
    /// Params and metrics of two runs, with deltas (default: the last run against the baseline).
    Diff {
        a: Option<String>,
        b: Option<String>,
        /// Also list what is equal.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Make a run the baseline that gates compare against.
    Promote { run: String },
    /// Restore a run's outputs byte for byte from the cache.
    Checkout { run: String },
    /// Remove cached outputs that no kept run refers to.
    Gc {
        /// Keep the run-cache entries of the last N runs.
        #[arg(long, default_value_t = 10, value_name = "N")]
        keep: usize,
        /// Report what would be removed, remove nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Format `.mlp` files canonically (comments kept).
    Fmt {
        /// Do not write: exit 5 if a file is not formatted.
        #[arg(long)]
        check: bool,
        /// Files to format (default: the pipeline file and what it includes).
        files: Vec<PathBuf>,
    },
}

/// `--executor`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExecutorArg {
    // No doc comments here: clap would switch every command's help to the long layout.
    Local,
    Slurm,
}

impl ExecutorArg {
    pub fn kind(self) -> mlp_plan::ExecutorKind {
        match self {
            ExecutorArg::Local => mlp_plan::ExecutorKind::Local,
            ExecutorArg::Slurm => mlp_plan::ExecutorKind::Slurm,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GraphFormat {
    Ascii,
    Dot,
    Mermaid,
    Json,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match &cli.command {
        Command::Check { json, set } => check(&cli, *json, set),
        Command::Graph { format } => graph(&cli, *format),
        Command::Fmt { check, files } => commands::fmt(&cli, *check, files),
        Command::Run {
            stages,
            jobs,
            keep_going,
            dry_run,
            force,
            downstream,
            set,
            verbose,
            wait,
            json,
            executor,
        } => commands::run(
            &cli,
            &commands::RunArgs {
                targets: stages,
                jobs: *jobs,
                keep_going: *keep_going,
                dry_run: *dry_run,
                force,
                downstream: *downstream,
                set,
                verbose: *verbose,
                wait: *wait,
                json: *json,
                executor: executor.map(ExecutorArg::kind),
            },
        ),
        Command::Status { json } => commands::status(&cli, *json),
        Command::Explain { stage, json } => commands::explain(&cli, stage, *json),
        Command::Gc {
            keep,
            dry_run,
            json,
        } => commands::gc(&cli, *keep, *dry_run, *json),
        Command::Runs { json, limit } => commands::runs(&cli, *json, *limit),
        Command::Watch {
            stages,
            jobs,
            set,
            verbose,
            debounce,
            json,
            executor,
        } => commands::watch(
            &cli,
            stages,
            *jobs,
            set,
            *verbose,
            *debounce,
            *json,
            executor.map(ExecutorArg::kind),
        ),
        Command::Show { run, json } => commands::show(&cli, run, *json),
        Command::Diff { a, b, all, json } => {
            commands::diff(&cli, a.as_deref(), b.as_deref(), *all, *json)
        }
        Command::Promote { run } => commands::promote(&cli, run),
        Command::Checkout { run } => commands::checkout(&cli, run),
    };
    ExitCode::from(code)
}

/// Diagnostics go to stderr: graphical with colour on a terminal, without colour when
/// `NO_COLOR` is set or stderr is not a terminal.
pub fn style() -> Style {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if !no_color && std::io::stderr().is_terminal() {
        Style::Color
    } else {
        Style::Plain
    }
}

/// The pipeline file: `-f FILE`, else `pipeline.mlp` here or in a parent directory.
pub fn pipeline_file(cli: &Cli) -> Result<PathBuf, String> {
    if let Some(f) = &cli.file {
        return Ok(f.clone());
    }
    let cwd = std::env::current_dir()
        .map_err(|e| format!("mlp: cannot read the current directory: {e}"))?;
    let mut dir: Option<&Path> = Some(&cwd);
    while let Some(d) = dir {
        let p = d.join("pipeline.mlp");
        if p.is_file() {
            return Ok(relative_to(&p, &cwd));
        }
        dir = d.parent();
    }
    Err(format!(
        "mlp: no `pipeline.mlp` in `{}` or any parent directory; pass the pipeline file with `-f FILE`",
        cwd.display()
    ))
}

fn relative_to(p: &Path, base: &Path) -> PathBuf {
    p.strip_prefix(base)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| p.to_path_buf())
}

pub fn parse_sets(set: &[String]) -> Result<Vec<(String, String)>, String> {
    set.iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(format!(
                "mlp: `--set {s}`: write `--set KEY=VALUE`, e.g. `--set train.lr=0.05`"
            )),
        })
        .collect()
}

/// Load and validate, printing diagnostics on failure.
pub fn load(cli: &Cli, overrides: Vec<(String, String)>, json: bool) -> Result<Plan, u8> {
    let file = pipeline_file(cli).map_err(|m| {
        eprintln!("{m}");
        code::FAILED
    })?;
    mlp_plan::load(&file, &Options { overrides }).map_err(|d| {
        report(&d, json);
        code::FAILED
    })
}

pub fn report(d: &Diagnostics, json: bool) {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&d.to_json()).unwrap_or_default()
        );
    } else {
        eprint!("{}", d.render(style()));
    }
}

fn check(cli: &Cli, json: bool, set: &[String]) -> u8 {
    let sets = match parse_sets(set) {
        Ok(s) => s,
        Err(m) => {
            eprintln!("{m}");
            return code::USAGE;
        }
    };
    match load(cli, sets, json) {
        Ok(plan) => {
            let p = &plan.pipeline;
            if json {
                outln!(
                    "{}",
                    serde_json::json!({"errors": [], "pipeline": p.name, "stages": p.stages.len()})
                );
            } else {
                eprintln!(
                    "ok: pipeline `{}`, {} stage{}",
                    p.name,
                    p.stages.len(),
                    if p.stages.len() == 1 { "" } else { "s" }
                );
            }
            // The process ends here: freeing a big plan piece by piece is wasted time.
            std::mem::forget(plan);
            code::OK
        }
        Err(c) => c,
    }
}

fn graph(cli: &Cli, format: GraphFormat) -> u8 {
    let plan = match load(cli, Vec::new(), false) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let p = &plan.pipeline;
    let out = match format {
        GraphFormat::Ascii => mlp_plan::graph::ascii(p),
        GraphFormat::Dot => mlp_plan::graph::dot(p),
        GraphFormat::Mermaid => mlp_plan::graph::mermaid(p),
        GraphFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&mlp_plan::graph::json(p)).unwrap_or_default()
        ),
    };
    out!("{out}");
    code::OK
}
