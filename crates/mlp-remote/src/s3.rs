//! An S3 remote (AWS or any S3-compatible endpoint): requests signed by `rusty-s3`
//! (presigned, so the secret key never travels and never appears in a URL we could
//! print), sent by blocking `ureq`. A file under [`MULTIPART_FROM`] is one PUT; a bigger
//! one a multipart upload whose parts go up in parallel (`-j`), completed only when all
//! parts are there (an interrupted upload leaves no object).
//!
//! Credentials, region and endpoint come from the standard variables:
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (`AWS_SESSION_TOKEN`), `AWS_REGION`
//! (or `AWS_DEFAULT_REGION`; default `us-east-1`), `AWS_ENDPOINT_URL_S3` or
//! `AWS_ENDPOINT_URL` (default AWS; a custom endpoint is addressed path-style).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusty_s3::actions::{ListObjectsV2, ListObjectsV2Response};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use ureq::Agent;
use ureq::http::Response;

use crate::{Listed, Remote, RemoteError};

/// Files from this size up are uploaded in parts.
pub const MULTIPART_FROM: u64 = 64 * 1024 * 1024;
/// The size of one part.
const PART: u64 = 16 * 1024 * 1024;
/// How long a signature is valid (one request).
const SIGNED_FOR: Duration = Duration::from_secs(3600);

pub struct S3Remote {
    url: String,
    bucket: Bucket,
    prefix: String,
    creds: Credentials,
    agent: Agent,
    jobs: usize,
}

impl std::fmt::Debug for S3Remote {
    // Never the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Remote").field("url", &self.url).finish()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl S3Remote {
    pub fn from_env(
        url: &str,
        bucket: &str,
        prefix: &str,
        jobs: usize,
    ) -> Result<Self, RemoteError> {
        let err = |what: String| RemoteError::new(url, "configuration", what);
        let (Some(key), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(err(
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            ));
        };
        let creds = match env("AWS_SESSION_TOKEN") {
            Some(t) => Credentials::new_with_token(key, secret, t),
            None => Credentials::new(key, secret),
        };
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let custom = env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL"));
        let (endpoint, style) = match &custom {
            Some(e) => (e.clone(), UrlStyle::Path),
            None => (
                format!("https://s3.{region}.amazonaws.com"),
                UrlStyle::VirtualHost,
            ),
        };
        let endpoint_url = endpoint.parse().map_err(|_| {
            err(format!(
                "the endpoint `{endpoint}` (AWS_ENDPOINT_URL) is not a URL"
            ))
        })?;
        let bucket = Bucket::new(endpoint_url, style, bucket.to_string(), region)
            .map_err(|e| err(format!("the endpoint `{endpoint}`: {e}")))?;
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .max_idle_connections_per_host(64)
            .build();
        Ok(S3Remote {
            url: url.to_string(),
            bucket,
            prefix: prefix.to_string(),
            creds,
            agent: Agent::new_with_config(config),
            jobs: jobs.max(1),
        })
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn net(&self, key: &str, e: &ureq::Error) -> RemoteError {
        let what = match e {
            ureq::Error::Io(io) => format!("cannot reach the endpoint: {}", io.kind()),
            ureq::Error::ConnectionFailed => "cannot reach the endpoint: connection refused".into(),
            ureq::Error::HostNotFound => "cannot reach the endpoint: host not found".into(),
            ureq::Error::Timeout(_) => "cannot reach the endpoint: timed out".into(),
            other => {
                // ureq's messages name no URL, but cut anything that looks like one.
                let t = other.to_string();
                t.split('?').next().unwrap_or_default().to_string()
            }
        };
        RemoteError::new(&self.url, key, what)
    }

    /// The error of a response that is not a success, from its S3 error code.
    fn status(&self, key: &str, mut r: Response<ureq::Body>) -> RemoteError {
        let code = r.status().as_u16();
        let body = r
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let s3 = between(&body, "<Code>", "</Code>").unwrap_or_default();
        let what = match (code, s3) {
            (_, "NoSuchBucket") => format!("bucket `{}` does not exist", self.bucket.name()),
            (_, "InvalidAccessKeyId" | "SignatureDoesNotMatch") | (401, _) => {
                "the credentials were refused (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                    .into()
            }
            (403, _) => "access denied (check the credentials and the bucket's policy)".into(),
            (404, "") if key == "." => format!("bucket `{}` does not exist", self.bucket.name()),
            (_, "") => format!("the endpoint answered HTTP {code}"),
            (_, c) => format!("the endpoint answered HTTP {code} ({c})"),
        };
        RemoteError::new(&self.url, key, what)
    }

    /// The response if it is a success, else the error it says.
    /// GET `key`: the response to read its body from, `None` when there is no such object
    /// (a missing bucket is an error).
    fn get_response(&self, key: &str) -> Result<Option<Response<ureq::Body>>, RemoteError> {
        let full = self.full(key);
        let url = self.sign(self.bucket.get_object(Some(&self.creds), &full));
        let r = self.agent.get(&url).call().map_err(|e| self.net(key, &e))?;
        if r.status().as_u16() == 404 {
            let e = self.status(key, r);
            return if e.what.contains("does not exist") {
                Err(e)
            } else {
                Ok(None)
            };
        }
        self.ok(key, r).map(Some)
    }

    fn ok(&self, key: &str, r: Response<ureq::Body>) -> Result<Response<ureq::Body>, RemoteError> {
        if r.status().is_success() {
            Ok(r)
        } else {
            Err(self.status(key, r))
        }
    }

    fn sign<'a>(&self, action: impl S3Action<'a>) -> String {
        action.sign(SIGNED_FOR).to_string()
    }

