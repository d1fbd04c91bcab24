//! The commands, one file each (as uv's and ruff's `commands/`). Each takes the parsed
//! command line and returns the [`ExitStatus`]; [`dispatch`] picks the one asked for.
//!
//! Shared pieces live beside this directory, not in it, so no command imports this module
//! (which imports every command): finding and loading the pipeline in `pipeline_file`,
//! printing diagnostics in `diagnostics`, errors and exit statuses in `exit`, small bits of
//! human-readable text in `human`, the run's progress display in `progress`, the run history as the report crate reads it in
//! `history_view`.

mod cache;
mod check;
mod checkout;
mod completions;
mod diff;
mod explain;
mod fmt;
mod gc;
mod graph;
mod help;
mod import;
mod init;
mod lsp;
mod promote;
mod pull;
mod push;
mod report;
mod run;
mod runs;
mod show;
mod status;
mod watch;

use crate::cli::{Cli, Command};
use crate::exit::ExitStatus;

/// Run the command the command line asks for.
pub fn dispatch(cli: &Cli) -> ExitStatus {
    match &cli.command {
        Command::Check(args) => check::check(cli, args),
        Command::Graph(args) => graph::graph(cli, args),
        Command::Run(args) => run::run(cli, args),
        Command::Watch(args) => watch::watch(cli, args),
        Command::Status(args) => status::status(cli, args),
        Command::Explain(args) => explain::explain(cli, args),
        Command::Runs(args) => runs::runs(cli, args),
        Command::Show(args) => show::show(cli, args),
        Command::Diff(args) => diff::diff(cli, args),
        Command::Promote(args) => promote::promote(cli, args),
        Command::Checkout(args) => checkout::checkout(cli, args),
        Command::Gc(args) => gc::gc(cli, args),
        Command::Cache(crate::cli::CacheCommand::Verify(args)) => cache::verify(cli, args),
        Command::Push(args) => push::push(cli, args),
        Command::Pull(args) => pull::pull(cli, args),
        Command::Fmt(args) => fmt::fmt(cli, args),
        Command::Import(crate::cli::ImportCommand::Dvc(args)) => import::dvc(args),
        Command::Report(args) => report::report(cli, args),
        Command::Lsp => lsp::lsp(),
        Command::Completions(args) => completions::completions(args),
        Command::Init(args) => init::init(args),
        Command::Help(args) => help::help(args),
    }
}
