//! A directory remote: plain files. Every write goes to `tmp/` on the remote's own
//! filesystem and is renamed into place, so a reader (another workspace, a later pull
//! after a kill -9) never sees half an object. Files are copied with `std::fs::copy`
//! (`copy_file_range`: in-kernel, a reflink where the filesystem can).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use crate::{Listed, Remote, RemoteError};

#[derive(Debug)]
pub struct DirRemote {
    url: String,
    root: PathBuf,
}

impl DirRemote {
    pub fn new(url: &str, root: PathBuf) -> Self {
        DirRemote {
            url: url.to_string(),
            root,
        }
    }

    fn err(&self, key: &str, e: &io::Error) -> RemoteError {
        let what = match e.kind() {
            io::ErrorKind::StorageFull => "the disk is full".to_string(),
            io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        RemoteError::new(&self.url, key, what)
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn temp(&self) -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        self.root
            .join("tmp")
            .join(format!("{}-{t}-{n}", std::process::id()))
    }

    /// Writes through `write` to a temp file, then renames it to `key`.
    fn install(
        &self,
        key: &str,
        write: impl FnOnce(&Path) -> io::Result<()>,
    ) -> Result<(), RemoteError> {
        let tmp = self.temp();
        let dst = self.path(key);
        let r = (|| {
            fs::create_dir_all(self.root.join("tmp"))?;
            write(&tmp)?;
            if let Some(p) = dst.parent() {
                fs::create_dir_all(p)?;
            }
            fs::rename(&tmp, &dst)
        })();
        if let Err(e) = r {
            let _ = fs::remove_file(&tmp);
            return Err(self.err(key, &e));
        }
        Ok(())
    }
}

fn modified_ms(m: &fs::Metadata) -> u64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Remote for DirRemote {
    fn url(&self) -> &str {
        &self.url
    }

    fn check(&self, create: bool) -> Result<(), RemoteError> {
        if create {
            fs::create_dir_all(&self.root).map_err(|e| self.err(".", &e))?;
        }
        match fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(RemoteError::new(&self.url, ".", "is not a directory")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(RemoteError::new(
                &self.url,
                ".",
                "the directory does not exist (`mlp push` creates it)",
            )),
            Err(e) => Err(self.err(".", &e)),
        }
    }

    fn exists(&self, key: &str) -> Result<bool, RemoteError> {
        match fs::metadata(self.path(key)) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.err(key, &e)),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        match fs::read(self.path(key)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(key, &e)),
        }
    }

    fn get_to_file(&self, key: &str, dst: &Path) -> Result<bool, RemoteError> {
        match fs::copy(self.path(key), dst) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !self.path(key).exists() => {
                let _ = fs::remove_file(dst);
                Ok(false)
            }
            Err(e) => {
                let _ = fs::remove_file(dst);
                Err(self.err(key, &e))
            }
        }
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), RemoteError> {
        self.install(key, |tmp| fs::write(tmp, bytes))
    }

    fn put_file(&self, key: &str, src: &Path) -> Result<(), RemoteError> {
        self.install(key, |tmp| {
            fs::copy(src, tmp)?;
            // The cache's objects are read-only; the remote's copies need not be.
            fs::set_permissions(tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>, RemoteError> {
        // `prefix` names a directory ("objects/", "runcache/") or a key prefix in one.
        let (dir, start) = match prefix.rfind('/') {
            Some(i) => (&prefix[..i], &prefix[i + 1..]),
            None => ("", prefix),
        };
        let mut out = Vec::new();
        let mut stack = vec![(self.root.join(dir), dir.to_string())];
        while let Some((abs, rel)) = stack.pop() {
            let rd = match fs::read_dir(&abs) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.err(&rel, &e)),
            };
            for e in rd {
                let e = e.map_err(|e| self.err(&rel, &e))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if rel == dir && !name.starts_with(start) {
                    continue;
                }
                let key = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                if key == "tmp" {
                    continue;
                }
                let m = e.metadata().map_err(|err| self.err(&key, &err))?;
                if m.is_dir() {
                    stack.push((e.path(), key));
                } else {
                    out.push(Listed {
                        key,
                        size: m.len(),
                        modified_ms: modified_ms(&m),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), RemoteError> {
        match fs::remove_file(self.path(key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err(key, &e)),
        }
    }
}
