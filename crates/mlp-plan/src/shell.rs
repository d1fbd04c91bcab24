//! Shell quoting of the values interpolated into `run` and `fallback` commands.

/// Append `s` shell-quoted (as `quote` and `quote_glob` do), without a copy when it needs
/// no quoting.
pub(crate) fn push_quoted(out: &mut String, s: &str, glob: bool) {
    if glob {
        out.push_str(&quote_glob(s));
        return;
    }
    match shlex::try_quote(s) {
        Ok(q) => out.push_str(&q),
        Err(_) => out.push_str(&quote(s)),
    }
}

/// Shell-quote one word (only when it needs it).
pub fn quote(s: &str) -> String {
    match shlex::try_quote(s) {
        Ok(q) => q.into_owned(),
        // A NUL byte cannot reach a command line at all: drop it visibly.
        Err(_) => {
            shlex::try_quote(&s.replace('\0', "")).map_or_else(|_| "''".into(), |q| q.into_owned())
        }
    }
}

/// A glob stays unquoted (so the shell expands it) when it is made of safe characters.
fn quote_glob(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./*?[]".contains(c))
    {
        s.to_string()
    } else {
        quote(s)
    }
}
