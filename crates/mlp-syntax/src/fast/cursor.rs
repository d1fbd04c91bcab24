//! The cursor over the source, the skipped whitespace and comments, and the atomic
//! tokens (names, keys, numbers, durations, sizes). Every other part of the fast parser
//! builds on this one.

use std::fmt;

use crate::ast::*;

/// Why the fast parser left a file to pest: the construct it was reading when it met
/// something it does not handle (or that is not well-formed), and the byte offset where
/// it stopped. pest then decides: it reports the error, or reads the file itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GiveUp {
    /// The construct, as the grammar calls it: "executor item", "stage item", "string
    /// escape", "nesting deeper than 64 levels", ...
    pub construct: &'static str,
    /// The byte offset in the source where the fast parser stopped.
    pub at: usize,
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.construct, self.at)
    }
}

/// What every rule of the fast parser returns.
pub(super) type R<T> = Result<T, GiveUp>;

/// Nesting deeper than this (lists, `for` loops, parentheses) is left to pest.
const MAX_DEPTH: u32 = 64;

pub(super) struct P<'a> {
    pub(super) s: &'a str,
    pub(super) b: &'a [u8],
    pub(super) i: usize,
    depth: u32,
    /// The comments skipped so far, in order: what `comments::collect` finds in a file
    /// that parses.
    pub(super) comments: Vec<Comment>,
    /// Inside `${ ... }`, where a `#` is part of the string for `comments::collect`.
    pub(super) in_interp: bool,
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

pub(super) fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

