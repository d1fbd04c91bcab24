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
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// The pipeline file (default: `pipeline.mlp`, searched upward from here).
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Print only errors and what the command is asked for (no progress, no summaries).
    #[arg(short = 'q', long = "quiet", global = true)]
    pub quiet: bool,

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
    /// The run history: id, when, outcome, the metrics checks and gates use (with their
    /// change against the baseline), costs, what ran.
    Runs(RunsArgs),
    /// One run: params, overrides, git state, and every stage with its metrics.
    Show(ShowArgs),
    /// Params and metrics of runs side by side, with deltas against the first (default: the
    /// last run against the baseline).
    Diff(DiffArgs),
    /// Make a run the baseline that gates compare against.
    Promote(PromoteArgs),
    /// Restore a run's outputs byte for byte from the cache.
    Checkout(CheckoutArgs),
    /// Remove cached outputs that no kept run refers to (`--remote`: on the team remote).
    Gc(GcArgs),
    /// The object cache: `mlp cache verify` re-hashes every cached output.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Upload the cached outputs of the stages' current successes, and their run-cache
    /// entries, to the team remote.
    Push(PushArgs),
    /// Fetch and restore the stages' outputs for their current identities from the team
    /// remote, so that the next `mlp run` has nothing to do.
    Pull(PullArgs),
    /// Format `.mlp` files canonically (comments kept).
    Fmt(FmtArgs),
    /// Translate another tool's pipeline into a `pipeline.mlp` (`mlp import dvc`).
    #[command(subcommand)]
    Import(ImportCommand),
    /// One self-contained HTML page (or Markdown with SVG files) of the runs: tables,
    /// metrics over runs, params against metrics, the last run's timeline and the DAG.
    Report(ReportArgs),
    /// Serve the Language Server Protocol on stdin/stdout, for editors (see the book's
    /// "Editors" page).
    Lsp,
    /// Print a shell completion script (bash, zsh, fish or powershell).
    Completions(CompletionsArgs),
    /// Make a new pipeline from a template: `pipeline.mlp`, `params.yaml`, `.gitignore`.
    Init(InitArgs),
    /// Print the help of mlp, or of a command (`mlp help run`).
    Help(HelpArgs),
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
    /// How to print it: `ascii` (default), `dot`, `mermaid`, `json`, or `names` (one stage
    /// name per line).
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
    /// On a local run-cache miss, ask the team remote's run-cache before running a stage.
    #[arg(long, conflicts_with = "no_pull")]
    pub pull: bool,
    /// Do not ask the remote, even if the pipeline's `remote` item says `pull = true`.
    #[arg(long)]
    pub no_pull: bool,
    /// The team remote (a directory or `s3://bucket/prefix`; default: `MLP_REMOTE`, else the
    /// pipeline's `remote` item).
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
}

// `mlp watch`
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Stages to keep up to date (with what they need); default: all.
    pub stages: Vec<String>,
    /// Run at most N stages at once (default: the number of CPUs).
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
    /// Stop by itself after this long (`90s`, `10m`, `2h`; a bare number is seconds): the
    /// run in progress finishes, then the watch ends with the last run's exit status.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

/// `90`, `90s`, `500ms`, `10m`, `2h`.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: write e.g. `90s`, `10m` or `2h`"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("`{unit}` is not a unit of time: use ms, s, m or h")),
    };
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

// `mlp status`
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Print every stage's state as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

// `mlp explain`
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The stage to explain.
    pub stage: String,
    /// Print the explanation as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

// `mlp runs`
#[derive(Args, Debug)]
pub struct RunsArgs {
    /// Print the runs as JSON, with every metric, its change and the cost totals.
    #[arg(long)]
    pub json: bool,
    /// Show the last N runs.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
    /// Metrics to show as columns (`eval.auc,cost.usd`; a stage prefix picks one stage's);
    /// default: the metrics the checks and gates use.
    #[arg(long, value_name = "KEYS", value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// Export the RUNs (default: the last N) to a tracking server (`mlflow`).
    #[arg(long, value_enum, value_name = "TRACKER")]
    pub export: Option<Tracker>,
    /// With `--export`: the runs to export.
    #[arg(value_name = "RUN", requires = "export")]
    pub runs: Vec<String>,
}

/// `mlp runs --export TRACKER`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracker {
    // An MLflow tracking server (`tracking mlflow { ... }` or `MLFLOW_TRACKING_URI`).
    Mlflow,
}

