//! `mlp import dvc` against real DVC (`pip install dvc`; found as `$MLP_DVC` or `dvc` on
//! `PATH`). For each small DVC project: `dvc repro` in one copy, `mlp import dvc` and
//! `mlp run` in another; the outputs are byte-identical, the same param change reruns
//! the same stages in both, and `dvc dag --dot` and `mlp graph --format dot` have the
//! same edges. Without DVC the tests print why and pass, except under `CI=true`, where a
//! missing DVC fails them (`common::skip_or_fail`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{self, Mlp};

/// DVC's executable, or `None` (after saying why) when it is missing outside CI.
fn find_dvc() -> Option<PathBuf> {
    let found = std::env::var_os("MLP_DVC").map(PathBuf::from).or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join("dvc"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        common::skip_or_fail("DVC is not installed (pip install dvc, or set MLP_DVC)");
    }
    found
}

/// A directory with `python` (the projects' commands say `python`), put first on `PATH`
/// for both tools: the Python DVC runs on when it has one beside it (its virtualenv has
/// PyYAML, which the example's scripts use), else `python3`.
fn path_with_python(root: &Path, dvc: &Path) -> String {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let beside = dvc
        .parent()
        .map(|d| d.join("python3"))
        .filter(|p| p.is_file());
    let py = beside
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|d| d.join("python3"))
                .find(|p| p.is_file())
        })
        .expect("python3 on PATH");
    // A script, not a symlink: a symlinked virtualenv Python loses its virtualenv.
    let shim = bin.join("python");
    std::fs::write(
        &shim,
        format!("#!/bin/sh\nexec '{}' \"$@\"\n", py.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old = std::env::var("PATH").unwrap_or_default();
    format!("{}:{old}", bin.display())
}

struct Tools {
    dvc: PathBuf,
    path: String,
}

impl Tools {
    fn run(&self, exe: &Path, dir: &Path, args: &[&str]) -> Output {
        let out = Command::new(exe)
            .args(args)
            .current_dir(dir)
            .env("PATH", &self.path)
            .env("NO_COLOR", "1")
            .env("DVC_NO_ANALYTICS", "1")
            .env("DVC_SITE_CACHE_DIR", dir.join("../dvc-site-cache"))
            .output()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        assert!(
            out.status.success(),
            "{} {args:?} in {} failed ({:?}):\n{}\n{}",
            exe.display(),
            dir.display(),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn dvc(&self, dir: &Path, args: &[&str]) -> Output {
        self.run(&self.dvc.clone(), dir, args)
    }

    fn mlp(&self, dir: &Path, args: &[&str]) -> common::Output {
        Mlp::new(args)
            .current_dir(dir)
            .env("PATH", &self.path)
            .run()
            .success()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

/// Every file below `dir` with its bytes, except the tools' own files.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let skip = [
        ".dvc",
        ".mlp",
        "dvc.lock",
        "pipeline.mlp",
        ".gitignore",
        ".dvcignore",
    ];
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if skip.contains(&name.as_str()) || name.ends_with(".dvc") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[track_caller]
fn assert_same_tree(a: &Path, b: &Path, when: &str) {
    let (ta, tb) = (tree(a), tree(b));
    let names = |t: &BTreeMap<String, Vec<u8>>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&ta),
        names(&tb),
        "{when}: DVC's and mlp's files differ"
    );
    for (k, v) in &ta {
        assert!(
            tb[k] == *v,
            "{when}: `{k}` differs:\nDVC: {}\nmlp: {}",
            text(v),
            text(&tb[k])
        );
    }
}

/// The stages `dvc repro` ran (or restored from its run-cache).
fn dvc_ran(out: &Output) -> BTreeSet<String> {
    text(&out.stdout)
        .lines()
        .chain(text(&out.stderr).lines())
        .filter_map(|l| {
            let rest = l.strip_prefix("Running stage '").or_else(|| {
                l.strip_prefix("Stage '")
                    .filter(|r| r.contains("' is cached"))
            })?;
            Some(rest.split("'").next()?.to_string())
        })
        .collect()
}

/// The stages `mlp run --json` ran (or restored).
fn mlp_ran(out: &common::Output) -> BTreeSet<String> {
    out.stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "stage_finished")
        .filter(|e| e["status"] == "ran" || e["status"] == "restored")
        .filter_map(|e| e["stage"].as_str().map(str::to_string))
        .collect()
}

/// `"a" -> "b"` lines of a Graphviz file.
fn dot_edges(dot: &str) -> BTreeSet<(String, String)> {
    dot.lines()
        .filter_map(|l| {
            let l = l.trim().trim_end_matches(';');
            let (a, b) = l.split_once(" -> ")?;
            let b = b.split(" [").next()?;
            Some((
                a.trim_matches('"').to_string(),
                b.trim_matches('"').to_string(),
            ))
        })
        .collect()
}

/// `  stage DVC -> MLP` lines of the import summary.
fn mapping(stderr: &str) -> BTreeMap<String, String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  stage ")?.split_once(" -> "))
        .map(|(d, m)| (d.to_string(), m.to_string()))
        .collect()
}

