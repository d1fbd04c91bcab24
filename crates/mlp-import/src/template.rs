//! DVC's templating: `${...}` in a `dvc.yaml` string, resolved against the vars context.
//!
//! The result is a [`Text`]: literal pieces, plus the pieces that can stay live in mlp — a
//! value of the global vars (which may become `${params.KEY}`) and a loop variable (when
//! a `foreach`/`matrix` is kept as a `for` loop).

use serde_yaml_ng::{Mapping, Value};

use crate::value::{self, Unpack};

/// A piece of a resolved string.
#[derive(Clone, Debug, PartialEq)]
pub enum Seg {
    Lit(String),
    /// A value of the global vars at `key`, rendered by DVC as `text`; `file` is the
    /// params/vars file it comes from (none for inline vars).
    Param {
        key: String,
        value: Value,
        text: String,
        file: Option<String>,
    },
    /// A dictionary unpacked into flags (always literal in mlp; `key` is its global key
    /// when it has one, so the stage can list it as params).
    Unpacked {
        key: Option<String>,
        text: String,
        file: Option<String>,
    },
    /// An mlp loop variable, `${var}`.
    Loop(String),
}

/// A resolved string.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Text(pub Vec<Seg>);

impl Text {
    pub fn lit(s: impl Into<String>) -> Text {
        Text(vec![Seg::Lit(s.into())])
    }

    /// The text as DVC renders it, when it holds no loop variable.
    pub fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for s in &self.0 {
            match s {
                Seg::Lit(t) | Seg::Param { text: t, .. } | Seg::Unpacked { text: t, .. } => {
                    out.push_str(t)
                }
                Seg::Loop(_) => return None,
            }
        }
        Some(out)
    }

    pub fn push_str(&mut self, s: &str) {
        if let Some(Seg::Lit(t)) = self.0.last_mut() {
            t.push_str(s);
        } else if !s.is_empty() {
            self.0.push(Seg::Lit(s.to_string()));
        }
    }

    pub fn append(&mut self, other: Text) {
        for s in other.0 {
            match s {
                Seg::Lit(t) => self.push_str(&t),
                s => self.0.push(s),
            }
        }
    }

    pub fn prefixed(prefix: &str, t: Text) -> Text {
        let mut out = Text::lit(prefix);
        out.append(t);
        out
    }
}

/// What a loop symbol (`item`, `key`) stands for while a loop is kept as a `for`.
#[derive(Clone, Debug)]
pub enum Symbol {
    /// The whole value is the loop variable.
    Var(String),
    /// A matrix `item`: each dimension is a loop variable.
    Dims(Vec<(String, String)>),
    /// A matrix `key`: the dimensions' values joined with `-`.
    Joined(Vec<String>),
}

/// The context a stage is resolved in.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Everything `${...}` can name: global vars, stage vars, `item`/`key`.
    pub data: Mapping,
    /// The part of `data` that is not global (stage vars, `item`, `key`): never live.
    pub local: Mapping,
    /// Loop symbols, when the loop is kept.
    pub symbols: Vec<(String, Symbol)>,
    pub unpack: Unpack,
    /// Vars files loaded whole (DVC loads a file named twice once).
    pub imports: Vec<String>,
    /// The global vars files and what each brought, to tell where a value comes from.
    pub sources: Vec<(String, Value)>,
}

/// Why a string could not be resolved.
#[derive(Debug, PartialEq)]
pub enum Error {
    /// A real error (unknown key, bad expression): DVC would refuse the file too.
    Bad(String),
    /// A loop symbol where mlp cannot interpolate a loop variable: expand the loop.
    NeedsExpansion,
}

/// A `${...}` match in a string: byte range and inner expression.
fn matches(s: &str) -> Vec<(usize, usize, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'$' && b[i + 1] == b'{' && (i == 0 || b[i - 1] != b'\\') {
            if let Some(end) = s[i + 2..].find('}') {
                let inner = &s[i + 2..i + 2 + end];
                out.push((i, i + 3 + end, inner.to_string()));
                i += 3 + end;
                continue;
            }
            break;
        }
        i += 1;
    }
    out
}

/// `a[0].b` → `a.0.b`, as DVC normalizes keys.
fn normalize_key(inner: &str) -> String {
    inner.trim().replace('[', ".").replace(']', "")
}

