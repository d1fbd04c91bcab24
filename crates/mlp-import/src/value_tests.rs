use super::*;

fn yaml(s: &str) -> Value {
    serde_yaml_ng::from_str(s).unwrap()
}

#[test]
fn floats_render_as_python_str_does() {
    assert_eq!(py_float(0.1), "0.1");
    assert_eq!(py_float(3.0), "3.0");
    assert_eq!(py_float(1e-5), "1e-05");
    assert_eq!(py_float(0.0001), "0.0001");
    assert_eq!(py_float(1e16), "1e+16");
    assert_eq!(py_float(123456.5), "123456.5");
    assert_eq!(py_float(-2.5e-7), "-2.5e-07");
}

#[test]
fn scalars_render_as_dvc_does() {
    assert_eq!(scalar_str(&yaml("true")).unwrap(), "true");
    assert_eq!(scalar_str(&yaml("false")).unwrap(), "false");
    assert_eq!(scalar_str(&yaml("42")).unwrap(), "42");
    assert_eq!(scalar_str(&yaml("0.05")).unwrap(), "0.05");
    assert_eq!(scalar_str(&yaml("~")).unwrap(), "None");
    assert_eq!(scalar_str(&yaml("[1]")), None);
}

// DVC's docs: "Dictionary unpacking" (dvc.yaml reference, templating): booleans become
// bare flags, lists follow the flag, nested keys are joined with `.`.
#[test]
fn dict_unpacking_follows_dvc() {
    let v = yaml(
        "dict: {foo: foo, bar: 1, bool: true, bool-false: false, list: [1, 2, 'foo bar'], nested: {foo: bar}}",
    );
    let m = v.get("dict").unwrap().as_mapping().unwrap();
    assert_eq!(
        unpack_dict(m, &Unpack::default()).unwrap(),
        "--foo foo --bar 1 --bool --list 1 2 'foo bar' --nested.foo bar"
    );
    let how = Unpack {
        boolean_optional: true,
        list_append: true,
    };
    assert_eq!(
        unpack_dict(m, &how).unwrap(),
        "--foo foo --bar 1 --bool --no-bool-false --list 1 --list 2 --list 'foo bar' --nested.foo bar"
    );
    let nested = yaml("a: [[1]]");
    assert!(unpack_dict(nested.as_mapping().unwrap(), &Unpack::default()).is_err());
}

#[test]
fn quoting_follows_python_shlex() {
    assert_eq!(py_quote("abc-1.2/x"), "abc-1.2/x");
    assert_eq!(py_quote("a b"), "'a b'");
    assert_eq!(py_quote(""), "''");
    assert_eq!(py_quote("it's"), "'it'\"'\"'s'");
}

#[test]
fn select_reads_nested_keys_and_list_items() {
    let v = yaml("a: {b: [x, {c: 3}]}");
    assert_eq!(select(&v, "a.b.0"), Some(&yaml("x")));
    assert_eq!(select(&v, "a.b.1.c"), Some(&yaml("3")));
    assert_eq!(select(&v, "a.z"), None);
}

#[test]
fn vars_merge_like_dvc_and_params_merge_like_mlp() {
    let mut a = yaml("train: {lr: 1}").as_mapping().unwrap().clone();
    merge_strict(&mut a, yaml("train: {epochs: 2}").as_mapping().unwrap(), "").unwrap();
    assert_eq!(Value::Mapping(a.clone()), yaml("train: {lr: 1, epochs: 2}"));
    assert_eq!(
        merge_strict(&mut a, yaml("train: {lr: 3}").as_mapping().unwrap(), ""),
        Err("train.lr".into())
    );
    assert!(disjoint(
        &yaml("{a: {b: 1}, c: 2}"),
        &yaml("{a: {d: 1}, e: 2}")
    ));
    assert!(!disjoint(&yaml("{a: {b: 1}}"), &yaml("{a: {b: 1}}")));
    assert!(!disjoint(&yaml("{a: {b: 1}}"), &yaml("{a: 1}")));
}

#[test]
fn files_load_by_extension_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.json");
    std::fs::write(&p, r#"{"z": 1, "a": {"b": true}}"#).unwrap();
    let v = load_file(&p).unwrap();
    let keys: Vec<String> = v.as_mapping().unwrap().keys().map(key_str).collect();
    assert_eq!(keys, ["z", "a"]);
    let p = dir.path().join("p.toml");
    std::fs::write(&p, "[train]\nlr = 0.5\n").unwrap();
    assert_eq!(
        select(&load_file(&p).unwrap(), "train.lr"),
        Some(&yaml("0.5"))
    );
    let p = dir.path().join("list.yaml");
    std::fs::write(&p, "[1, 2]").unwrap();
    assert!(load_file(&p).is_err());
}

#[test]
fn mlp_keys() {
    assert!(is_mlp_key("train.lr"));
    assert!(is_mlp_key("_x.in"));
    assert!(!is_mlp_key("learning-rate"));
    assert!(!is_mlp_key("models.0"));
    assert!(!is_mlp_key(""));
}
