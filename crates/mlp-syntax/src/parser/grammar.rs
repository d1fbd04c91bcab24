//! The pest grammar (`grammar/mlp.pest`, the only grammar file), derived into a parser.

#[derive(pest_derive::Parser)]
#[grammar = "../../grammar/mlp.pest"]
pub(super) struct MlpParser;
