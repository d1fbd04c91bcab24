//! One error type: always one line naming the remote and the object.

/// What went wrong with a remote, said in one line: the remote (its URL, never a
/// credential), the object, and what happened.
#[derive(Debug, Clone, thiserror::Error)]
#[error("remote `{remote}`: {object}: {what}")]
pub struct RemoteError {
    /// The remote's URL as the user gave it.
    pub remote: String,
    /// The object (its key on the remote), or what was being done.
    pub object: String,
    /// What happened, and the fix where there is one.
    pub what: String,
}

impl RemoteError {
    pub fn new(remote: &str, object: &str, what: impl Into<String>) -> Self {
        RemoteError {
            remote: remote.to_string(),
            object: object.to_string(),
            what: what.into(),
        }
    }
}
