//! pest errors → `SyntaxError`s that say what was expected, what was found and why.

use pest::Parser as _;
use pest::error::InputLocation;

use super::grammar::{MlpParser, Rule};
use crate::Code;
use crate::ast::*;
use crate::error::SyntaxError;

/// Parse again with pest's error detail on, which also records the literal tokens it
/// expected (`=`, `{`, `}`, `,` ...): the first, fast parse does not. The setting is global
/// to the process and is left on, since turning it off could race with another thread's
/// parse and make its message depend on timing.
pub(super) fn detailed_error(rule: Rule, src: &str) -> Option<pest::error::Error<Rule>> {
    pest::set_error_detail(true);
    MlpParser::parse(rule, src).err()
}

/// Keywords that start an item at the top of a file (and never inside a stage).
const TOP_ONLY: &[&str] = &["pipeline", "param", "include", "stage", "for"];

/// Tokens worth naming in "expected ..." when pest wanted them literally.
const STRUCTURAL: &[&str] = &["=", ",", "{", "}", ")", "]"];

/// What the user should read for a grammar rule in "expected ..." messages.
fn describe(r: &Rule) -> Option<&'static str> {
    Some(match r {
        Rule::EOI => "end of file",
        Rule::kw_pipeline | Rule::kw_param | Rule::kw_include => "TOP",
        Rule::kw_stage => "`stage`",
        Rule::kw_for => "`for`",
        Rule::in_decl
        | Rule::out_decl
        | Rule::metrics_decl
        | Rule::after_decl
        | Rule::params_keys
        | Rule::run_decl
        | Rule::check_decl
        | Rule::gate_decl
        | Rule::when_decl
        | Rule::every_decl
        | Rule::timeout_decl
        | Rule::retry_decl
        | Rule::fallback_decl
        | Rule::resources_decl
        | Rule::kw_in
        | Rule::kw_out
        | Rule::kw_metrics
        | Rule::kw_after
        | Rule::kw_run
        | Rule::kw_check
        | Rule::kw_gate
        | Rule::kw_when
        | Rule::kw_every
        | Rule::kw_timeout
        | Rule::kw_retry
        | Rule::kw_fallback
        | Rule::kw_resources
        | Rule::flag => "STAGE",
        Rule::string => "a string",
        Rule::text | Rule::escape | Rule::interp => "the end of the string `\"`",
        Rule::ident | Rule::stage_name | Rule::stage_ref | Rule::name => "a name",
        Rule::key => "a params key",
        Rule::reference => "a stage reference",
        Rule::named_path => "an output (`name = \"path\"`)",
        Rule::expr
        | Rule::path
        | Rule::call
        | Rule::paren
        | Rule::number
        | Rule::boolean
        | Rule::not
        | Rule::neg => "an expression",
        Rule::or
        | Rule::and
        | Rule::eq
        | Rule::ne
        | Rule::le
        | Rule::ge
        | Rule::lt
        | Rule::gt
        | Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::div
        | Rule::rem => "an operator",
        Rule::segment => "`.` or `[`",
        Rule::list => "a list `[...]`",
        Rule::signed => "VALUE",
        Rule::integer => "a whole number",
        Rule::duration => "a duration such as `30m` or `24h`",
        Rule::size => "a size such as `4G`",
        Rule::resource => "a resource (`cpu = 2`, `mem = 4G`, `gpu = 1`)",
        Rule::env_pair => "`NAME = \"value\"`",
        _ => return None,
    })
}

/// What stands at `at`, for "found ...".
pub(super) fn found_at(src: &str, at: usize) -> String {
    let rest = &src[at..];
    match rest.chars().next() {
        None => "end of file".to_string(),
        Some(c) if c.is_alphanumeric() || c == '_' => {
            let w: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if crate::is_keyword(&w) && !matches!(w.as_str(), "true" | "false") {
                format!("the keyword `{w}`")
            } else {
                format!("`{w}`")
            }
        }
        Some('\n') | Some('\r') => "end of line".to_string(),
        Some('"') => "a string".to_string(),
        Some(c) => format!("`{c}`"),
    }
}