    fn multipart(&self, key: &str, full: &str, src: &Path, size: u64) -> Result<(), RemoteError> {
        let io = |e: std::io::Error| {
            RemoteError::new(
                &self.url,
                key,
                format!("cannot read {}: {e}", src.display()),
            )
        };
        let url = self.sign(self.bucket.create_multipart_upload(Some(&self.creds), full));
        let r = self
            .agent
            .post(&url)
            .send_empty()
            .map_err(|e| self.net(key, &e))?;
        let mut r = self.ok(key, r)?;
        let body = r
            .body_mut()
            .read_to_string()
            .map_err(|e| self.net(key, &e))?;
        let created =
            rusty_s3::actions::CreateMultipartUpload::parse_response(&body).map_err(|e| {
                RemoteError::new(
                    &self.url,
                    key,
                    format!("a bad answer to a multipart upload: {e}"),
                )
            })?;
        let upload_id = created.upload_id().to_string();
        let parts = size.div_ceil(PART);
        let next = Mutex::new(0u64);
        let etags: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
        let failed: Mutex<Option<RemoteError>> = Mutex::new(None);
        std::thread::scope(|sc| {
            for _ in 0..self.jobs.min(usize::try_from(parts).unwrap_or(1)) {
                sc.spawn(|| {
                    let mut file = match File::open(src) {
                        Ok(f) => f,
                        Err(e) => {
                            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(io(e));
                            return;
                        }
                    };
                    loop {
                        if failed.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                            return;
                        }
                        let n = {
                            let mut g = next.lock().unwrap_or_else(|p| p.into_inner());
                            let n = *g;
                            *g += 1;
                            n
                        };
                        if n >= parts {
                            return;
                        }
                        match self.part(key, full, &upload_id, &mut file, n, size) {
                            Ok(etag) => etags
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push((n, etag)),
                            Err(e) => {
                                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                                return;
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            let url = self.sign(self.bucket.abort_multipart_upload(
                Some(&self.creds),
                full,
                &upload_id,
            ));
            let _ = self.agent.delete(&url).call();
            return Err(e);
        }
        let mut etags = etags.into_inner().unwrap_or_else(|p| p.into_inner());
        etags.sort();
        let action = self.bucket.complete_multipart_upload(
            Some(&self.creds),
            full,
            &upload_id,
            etags.iter().map(|(_, e)| e.as_str()),
        );
        let url = action.sign(SIGNED_FOR).to_string();
        let body = action.body();
        let r = self
            .agent
            .post(&url)
            .send(body.as_bytes())
            .map_err(|e| self.net(key, &e))?;
        let mut r = self.ok(key, r)?;
        // S3 may answer 200 with an error in the body.
        let text = r.body_mut().read_to_string().unwrap_or_default();
        if text.contains("<Error>") {
            let c = between(&text, "<Code>", "</Code>").unwrap_or("unknown");
            return Err(RemoteError::new(
                &self.url,
                key,
                format!("the multipart upload failed ({c})"),
            ));
        }
        Ok(())
    }

    fn part(
        &self,
        key: &str,
        full: &str,
        upload_id: &str,
        file: &mut File,
        n: u64,
        size: u64,
    ) -> Result<String, RemoteError> {
        let start = n * PART;
        let len = PART.min(size - start);
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| {
                RemoteError::new(
                    &self.url,
                    key,
                    format!("cannot read the file to upload: {e}"),
                )
            })?;
        let number = u16::try_from(n + 1).unwrap_or(u16::MAX);
        let url = self.sign(
            self.bucket
                .upload_part(Some(&self.creds), full, number, upload_id),
        );
        let r = self
            .agent
            .put(&url)
            .send(&buf[..])
            .map_err(|e| self.net(key, &e))?;
        let r = self.ok(key, r)?;
        r.headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| {
                RemoteError::new(&self.url, key, "a part upload was answered without an ETag")
            })
    }
}

fn between<'a>(s: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let i = s.find(a)? + a.len();
    let j = s[i..].find(b)? + i;
    Some(&s[i..j])
}

/// A millisecond timestamp from S3's `2024-01-02T03:04:05.000Z`.
fn parse_time(t: &str) -> u64 {
    t.parse::<jiff::Timestamp>()
        .ok()
        .and_then(|ts| u64::try_from(ts.as_millisecond()).ok())
        .unwrap_or(0)
}

impl Remote for S3Remote {
    fn url(&self) -> &str {
        &self.url
    }

    fn check(&self, _create: bool) -> Result<(), RemoteError> {
        let url = self.sign(self.bucket.head_bucket(Some(&self.creds)));
        let r = self
            .agent
            .head(&url)
            .call()
            .map_err(|e| self.net(".", &e))?;
        self.ok(".", r).map(|_| ())
    }

    fn exists(&self, key: &str) -> Result<bool, RemoteError> {
        let full = self.full(key);
        let url = self.sign(self.bucket.head_object(Some(&self.creds), &full));
        let r = self
            .agent
            .head(&url)
            .call()
            .map_err(|e| self.net(key, &e))?;
        match r.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status(key, r)),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        let Some(mut r) = self.get_response(key)? else {
            return Ok(None);
        };
        let bytes = r
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|e| self.net(key, &e))?;
        Ok(Some(bytes))
    }

    fn get_to_file(&self, key: &str, dst: &Path) -> Result<bool, RemoteError> {
        let Some(mut r) = self.get_response(key)? else {
            return Ok(false);
        };
        let mut write = || -> std::io::Result<()> {
            let mut f = File::create(dst)?;
            let mut reader = r.body_mut().with_config().limit(u64::MAX).reader();
            std::io::copy(&mut reader, &mut f)?;
            Ok(())
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(dst);
            let what = if e.kind() == std::io::ErrorKind::StorageFull {
                format!("the local disk is full (writing {})", dst.display())
            } else {
                format!("the download failed: {e}")
            };
            return Err(RemoteError::new(&self.url, key, what));
        }
        Ok(true)
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), RemoteError> {
        let full = self.full(key);
        let url = self.sign(self.bucket.put_object(Some(&self.creds), &full));
        let r = self
            .agent
            .put(&url)
            .send(bytes)
            .map_err(|e| self.net(key, &e))?;
        self.ok(key, r).map(|_| ())
    }

    fn put_file(&self, key: &str, src: &Path) -> Result<(), RemoteError> {
        let full = self.full(key);
        let file = File::open(src).map_err(|e| {
            RemoteError::new(
                &self.url,
                key,
                format!("cannot read {}: {e}", src.display()),
            )
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size >= MULTIPART_FROM {
            return self.multipart(key, &full, src, size);
        }
        let url = self.sign(self.bucket.put_object(Some(&self.creds), &full));
        let r = self
            .agent
            .put(&url)
            .send(file)
            .map_err(|e| self.net(key, &e))?;
        self.ok(key, r).map(|_| ())
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>, RemoteError> {
        let full = self.full(prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action: ListObjectsV2<'_> = self.bucket.list_objects_v2(Some(&self.creds));
            action.with_prefix(full.as_str());
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(SIGNED_FOR).to_string();
            let r = self
                .agent
                .get(&url)
                .call()
                .map_err(|e| self.net(prefix, &e))?;
            let mut r = self.ok(prefix, r)?;
            let body = r
                .body_mut()
                .with_config()
                .limit(256 * 1024 * 1024)
                .read_to_string()
                .map_err(|e| self.net(prefix, &e))?;
            let page: ListObjectsV2Response =
                ListObjectsV2::parse_response(&body).map_err(|e| {
                    RemoteError::new(&self.url, prefix, format!("a bad answer to a listing: {e}"))
                })?;
            for c in page.contents {
                if let Some(key) = c.key.strip_prefix(&self.prefix) {
                    out.push(Listed {
                        key: key.to_string(),
                        size: c.size,
                        modified_ms: parse_time(&c.last_modified),
                    });
                }
            }
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), RemoteError> {
        let full = self.full(key);
        let url = self.sign(self.bucket.delete_object(Some(&self.creds), &full));
        let r = self
            .agent
            .delete(&url)
            .call()
            .map_err(|e| self.net(key, &e))?;
        match r.status().as_u16() {
            200..=299 | 404 => Ok(()),
            _ => Err(self.status(key, r)),
        }
    }
}
