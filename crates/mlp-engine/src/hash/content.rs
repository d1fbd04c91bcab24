//! Digests: hex, a file's blake3, a directory's manifest digest, and [`Content`] (what is
//! at a path).

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::store::Digest;

/// Files at least this large are hashed by streaming chunks through rayon.
pub const MMAP_THRESHOLD: u64 = 1 << 20;

/// The streaming chunk: two of these are the only memory a big file's hash takes (a
/// whole-file mmap would count the file in the process's resident set).
const CHUNK: usize = 4 << 20;

const MANIFEST_TAG: &[u8] = b"mlp-dir-manifest-v1\n";

/// Lower-case hex of a digest.
pub fn hex(d: &Digest) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in d {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// Parses 64 hex digits (either case) into a digest.
pub fn parse_hex(s: &str) -> Option<Digest> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let mut d = [0u8; 32];
    for (i, out) in d.iter_mut().enumerate() {
        *out = (nibble(bytes[2 * i])? << 4) | nibble(bytes[2 * i + 1])?;
    }
    Some(d)
}

/// Serde helper: a [`Digest`] as a hex string.
pub(crate) mod hex_digest {
    use super::{Digest, hex, parse_hex};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex(d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        parse_hex(&s).ok_or_else(|| D::Error::custom(format!("not a hex digest: {s:?}")))
    }
}

/// What is at a path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    /// Nothing.
    Missing,
    /// A file (or a symlink to outside the workspace, hashed by its target text).
    File {
        /// blake3 of the bytes.
        #[serde(with = "hex_digest")]
        digest: Digest,
        /// Size in bytes.
        size: u64,
    },
    /// A directory.
    Dir {
        /// Digest of its manifest ([`manifest_digest`]).
        #[serde(with = "hex_digest")]
        digest: Digest,
        /// Number of manifest entries (files below it).
        files: u64,
        /// Total size of those files.
        size: u64,
    },
}

impl Content {
    /// The digest, unless missing.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Content::Missing => None,
            Content::File { digest, .. } | Content::Dir { digest, .. } => Some(digest),
        }
    }

    /// Size in bytes (0 when missing).
    pub fn size(&self) -> u64 {
        match self {
            Content::Missing => 0,
            Content::File { size, .. } | Content::Dir { size, .. } => *size,
        }
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self, Content::Dir { .. })
    }
}

/// One file of a directory manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Path relative to the directory, '/'-separated.
    pub path: String,
    /// Whether any executable bit is set.
    pub exec: bool,
    /// blake3 of the file's bytes (of the link target text for `link`).
    #[serde(with = "hex_digest")]
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// A symlink to outside the workspace, recorded by its target text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub link: bool,
}

/// The digest of a directory: blake3 over a tagged, length-prefixed encoding
/// of its entries sorted by path (`kind` byte `f`/`x`/`l` for plain,
/// executable and link; path length as u64 LE; path; 32-byte digest).
/// Sizes are implied by the digests and not included.
pub fn manifest_digest(entries: &[ManifestEntry]) -> Digest {
    let mut sorted: Vec<&ManifestEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut h = blake3::Hasher::new();
    h.update(MANIFEST_TAG);
    for e in sorted {
        let kind = if e.link {
            b'l'
        } else if e.exec {
            b'x'
        } else {
            b'f'
        };
        h.update(&[kind]);
        h.update(&(e.path.len() as u64).to_le_bytes());
        h.update(e.path.as_bytes());
        h.update(&e.digest);
    }
    *h.finalize().as_bytes()
}

/// The [`Content::Dir`] summarising a manifest.
pub fn dir_content(entries: &[ManifestEntry]) -> Content {
    Content::Dir {
        digest: manifest_digest(entries),
        files: entries.len() as u64,
        size: entries.iter().map(|e| e.size).sum(),
    }
}

/// blake3 of a file's bytes and its size, without any cache. Files of
/// [`MMAP_THRESHOLD`] or more are read in [`CHUNK`]s, one being read while rayon hashes
/// the other, so memory stays at two chunks whatever the file's size.
pub fn hash_file(path: &Path) -> io::Result<(Digest, u64)> {
    let mut file = fs::File::open(path)?;
    let len = file.metadata()?.len();
    hash_open(&mut file, len)
}

/// [`hash_file`] of an open file whose stat said `len` bytes.
pub(super) fn hash_open(file: &mut fs::File, len: u64) -> io::Result<(Digest, u64)> {
    if len >= MMAP_THRESHOLD {
        hash_stream(file)
    } else {
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0) + 1);
        file.read_to_end(&mut buf)?;
        Ok((*blake3::hash(&buf).as_bytes(), buf.len() as u64))
    }
}

/// Reads `r` to its end into `buf` until full; the number of bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// blake3 of everything `r` yields, double-buffered: a reader thread fills one chunk
/// while the other is hashed on rayon.
pub fn hash_stream(r: &mut (impl Read + Send)) -> io::Result<(Digest, u64)> {
    let mut h = blake3::Hasher::new();
    let mut cur = vec![0u8; CHUNK];
    let mut next = vec![0u8; CHUNK];
    let mut n = fill(r, &mut cur)?;
    while n > 0 {
        let (read, ()) = std::thread::scope(|s| {
            let reader = s.spawn(|| fill(r, &mut next));
            h.update_rayon(&cur[..n]);
            (
                reader
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("reader panicked"))),
                (),
            )
        });
        n = read?;
        std::mem::swap(&mut cur, &mut next);
    }
    Ok((*h.finalize().as_bytes(), h.count()))
}
