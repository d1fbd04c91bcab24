//! A hand-written parser for well-formed files, about ten times faster than the pest one
//! and without its token queue. It builds exactly the tree that the grammar
//! (`grammar/mlp.pest`) and `parser::Builder` build, and gives up (`None`) at the first
//! thing it does not expect: then `parse` runs the pest parser, which finds the error and
//! explains it. Unknown keywords, out-of-range numbers and bad escapes are left to pest too.
//!
//! Every rule below names the grammar rule it follows. Implicit whitespace (`skip`) stands
//! where pest inserts it: between the parts of non-atomic rules, never inside atomic ones.
//! Differential tests (`tests/fast.rs`, the fuzz target) check that both parsers agree.

use crate::ast::*;

/// The items and comments of `src`, or `None` to let the pest parser decide.
pub(crate) fn parse(src: &str) -> Option<File> {
    let mut p = P {
        s: src,
        b: src.as_bytes(),
        i: 0,
        depth: 0,
        comments: Vec::new(),
        in_interp: false,
    };
    let mut items = Vec::new();
    p.skip();
    while p.i < p.b.len() {
        items.push(p.top_item()?);
        p.skip();
    }
    Some(File {
        items,
        comments: p.comments,
    })
}

/// Nesting deeper than this (lists, `for` loops, parentheses) is left to pest.
const MAX_DEPTH: u32 = 64;

struct P<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: u32,
    /// The comments skipped so far, in order: what `comments::collect` finds in a file
    /// that parses.
    comments: Vec<Comment>,
    /// Inside `${ ... }`, where a `#` is part of the string for `comments::collect`.
    in_interp: bool,
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

