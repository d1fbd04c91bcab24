//! `mlp cache verify`: every object re-hashed, whatever its mark says.

use std::fs;
use std::io;

use rayon::prelude::*;
use serde::Serialize;

use super::mark::set_mark;
use super::temp::remove_if_exists;
use super::{ObjectCache, error::io_err};
use crate::hash::{ManifestEntry, hash_file, hex, manifest_digest};

/// What [`ObjectCache::verify`] found.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    /// Objects read (blobs and manifests).
    pub checked: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Objects whose bytes did not match their name, now deleted (the stages that made
    /// them run again when next needed).
    pub removed: Vec<BadObject>,
}

/// An object that failed verification.
#[derive(Debug, Serialize)]
pub struct BadObject {
    /// Its name (hex digest).
    pub digest: String,
    /// Its path in the cache.
    pub path: String,
    /// `contents`, or `manifest` (a directory manifest that does not parse or match).
    pub reason: &'static str,
}

impl ObjectCache {
    /// Re-hashes every object (blobs in parallel); a good one gets the verified mark
    /// again, a bad one is deleted and listed. With `dry_run`, nothing is changed.
    pub fn verify(&self, dry_run: bool) -> Result<VerifyReport, super::CacheError> {
        let objects = self.objects().map_err(io_err(&self.root.join("objects")))?;
        let checked: Vec<(u64, Option<BadObject>)> = objects
            .par_iter()
            .map(|(d, size)| {
                let blob = self.blob_path(d);
                let manifest = self.manifest_path(d);
                let mut bad = None;
                let mut bytes = 0;
                if blob.exists() {
                    bytes += size;
                    let ok = match hash_file(&blob) {
                        Ok((got, _)) => &got == d,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
                        Err(e) => return Err(io_err(&blob)(e)),
                    };
                    if ok {
                        if !dry_run {
                            let _ = set_mark(&blob);
                        }
                    } else {
                        bad = Some(BadObject {
                            digest: hex(d),
                            path: blob.display().to_string(),
                            reason: "contents",
                        });
                        if !dry_run {
                            remove_if_exists(&blob).map_err(io_err(&blob))?;
                        }
                    }
                }
                if let Ok(text) = fs::read(&manifest) {
                    bytes += text.len() as u64;
                    let ok = serde_json::from_slice::<Vec<ManifestEntry>>(&text)
                        .is_ok_and(|entries| &manifest_digest(&entries) == d);
                    if !ok {
                        bad = Some(BadObject {
                            digest: hex(d),
                            path: manifest.display().to_string(),
                            reason: "manifest",
                        });
                        if !dry_run {
                            remove_if_exists(&manifest).map_err(io_err(&manifest))?;
                        }
                    }
                }
                Ok((bytes, bad))
            })
            .collect::<Result<_, super::CacheError>>()?;
        let mut report = VerifyReport::default();
        for (bytes, bad) in checked {
            report.checked += 1;
            report.bytes += bytes;
            report.removed.extend(bad);
        }
        Ok(report)
    }
}
