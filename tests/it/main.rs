//! The one integration test binary (`cargo test -p mlp --test it`), organised as uv's
//! `tests/it/`: one module per area, all starting `mlp` through `common`'s [`Workspace`]
//! and [`Mlp`] builder.
//!
//! [`Workspace`]: common::Workspace
//! [`Mlp`]: common::Mlp

mod common;

mod artifacts;
mod book;
mod cli;
mod concurrency;
mod consistency;
mod crash;
mod diagnostics;
mod engine;
mod example_churn;
mod example_llm_rag;
mod examples;
mod full_disk;
mod grammar;
mod import_dvc;
mod init;
mod lsp;
mod missing_input;
mod mlflow;
mod processes;
mod ray;
mod remote;
mod report;
mod semantics;
mod slurm;
mod watch;