impl<'a> P<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        P {
            s: src,
            b: src.as_bytes(),
            i: 0,
            depth: 0,
            comments: Vec::new(),
            in_interp: false,
        }
    }

    /// Giving up on `construct` here.
    #[inline]
    pub(super) fn no(&self, construct: &'static str) -> GiveUp {
        GiveUp {
            construct,
            at: self.i,
        }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// The byte at `i`, or giving up on `construct` at the end of the source.
    pub(super) fn next_byte(&self, construct: &'static str) -> R<u8> {
        self.peek().ok_or_else(|| self.no(construct))
    }

    pub(super) fn at(&self, lit: &str) -> bool {
        self.b[self.i..].starts_with(lit.as_bytes())
    }

    pub(super) fn eat(&mut self, lit: &str) -> bool {
        let ok = self.at(lit);
        if ok {
            self.i += lit.len();
        }
        ok
    }

    /// `lit`, or giving up on `construct`.
    pub(super) fn expect(&mut self, lit: &str, construct: &'static str) -> R<()> {
        if self.eat(lit) {
            Ok(())
        } else {
            Err(self.no(construct))
        }
    }

    /// `WHITESPACE` and `COMMENT`, as pest skips them between tokens.
    pub(super) fn skip(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => self.i += 1,
                b'#' => {
                    let start = self.i;
                    self.i = self.s[start..]
                        .find('\n')
                        .map_or(self.b.len(), |n| start + n);
                    // A skip that was rolled back meets the same comment again.
                    if !self.in_interp && self.comments.last().is_none_or(|c| c.span.start < start)
                    {
                        let line = self.s[..start].rfind('\n').map_or(0, |n| n + 1);
                        self.comments.push(Comment {
                            text: self.s[start + 1..self.i].trim_end().to_string(),
                            span: Span::new(start, self.i),
                            trailing: self.b[line..start]
                                .iter()
                                .any(|c| !matches!(c, b' ' | b'\t' | b'\r')),
                        });
                    }
                }
                _ => break,
            }
        }
    }

    /// The run of ident characters at `i` (may be empty, may start with a digit).
    pub(super) fn word(&self) -> &'a str {
        let end = self.b[self.i..]
            .iter()
            .position(|&c| !is_ident_char(c))
            .map_or(self.b.len(), |n| self.i + n);
        &self.s[self.i..end]
    }

    /// `kw_x = @{ "x" ~ !ident_char }`.
    pub(super) fn kw(&mut self, k: &str) -> bool {
        let ok = self.word() == k;
        if ok {
            self.i += k.len();
        }
        ok
    }

    /// The keyword `k`, or giving up on `construct`.
    pub(super) fn keyword(&mut self, k: &str, construct: &'static str) -> R<()> {
        if self.kw(k) {
            Ok(())
        } else {
            Err(self.no(construct))
        }
    }

    pub(super) fn spanned(&self, start: usize) -> Spanned<String> {
        Spanned::new(self.s[start..self.i].to_string(), Span::new(start, self.i))
    }

    /// `name = @{ (ASCII_ALPHA | "_") ~ ident_char* }` (keywords allowed).
    pub(super) fn name(&mut self, construct: &'static str) -> R<Spanned<String>> {
        let w = self.word();
        if !w.bytes().next().is_some_and(is_name_start) {
            return Err(self.no(construct));
        }
        let start = self.i;
        self.i += w.len();
        Ok(self.spanned(start))
    }

    /// `ident`: a name that is not a keyword.
    pub(super) fn ident(&mut self, construct: &'static str) -> R<Spanned<String>> {
        let w = self.word();
        if !w.bytes().next().is_some_and(is_name_start) || crate::is_keyword(w) {
            return Err(self.no(construct));
        }
        self.name(construct)
    }

    /// `key = @{ name ~ ("." ~ name)* }`.
    pub(super) fn key(&mut self) -> R<Spanned<String>> {
        let start = self.i;
        self.name("key")?;
        while self.peek() == Some(b'.') && self.b.get(self.i + 1).is_some_and(|&c| is_name_start(c))
        {
            self.i += 1;
            self.name("key")?;
        }
        Ok(self.spanned(start))
    }

    pub(super) fn deeper(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth <= MAX_DEPTH {
            Ok(())
        } else {
            Err(self.no("nesting deeper than 64 levels"))
        }
    }

    pub(super) fn shallower(&mut self) {
        self.depth -= 1;
    }

    /// `x ~ ("," ~ x)*`, the comma rolled back when no `x` follows it. As pest does, the
    /// whitespace before the repetition is kept when it matches nothing: the rule's span
    /// then runs to the next token (`in "a"` ends where the next item starts, `in "a", "b"`
    /// after `"b"`).
    pub(super) fn list_of<T>(&mut self, f: impl Fn(&mut Self) -> R<T>) -> R<Vec<T>> {
        let mut out = vec![f(self)?];
        self.skip();
        let mut first = true;
        loop {
            let save = self.i;
            if !first {
                self.skip();
            }
            first = false;
            if !self.eat(",") {
                self.i = save;
                break;
            }
            self.skip();
            match f(self) {
                Ok(x) => out.push(x),
                Err(_) => {
                    self.i = save;
                    break;
                }
            }
        }
        out.shrink_to_fit();
        Ok(out)
    }

    // ---------------------------------------------------------------- tokens --

    pub(super) fn digits(&mut self) -> usize {
        let n = self.b[self.i..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        self.i += n;
        n
    }

    pub(super) fn not_ident_char(&self) -> bool {
        !self.peek().is_some_and(is_ident_char)
    }

    /// `integer = @{ ASCII_DIGIT+ ~ !ident_char }`, its value (if it fits) and span.
    pub(super) fn integer(&mut self) -> R<(u64, Span)> {
        let start = self.i;
        if !(self.digits() > 0 && self.not_ident_char()) {
            return Err(self.no("integer"));
        }
        let n = self.s[start..self.i]
            .parse::<u64>()
            .map_err(|_| self.no("integer"))?;
        Ok((n, Span::new(start, self.i)))
    }

    /// `size = @{ digits ~ ("." ~ digits)? ~ ("K"|"M"|"G"|"T") ~ ("iB"|"B")? ~ !ident_char }`.
    pub(super) fn size(&mut self) -> R<Amount> {
        let start = self.i;
        if self.digits() == 0 {
            return Err(self.no("size"));
        }
        let save = self.i;
        if !(self.eat(".") && self.digits() > 0) {
            self.i = save;
        }
        let unit_at = self.i;
        let mult: u64 = match self.next_byte("size")? {
            b'K' => 1 << 10,
            b'M' => 1 << 20,
            b'G' => 1 << 30,
            b'T' => 1 << 40,
            _ => return Err(self.no("size")),
        };
        self.i += 1;
        let _ = self.eat("iB") || self.eat("B");
        if !self.not_ident_char() {
            return Err(self.no("size"));
        }
        let n: f64 = self.s[start..unit_at].parse().unwrap_or(0.0);
        let bytes = n * mult as f64;
        if !bytes.is_finite() || bytes > u64::MAX as f64 {
            return Err(self.no("size")); // pest reports it
        }
        Ok(Amount::Bytes(bytes as u64))
    }

    /// `duration = @{ (ASCII_DIGIT+ ~ ("ms"|"s"|"m"|"h"|"d"|"w"))+ ~ !ident_char }`.
    pub(super) fn duration(&mut self) -> R<Spanned<Duration>> {
        let start = self.i;
        let mut millis: u64 = 0;
        let mut any = false;
        loop {
            let at = self.i;
            let n_at = self.i;
            if self.digits() == 0 {
                self.i = at;
                break;
            }
            let n_end = self.i;
            let unit: u64 = if self.eat("ms") {
                1
            } else if self.eat("s") {
                1_000
            } else if self.eat("m") {
                60_000
            } else if self.eat("h") {
                3_600_000
            } else if self.eat("d") {
                86_400_000
            } else if self.eat("w") {
                604_800_000
            } else {
                self.i = at;
                break;
            };
            any = true;
            let n: u64 = self.s[n_at..n_end].parse().unwrap_or(u64::MAX);
            millis = n
                .checked_mul(unit)
                .and_then(|v| millis.checked_add(v))
                .ok_or_else(|| self.no("duration"))?; // overflow: pest reports it
        }
        if !(any && self.not_ident_char()) {
            return Err(self.no("duration"));
        }
        let text = self.s[start..self.i].to_string();
        Ok(Spanned::new(
            Duration { millis, text },
            Span::new(start, self.i),
        ))
    }

    /// `number` (`signed` with `sign`): digits, fraction, exponent, `!ident_char`.
    pub(super) fn number(&mut self, sign: bool) -> R<(f64, String, Span)> {
        let start = self.i;
        if sign {
            let _ = self.eat("-");
        }
        if self.digits() == 0 {
            return Err(self.no("number"));
        }
        let save = self.i;
        if !(self.eat(".") && self.digits() > 0) {
            self.i = save;
        }
        let save = self.i;
        if self.eat("e") || self.eat("E") {
            let _ = self.eat("+") || self.eat("-");
            if self.digits() == 0 {
                self.i = save;
            }
        }
        if !self.not_ident_char() {
            return Err(self.no("number"));
        }
        let text = &self.s[start..self.i];
        let n = text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| self.no("number"))?;
        Ok((n, text.to_string(), Span::new(start, self.i)))
    }

    /// `boolean = @{ ("true" | "false") ~ !ident_char }`.
    pub(super) fn boolean(&mut self) -> Option<bool> {
        if self.kw("true") {
            Some(true)
        } else if self.kw("false") {
            Some(false)
        } else {
            None
        }
    }
}
