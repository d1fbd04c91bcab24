//! Items: the top-level ones (`pipeline`, `params`, `param`, `env`, `executor`, `stage`,
//! `for`, `include`) and a stage's items.

use super::cursor::{GiveUp, P, R, is_name_start};
use crate::ast::*;

impl P<'_> {
    pub(super) fn top_item(&mut self) -> R<Item> {
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
                self.expect("=", "param item")?;
                self.skip();
                let value = self.value()?;
                ItemKind::Param { key, value }
            }
            "env" => ItemKind::Env(self.env_block()?),
            "executor" => ItemKind::Executor(self.block_item("executor", "executor item")?),
            "tracking" => {
                let Executor { name, settings } = self.block_item("tracking", "tracking item")?;
                ItemKind::Tracking(Tracking { name, settings })
            }
            "remote" => {
                const REMOTE: &str = "remote item";
                self.keyword("remote", REMOTE)?;
                self.skip();
                let url = self.string()?;
                self.skip();
                let settings = self.settings_block(REMOTE)?;
                ItemKind::Remote(Remote { url, settings })
            }
            "stage" => ItemKind::Stage(self.stage()?),
            "for" => ItemKind::For(self.for_loop()?),
            "cache" => ItemKind::Cache(self.cache_item()?),
            "include" => {
                self.i += 7;
                self.skip();
                ItemKind::Include(self.string()?)
            }
            // An unknown word is an `unknown_item` to pest, kept for the checker to report.
            _ => return Err(self.unknown("unknown item keyword", "item")),
        };
        Ok(Item {
            kind,
            span: Span::new(start, self.i),
        })
    }

    /// Giving up on what stands at `i` where an item should: a word that is no keyword
    /// here (`unknown`, which pest reads as an `unknown_item`), or anything else (`other`).
    fn unknown(&self, unknown: &'static str, other: &'static str) -> GiveUp {
        if self.peek().is_some_and(is_name_start) {
            self.no(unknown)
        } else {
            self.no(other)
        }
    }

    /// `env_block = { kw_env ~ "{" ~ env_pair* ~ "}" }`, `env_pair = { name ~ "=" ~ scalar }`.
    fn env_block(&mut self) -> R<Vec<EnvPair>> {
        const ENV: &str = "env block";
        self.keyword("env", ENV)?;
        self.skip();
        self.expect("{", ENV)?;
        let mut pairs = Vec::new();
        loop {
            self.skip();
            if self.eat("}") {
                return Ok(pairs);
            }
            let name = self.name(ENV)?;
            self.skip();
            self.expect("=", ENV)?;
            self.skip();
            let value = self.scalar()?;
            pairs.push(EnvPair { name, value });
        }
    }

    /// `executor_decl = { kw_executor ~ name ~ ("{" ~ setting* ~ "}")? }` (and
    /// `tracking_decl`, the same with `tracking`: `keyword`),
    /// `setting = { name ~ "=" ~ (duration | value) }`. Without a block, the span runs to
    /// the next token (pest skips the whitespace before the option that matches nothing).
    fn block_item(&mut self, keyword: &str, construct: &'static str) -> R<Executor> {
        self.keyword(keyword, construct)?;
        self.skip();
        let name = self.name(construct)?;
        self.skip();
        let settings = self.settings_block(construct)?;
        Ok(Executor { name, settings })
    }

    /// `("{" ~ setting* ~ "}")?` after an `executor`, `tracking` or `remote` head.
    fn settings_block(&mut self, construct: &'static str) -> R<Option<Vec<Setting>>> {
        if !self.eat("{") {
            return Ok(None);
        }
        let mut settings = Vec::new();
        loop {
            self.skip();
            if self.eat("}") {
                return Ok(Some(settings));
            }
            let sname = self.name(construct)?;
            self.skip();
            self.expect("=", construct)?;
            self.skip();
            let start = self.i;
            let value = match self.duration() {
                Ok(d) => SettingValue::Duration(d),
                Err(_) => {
                    self.i = start;
                    SettingValue::Value(self.value()?)
                }
            };
            settings.push(Setting { name: sname, value });
        }
    }

    /// `cache_decl = { kw_cache ~ ident }`.
    fn cache_item(&mut self) -> R<Spanned<String>> {
        self.keyword("cache", "cache item")?;
        self.skip();
        self.ident("cache item")
    }

    /// `for_loop = { kw_for ~ ident ~ kw_in ~ (list | key) ~ "{" ~ for_item* ~ "}" }`.
    fn for_loop(&mut self) -> R<ForLoop> {
        const FOR: &str = "for loop";
        self.deeper()?;
        self.keyword("for", FOR)?;
        self.skip();
        let var = self.ident(FOR)?;
        self.skip();
        self.keyword("in", FOR)?;
        self.skip();
        let over = if self.peek() == Some(b'[') {
            ForSource::List(self.list()?)
        } else {
            ForSource::Param(self.key()?)
        };
        self.skip();
        self.expect("{", FOR)?;
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
                _ => {
                    return Err(self.unknown("unknown item keyword in a for loop", "for loop item"));
                }
            };
            items.push(Item {
                kind,
                span: Span::new(start, self.i),
            });
        }
        self.shallower();
        Ok(ForLoop { var, over, items })
    }

    /// `stage = { kw_stage ~ stage_name ~ "{" ~ stage_item* ~ "}" }`.
    fn stage(&mut self) -> R<Stage> {
        self.keyword("stage", "stage")?;
        self.skip();
        let name = self.stage_name()?;
        self.skip();
        self.expect("{", "stage")?;
        let mut items = Vec::new();
        loop {
            self.skip();
            if self.eat("}") {
                items.shrink_to_fit(); // a big pipeline holds many stages: no spare room
                return Ok(Stage { name, items });
            }
            items.push(self.stage_item()?);
        }
    }

    /// `stage_name = { ident | string }` (also `stage_ref`).
    fn stage_name(&mut self) -> R<StageName> {
        if self.peek() == Some(b'"') {
            Ok(StageName::Str(self.string()?))
        } else {
            Ok(StageName::Ident(self.ident("stage name")?))
        }
    }

    fn stage_item(&mut self) -> R<StageItem> {
        use StageItemKind as K;
        let start = self.i;
        let word = self.word();
        if word == "env" {
            let pairs = self.env_block()?;
            return Ok(StageItem {
                kind: K::Env(pairs),
                span: Span::new(start, self.i),
            });
        }
        if word == "executor" {
            let e = self.block_item("executor", "executor item")?;
            return Ok(StageItem {
                kind: K::Executor(Box::new(e)),
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
            return Ok(StageItem {
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
                let expr = Box::new(self.expr()?);
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
                K::When(Box::new(e))
            }
            "every" => K::Every(self.duration()?),
            "timeout" => K::Timeout(self.duration()?),
            "retry" => {
                let (n, span) = self.integer()?;
                let n = u32::try_from(n).map_err(|_| self.no("retry count"))?;
                K::Retry(Spanned::new(n, span))
            }
            "resources" => K::Resources(self.list_of(Self::resource)?),
            "cache" => {
                self.i = start;
                K::Cache(self.cache_item()?)
            }
            _ => {
                self.i = start;
                return Err(self.unknown("unknown stage item keyword", "stage item"));
            }
        };
        Ok(StageItem {
            kind,
            span: Span::new(start, self.i),
        })
    }

    /// `input = _{ string | reference }`, `reference = ${ ident ~ ("." ~ name)? }`.
    fn input(&mut self) -> R<Input> {
        if self.peek() == Some(b'"') {
            return Ok(Input::Path(self.string()?));
        }
        let start = self.i;
        let stage = self.ident("input")?;
        let output = if self.peek() == Some(b'.')
            && self.b.get(self.i + 1).is_some_and(|&c| is_name_start(c))
        {
            self.i += 1;
            Some(self.name("input")?)
        } else {
            None
        };
        Ok(Input::Ref {
            stage,
            output,
            span: Span::new(start, self.i),
        })
    }

    /// `named_path = { (ident ~ "=")? ~ string }`.
    fn named_path(&mut self) -> R<NamedPath> {
        let start = self.i;
        let name = if self.peek() == Some(b'"') {
            None
        } else {
            let n = self.ident("output")?;
            self.skip();
            self.expect("=", "output")?;
            self.skip();
            Some(n)
        };
        let path = self.string()?;
        Ok(NamedPath {
            name,
            path,
            span: Span::new(start, self.i),
        })
    }

    /// `resource = { name ~ "=" ~ (size | integer) }`.
    fn resource(&mut self) -> R<Resource> {
        let name = self.name("resource")?;
        self.skip();
        self.expect("=", "resource")?;
        self.skip();
        let start = self.i;
        let amount = match self.size() {
            Ok(a) => a,
            Err(_) => {
                self.i = start;
                let (n, _) = self.integer()?;
                let n = u32::try_from(n).map_err(|_| self.no("resource"))?;
                Amount::Count(u64::from(n))
            }
        };
        Ok(Resource {
            name,
            amount: Spanned::new(amount, Span::new(start, self.i)),
        })
    }
}
