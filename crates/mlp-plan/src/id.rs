//! The one name the model and the expressions share.

/// A stage's index in `Pipeline::stages` (source order, after `for` expansion).
pub type StageId = usize;
