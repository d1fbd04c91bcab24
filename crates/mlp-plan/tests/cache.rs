//! `cache copy|link` items: the pipeline's default, a stage's own, and their mistakes.

mod common;

use common::load;
use mlp_plan::Pipeline;
use mlp_plan::model::CacheMode;

fn modes(p: &Pipeline) -> Vec<(&str, CacheMode)> {
    p.stages
        .iter()
        .map(|s| (s.name.as_str(), s.cache))
        .collect()
}

#[test]
fn copy_is_the_default_and_the_top_item_sets_every_stage_unless_it_says_otherwise() {
    let p = load("stage a { run \"x\" }").unwrap();
    assert_eq!(modes(&p), [("a", CacheMode::Copy)]);
    let p = load("stage a { run \"x\" }\ncache link\nstage b { cache copy run \"y\" }").unwrap();
    assert_eq!(modes(&p), [("a", CacheMode::Link), ("b", CacheMode::Copy)]);
    let p = load("stage a { run \"x\"  cache link }\nstage b { run \"y\" }").unwrap();
    assert_eq!(modes(&p), [("a", CacheMode::Link), ("b", CacheMode::Copy)]);
}

#[test]
fn cache_is_no_reserved_word() {
    let p = load(
        "param cache = 1\nstage cache { params cache  out cache = \"c\"  run \"echo ${params.cache} > ${out.cache}\" }\nstage b { in cache.cache  run \"cat ${in[0]}\" }",
    )
    .unwrap();
    assert_eq!(p.stages[0].name, "cache");
    assert_eq!(p.stages[1].inputs[0].path, "c");
}

#[test]
fn mistakes() {
    assert_eq!(
        load("cache hardlink\nstage a { run \"x\" }").unwrap_err(),
        ["E0145"]
    );
    assert_eq!(
        load("stage a { run \"x\" cache reflink }").unwrap_err(),
        ["E0145"]
    );
    assert_eq!(
        load("cache link\ncache copy\nstage a { run \"x\" }").unwrap_err(),
        ["E0146"]
    );
    // Twice in a stage: like any single item given twice.
    let twice = load("stage a { run \"x\" cache link cache copy }").unwrap_err();
    assert_eq!(twice.len(), 1);
}