impl<'a> P<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn at(&self, lit: &str) -> bool {
        self.b[self.i..].starts_with(lit.as_bytes())
    }

    fn eat(&mut self, lit: &str) -> bool {
        let ok = self.at(lit);
        if ok {
            self.i += lit.len();
        }
        ok
    }

    fn expect(&mut self, lit: &str) -> Option<()> {
        self.eat(lit).then_some(())
    }

    /// `WHITESPACE` and `COMMENT`, as pest skips them between tokens.
    fn skip(&mut self) {
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
    fn word(&self) -> &'a str {
        let end = self.b[self.i..]
            .iter()
            .position(|&c| !is_ident_char(c))
            .map_or(self.b.len(), |n| self.i + n);
        &self.s[self.i..end]
    }

    /// `kw_x = @{ "x" ~ !ident_char }`.
    fn kw(&mut self, k: &str) -> bool {
        let ok = self.word() == k;
        if ok {
            self.i += k.len();
        }
        ok
    }

    fn spanned(&self, start: usize) -> Spanned<String> {
        Spanned::new(self.s[start..self.i].to_string(), Span::new(start, self.i))
    }

    /// `name = @{ (ASCII_ALPHA | "_") ~ ident_char* }` (keywords allowed).
    fn name(&mut self) -> Option<Spanned<String>> {
        let w = self.word();
        if !w.bytes().next().is_some_and(is_name_start) {
            return None;
        }
        let start = self.i;
        self.i += w.len();
        Some(self.spanned(start))
    }

    /// `ident`: a name that is not a keyword.
    fn ident(&mut self) -> Option<Spanned<String>> {
        let w = self.word();
        if !w.bytes().next().is_some_and(is_name_start) || crate::is_keyword(w) {
            return None;
        }
        self.name()
    }

    /// `key = @{ name ~ ("." ~ name)* }`.
    fn key(&mut self) -> Option<Spanned<String>> {
        let start = self.i;
        self.name()?;
        while self.peek() == Some(b'.') && self.b.get(self.i + 1).is_some_and(|&c| is_name_start(c))
        {
            self.i += 1;
            self.name()?;
        }
        Some(self.spanned(start))
    }

    fn deeper(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    // ------------------------------------------------------------------ items --

    fn top_item(&mut self) -> Option<Item> {
        let start = self.i;
        let kind = match self.word() {
            "pipeline" => {
                self.i += 8;
                self.skip();
                ItemKind::Pipeline(self.string()?)
            }
            "params" => {
                self.i += 6;
                self.skip();
                ItemKind::ParamsFiles(self.list_of(Self::string)?)
            }
            "param" => {
                self.i += 5;
                self.skip();
                let key = self.key()?;
                self.skip();
                self.expect("=")?;
                self.skip();
                let value = self.value()?;
                ItemKind::Param { key, value }
            }
            "env" => ItemKind::Env(self.env_block()?),
            "executor" => ItemKind::Executor(self.executor()?),
            "stage" => ItemKind::Stage(self.stage()?),
            "for" => ItemKind::For(self.for_loop()?),
            "include" => {
                self.i += 7;
                self.skip();
                ItemKind::Include(self.string()?)
            }
            _ => return None,
        };
        Some(Item {
            kind,
            span: Span::new(start, self.i),
        })
    }

    /// `x ~ ("," ~ x)*`, the comma rolled back when no `x` follows it. As pest does, the
    /// whitespace before the repetition is kept when it matches nothing: the rule's span
    /// then runs to the next token (`in "a"` ends where the next item starts, `in "a", "b"`
    /// after `"b"`).
    fn list_of<T>(&mut self, f: impl Fn(&mut Self) -> Option<T>) -> Option<Vec<T>> {
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
                Some(x) => out.push(x),
                None => {
                    self.i = save;
                    break;
                }
            }
        }
        out.shrink_to_fit();
        Some(out)
    }

    /// `env_block = { kw_env ~ "{" ~ env_pair* ~ "}" }`, `env_pair = { name ~ "=" ~ scalar }`.
    fn env_block(&mut self) -> Option<Vec<EnvPair>> {
        self.kw("env").then_some(())?;
        self.skip();
        self.expect("{")?;
        let mut pairs = Vec::new();
        loop {
            self.skip();
            if self.eat("}") {
                return Some(pairs);
            }
            let name = self.name()?;
            self.skip();
            self.expect("=")?;
            self.skip();
            let value = self.scalar()?;
            pairs.push(EnvPair { name, value });
        }
    }

    /// `executor_decl = { kw_executor ~ name ~ ("{" ~ setting* ~ "}")? }`,
    /// `setting = { name ~ "=" ~ (duration | value) }`. Without a block, the span runs to
    /// the next token (pest skips the whitespace before the option that matches nothing).
    fn executor(&mut self) -> Option<Executor> {
        self.kw("executor").then_some(())?;
        self.skip();
        let name = self.name()?;
        self.skip();
        if !self.eat("{") {
            return Some(Executor {
                name,
                settings: None,
            });
        }
        let mut settings = Vec::new();
        loop {
            self.skip();
            if self.eat("}") {
                return Some(Executor {
                    name,
                    settings: Some(settings),
                });
            }
            let sname = self.name()?;
            self.skip();
            self.expect("=")?;
            self.skip();
            let start = self.i;
            let value = match self.duration() {
                Some(d) => SettingValue::Duration(d),
                None => {
                    self.i = start;
                    SettingValue::Value(self.value()?)
                }
            };
            settings.push(Setting { name: sname, value });
        }
    }

    /// `for_loop = { kw_for ~ ident ~ kw_in ~ (list | key) ~ "{" ~ for_item* ~ "}" }`.
    fn for_loop(&mut self) -> Option<ForLoop> {
        self.deeper()?;
        self.kw("for").then_some(())?;
        self.skip();
        let var = self.ident()?;
        self.skip();
        self.kw("in").then_some(())?;
        self.skip();
        let over = if self.peek() == Some(b'[') {
            ForSource::List(self.list()?)
        } else {
            ForSource::Param(self.key()?)
        };
        self.skip();
        self.expect("{")?;
        let mut items = Vec::new();
        loop {
            self.skip();
            if self.eat("}") {
                break;
            }
            let start = self.i;
            let kind = match self.word() {
                "stage" => ItemKind::Stage(self.stage()?),
                "for" => ItemKind::For(self.for_loop()?),
                _ => return None,
            };
            items.push(Item {
                kind,
                span: Span::new(start, self.i),
            });
        }
        self.depth -= 1;
        Some(ForLoop { var, over, items })
    }

    /// `stage = { kw_stage ~ stage_name ~ "{" ~ stage_item* ~ "}" }`.
    fn stage(&mut self) -> Option<Stage> {
        self.kw("stage").then_some(())?;
        self.skip();
        let name = self.stage_name()?;
        self.skip();
        self.expect("{")?;
        let mut items = Vec::new();
        loop {
            self.skip();
            if self.eat("}") {
                items.shrink_to_fit(); // a big pipeline holds many stages: no spare room
                return Some(Stage { name, items });
            }
            items.push(self.stage_item()?);
        }
    }

    /// `stage_name = { ident | string }` (also `stage_ref`).
    fn stage_name(&mut self) -> Option<StageName> {
        if self.peek() == Some(b'"') {
            Some(StageName::Str(self.string()?))
        } else {
            Some(StageName::Ident(self.ident()?))
        }
    }

    fn stage_item(&mut self) -> Option<StageItem> {
        use StageItemKind as K;
        let start = self.i;
        let word = self.word();
        if word == "env" {
            let pairs = self.env_block()?;
            return Some(StageItem {
                kind: K::Env(pairs),
                span: Span::new(start, self.i),
            });
        }
        if word == "executor" {
            let e = self.executor()?;
            return Some(StageItem {
                kind: K::Executor(e),
                span: Span::new(start, self.i),
            });
        }
        let flag = match word {
            "always" => Some(K::Always),
            "frozen" => Some(K::Frozen),
            "promote" => Some(K::Promote),
            _ => None,
        };
        self.i += word.len();
        if let Some(kind) = flag {
            return Some(StageItem {
                kind,
                span: Span::new(start, self.i),
            });
        }
        self.skip();
        let kind = match word {
            "in" => K::In(self.list_of(Self::input)?),
            "out" => K::Out(self.list_of(Self::named_path)?),
            "metrics" => K::Metrics(self.list_of(Self::named_path)?),
            "after" => K::After(self.list_of(Self::stage_name)?),
            "params" => K::Params(self.list_of(Self::key)?),
            "run" => K::Run(self.string()?),
            "fallback" => K::Fallback(self.string()?),
            "check" | "gate" => {
                // `kw ~ expr ~ string?`: without a message, the span runs to the next token.
                let expr = self.expr()?;
                self.skip();
                let message = if self.peek() == Some(b'"') {
                    Some(self.string()?)
                } else {
                    None
                };
                if word == "check" {
                    K::Check { expr, message }
                } else {
                    K::Gate { expr, message }
                }
            }
            "when" => {
                // The `expr` rule ends after the whitespace that follows it when it has no
                // operator at its top (`prefix* ~ primary ~ (infix ~ ...)*` matched nothing).
                let e = self.expr()?;
                if !matches!(e.kind, ExprKind::Binary { .. }) {
                    self.skip();
                }
                K::When(e)
            }
            "every" => K::Every(self.duration()?),
            "timeout" => K::Timeout(self.duration()?),
            "retry" => {
                let (n, span) = self.integer()?;
                K::Retry(Spanned::new(u32::try_from(n).ok()?, span))
            }
            "resources" => K::Resources(self.list_of(Self::resource)?),
            _ => return None,
        };
        Some(StageItem {
            kind,
            span: Span::new(start, self.i),
        })
    }

    /// `input = _{ string | reference }`, `reference = ${ ident ~ ("." ~ name)? }`.
    fn input(&mut self) -> Option<Input> {
        if self.peek() == Some(b'"') {
            return Some(Input::Path(self.string()?));
        }
        let start = self.i;
        let stage = self.ident()?;
        let output = if self.peek() == Some(b'.')
            && self.b.get(self.i + 1).is_some_and(|&c| is_name_start(c))
        {
            self.i += 1;
            Some(self.name()?)
        } else {
            None
        };
        Some(Input::Ref {
            stage,
            output,
            span: Span::new(start, self.i),
        })
    }

    /// `named_path = { (ident ~ "=")? ~ string }`.
    fn named_path(&mut self) -> Option<NamedPath> {
        let start = self.i;
        let name = if self.peek() == Some(b'"') {
            None
        } else {
            let n = self.ident()?;
            self.skip();
            self.expect("=")?;
            self.skip();
            Some(n)
        };
        let path = self.string()?;
        Some(NamedPath {
            name,
            path,
            span: Span::new(start, self.i),
        })
    }

    /// `resource = { name ~ "=" ~ (size | integer) }`.
    fn resource(&mut self) -> Option<Resource> {
        let name = self.name()?;
        self.skip();
        self.expect("=")?;
        self.skip();
        let start = self.i;
        let amount = match self.size() {
            Some(a) => a,
            None => {
                self.i = start;
                let (n, _) = self.integer()?;
                Amount::Count(u64::from(u32::try_from(n).ok()?))
            }
        };
        Some(Resource {
            name,
            amount: Spanned::new(amount, Span::new(start, self.i)),
        })
    }

    // ---------------------------------------------------------------- tokens --

    fn digits(&mut self) -> usize {
        let n = self.b[self.i..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        self.i += n;
        n
    }

    fn not_ident_char(&self) -> bool {
        !self.peek().is_some_and(is_ident_char)
    }

    /// `integer = @{ ASCII_DIGIT+ ~ !ident_char }`, its value (if it fits) and span.
    fn integer(&mut self) -> Option<(u64, Span)> {
        let start = self.i;
        (self.digits() > 0 && self.not_ident_char()).then_some(())?;
        let n = self.s[start..self.i].parse::<u64>().ok()?;
        Some((n, Span::new(start, self.i)))
    }

    /// `size = @{ digits ~ ("." ~ digits)? ~ ("K"|"M"|"G"|"T") ~ ("iB"|"B")? ~ !ident_char }`.
    fn size(&mut self) -> Option<Amount> {
        let start = self.i;
        (self.digits() > 0).then_some(())?;
        let save = self.i;
        if !(self.eat(".") && self.digits() > 0) {
            self.i = save;
        }
        let unit_at = self.i;
        let mult: u64 = match self.peek()? {
            b'K' => 1 << 10,
            b'M' => 1 << 20,
            b'G' => 1 << 30,
            b'T' => 1 << 40,
            _ => return None,
        };
        self.i += 1;
        let _ = self.eat("iB") || self.eat("B");
        self.not_ident_char().then_some(())?;
        let n: f64 = self.s[start..unit_at].parse().unwrap_or(0.0);
        let bytes = n * mult as f64;
        if !bytes.is_finite() || bytes > u64::MAX as f64 {
            return None; // pest reports it
        }
        Some(Amount::Bytes(bytes as u64))
    }

    /// `duration = @{ (ASCII_DIGIT+ ~ ("ms"|"s"|"m"|"h"|"d"|"w"))+ ~ !ident_char }`.
    fn duration(&mut self) -> Option<Spanned<Duration>> {
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
            millis = n.checked_mul(unit).and_then(|v| millis.checked_add(v))?; // overflow: pest reports it
        }
        (any && self.not_ident_char()).then_some(())?;
        let text = self.s[start..self.i].to_string();
        Some(Spanned::new(
            Duration { millis, text },
            Span::new(start, self.i),
        ))
    }

    /// `number` (`signed` with `sign`): digits, fraction, exponent, `!ident_char`.
    fn number(&mut self, sign: bool) -> Option<(f64, String, Span)> {
        let start = self.i;
        if sign {
            let _ = self.eat("-");
        }
        (self.digits() > 0).then_some(())?;
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
        self.not_ident_char().then_some(())?;
        let text = &self.s[start..self.i];
        let n = text.parse::<f64>().ok().filter(|n| n.is_finite())?;
        Some((n, text.to_string(), Span::new(start, self.i)))
    }

    /// `boolean = @{ ("true" | "false") ~ !ident_char }`.
    fn boolean(&mut self) -> Option<bool> {
        if self.kw("true") {
            Some(true)
        } else if self.kw("false") {
            Some(false)
        } else {
            None
        }
    }

    // ---------------------------------------------------------------- values --

    /// `value = _{ list | scalar }`.
    fn value(&mut self) -> Option<Value> {
        if self.peek() == Some(b'[') {
            self.list()
        } else {
            self.scalar()
        }
    }

    /// `scalar = _{ string | signed | boolean }`.
    fn scalar(&mut self) -> Option<Value> {
        let start = self.i;
        let kind = match self.peek()? {
            b'"' => ValueKind::Str(self.string()?),
            b'-' | b'0'..=b'9' => {
                let (n, text, _) = self.number(true)?;
                ValueKind::Number(n, text)
            }
            _ => ValueKind::Bool(self.boolean()?),
        };
        Some(Value {
            kind,
            span: Span::new(start, self.i),
        })
    }

    /// `list = { "[" ~ (value ~ ("," ~ value)* ~ ","?)? ~ "]" }`.
    fn list(&mut self) -> Option<Value> {
        self.deeper()?;
        let start = self.i;
        self.expect("[")?;
        self.skip();
        let mut items = Vec::new();
        if self.peek() != Some(b']') {
            items = self.list_of(Self::value)?;
            self.skip();
            if self.eat(",") {
                self.skip();
            }
        }
        self.expect("]")?;
        self.depth -= 1;
        Some(Value {
            kind: ValueKind::List(items),
            span: Span::new(start, self.i),
        })
    }

    // --------------------------------------------------------------- strings --

    /// `string = ${ "\"" ~ (interp | escape | text)* ~ "\"" }`.
    fn string(&mut self) -> Option<Str> {
        let start = self.i;
        self.expect("\"")?;
        // Most strings hold neither escapes nor `${`: one slice.
        let end = self.b[self.i..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c == b'$')
            .map(|n| self.i + n)?;
        if self.b[end] == b'"' {
            let parts = if end > self.i {
                vec![StrPart::Text(self.s[self.i..end].to_string())]
            } else {
                Vec::new()
            };
            self.i = end + 1;
            return Some(Str {
                parts,
                span: Span::new(start, self.i),
            });
        }
        let mut parts: Vec<StrPart> = Vec::new();
        let mut text = String::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    break;
                }
                b'\\' => {
                    self.i += 1;
                    let c = match self.peek()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'0' => '\0',
                        b'$' => '$',
                        b'u' => {
                            self.i += 1;
                            self.expect("{")?;
                            let h = self.i;
                            let n = self.b[h..]
                                .iter()
                                .take_while(|c| c.is_ascii_hexdigit())
                                .count();
                            self.i += n;
                            (n > 0 && self.at("}")).then_some(())?;
                            u32::from_str_radix(&self.s[h..self.i], 16)
                                .ok()
                                .and_then(char::from_u32)?
                        }
                        _ => return None, // an unknown escape: pest reports it
                    };
                    self.i += 1;
                    text.push(c);
                }
                b'$' if self.at("${") => {
                    if !text.is_empty() {
                        parts.push(StrPart::Text(std::mem::take(&mut text)));
                    }
                    self.i += 2;
                    self.in_interp = true;
                    self.skip();
                    let at = self.i;
                    let path = self.path()?;
                    let span = Span::new(at, self.i);
                    self.skip();
                    self.in_interp = false;
                    self.expect("}")?;
                    parts.push(StrPart::Interp(Spanned::new(path, span)));
                }
                _ => {
                    let from = self.i;
                    self.i += 1;
                    while let Some(&c) = self.b.get(self.i) {
                        if c == b'"' || c == b'\\' || (c == b'$' && self.at("${")) {
                            break;
                        }
                        self.i += 1;
                    }
                    text.push_str(&self.s[from..self.i]);
                }
            }
        }
        if !text.is_empty() {
            parts.push(StrPart::Text(text));
        }
        parts.shrink_to_fit();
        Some(Str {
            parts,
            span: Span::new(start, self.i),
        })
    }

    /// `path = ${ name ~ segment* }`, `segment = ${ ("." ~ name) | ("[" ~ integer ~ "]") }`.
    fn path(&mut self) -> Option<Path> {
        let head = self.name()?.node;
        let mut segments = Vec::new();
        loop {
            match self.peek() {
                Some(b'.') if self.b.get(self.i + 1).is_some_and(|&c| is_name_start(c)) => {
                    self.i += 1;
                    segments.push(Segment::Field(self.name()?.node));
                }
                Some(b'[') => {
                    let save = self.i;
                    self.i += 1;
                    let at = self.i;
                    if self.digits() > 0 && self.not_ident_char() && self.at("]") {
                        let n = self.s[at..self.i].parse::<usize>().ok()?; // too large: pest
                        self.i += 1;
                        segments.push(Segment::Index(n));
                    } else {
                        self.i = save;
                        break;
                    }
                }
                _ => break,
            }
        }
        Some(Path { head, segments })
    }

    // ----------------------------------------------------------- expressions --

    /// `expr = { prefix* ~ primary ~ (infix ~ prefix* ~ primary)* }`, built as the Pratt
    /// parser in `parser.rs` builds it: all operators left-associative, prefixes tightest.
    fn expr(&mut self) -> Option<Expr> {
        self.deeper()?;
        let e = self.binary(0)?;
        self.depth -= 1;
        Some(e)
    }

    fn binary(&mut self, min: u8) -> Option<Expr> {
        let mut lhs = self.unary()?;
        loop {
            let save = self.i;
            self.skip();
            let Some((op, len)) = self.infix() else {
                self.i = save;
                return Some(lhs);
            };
            let prec = op.precedence();
            if prec < min {
                self.i = save;
                return Some(lhs);
            }
            self.i += len;
            self.skip();
            let rhs = self.binary(prec + 1)?;
            lhs = Expr {
                span: lhs.span.to(rhs.span),
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
            };
        }
    }

    fn infix(&self) -> Option<(BinOp, usize)> {
        const OPS: &[(&str, BinOp)] = &[
            ("||", BinOp::Or),
            ("&&", BinOp::And),
            ("==", BinOp::Eq),
            ("!=", BinOp::Ne),
            ("<=", BinOp::Le),
            (">=", BinOp::Ge),
            ("<", BinOp::Lt),
            (">", BinOp::Gt),
            ("+", BinOp::Add),
            ("-", BinOp::Sub),
            ("*", BinOp::Mul),
            ("/", BinOp::Div),
            ("%", BinOp::Rem),
        ];
        OPS.iter()
            .find(|(s, _)| self.at(s))
            .map(|(s, op)| (*op, s.len()))
    }

    fn unary(&mut self) -> Option<Expr> {
        let op = match self.peek()? {
            b'!' => UnaryOp::Not,
            b'-' => UnaryOp::Neg,
            _ => return self.primary(),
        };
        self.deeper()?;
        let start = self.i;
        self.i += 1;
        self.skip();
        let rhs = self.unary()?;
        self.depth -= 1;
        Some(Expr {
            span: Span::new(start, rhs.span.end),
            kind: ExprKind::Unary {
                op,
                expr: Box::new(rhs),
            },
        })
    }

    /// `primary = _{ call | duration | number | string | boolean | path | paren }`.
    fn primary(&mut self) -> Option<Expr> {
        let start = self.i;
        let kind = match self.peek()? {
            b'"' => ExprKind::Str(self.string()?),
            b'(' => {
                self.i += 1;
                self.skip();
                let inner = self.expr()?;
                self.skip();
                self.expect(")")?;
                ExprKind::Paren(Box::new(inner))
            }
            b'0'..=b'9' => match self.duration() {
                Some(d) => ExprKind::Duration(d.node),
                None => {
                    self.i = start;
                    let (n, text, _) = self.number(false)?;
                    ExprKind::Number(n, text)
                }
            },
            _ => {
                if let Some(call) = self.call() {
                    call
                } else {
                    self.i = start;
                    match self.boolean() {
                        Some(b) => ExprKind::Bool(b),
                        None => ExprKind::Path(self.path()?),
                    }
                }
            }
        };
        Some(Expr {
            kind,
            span: Span::new(start, self.i),
        })
    }

    /// `call = { ident ~ "(" ~ (expr ~ ("," ~ expr)*)? ~ ")" }`.
    fn call(&mut self) -> Option<ExprKind> {
        let name = self.ident()?;
        self.skip();
        self.expect("(")?;
        self.skip();
        let mut args = Vec::new();
        if self.peek() != Some(b')') {
            args = self.list_of(Self::expr)?;
            self.skip();
        }
        self.expect(")")?;
        Some(ExprKind::Call { name, args })
    }
}
