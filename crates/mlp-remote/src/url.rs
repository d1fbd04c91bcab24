//! Opening a remote by its URL (parsed by `mlp_plan::remote_url`).

use std::path::Path;
use std::sync::Arc;

pub use mlp_plan::remote_url::{RemoteUrl, parse};

use crate::dir::DirRemote;
use crate::s3::S3Remote;
use crate::{Remote, RemoteError};

/// Opens the remote at `url`; a relative directory is taken from `base` (the workspace
/// root). `jobs`: how many requests may be in flight at once (multipart parts).
pub fn open(url: &str, base: &Path, jobs: usize) -> Result<Arc<dyn Remote>, RemoteError> {
    let parsed = parse(url).map_err(|e| RemoteError::new(url, "URL", e))?;
    Ok(match parsed {
        RemoteUrl::Dir(p) => {
            let p = if p.is_absolute() { p } else { base.join(p) };
            Arc::new(DirRemote::new(url, p))
        }
        RemoteUrl::S3 { bucket, prefix } => {
            Arc::new(S3Remote::from_env(url, &bucket, &prefix, jobs)?)
        }
    })
}
