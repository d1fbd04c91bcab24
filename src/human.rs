//! Small pieces of human-readable output shared by several commands.

/// `1 stage`, `2 stages`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `512 B`, `3.4 KiB`, `1.0 GiB`.
pub fn bytes(b: u64) -> String {
    mlp_engine::run::human_bytes(b)
}