impl Context {
    fn symbol(&self, key: &str) -> Result<Option<Text>, Error> {
        let (head, rest) = match key.split_once('.') {
            Some((h, r)) => (h.trim(), Some(r.trim())),
            None => (key.trim(), None),
        };
        let Some((_, sym)) = self.symbols.iter().find(|(n, _)| n == head) else {
            return Ok(None);
        };
        let text = match (sym, rest) {
            (Symbol::Var(v), None) => Text(vec![Seg::Loop(v.clone())]),
            (Symbol::Dims(dims), Some(d)) => match dims.iter().find(|(dim, _)| dim == d) {
                Some((_, v)) => Text(vec![Seg::Loop(v.clone())]),
                None => return Err(Error::NeedsExpansion),
            },
            (Symbol::Joined(vars), None) => {
                let mut t = Text::default();
                for (i, v) in vars.iter().enumerate() {
                    if i > 0 {
                        t.push_str("-");
                    }
                    t.0.push(Seg::Loop(v.clone()));
                }
                t
            }
            _ => return Err(Error::NeedsExpansion),
        };
        Ok(Some(text))
    }

    fn lookup(&self, key: &str) -> Result<&Value, Error> {
        select_in(&self.data, key).ok_or_else(|| Error::Bad(format!("could not find '{key}'")))
    }

    /// The global vars file a key comes from.
    fn source_of(&self, key: &str) -> Option<String> {
        self.sources
            .iter()
            .find(|(_, data)| value::select(data, key).is_some())
            .map(|(f, _)| f.clone())
    }

    fn is_local(&self, key: &str) -> bool {
        let head = key.split('.').next().unwrap_or("").trim();
        self.local.iter().any(|(k, _)| value::key_str(k) == head)
    }

    /// A string in a position that takes a string (`cmd`, a path, a name): the pieces.
    /// `in_cmd` allows dictionaries (unpacked into flags).
    pub fn resolve(&self, s: &str, in_cmd: bool) -> Result<Text, Error> {
        let ms = matches(s);
        let mut out = Text::default();
        let mut at = 0;
        for (start, end, inner) in ms {
            out.push_str(&s[at..start].replace("\\${", "${"));
            at = end;
            let key = normalize_key(&inner);
            if let Some(t) = self.symbol(&key)? {
                out.append(t);
                continue;
            }
            let v = self.lookup(&key)?;
            let global = !self.is_local(&key);
            match v {
                Value::Mapping(m) if in_cmd => {
                    let text = value::unpack_dict(m, &self.unpack).map_err(Error::Bad)?;
                    out.0.push(Seg::Unpacked {
                        key: global.then(|| key.clone()),
                        text,
                        file: self.source_of(&key),
                    });
                }
                Value::Mapping(_) | Value::Sequence(_) => {
                    return Err(Error::Bad(format!(
                        "cannot interpolate data of type '{}' (`${{{inner}}}`)",
                        if v.is_mapping() { "dict" } else { "list" }
                    )));
                }
                _ => {
                    let text = value::scalar_str(v).unwrap_or_default();
                    if global {
                        let file = self.source_of(&key);
                        out.0.push(Seg::Param {
                            key: key.clone(),
                            value: v.clone(),
                            text,
                            file,
                        });
                    } else {
                        out.push_str(&text);
                    }
                }
            }
        }
        out.push_str(&s[at..].replace("\\${", "${"));
        Ok(out)
    }

    /// A value in a position that takes any value (`foreach`, `frozen`, a params file
    /// name): `"${x}"` alone is the value of `x` with its type; anything else is a string.
    pub fn resolve_value(&self, v: &Value) -> Result<Value, Error> {
        Ok(match v {
            Value::String(s) => {
                let ms = matches(s);
                if ms.len() == 1 && ms[0].0 == 0 && ms[0].1 == s.len() {
                    let key = normalize_key(&ms[0].2);
                    if self.symbol(&key)?.is_some() {
                        return Err(Error::NeedsExpansion);
                    }
                    self.lookup(&key)?.clone()
                } else if ms.is_empty() {
                    v.clone()
                } else {
                    let t = self.resolve(s, false)?;
                    Value::String(t.literal().ok_or(Error::NeedsExpansion)?)
                }
            }
            Value::Sequence(items) => Value::Sequence(
                items
                    .iter()
                    .map(|i| self.resolve_value(i))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Mapping(m) => {
                let mut out = Mapping::new();
                for (k, v) in m {
                    out.insert(self.resolve_value(k)?, self.resolve_value(v)?);
                }
                Value::Mapping(out)
            }
            other => other.clone(),
        })
    }
}

fn select_in<'a>(m: &'a Mapping, key: &str) -> Option<&'a Value> {
    let (head, rest) = match key.split_once('.') {
        Some((h, r)) => (h.trim(), Some(r)),
        None => (key.trim(), None),
    };
    let v = m.iter().find(|(k, _)| value::key_str(k) == head)?.1;
    match rest {
        None => Some(v),
        Some(r) => value::select(v, r),
    }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
