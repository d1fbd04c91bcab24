use super::*;

fn ctx(yaml: &str) -> Context {
    let data: Mapping = serde_yaml_ng::from_str(yaml).unwrap();
    Context {
        data,
        ..Context::default()
    }
}

fn lit(c: &Context, s: &str) -> String {
    c.resolve(s, true).unwrap().literal().unwrap()
}

// DVC's docs, "Templating": `${}` reads vars, nested keys with `.`, list items with
// `[N]`; `\${` is a literal `${`.
#[test]
fn interpolation_forms() {
    let c = ctx("models: {us: {threshold: 10}}\nlist: [a, b]\nlr: 0.001\non: true");
    assert_eq!(lit(&c, "t=${models.us.threshold}"), "t=10");
    assert_eq!(lit(&c, "${ models.us.threshold }"), "10");
    assert_eq!(lit(&c, "x ${list[1]} ${list.0}"), "x b a");
    assert_eq!(lit(&c, "--lr ${lr} --on ${on}"), "--lr 0.001 --on true");
    assert_eq!(lit(&c, r"echo \${HOME} $HOME"), "echo ${HOME} $HOME");
    assert!(matches!(c.resolve("${nope}", true), Err(Error::Bad(_))));
    assert!(matches!(c.resolve("x ${list}", true), Err(Error::Bad(_))));
}

#[test]
fn global_values_are_params_segments_and_local_ones_literal() {
    let mut c = ctx("lr: 0.1\nitem: gbm");
    c.local.insert("item".into(), "gbm".into());
    let t = c.resolve("--lr ${lr} ${item}", true).unwrap();
    assert_eq!(
        t.0,
        vec![
            Seg::Lit("--lr ".into()),
            Seg::Param {
                key: "lr".into(),
                value: serde_yaml_ng::from_str("0.1").unwrap(),
                text: "0.1".into(),
                file: None,
            },
            Seg::Lit(" gbm".into()),
        ]
    );
}

#[test]
fn dictionaries_unpack_in_commands_only() {
    let c = ctx("train: {epochs: 3, fast: true}");
    assert_eq!(
        lit(&c, "python t.py ${train}"),
        "python t.py --epochs 3 --fast"
    );
    assert!(matches!(c.resolve("${train}", false), Err(Error::Bad(_))));
}

#[test]
fn exact_strings_keep_their_type() {
    let c = ctx("models: [a, b]\nfreeze: true");
    assert_eq!(
        c.resolve_value(&"${models}".into()).unwrap(),
        serde_yaml_ng::from_str::<Value>("[a, b]").unwrap()
    );
    assert_eq!(
        c.resolve_value(&"${freeze}".into()).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        c.resolve_value(&"${freeze}!".into()).unwrap(),
        Value::String("true!".into())
    );
}

#[test]
fn loop_symbols_become_loop_variables() {
    let mut c = ctx("x: 1");
    c.symbols.push((
        "item".into(),
        Symbol::Dims(vec![
            ("model".into(), "model".into()),
            ("depth".into(), "depth".into()),
        ]),
    ));
    c.symbols.push((
        "key".into(),
        Symbol::Joined(vec!["model".into(), "depth".into()]),
    ));
    let t = c.resolve("${item.model}/${key}", false).unwrap();
    assert_eq!(
        t.0,
        vec![
            Seg::Loop("model".into()),
            Seg::Lit("/".into()),
            Seg::Loop("model".into()),
            Seg::Lit("-".into()),
            Seg::Loop("depth".into()),
        ]
    );
    assert_eq!(c.resolve("${item}", false), Err(Error::NeedsExpansion));
    assert_eq!(
        c.resolve_value(&"${item.model}".into()),
        Err(Error::NeedsExpansion)
    );
}