struct Project {
    name: &'static str,
    files: Vec<(&'static str, &'static str)>,
    /// DVC commands to run before the first `dvc repro` (`add` for tracked data).
    dvc_setup: Vec<Vec<&'static str>>,
    /// The edit made to both copies: (file, from, to).
    change: Vec<(&'static str, &'static str, &'static str)>,
    /// Stages the change must rerun (DVC names), to make sure the test means something.
    reruns: Vec<&'static str>,
}

fn check(p: &Project) {
    let Some(dvc) = find_dvc() else { return };
    let root = tempfile::tempdir().unwrap();
    let tools = Tools {
        path: path_with_python(root.path(), &dvc),
        dvc,
    };
    let a = root.path().join("dvc").join(p.name);
    let b = root.path().join("mlp").join(p.name);
    for d in [&a, &b] {
        std::fs::create_dir_all(d).unwrap();
        write(d, &p.files);
    }
    // Both copies are DVC projects (the importer reads `.dvc/config` and `.dvc` files);
    // only one is ever reproduced by DVC.
    for d in [&a, &b] {
        tools.dvc(d, &["init", "--no-scm", "-q"]);
        for c in &p.dvc_setup {
            tools.dvc(d, c);
        }
    }
    let imported = tools.mlp(&b, &["import", "dvc"]);
    let names = mapping(imported.stderr());
    assert!(
        !names.is_empty(),
        "no mapping printed:\n{}",
        imported.stderr()
    );
    tools.mlp(&b, &["check"]);
    tools.mlp(&b, &["fmt", "--check"]);
    let map = |s: &BTreeSet<String>| -> BTreeSet<String> {
        s.iter()
            .map(|n| {
                names
                    .get(n)
                    .cloned()
                    .unwrap_or_else(|| format!("unmapped {n}"))
            })
            .collect()
    };

    // The same DAG.
    let dvc_dag = dot_edges(&text(&tools.dvc(&a, &["dag", "--dot"]).stdout));
    let dvc_dag: BTreeSet<(String, String)> = dvc_dag
        .into_iter()
        .filter(|(from, _)| !from.ends_with(".dvc")) // tracked data: a plain input in mlp
        .map(|(x, y)| (names[&x].clone(), names[&y].clone()))
        .collect();
    let mlp_dag = dot_edges(tools.mlp(&b, &["graph", "--format", "dot"]).stdout());
    assert_eq!(dvc_dag, mlp_dag, "{}: the DAGs differ", p.name);

    // The same results.
    let first_dvc = map(&dvc_ran(&tools.dvc(&a, &["repro", "--all-pipelines"])));
    let first_mlp = mlp_ran(&tools.mlp(&b, &["run", "--json"]));
    assert_eq!(first_dvc, first_mlp, "{}: first run", p.name);
    assert_eq!(
        first_mlp.len(),
        names.len(),
        "{}: every stage runs once",
        p.name
    );
    assert_same_tree(&a, &b, &format!("{}: after the first run", p.name));

    // The same change reruns the same stages, with the same results.
    for d in [&a, &b] {
        for (file, from, to) in &p.change {
            let f = d.join(file);
            let body = std::fs::read_to_string(&f).unwrap();
            assert!(body.contains(from), "{file} has no `{from}`");
            std::fs::write(&f, body.replacen(from, to, 1)).unwrap();
        }
    }
    let second_dvc = map(&dvc_ran(&tools.dvc(&a, &["repro", "--all-pipelines"])));
    let second_mlp = mlp_ran(&tools.mlp(&b, &["run", "--json"]));
    assert_eq!(second_dvc, second_mlp, "{}: after the change", p.name);
    for r in &p.reruns {
        assert!(
            second_mlp.contains(&names[*r]),
            "{}: `{r}` did not rerun",
            p.name
        );
    }
    assert!(
        second_mlp.len() < names.len(),
        "{}: the change reran everything",
        p.name
    );
    assert_same_tree(&a, &b, &format!("{}: after the change", p.name));
}

#[test]
fn foreach_matrix_vars_wdir_and_a_directory_dep() {
    check(&Project {
        name: "loops",
        files: vec![
            (
                "params.yaml",
                "models: [gbm, logreg]\ntrain:\n  lr: 0.1\n  epochs: 3\nseed: 7\nopts:\n  depth: 4\n  fast: true\n  tags: [a, b]\n",
            ),
            ("cfg.yaml", "cfg:\n  opt: fast\n  unused: 1\n"),
            ("data/raw/a.csv", "x,y\n1,2\n"),
            ("data/raw/b.csv", "x,y\n3,4\n"),
            (
                "src/echo.py",
                "import sys\nout = sys.argv[1]\nopen(out, 'w').write(' '.join(sys.argv[2:]) + '\\n')\n",
            ),
            (
                "dvc.yaml",
                r#"vars:
  - cfg.yaml:cfg
  - label: demo
stages:
  prepare:
    desc: Join the raw files
    cmd: mkdir -p out && cat data/raw/a.csv data/raw/b.csv > out/all.csv
    deps: [data/raw]
    outs: [out/all.csv]
  train:
    foreach: ${models}
    do:
      cmd: python src/echo.py out/${item}.txt ${item} ${train.lr} ${seed} ${label}
      deps: [out/all.csv, src/echo.py]
      params: [train.lr, seed]
      outs: ["out/${item}.txt"]
  grid:
    matrix:
      model: ${models}
      depth: [3, 6]
    cmd: python src/echo.py out/grid-${key}.txt ${item.model} ${item.depth} ${cfg.opt} ${opts}
    deps: ["out/${item.model}.txt"]
    params: [opts]
    outs:
      - out/grid-${key}.txt:
          cache: false
  report:
    wdir: out
    cmd:
      - cat gbm.txt logreg.txt > report.txt
      - "python ../src/echo.py metrics.json '{\"n\": 2}'"
    deps: [gbm.txt, logreg.txt, grid-gbm-3.txt]
    outs: [report.txt]
    metrics:
      - metrics.json:
          cache: false
"#,
            ),
        ],
        dvc_setup: vec![],
        change: vec![("params.yaml", "lr: 0.1", "lr: 0.2")],
        reruns: vec!["train@gbm", "train@logreg", "report"],
    });
}

#[test]
fn sub_directories_params_files_dict_foreach_and_directory_edges() {
    check(&Project {
        name: "multi",
        files: vec![
            ("params.yaml", "n: 1\nsplit: {ratio: 0.25}\n"),
            ("conf/model.toml", "[model]\ndepth = 4\nname = \"tree\"\n"),
            (
                "conf/extra.json",
                "{\"batch\": 8, \"opt\": {\"name\": \"adam\"}}",
            ),
            ("raw.txt", "one\ntwo\nthree\nfour\n"),
            (
                "dvc.yaml",
                r#"stages:
  split:
    cmd: python -c "import sys; l=open('raw.txt').read().split(); k=int(len(l)*${split.ratio}); open('test.txt','w').write(' '.join(l[:k])); open('train.txt','w').write(' '.join(l[k:]))"
    deps: [raw.txt]
    params: [split.ratio]
    outs: [train.txt, test.txt]
  tune:
    cmd: "python -c \"open('best.yaml','w').write('lr: 0.5\\n')\""
    outs: [best.yaml]
  fit:
    foreach:
      small: {size: 1, note: s}
      large: {size: 3, note: l}
    do:
      cmd: mkdir -p results && python -c "print('${key} ${item.size} ${item.note}')" > results/fit-${key}.txt && cat train.txt best.yaml conf/model.toml >> results/fit-${key}.txt
      deps: [train.txt]
      params:
        - conf/model.toml: [model.depth]
        - conf/extra.json:
        - best.yaml: [lr]
      outs: ["results/fit-${key}.txt"]
  collect:
    cmd: mkdir -p summary && cat results/* > summary/all.txt && ls results > summary/names.txt
    deps: [results]
    outs: [summary]
  final:
    cmd: wc -l < summary/all.txt > final.txt
    deps: [summary/all.txt]
    outs: [final.txt]
"#,
            ),
            ("sub/params.yaml", "n: 5\n"),
            (
                "sub/dvc.yaml",
                r#"stages:
  score:
    cmd: cat ../results/fit-small.txt ../test.txt params.yaml > score.txt
    deps: [../results/fit-small.txt, ../test.txt]
    params: [n]
    outs: [score.txt]
"#,
            ),
        ],
        dvc_setup: vec![],
        change: vec![
            ("conf/model.toml", "depth = 4", "depth = 5"),
            ("sub/params.yaml", "n: 5", "n: 6"),
        ],
        reruns: vec![
            "fit@small",
            "fit@large",
            "collect",
            "final",
            "sub/dvc.yaml:score",
        ],
    });
}

#[test]
fn stage_vars_dict_unpacking_list_foreach_and_always_changed() {
    check(&Project {
        name: "templating",
        files: vec![
            (
                "params.yaml",
                "train:\n  epochs: 2\n  lr: 1.0e-3\n  verbose: true\n  quiet: false\n  layers: [8, 4]\n  name: small net\nconfigs:\n  - {name: a, depth: 2}\n  - {name: b, depth: 3}\n",
            ),
            ("settings.json", "{\"tag\": \"v1\"}"),
            (
                "src/echo.py",
                "import os, sys\nout = sys.argv[1]\nos.makedirs(os.path.dirname(out), exist_ok=True)\nopen(out, 'w').write(' '.join(sys.argv[2:]) + '\\n')\n",
            ),
            (
                "dvc.yaml",
                r#"vars:
  - settings.json
stages:
  cfg:
    vars:
      - local: {n: 3}
    cmd: >-
      python src/echo.py out/cfg.txt
      ${train} ${local.n} ${tag}
    deps: [src/echo.py]
    params: [train]
    outs: [out/cfg.txt]
  fit:
    foreach: ${configs}
    do:
      cmd: python src/echo.py out/fit-${item.name}.txt ${item.depth} ${train.lr}
      deps: [out/cfg.txt]
      outs: ["out/fit-${item.name}.txt"]
  clock:
    cmd: python src/echo.py out/clock.txt tick
    deps: [src/echo.py]
    always_changed: true
    outs: [out/clock.txt]
  summary:
    cmd: |
      cat out/fit-a.txt out/fit-b.txt > out/summary.txt
      echo done >> out/summary.txt
    deps: [out/fit-a.txt, out/fit-b.txt, out/clock.txt]
    outs: [out/summary.txt]
"#,
            ),
        ],
        dvc_setup: vec![
            vec!["config", "parsing.bool", "boolean_optional"],
            vec!["config", "parsing.list", "append"],
        ],
        // `tag` is live in cfg's command; fit reruns on cfg's new output but writes the
        // same bytes, so summary does not rerun in either tool (clock always does).
        change: vec![("settings.json", "v1", "v2")],
        reruns: vec!["cfg", "fit@0", "fit@1", "clock"],
    });
}

/// DVC's own example project, `iterative/example-get-started`: its `dvc.yaml` and
/// `params.yaml` as published, with small stand-ins for its scikit-learn scripts.
#[test]
fn example_get_started() {
    check(&Project {
        name: "example-get-started",
        files: vec![
            ("dvc.yaml", GET_STARTED_DVC_YAML),
            (
                "params.yaml",
                "prepare:\n  split: 0.20\n  seed: 20170428\n\nfeaturize:\n  max_features: 400\n  ngrams: 2\n\ntrain:\n  seed: 20170428\n  n_est: 50\n  min_split: 0.01\n\n",
            ),
            (
                "data/data.xml",
                "<posts>\n<row Id=\"1\" Body=\"r code\"/>\n<row Id=\"2\" Body=\"python\"/>\n<row Id=\"3\" Body=\"r plots\"/>\n</posts>\n",
            ),
            (
                "data/data.xml.dvc",
                "outs:\n- md5: a304afb96060aad90176268345e10355\n  path: data.xml\n",
            ),
            (
                "src/prepare.py",
                "import os, sys, yaml\np = yaml.safe_load(open('params.yaml'))['prepare']\nrows = [l for l in open(sys.argv[1]) if '<row' in l]\nk = int(len(rows) * p['split'])\nos.makedirs('data/prepared', exist_ok=True)\nopen('data/prepared/test.tsv', 'w').write(''.join(rows[:k]))\nopen('data/prepared/train.tsv', 'w').write(''.join(rows[k:]) + str(p['seed']) + '\\n')\n",
            ),
            (
                "src/featurization.py",
                "import os, sys, yaml\np = yaml.safe_load(open('params.yaml'))['featurize']\nos.makedirs(sys.argv[2], exist_ok=True)\nfor n in ['train', 'test']:\n    t = open(os.path.join(sys.argv[1], n + '.tsv')).read()\n    open(os.path.join(sys.argv[2], n + '.pkl'), 'w').write(f\"{len(t)} {p['max_features']} {p['ngrams']}\\n\")\n",
            ),
            (
                "src/train.py",
                "import sys, yaml\np = yaml.safe_load(open('params.yaml'))['train']\nf = open(sys.argv[1] + '/train.pkl').read()\nopen(sys.argv[2], 'w').write(f\"model {p['n_est']} {p['min_split']} {f}\")\n",
            ),
        ],
        dvc_setup: vec![vec!["add", "-q", "data/data.xml"]],
        change: vec![("params.yaml", "max_features: 400", "max_features: 500")],
        reruns: vec!["featurize", "train"],
    });
}

/// `iterative/example-get-started`'s `dvc.yaml` (with its `artifacts`), as published.
const GET_STARTED_DVC_YAML: &str = "artifacts:
  stackoverflow-dataset:
    path: data/data.xml
    type: dataset
    desc: Initial XML StackOverflow dataset (raw data)
  text-classification:
    path: model.pkl
    desc: Detect whether the given stackoverflow question should have R language tag
    type: model
    labels:
    - nlp
    - classification
    - stackoverflow
stages:
  prepare:
    cmd: python src/prepare.py data/data.xml
    deps:
    - data/data.xml
    - src/prepare.py
    params:
    - prepare.seed
    - prepare.split
    outs:
    - data/prepared
  featurize:
    cmd: python src/featurization.py data/prepared data/features
    deps:
    - data/prepared
    - src/featurization.py
    params:
    - featurize.max_features
    - featurize.ngrams
    outs:
    - data/features
  train:
    cmd: python src/train.py data/features model.pkl
    deps:
    - data/features
    - src/train.py
    params:
    - train.min_split
    - train.n_est
    - train.seed
    outs:
    - model.pkl
";

/// Refusing to overwrite changes nothing; `--force` overwrites. Needs no DVC.
#[test]
fn import_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "dvc.yaml",
            "stages:\n  a:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n",
        )],
    );
    let run = |args: &[&str]| Mlp::new(args).current_dir(dir.path()).run();
    let pipeline = dir.path().join("pipeline.mlp");
    std::fs::write(&pipeline, "# mine\n").unwrap();
    let out = run(&["import", "dvc"]);
    let out = out.failure(1);
    assert!(out.stderr().starts_with("mlp: "), "{}", out.stderr());
    assert!(out.stderr().contains("--force"), "{}", out.stderr());
    assert_eq!(std::fs::read_to_string(&pipeline).unwrap(), "# mine\n");
    let out = run(&["import", "dvc", ".", "-o", "pipeline.mlp", "--force"]).success();
    let written = std::fs::read_to_string(&pipeline).unwrap();
    assert!(written.contains("stage a {"), "{written}");
    assert!(out.stderr().contains("  stage a -> a"), "{}", out.stderr());
    // `-o -` prints, writes nothing; a directory that is not one is bad usage.
    let out = run(&["import", "dvc", "-o", "-"]).success();
    assert_eq!(out.stdout(), written);
    run(&["import", "dvc", "nowhere"]).failure(2);
    run(&["import", "dvc", ".", "-o", "/tmp/elsewhere.mlp"]).failure(2);
    let empty = tempfile::tempdir().unwrap();
    let out = run(&["import", "dvc", empty.path().to_str().unwrap()]);
    let out = out.failure(1);
    assert!(out.stderr().contains("no dvc.yaml"), "{}", out.stderr());
}
