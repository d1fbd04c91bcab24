//! What must hold for any text, shared by the tests (`fmt.rs`, `fuzzed.rs`) and the fuzz
//! target `differential` (which includes this file by path): the two parsers build the
//! same tree wherever the hand-written one reads the file, and `mlp fmt` is idempotent,
//! keeps the tree (spans aside) and the comments, and leaves clean lines.

#![allow(dead_code)]

use mlp_syntax::ast::*;
use mlp_syntax::{format, parse, parse_fast, parse_with_pest};

pub fn fmt(src: &str) -> String {
    match format(src) {
        Ok(s) => s,
        Err(e) => panic!("format failed: {e:?}\n--- source ---\n{src}"),
    }
}

pub fn parsed(src: &str) -> File {
    match parse(src) {
        Ok(f) => f,
        Err(e) => panic!("parse failed: {e:?}\n--- source ---\n{src}"),
    }
}

/// The file without spans and comments: what formatting must not change.
pub fn strip(file: &File) -> File {
    let mut f = file.clone();
    f.comments.clear();
    f.items.iter_mut().for_each(z_item);
    f
}

pub const Z: Span = Span { start: 0, end: 0 };

fn z<T>(s: &mut Spanned<T>) {
    s.span = Z;
}

fn z_item(i: &mut Item) {
    i.span = Z;
    match &mut i.kind {
        ItemKind::Pipeline(s) | ItemKind::Include(s) => z_str(s),
        ItemKind::ParamsFiles(v) => v.iter_mut().for_each(z_str),
        ItemKind::Param { key, value } => {
            z(key);
            z_value(value);
        }
        ItemKind::Env(pairs) => pairs.iter_mut().for_each(z_pair),
        ItemKind::Stage(s) => {
            z_stage_name(&mut s.name);
            s.items.iter_mut().for_each(z_stage_item);
        }
        ItemKind::For(f) => {
            z(&mut f.var);
            match &mut f.over {
                ForSource::List(v) => z_value(v),
                ForSource::Param(k) => z(k),
            }
            f.items.iter_mut().for_each(z_item);
        }
        ItemKind::Executor(e) => z_executor(e),
        ItemKind::Tracking(t) => {
            let mut e = Executor {
                name: t.name.clone(),
                settings: t.settings.clone(),
            };
            z_executor(&mut e);
            t.name = e.name;
            t.settings = e.settings;
        }
        ItemKind::Remote(r) => {
            z_str(&mut r.url);
            let mut e = Executor {
                name: Spanned {
                    node: String::new(),
                    span: Z,
                },
                settings: r.settings.clone(),
            };
            z_executor(&mut e);
            r.settings = e.settings;
        }
        ItemKind::Unknown(w) | ItemKind::Cache(w) => z(w),
    }
}

fn z_executor(e: &mut Executor) {
    z(&mut e.name);
    for s in e.settings.iter_mut().flatten() {
        z(&mut s.name);
        match &mut s.value {
            SettingValue::Duration(d) => z(d),
            SettingValue::Value(v) => z_value(v),
        }
    }
}

fn z_pair(p: &mut EnvPair) {
    z(&mut p.name);
    z_value(&mut p.value);
}

fn z_stage_name(n: &mut StageName) {
    match n {
        StageName::Ident(i) => z(i),
        StageName::Str(s) => z_str(s),
    }
}

fn z_stage_item(i: &mut StageItem) {
    use StageItemKind as K;
    i.span = Z;
    match &mut i.kind {
        K::In(inputs) => {
            for input in inputs {
                match input {
                    Input::Path(s) => z_str(s),
                    Input::Ref {
                        stage,
                        output,
                        span,
                    } => {
                        z(stage);
                        if let Some(o) = output {
                            z(o);
                        }
                        *span = Z;
                    }
                }
            }
        }
        K::Out(paths) | K::Metrics(paths) => {
            for p in paths {
                if let Some(n) = &mut p.name {
                    z(n);
                }
                z_str(&mut p.path);
                p.span = Z;
            }
        }
        K::After(names) => names.iter_mut().for_each(z_stage_name),
        K::Params(keys) => keys.iter_mut().for_each(z),
        K::Cache(m) => z(m),
        K::Run(s) | K::Fallback(s) => z_str(s),
        K::Check { expr, message } | K::Gate { expr, message } => {
            z_expr(expr);
            if let Some(m) = message {
                z_str(m);
            }
        }
        K::When(e) => z_expr(e),
        K::Every(d) | K::Timeout(d) => z(d),
        K::Retry(n) => z(n),
        K::Resources(rs) => {
            for r in rs {
                z(&mut r.name);
                z(&mut r.amount);
            }
        }
        K::Always | K::Frozen | K::Promote => {}
        K::Env(pairs) => pairs.iter_mut().for_each(z_pair),
        K::Executor(e) => z_executor(e),
        K::Unknown(w) => z(w),
    }
}

fn z_str(s: &mut Str) {
    s.span = Z;
    for p in &mut s.parts {
        if let StrPart::Interp(i) = p {
            z(i);
        }
    }
}

fn z_value(v: &mut Value) {
    v.span = Z;
    match &mut v.kind {
        ValueKind::Str(s) => z_str(s),
        ValueKind::List(items) => items.iter_mut().for_each(z_value),
        ValueKind::Number(..) | ValueKind::Bool(_) => {}
    }
}

pub fn z_expr(e: &mut Expr) {
    e.span = Z;
    match &mut e.kind {
        ExprKind::Str(s) => z_str(s),
        ExprKind::Call { name, args } => {
            z(name);
            args.iter_mut().for_each(z_expr);
        }
        ExprKind::Unary { expr, .. } | ExprKind::Paren(expr) => z_expr(expr),
        ExprKind::Binary { lhs, rhs, .. } => {
            z_expr(lhs);
            z_expr(rhs);
        }
        ExprKind::Number(..) | ExprKind::Bool(_) | ExprKind::Duration(_) | ExprKind::Path(_) => {}
    }
}

pub fn comment_texts(f: &File) -> Vec<String> {
    let mut t: Vec<String> = f.comments.iter().map(|c| c.text.clone()).collect();
    t.sort();
    t
}

/// Formatting `src` is idempotent, keeps its meaning and its comments, and gives clean
/// lines. Returns the formatted text.
pub fn check_format(src: &str) -> String {
    let before = parsed(src);
    let once = fmt(src);
    let twice = fmt(&once);
    assert_eq!(
        once, twice,
        "not idempotent\n--- source ---\n{src}\n--- once ---\n{once}"
    );
    let after = parsed(&once);
    assert_eq!(
        strip(&before),
        strip(&after),
        "meaning changed\n--- source ---\n{src}\n--- formatted ---\n{once}"
    );
    assert_eq!(
        comment_texts(&before),
        comment_texts(&after),
        "comments changed\n--- source ---\n{src}\n--- formatted ---\n{once}"
    );
    if !once.is_empty() {
        assert!(once.ends_with('\n') && !once.ends_with("\n\n"), "{once:?}");
    }
    for line in once.lines() {
        assert_eq!(line.trim_end(), line, "trailing whitespace in\n{once}");
    }
    once
}

/// Every invariant for any text: the parsers agree, and a text that parses formats well.
pub fn check_text(src: &str) {
    if let Some(fast) = parse_fast(src) {
        match parse_with_pest(src) {
            Ok(slow) => assert_eq!(fast, slow, "the parsers differ on:\n{src}"),
            Err(e) => panic!("only the fast parser accepts:\n{src}\n{e:?}"),
        }
    }
    if parse(src).is_ok() {
        check_format(src);
    }
}