pub(super) fn next_token_end(src: &str, at: usize) -> usize {
    let rest = &src[at..];
    match rest.chars().next() {
        None => at,
        Some(c) if c.is_alphanumeric() || c == '_' => {
            at + rest
                .char_indices()
                .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
                .map_or(rest.len(), |(i, _)| i)
        }
        Some(c) => at + c.len_utf8(),
    }
}

/// Braces and strings still open at some offset, found by a small scanner that knows
/// strings, escapes and comments.
struct Open {
    /// Offsets of the `{` still open, innermost last.
    braces: Vec<usize>,
    /// Offsets of the `[` still open, innermost last.
    brackets: Vec<usize>,
    /// Where the string still open starts.
    string: Option<usize>,
}

fn open_at(src: &str, upto: usize) -> Open {
    let b = src.as_bytes();
    let upto = upto.min(b.len());
    let mut braces = Vec::new();
    let mut brackets = Vec::new();
    let mut string = None;
    let mut i = 0;
    while i < upto {
        match (string.is_some(), b[i]) {
            (true, b'\\') => i += 1,
            (true, b'"') => string = None,
            (true, _) => {}
            (false, b'"') => string = Some(i),
            (false, b'#') => {
                i = src[i..upto].find('\n').map_or(upto, |n| i + n);
                continue;
            }
            (false, b'{') => braces.push(i),
            (false, b'[') => brackets.push(i),
            (false, b']') => {
                brackets.pop();
            }
            (false, b'}') => {
                braces.pop();
            }
            _ => {}
        }
        i += 1;
    }
    Open {
        braces,
        brackets,
        string,
    }
}

/// What the `{` at `brace` opens: "stage `train`", "the `for` loop", ...
fn block_name(src: &str, brace: usize) -> String {
    let line_start = src[..brace].rfind('\n').map_or(0, |i| i + 1);
    let head = src[line_start..brace].trim();
    if let Some(name) = head.strip_prefix("stage") {
        let name = name.trim().trim_matches('"');
        if !name.is_empty() {
            return format!("stage `{name}`");
        }
        return "the stage".into();
    }
    match head.split_whitespace().next() {
        Some("for") => "the `for` loop".into(),
        Some("env") => "the `env` block".into(),
        _ => "this block".into(),
    }
}

