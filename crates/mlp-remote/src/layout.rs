//! Where things live on a remote, and the JSON of a directory entry.

use mlp_engine::hash::{Digest, ManifestEntry, hex};
use serde::{Deserialize, Serialize};

fn sharded(top: &str, d: &Digest) -> String {
    let h = hex(d);
    format!("{top}/{}/{}", &h[..2], &h[2..])
}

/// A file, by the blake3 of its bytes.
pub fn object(d: &Digest) -> String {
    sharded("objects", d)
}

/// A pack, by the blake3 of its bytes.
pub fn pack(d: &Digest) -> String {
    sharded("packs", d)
}

/// A directory entry, by the directory's digest.
pub fn dir(d: &Digest) -> String {
    sharded("dirs", d)
}

/// A run-cache entry.
pub fn runcache(identity: &str) -> String {
    format!("runcache/{identity}")
}

/// A workspace's needs.
pub fn reference(workspace: &str) -> String {
    format!("refs/{workspace}")
}

/// Where one file of a directory is: which of its packs, at what offset.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    #[serde(with = "hex_digest")]
    pub digest: Digest,
    pub pack: usize,
    pub offset: u64,
    pub len: u64,
}

/// `dirs/..`: a directory's manifest (exactly the local cache's, so its digest checks
/// it), the packs holding its small files and where each one is. Files not in the index
/// are objects of their own.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct DirEntry {
    pub entries: Vec<ManifestEntry>,
    #[serde(default, with = "hex_list")]
    pub packs: Vec<Digest>,
    #[serde(default)]
    pub index: Vec<Slice>,
}

/// `refs/<workspace>`: for each stage, the identities this workspace's current and kept
/// records have (`mlp gc --remote` keeps what any ref names).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Ref {
    pub updated_ms: u64,
    pub stages: std::collections::BTreeMap<String, Vec<String>>,
}

mod hex_digest {
    use mlp_engine::hash::{Digest, hex, parse_hex};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex(d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        parse_hex(&s).ok_or_else(|| serde::de::Error::custom("not a blake3 hex digest"))
    }
}

mod hex_list {
    use mlp_engine::hash::{Digest, hex, parse_hex};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &[Digest], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(d.iter().map(hex))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Digest>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| {
                parse_hex(s).ok_or_else(|| serde::de::Error::custom("not a blake3 hex digest"))
            })
            .collect()
    }
}
