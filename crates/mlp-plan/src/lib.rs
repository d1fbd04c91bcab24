//! From the syntax tree to a validated pipeline model and its DAG, with diagnostics that
//! point into the sources. Reads only the pipeline's own sources (includes, params files).

pub use mlp_syntax::codes;
pub mod diag;
pub mod expr;
pub mod graph;
mod id;
mod lower;
pub mod model;
mod params;
pub mod paths;
pub mod remote_url;
mod shell;
pub mod value;

pub use codes::Code;
pub use diag::{Diagnostic, Diagnostics, Severity, Style};
pub use lower::{
    MAX_SOURCE_BYTES, Options, Plan, load, load_str, read_source_file, syntax_diagnostics,
};
pub use model::*;
pub use paths::{glob_match, is_under, normalize};
pub use shell::quote;
pub use value::Value;