pub(super) fn convert_error(src: &str, e: pest::error::Error<Rule>) -> SyntaxError {
    let mut at = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
    .min(src.len());
    let (positives, negatives) = match &e.variant {
        pest::error::ErrorVariant::ParsingError {
            positives,
            negatives,
        } => (positives.clone(), negatives.clone()),
        pest::error::ErrorVariant::CustomError { .. } => (vec![], vec![]),
    };
    // The literal tokens pest wanted where it got furthest (with error detail on).
    let (tok_at, tokens): (usize, Vec<String>) = match e.parse_attempts() {
        Some(a) => (
            a.max_position.min(src.len()),
            a.expected_tokens().iter().map(|t| t.to_string()).collect(),
        ),
        None => (at, Vec::new()),
    };
    let structural: Vec<&str> = STRUCTURAL
        .iter()
        .copied()
        .filter(|s| tokens.iter().any(|t| t == s))
        .collect();
    let wants_top = tokens.iter().any(|t| t == "pipeline");
    let mut expected: Vec<&str> = positives.iter().filter_map(describe).collect();
    let no_rule = positives.is_empty() || positives == [Rule::file];
    let mut tokens_here = tok_at == at;
    if tok_at > at && !structural.is_empty() || no_rule && tok_at >= at {
        // pest wanted a literal (`=`, `{` ...) further on than any rule it tried.
        at = tok_at;
        expected.clear();
        tokens_here = true;
        if wants_top {
            expected.push("TOP");
        }
    }
    // The catch-all `unknown_item` starts with a name: do not offer "a name" where an item
    // keyword is expected.
    let item_place =
        expected.iter().any(|d| matches!(*d, "TOP" | "STAGE")) || expected.contains(&"`stage`");
    if item_place {
        expected.retain(|d| *d != "a name");
    }
    if expected.contains(&"an expression") {
        expected.retain(|d| {
            !matches!(
                *d,
                "a name" | "a string" | "a duration such as `30m` or `24h`" | "a list `[...]`"
            )
        });
    }
    if expected.contains(&"VALUE") {
        expected.retain(|d| !matches!(*d, "a string" | "a list `[...]`" | "an expression"));
    }
    if expected.contains(&"TOP") {
        expected.retain(|d| !matches!(*d, "`stage`" | "`for`"));
    }
    let mut seen = Vec::new();
    expected.retain(|d| {
        let new = !seen.contains(d);
        seen.push(*d);
        new
    });
    let mut words: Vec<String> = expected
        .iter()
        .map(|d| match *d {
            "TOP" => "an item (`stage`, `param`, `include`, ...)".to_string(),
            "STAGE" => "a stage item (`in`, `out`, `run`, ...)".to_string(),
            "VALUE" => "a value (a number, a string, `true`, `false` or a list)".to_string(),
            d => d.to_string(),
        })
        .collect();
    if tokens_here {
        for s in &structural {
            words.push(format!("`{s}`"));
        }
    }
    // Inside a stage, a `for` loop or an `env` block, `}` may always come next.
    let in_block = expected.contains(&"STAGE")
        || expected.contains(&"`NAME = \"value\"`")
        || (expected.contains(&"`stage`") && !expected.contains(&"TOP"));
    if in_block && !words.iter().any(|w| w == "`}`") {
        words.push("`}`".to_string());
    }

    let found = found_at(src, at);
    let end = next_token_end(src, at);
    let word: String = src[at..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let wants_close = in_block || tokens_here && structural.contains(&"}");

    if at == src.len() {
        let open = open_at(src, at);
        // An unterminated string runs to the end of the file: point at where it starts.
        if let Some(start) = open.string {
            return SyntaxError::new(
                Code::UnterminatedString,
                "unterminated string".to_string(),
                Span::new(start, start + 1),
                "close the string with `\"` (a string may span lines, so one missing `\"` runs to the end of the file)",
            )
            .with_label("this string is never closed");
        }
        if let Some(&brace) = open.braces.last()
            && (wants_close || item_place)
        {
            let what = block_name(src, brace);
            return SyntaxError::new(
                Code::Syntax,
                format!("expected `}}` to close {what}, found end of file"),
                Span::new(brace, brace + 1),
                &format!("add `}}` after the last item of {what}"),
            )
            .with_label("this `{` is never closed");
        }
    }
    // A block whose head is not a keyword (`stag prep {`): the catch-all item took the head
    // and its `{`, and the parse failed on the first item inside the block.
    if expected.contains(&"TOP") || expected.contains(&"`stage`") {
        let open = open_at(src, at);
        if let Some(&brace) = open.braces.last() {
            let line_start = src[..brace].rfind('\n').map_or(0, |i| i + 1);
            let head = src[line_start..brace].trim_start();
            let head_at = brace - head.len();
            let word: &str = &head[..head
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(head.len())];
            if !word.is_empty()
                && !crate::is_keyword(word)
                && word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            {
                let blocks: &[&str] = if expected.contains(&"TOP") {
                    &["stage", "for", "env"]
                } else {
                    &["stage", "for"]
                };
                let help = match closest(word, blocks) {
                    Some(k) => format!("did you mean `{k}`?"),
                    None => format!(
                        "a block here starts with {}",
                        join_or(&blocks.iter().map(|b| format!("`{b}`")).collect::<Vec<_>>())
                    ),
                };
                return SyntaxError::new(
                    Code::UnknownKeyword,
                    format!("unknown keyword `{word}`"),
                    Span::new(head_at, head_at + word.len()),
                    &help,
                )
                .with_label("not a keyword")
                .with_also(Span::new(brace, brace + 1), "so this block is not read");
            }
        }
    }
    // A new top-level item where a `}` was still expected: the block above is not closed.
    if wants_close && TOP_ONLY.contains(&word.as_str()) && !tokens.contains(&word) {
        let open = open_at(src, at);
        if let Some(&brace) = open.braces.last() {
            let what = block_name(src, brace);
            return SyntaxError::new(
                Code::Syntax,
                format!("expected `}}` to close {what}, found the keyword `{word}`"),
                Span::new(at, end),
                &format!("add `}}` after the last item of {what}"),
            )
            .with_label(format!("`}}` missing before this `{word}`"))
            .with_also(Span::new(brace, brace + 1), format!("{what} opens here"));
        }
    }
    // A `}` at the top of the file closes nothing.
    if src[at..].starts_with('}') && expected.contains(&"TOP") && open_at(src, at).braces.is_empty()
    {
        return SyntaxError::new(
            Code::Syntax,
            "unexpected `}`: no `{` is open here".to_string(),
            Span::new(at, at + 1),
            "remove this `}`, or check the braces above it",
        )
        .with_label("closes nothing");
    }

    let message = if words.is_empty() {
        if negatives.is_empty() {
            format!("unexpected {found}")
        } else {
            format!("{found} cannot be used here")
        }
    } else {
        format!("expected {}, found {found}", join_or(&words))
    };
    let mut help = help_for(&expected, &structural, src, at);
    // At the end of the file, point just after the last token (an empty span past the
    // last line shows nothing).
    let span = if at == src.len() {
        let last = src.trim_end().len();
        Span::new(last, last)
    } else {
        Span::new(at, end)
    };
    // A list not closed before the next item or the end of the file: show where it opens.
    if structural.contains(&"]")
        && (at == src.len() || TOP_ONLY.contains(&word.as_str()))
        && let Some(&bracket) = open_at(src, at).brackets.last()
    {
        help = "close the list with `]`".to_string();
        return SyntaxError::new(Code::Syntax, message, span, &help)
            .with_also(Span::new(bracket, bracket + 1), "this `[` is never closed");
    }
    SyntaxError::new(Code::Syntax, message, span, &help)
}

/// The candidate closest to `word` by edit distance, if it is a likely typo of it.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != *cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, c)| *d <= 2 && *d < c.len().min(word.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

fn help_for(expected: &[&str], structural: &[&str], src: &str, at: usize) -> String {
    let word: String = src[at..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let before = src[..at].trim_end();
    if expected.contains(&"a name") && !word.is_empty() && crate::is_keyword(&word) {
        return format!("`{word}` is a keyword; choose another name or write it as a string");
    }
    if structural.contains(&",")
        && !src[at..].starts_with(['\n', '\r', '}'])
        && !src[at..].is_empty()
    {
        return "a list continues only after a comma: `in \"a.csv\", \"b.csv\"`".to_string();
    }
    if expected.contains(&"an output (`name = \"path\"`)") {
        return "write `out \"path\"` or `out name = \"path\"`".to_string();
    }
    if expected.contains(&"STAGE") {
        if word.is_empty() {
            return "a stage holds items such as `in`, `out`, `run`, one after another; close it with `}`".to_string();
        }
        return format!(
            "`{word}` cannot start a stage item here: check the line before it (a list continues only after a comma)"
        );
    }
    if expected.contains(&"TOP") {
        return "a file holds `pipeline`, `params`, `param`, `env`, `stage`, `for` and `include` items".to_string();
    }
    if expected.contains(&"`stage`") {
        return "a `for` loop holds `stage` and `for` items".to_string();
    }
    if before.ends_with("${") {
        return "`${...}` holds a name such as `${params.lr}`, `${out.model}` or `${in[0]}`; write `\\$` for a literal `$`".to_string();
    }
    if structural.contains(&"=") {
        return "write `name = value`".to_string();
    }
    if structural.contains(&"{") {
        return "the items of a stage, a `for` loop or an `env` block go between `{` and `}`"
            .to_string();
    }
    if structural.contains(&"]") {
        return "close the list with `]`, or separate its items with commas".to_string();
    }
    if expected.contains(&"a whole number") {
        return "write a whole number such as `0` or `3`".to_string();
    }
    if expected.contains(&"an operator") && structural.contains(&")") {
        return "close the parenthesis with `)`".to_string();
    }
    if expected.contains(&"VALUE") {
        return "a value is a number, a string in double quotes, `true`, `false` or a list `[...]`"
            .to_string();
    }
    if expected.contains(&"a string") {
        return "strings are written in double quotes: \"...\"".to_string();
    }
    if expected.contains(&"an expression") || expected.contains(&"an operator") {
        return "an expression is made of metrics, params, numbers, strings, comparisons and `&&`, `||`, `!`".to_string();
    }
    if expected.contains(&"a duration such as `30m` or `24h`") {
        return "a duration is a number with a unit: `ms`, `s`, `m`, `h`, `d` or `w` (`90s`, `1h30m`)".to_string();
    }
    "see the language reference in the book (book/src/reference.md)".to_string()
}
