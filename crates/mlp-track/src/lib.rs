//! Exports mlp's run records to an MLflow tracking server through MLflow's REST API (no
//! Python, no MLflow client): one MLflow run per mlp run, found again by its tags
//! (`mlp.workspace`, `mlp.run_id`) so that exporting a run twice updates it.
//!
//! Blocking HTTP with short timeouts (`ureq`, no async runtime, plain `http://` only). The
//! credentials come from MLflow's own variables and are never part of an error's text.
//! This crate does no file I/O of its own: the caller hands it the run record and the
//! bytes of the artifacts.

mod client;
mod convert;
mod mlflow;
mod target;

pub use convert::{Artifact, Entities, entities};
pub use mlflow::{Exported, Exporter, export};
pub use target::{Auth, Target};

/// Why an export did not happen. The text never holds a credential.
#[derive(Debug)]
pub enum TrackError {
    /// The server could not be reached (refused, timed out, DNS): retry later.
    Unreachable(String),
    /// The server answered with an error.
    Server(String),
    /// The target is unusable as configured (an `https://` URI, a malformed URI).
    Config(String),
}

impl std::fmt::Display for TrackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackError::Unreachable(m) | TrackError::Server(m) | TrackError::Config(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for TrackError {}
