//! Values (scalars and lists) and strings with their escapes and `${ ... }` paths.

use super::cursor::{P, R, is_name_start};
use crate::ast::*;

impl P<'_> {
    /// `value = _{ list | scalar }`.
    pub(super) fn value(&mut self) -> R<Value> {
        if self.peek() == Some(b'[') {
            self.list()
        } else {
            self.scalar()
        }
    }

    /// `scalar = _{ string | signed | boolean }`.
    pub(super) fn scalar(&mut self) -> R<Value> {
        let start = self.i;
        let kind = match self.next_byte("value")? {
            b'"' => ValueKind::Str(self.string()?),
            b'-' | b'0'..=b'9' => {
                let (n, text, _) = self.number(true)?;
                ValueKind::Number(n, text)
            }
            _ => ValueKind::Bool(self.boolean().ok_or_else(|| self.no("value"))?),
        };
        Ok(Value {
            kind,
            span: Span::new(start, self.i),
        })
    }

    /// `list = { "[" ~ (value ~ ("," ~ value)* ~ ","?)? ~ "]" }`.
    pub(super) fn list(&mut self) -> R<Value> {
        self.deeper()?;
        let start = self.i;
        self.expect("[", "list")?;
        self.skip();
        let mut items = Vec::new();
        if self.peek() != Some(b']') {
            items = self.list_of(Self::value)?;
            self.skip();
            if self.eat(",") {
                self.skip();
            }
        }
        self.expect("]", "list")?;
        self.shallower();
        Ok(Value {
            kind: ValueKind::List(items),
            span: Span::new(start, self.i),
        })
    }

    /// `string = ${ "\"" ~ (interp | escape | text)* ~ "\"" }`.
    pub(super) fn string(&mut self) -> R<Str> {
        let start = self.i;
        self.expect("\"", "string")?;
        // Most strings hold neither escapes nor `${`: one slice.
        let end = self.b[self.i..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c == b'$')
            .map(|n| self.i + n)
            .ok_or_else(|| self.no("string"))?;
        if self.b[end] == b'"' {
            let parts = if end > self.i {
                vec![StrPart::Text(self.s[self.i..end].to_string())]
            } else {
                Vec::new()
            };
            self.i = end + 1;
            return Ok(Str {
                parts,
                span: Span::new(start, self.i),
            });
        }
        let mut parts: Vec<StrPart> = Vec::new();
        let mut text = String::new();
        loop {
            match self.next_byte("string")? {
                b'"' => {
                    self.i += 1;
                    break;
                }
                b'\\' => {
                    self.i += 1;
                    text.push(self.escape()?);
                }
                b'$' if self.at("${") => {
                    if !text.is_empty() {
                        parts.push(StrPart::Text(std::mem::take(&mut text)));
                    }
                    self.i += 2;
                    self.in_interp = true;
                    self.skip();
                    let at = self.i;
                    let path = self.path("string interpolation")?;
                    let span = Span::new(at, self.i);
                    self.skip();
                    self.in_interp = false;
                    self.expect("}", "string interpolation")?;
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
        Ok(Str {
            parts,
            span: Span::new(start, self.i),
        })
    }

    /// The character of the escape after a `\`: `\"`, `\\`, `\n`, `\t`, `\r`, `\0`, `\$`,
    /// `\u{hex}`.
    fn escape(&mut self) -> R<char> {
        let c = match self.next_byte("string escape")? {
            b'"' => '"',
            b'\\' => '\\',
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            b'0' => '\0',
            b'$' => '$',
            b'u' => {
                self.i += 1;
                self.expect("{", "string escape")?;
                let h = self.i;
                let n = self.b[h..]
                    .iter()
                    .take_while(|c| c.is_ascii_hexdigit())
                    .count();
                self.i += n;
                if !(n > 0 && self.at("}")) {
                    return Err(self.no("string escape"));
                }
                u32::from_str_radix(&self.s[h..self.i], 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.no("string escape"))?
            }
            _ => return Err(self.no("string escape")), // an unknown escape: pest reports it
        };
        self.i += 1;
        Ok(c)
    }

    /// `path = ${ name ~ segment* }`, `segment = ${ ("." ~ name) | ("[" ~ integer ~ "]") }`.
    pub(super) fn path(&mut self, construct: &'static str) -> R<Path> {
        let head = self.name(construct)?.node;
        let mut segments = Vec::new();
        loop {
            match self.peek() {
                Some(b'.') if self.b.get(self.i + 1).is_some_and(|&c| is_name_start(c)) => {
                    self.i += 1;
                    segments.push(Segment::Field(self.name(construct)?.node));
                }
                Some(b'[') => {
                    let save = self.i;
                    self.i += 1;
                    let at = self.i;
                    if self.digits() > 0 && self.not_ident_char() && self.at("]") {
                        let n = self.s[at..self.i]
                            .parse::<usize>()
                            .map_err(|_| self.no(construct))?; // too large: pest
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
        Ok(Path { head, segments })
    }
}
