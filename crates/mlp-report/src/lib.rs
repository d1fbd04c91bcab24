//! mlp-report: the run history as a reader sees it. The terminal table of `mlp runs`,
//! the HTML page of `mlp report` (SVG charts drawn here, by hand, so that the same
//! records always give the same bytes) and its Markdown variant.
//!
//! **Architecture Invariant:** pure. Run records and the pipeline's checks come in as
//! plain data ([`model`]); strings come out. No file, clock or network is touched, so every
//! output is snapshot-tested on fixed records.
//!
//! Every string a user wrote (pipeline, stage, param and metric names, gate messages) is
//! escaped where it is written: [`svg::esc`] for HTML and SVG, [`markdown::md`] for
//! Markdown.

mod charts;
mod html;
pub mod markdown;
pub mod model;
pub mod svg;
pub mod table;
mod text;
mod timeline;

pub use markdown::Markdown;
pub use model::{Assertion, DagNode, Limit, Report, Run, StageRun, Threshold};
pub use text::{counts, notes, runs_table};
pub use timeline::critical_path;

/// The self-contained HTML page.
pub fn html(r: &Report) -> String {
    html::page(r)
}

/// The Markdown report; its charts are the returned files, under `dir/`.
pub fn markdown(r: &Report, dir: &str) -> Markdown {
    markdown::markdown(r, dir)
}

#[cfg(test)]
mod tests;