// `mlp show`
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// A run number, `last` or `baseline`.
    #[arg(default_value = "last")]
    pub run: String,
    /// Print the run as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

// `mlp diff`
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// Runs to compare (numbers, `last`, `baseline`); one: it against the last run.
    pub runs: Vec<String>,
    /// Compare the last N runs.
    #[arg(long, value_name = "N", conflicts_with = "runs")]
    pub last: Option<usize>,
    /// Also list what is equal.
    #[arg(long)]
    pub all: bool,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

// `mlp promote`
#[derive(Args, Debug)]
pub struct PromoteArgs {
    /// The run to promote: a number or `last`.
    pub run: String,
}

// `mlp checkout`
#[derive(Args, Debug)]
pub struct CheckoutArgs {
    /// The run whose outputs to restore: a number, `last` or `baseline`.
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
    /// Print what was (or would be) removed as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Collect the team remote instead of the local cache (a dry run unless `--force`);
    /// takes an optional URL (default: `MLP_REMOTE`, else the pipeline's `remote` item).
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub remote: Option<String>,
    /// With `--remote`: really remove.
    #[arg(long, requires = "remote")]
    pub force: bool,
    /// With `--remote`: keep anything written in the last HOURS hours, whatever the refs
    /// say (a push in flight writes its objects before its entries).
    #[arg(
        long,
        default_value_t = 24.0,
        value_name = "HOURS",
        requires = "remote"
    )]
    pub grace: f64,
}

// `mlp push`
#[derive(Args, Debug)]
pub struct PushArgs {
    /// Stages to push (default: all).
    pub stages: Vec<String>,
    /// The team remote (default: `MLP_REMOTE`, else the pipeline's `remote` item).
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    /// Requests in flight at once (default: 8).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,
    /// Also push the records of the kept runs (the last 10 and the baseline), not only
    /// each stage's latest success.
    #[arg(long)]
    pub kept: bool,
    /// Print what was sent as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

// `mlp pull`
#[derive(Args, Debug)]
pub struct PullArgs {
    /// Stages to pull, with what they need (default: all).
    pub stages: Vec<String>,
    /// The team remote (default: `MLP_REMOTE`, else the pipeline's `remote` item).
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    /// Requests in flight at once (default: 8).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,
    /// Print one JSON event per line on stdout (the event log).
    #[arg(long)]
    pub json: bool,
}

// `mlp cache`
#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// Re-hash every object in the cache; delete and list those whose bytes no longer match
    /// their name (exit 1 if there were any).
    Verify(CacheVerifyArgs),
}

// `mlp cache verify`
#[derive(Args, Debug)]
pub struct CacheVerifyArgs {
    /// Report bad objects, delete nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Print the report as JSON on stdout.
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

// `mlp import`
#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Write a `pipeline.mlp` that plans a DVC project's DAG (every `dvc.yaml`, with its params and vars files).
    Dvc(ImportDvcArgs),
}

// `mlp import dvc`
#[derive(Args, Debug)]
pub struct ImportDvcArgs {
    /// The DVC project's directory (where `dvc.yaml` is).
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Where to write the pipeline (default: `DIR/pipeline.mlp`); `-` prints it on
    /// standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    pub force: bool,
}

// `mlp report`
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Where to write it (default: `mlp-report.html`, or `mlp-report.md` with
    /// `--format md`; `-` for stdout). Markdown's charts go to `<FILE stem>_files/`.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Report the last N runs.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub last: usize,
    /// `html`: one self-contained page; `md`: Markdown, the charts as SVG files beside it.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// Metrics to chart (`eval.auc,cost.usd`); default: the metrics the checks and gates use.
    #[arg(long, value_name = "KEYS", value_delimiter = ',')]
    pub metrics: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Html,
    Md,
}

// `mlp help`
#[derive(Args, Debug)]
pub struct HelpArgs {
    /// The command (and subcommand) to print the help of; none: mlp's.
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
}

// `mlp completions`
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: ShellArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

// `mlp init`
#[derive(Args, Debug)]
pub struct InitArgs {
    /// The directory to create the pipeline in (made if missing; default: here).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The template: `minimal` (two shell stages) or `quickstart` (data, split, train,
    /// evaluate with gates, publish; needs python3).
    #[arg(long, value_enum, default_value_t = Template::Minimal)]
    pub template: Template,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Template {
    Minimal,
    Quickstart,
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
    Names,
}
