//! What names what in a syntax tree: every occurrence of a stage, an output, a params key,
//! an included file, with its span and whether it is the definition. Hover, definition,
//! references and rename all ask this one list.

use mlp_syntax::ast::Span;
use mlp_syntax::ast::{
    self, Expr, ExprKind, ForSource, Input, Item, ItemKind, Segment, StageItemKind, StageName, Str,
    StrPart,
};

/// Something a name in a file stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sym {
    Stage(String),
    Output { stage: String, name: String },
    Param(String),
    Include(String),
    ParamsFile(String),
}

#[derive(Clone, Debug)]
pub struct Occ {
    pub sym: Sym,
    pub span: Span,
    pub def: bool,
}

/// Every occurrence in a file, and every expression (for hover's types).
#[derive(Default)]
pub struct Index<'a> {
    pub occs: Vec<Occ>,
    /// Each `check`/`gate`/`when` expression and its subexpressions, with the stage it is in.
    pub exprs: Vec<(&'a Expr, String)>,
}

impl<'a> Index<'a> {
    pub fn new(file: &'a ast::File, text: &str) -> Self {
        let mut v = Visitor {
            text,
            ix: Index::default(),
        };
        v.items(&file.items);
        v.ix
    }

    /// The innermost occurrence under `offset` (its end counts: the cursor after a word).
    pub fn at(&self, offset: usize) -> Option<&Occ> {
        self.occs
            .iter()
            .filter(|o| o.span.start <= offset && offset <= o.span.end)
            .min_by_key(|o| o.span.len())
    }

    /// The innermost expression under `offset`, and the stage it is in.
    pub fn expr_at(&self, offset: usize) -> Option<&(&'a Expr, String)> {
        self.exprs
            .iter()
            .filter(|(e, _)| e.span.start <= offset && offset <= e.span.end)
            .min_by_key(|(e, _)| e.span.len())
    }

    pub fn of(&self, sym: &Sym) -> impl Iterator<Item = &Occ> {
        let sym = sym.clone();
        self.occs.iter().filter(move |o| o.sym == sym)
    }
}

struct Visitor<'t, 'a> {
    text: &'t str,
    ix: Index<'a>,
}

/// The span of a stage name's text (inside the quotes of a plain string name).
pub fn stage_name(n: &StageName) -> Option<(String, Span)> {
    match n {
        StageName::Ident(s) => Some((s.node.clone(), s.span)),
        StageName::Str(s) => s
            .as_plain()
            .map(|t| (t, Span::new(s.span.start + 1, s.span.end.saturating_sub(1)))),
    }
}

