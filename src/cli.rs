//! The command line as clap types, and nothing else: the commands themselves are in
//! `commands/`, one file each.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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

// The help of each command is the doc comment of its variant here; the argument structs
// below carry no doc comment of their own (clap would take it instead).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse and validate the pipeline; report every error at once.
    Check(CheckArgs),
    /// Print the DAG.
    Graph(GraphArgs),
    /// Run what is stale: all stages, or the named ones and what they need.
    Run(RunArgs),
    /// Run, then rerun exactly what each edit invalidates (and what `every` timers expire).
    Watch(WatchArgs),
    /// Every stage: fresh, stale (with the first reason), never run, or failed.
    Status(StatusArgs),
    /// What a stage's identity is made of, and what changed since its last success.
    Explain(ExplainArgs),
    /// The run history: id, when, outcome, what ran.
    Runs(RunsArgs),
    /// One run: params, overrides, git state, and every stage with its metrics.
    Show(ShowArgs),
    /// Params and metrics of two runs, with deltas (default: the last run against the baseline).
    Diff(DiffArgs),
    /// Make a run the baseline that gates compare against.
    Promote(PromoteArgs),
    /// Restore a run's outputs byte for byte from the cache.
    Checkout(CheckoutArgs),
    /// Remove cached outputs that no kept run refers to.
    Gc(GcArgs),
    /// Format `.mlp` files canonically (comments kept).
    Fmt(FmtArgs),
}

// `mlp check`
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Print the diagnostics as JSON.
    #[arg(long)]
    pub json: bool,
    /// Override a param (`--set train.lr=0.05`); may be repeated.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

// `mlp graph`
#[derive(Args, Debug)]
pub struct GraphArgs {
    #[arg(long, value_enum, default_value_t = GraphFormat::Ascii)]
    pub format: GraphFormat,
}

// `mlp run`
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Stages to run (with what they need); default: all.
    pub stages: Vec<String>,
    /// Run at most N stages at once (default: the number of CPUs).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,
    /// After a failure, let independent branches finish.
    #[arg(short = 'k', long)]
    pub keep_going: bool,
    /// Show what would run, and why, without running anything.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Run this stage even if it is up to date; may be repeated.
    #[arg(long, value_name = "STAGE")]
    pub force: Vec<String>,
    /// With STAGEs: also run everything downstream of them.
    #[arg(long)]
    pub downstream: bool,
    /// Override a param (`--set train.lr=0.05`); may be repeated; recorded in the run.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Stream every stage's output, prefixed with its name.
    #[arg(short, long)]
    pub verbose: bool,
    /// If another run holds this workspace, wait for it instead of failing.
    #[arg(long)]
    pub wait: bool,
    /// Print one JSON event per line on stdout (the event log).
    #[arg(long)]
    pub json: bool,
    /// Where stages run that do not name their own `executor` (default: as the pipeline
    /// says, else local).
    #[arg(long, value_enum, value_name = "EXECUTOR")]
    pub executor: Option<ExecutorArg>,
}

// `mlp watch`
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Stages to keep up to date (with what they need); default: all.
    pub stages: Vec<String>,
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,
    /// Override a param (`--set train.lr=0.05`); may be repeated.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Stream every stage's output, prefixed with its name.
    #[arg(short, long)]
    pub verbose: bool,
    /// Quiet time after a change before acting, in milliseconds.
    #[arg(long, default_value_t = 50, value_name = "MS")]
    pub debounce: u64,
    /// Print one JSON event per line on stdout.
    #[arg(long)]
    pub json: bool,
    /// Where stages run that do not name their own `executor` (default: as the pipeline
    /// says, else local).
    #[arg(long, value_enum, value_name = "EXECUTOR")]
    pub executor: Option<ExecutorArg>,
}

// `mlp status`
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
}

// `mlp explain`
#[derive(Args, Debug)]
pub struct ExplainArgs {
    pub stage: String,
    #[arg(long)]
    pub json: bool,
}

// `mlp runs`
#[derive(Args, Debug)]
pub struct RunsArgs {
    #[arg(long)]
    pub json: bool,
    /// Show the last N runs.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
}

// `mlp show`
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// A run number, `last` or `baseline`.
    #[arg(default_value = "last")]
    pub run: String,
    #[arg(long)]
    pub json: bool,
}

// `mlp diff`
#[derive(Args, Debug)]
pub struct DiffArgs {
    pub a: Option<String>,
    pub b: Option<String>,
    /// Also list what is equal.
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub json: bool,
}

// `mlp promote`
#[derive(Args, Debug)]
pub struct PromoteArgs {
    pub run: String,
}

// `mlp checkout`
#[derive(Args, Debug)]
pub struct CheckoutArgs {
    pub run: String,
}

// `mlp gc`
#[derive(Args, Debug)]
pub struct GcArgs {
    /// Keep the run-cache entries of the last N runs.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub keep: usize,
    /// Report what would be removed, remove nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

// `mlp fmt`
#[derive(Args, Debug)]
pub struct FmtArgs {
    /// Do not write: exit 5 if a file is not formatted.
    #[arg(long)]
    pub check: bool,
    /// Files to format (default: the pipeline file and what it includes).
    pub files: Vec<PathBuf>,
}

/// `--executor`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExecutorArg {
    // No doc comments here: clap would switch every command's help to the long layout.
    Local,
    Slurm,
    Ray,
}

impl ExecutorArg {
    pub fn kind(self) -> mlp_plan::ExecutorKind {
        match self {
            ExecutorArg::Local => mlp_plan::ExecutorKind::Local,
            ExecutorArg::Slurm => mlp_plan::ExecutorKind::Slurm,
            ExecutorArg::Ray => mlp_plan::ExecutorKind::Ray,
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
