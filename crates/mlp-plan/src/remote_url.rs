//! Remote URLs (the `remote` item, `--remote`, `MLP_REMOTE`): a directory path or
//! `file://PATH`, or `s3://BUCKET/PREFIX`. Parsed here so that `mlp check` and the
//! commands that open a remote (`mlp-remote`) agree on what is valid.

use std::path::PathBuf;

/// A parsed remote URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteUrl {
    /// A directory (absolute, or relative to the workspace root).
    Dir(PathBuf),
    /// A bucket and a key prefix (empty, or ending in `/`).
    S3 { bucket: String, prefix: String },
}

/// Parses a remote URL; the error says what is wrong and how to write it.
pub fn parse(url: &str) -> Result<RemoteUrl, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("the remote URL is empty; give a directory or `s3://bucket/prefix`".into());
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains('@') || authority.contains(':') {
            return Err(
                "a remote URL must not hold credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead"
                    .into(),
            );
        }
        let ok = (3..=63).contains(&authority.len())
            && authority
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !ok {
            return Err(format!(
                "`{authority}` is not an S3 bucket name (3 to 63 lowercase letters, digits, `.` and `-`)"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err("an S3 prefix must not contain `.` or `..` parts".into());
        }
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        return Ok(RemoteUrl::S3 {
            bucket: authority.to_string(),
            prefix,
        });
    }
    if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err("a `file://` URL takes an absolute path: `file:///path/to/dir`".into());
        }
        return Ok(RemoteUrl::Dir(PathBuf::from(rest)));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(format!(
            "remotes of kind `{scheme}://` are not supported; use a directory or `s3://bucket/prefix`"
        ));
    }
    Ok(RemoteUrl::Dir(PathBuf::from(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse("s3://my-bucket/team/cache/").unwrap(),
            RemoteUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: "team/cache/".into()
            }
        );
        assert_eq!(
            parse("s3://my-bucket").unwrap(),
            RemoteUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            parse("file:///srv/c").unwrap(),
            RemoteUrl::Dir("/srv/c".into())
        );
        assert_eq!(parse("../c").unwrap(), RemoteUrl::Dir("../c".into()));
        assert!(
            parse("s3://AKIA:secret@bucket/x")
                .unwrap_err()
                .contains("credentials")
        );
        assert!(parse("s3://Bad_Bucket").is_err());
        assert!(parse("gs://b/x").unwrap_err().contains("not supported"));
        assert!(parse("file://host/x").is_err());
        assert!(parse("").is_err());
    }
}