impl<'a> Visitor<'_, 'a> {
    fn push(&mut self, sym: Sym, span: Span, def: bool) {
        // Only spans whose text is what they claim (escapes, odd spacing: left out).
        let ok = match &sym {
            Sym::Stage(n) => self.text.get(span.start..span.end) == Some(n.as_str()),
            Sym::Output { name, .. } => self.text.get(span.start..span.end) == Some(name.as_str()),
            _ => true,
        };
        if ok {
            self.ix.occs.push(Occ { sym, span, def });
        }
    }

    fn items(&mut self, items: &'a [Item]) {
        for it in items {
            match &it.kind {
                ItemKind::Param { key, .. } => {
                    self.push(Sym::Param(key.node.clone()), key.span, true)
                }
                ItemKind::Include(s) => {
                    if let Some(p) = s.as_plain() {
                        self.push(Sym::Include(p), s.span, false);
                    }
                }
                ItemKind::ParamsFiles(list) => {
                    for s in list {
                        if let Some(p) = s.as_plain() {
                            self.push(Sym::ParamsFile(p), s.span, false);
                        }
                    }
                }
                ItemKind::For(f) => {
                    if let ForSource::Param(k) = &f.over {
                        self.push(Sym::Param(k.node.clone()), k.span, false);
                    }
                    self.items(&f.items);
                }
                ItemKind::Stage(s) => self.stage(s),
                _ => {}
            }
        }
    }

    fn stage(&mut self, s: &'a ast::Stage) {
        let me = stage_name(&s.name);
        if let Some((n, sp)) = &me {
            self.push(Sym::Stage(n.clone()), *sp, true);
        }
        let me = me.map(|(n, _)| n).unwrap_or_default();
        let own: Vec<String> = s
            .items
            .iter()
            .flat_map(|i| match &i.kind {
                StageItemKind::Out(v) | StageItemKind::Metrics(v) => v.as_slice(),
                _ => &[],
            })
            .filter_map(|np| np.name.as_ref().map(|n| n.node.clone()))
            .collect();
        for item in &s.items {
            match &item.kind {
                StageItemKind::In(inputs) => {
                    for i in inputs {
                        match i {
                            Input::Path(s) => self.interps(s, &me),
                            Input::Ref { stage, output, .. } => {
                                self.push(Sym::Stage(stage.node.clone()), stage.span, false);
                                if let Some(o) = output {
                                    let sym = Sym::Output {
                                        stage: stage.node.clone(),
                                        name: o.node.clone(),
                                    };
                                    self.push(sym, o.span, false);
                                }
                            }
                        }
                    }
                }
                StageItemKind::Out(v) | StageItemKind::Metrics(v) => {
                    for np in v {
                        if let Some(n) = &np.name {
                            let sym = Sym::Output {
                                stage: me.clone(),
                                name: n.node.clone(),
                            };
                            self.push(sym, n.span, true);
                        }
                        self.interps(&np.path, &me);
                    }
                }
                StageItemKind::After(names) => {
                    for n in names {
                        if let Some((n, sp)) = stage_name(n) {
                            self.push(Sym::Stage(n), sp, false);
                        }
                    }
                }
                StageItemKind::Params(keys) => {
                    for k in keys {
                        self.push(Sym::Param(k.node.clone()), k.span, false);
                    }
                }
                StageItemKind::Run(s) | StageItemKind::Fallback(s) => self.interps(s, &me),
                StageItemKind::Check { expr, message } | StageItemKind::Gate { expr, message } => {
                    self.expr(expr, &me, &own);
                    if let Some(m) = message {
                        self.interps(m, &me);
                    }
                }
                StageItemKind::When(e) => self.expr(e, &me, &own),
                StageItemKind::Env(pairs) => {
                    for p in pairs {
                        if let ast::ValueKind::Str(s) = &p.value.kind {
                            self.interps(s, &me);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// `${params.a.b}`, `${out.x}`, `${stage.x}` in a string.
    fn interps(&mut self, s: &Str, me: &str) {
        for part in &s.parts {
            if let StrPart::Interp(p) = part {
                self.path(&p.node, p.span.start, p.span.end, me, &[]);
            }
        }
    }

    /// A dotted path written at `start..end`: in a string (`own` empty) or an expression
    /// (where a stage's own metrics are named by their name alone).
    fn path(&mut self, p: &ast::Path, start: usize, end: usize, me: &str, own: &[String]) {
        let head = Span::new(start, start + p.head.len());
        let first = match p.segments.first() {
            Some(Segment::Field(f)) => {
                Some((f.clone(), Span::new(head.end + 1, head.end + 1 + f.len())))
            }
            _ => None,
        };
        match p.head.as_str() {
            "params" => {
                let fields: Vec<&str> = p
                    .segments
                    .iter()
                    .map_while(|s| match s {
                        Segment::Field(f) => Some(f.as_str()),
                        Segment::Index(_) => None,
                    })
                    .collect();
                if !fields.is_empty() {
                    let key = fields.join(".");
                    let sp = Span::new(head.end + 1, head.end + 1 + key.len());
                    if self.text.get(sp.start..sp.end) == Some(key.as_str()) && sp.end <= end {
                        self.push(Sym::Param(key), sp, false);
                    }
                }
            }
            "in" => {}
            // `baseline.eval.auc`: the stage's own metrics `eval`, in the promoted run.
            "baseline" if !own.is_empty() => {
                if let Some((f, sp)) = first
                    && own.contains(&f)
                {
                    let sym = Sym::Output {
                        stage: me.to_string(),
                        name: f,
                    };
                    self.push(sym, sp, false);
                }
            }
            "out" | "metrics" if own.is_empty() => {
                if let Some((f, sp)) = first {
                    let sym = Sym::Output {
                        stage: me.to_string(),
                        name: f,
                    };
                    self.push(sym, sp, false);
                }
            }
            h if own.iter().any(|o| o == h) => {
                let sym = Sym::Output {
                    stage: me.to_string(),
                    name: h.to_string(),
                };
                self.push(sym, head, false);
            }
            h => {
                self.push(Sym::Stage(h.to_string()), head, false);
                if let Some((f, sp)) = first {
                    let sym = Sym::Output {
                        stage: h.to_string(),
                        name: f,
                    };
                    self.push(sym, sp, false);
                }
            }
        }
    }

    fn expr(&mut self, e: &'a Expr, me: &str, own: &[String]) {
        self.ix.exprs.push((e, me.to_string()));
        match &e.kind {
            ExprKind::Path(p) => {
                // In an expression a bare word is a metrics name, never a string.
                let own: Vec<String> = if own.is_empty() {
                    vec![String::new()]
                } else {
                    own.to_vec()
                };
                self.path(p, e.span.start, e.span.end, me, &own);
            }
            ExprKind::Str(s) => self.interps(s, me),
            ExprKind::Call { args, .. } => {
                for a in args {
                    self.expr(a, me, own);
                }
            }
            ExprKind::Unary { expr, .. } | ExprKind::Paren(expr) => self.expr(expr, me, own),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs, me, own);
                self.expr(rhs, me, own);
            }
            _ => {}
        }
    }
}
