//! The DAG as a petgraph graph, and its renderings for `mlp graph`.

use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::{DepKind, Pipeline, Stage};

/// Node weights are stage ids (node index i is stage i); edges point from a stage to the
/// stages that depend on it.
pub fn build(stages: &[Stage]) -> DiGraph<usize, DepKind> {
    let mut g = DiGraph::with_capacity(stages.len(), stages.len());
    for i in 0..stages.len() {
        g.add_node(i);
    }
    for (i, s) in stages.iter().enumerate() {
        for d in &s.deps {
            g.add_edge(NodeIndex::new(d.stage), NodeIndex::new(i), d.kind);
        }
    }
    g
}

fn edge_label(k: DepKind) -> Option<&'static str> {
    match k {
        DepKind::Data => None,
        DepKind::After => Some("after"),
        DepKind::Metrics => Some("metrics"),
        DepKind::Failed => Some("on failure"),
    }
}

/// Graphviz.
pub fn dot(p: &Pipeline) -> String {
    let mut out = format!(
        "digraph {} {{\n  rankdir=LR;\n  node [shape=box];\n",
        quote_dot(&p.name)
    );
    for &i in &p.order {
        out.push_str(&format!("  {};\n", quote_dot(&p.stages[i].name)));
    }
    for &i in &p.order {
        for d in &p.stages[i].deps {
            let style = match d.kind {
                DepKind::Data => String::new(),
                k => format!(
                    " [style=dashed, label={}]",
                    quote_dot(edge_label(k).unwrap_or(""))
                ),
            };
            out.push_str(&format!(
                "  {} -> {}{style};\n",
                quote_dot(&p.stages[d.stage].name),
                quote_dot(&p.stages[i].name)
            ));
        }
    }
    out.push_str("}\n");
    out
}

fn quote_dot(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Mermaid flowchart.
pub fn mermaid(p: &Pipeline) -> String {
    let mut out = String::from("flowchart LR\n");
    for &i in &p.order {
        out.push_str(&format!("  s{i}[\"{}\"]\n", p.stages[i].name));
    }
    for &i in &p.order {
        for d in &p.stages[i].deps {
            match edge_label(d.kind) {
                None => out.push_str(&format!("  s{} --> s{i}\n", d.stage)),
                Some(l) => out.push_str(&format!("  s{} -. {l} .-> s{i}\n", d.stage)),
            }
        }
    }
    out
}

/// A plain-text listing in topological order: each stage with what it waits for.
pub fn ascii(p: &Pipeline) -> String {
    let mut depth = vec![0usize; p.stages.len()];
    for &i in &p.order {
        depth[i] = p.stages[i]
            .deps
            .iter()
            .map(|d| depth[d.stage] + 1)
            .max()
            .unwrap_or(0);
    }
    let mut out = String::new();
    for &i in &p.order {
        let s = &p.stages[i];
        out.push_str(&"  ".repeat(depth[i]));
        out.push_str(&s.name);
        if !s.deps.is_empty() {
            let ups: Vec<String> = s
                .deps
                .iter()
                .map(|d| match edge_label(d.kind) {
                    None => p.stages[d.stage].name.clone(),
                    Some(l) => format!("{} ({l})", p.stages[d.stage].name),
                })
                .collect();
            out.push_str(&format!("  <- {}", ups.join(", ")));
        }
        out.push('\n');
    }
    out
}

/// JSON: nodes with their inputs and outputs, and edges with their kind.
pub fn json(p: &Pipeline) -> serde_json::Value {
    let nodes: Vec<serde_json::Value> = p
        .order
        .iter()
        .map(|&i| {
            let s = &p.stages[i];
            serde_json::json!({
                "name": s.name,
                "command": s.command,
                "inputs": s.inputs.iter().map(|x| &x.path).collect::<Vec<_>>(),
                "outputs": s.outputs.iter().map(|o| serde_json::json!({"name": o.name, "path": o.path, "metrics": o.metrics})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut edges = Vec::new();
    for &i in &p.order {
        for d in &p.stages[i].deps {
            edges.push(serde_json::json!({
                "from": p.stages[d.stage].name,
                "to": p.stages[i].name,
                "kind": format!("{:?}", d.kind).to_lowercase(),
            }));
        }
    }
    serde_json::json!({ "pipeline": p.name, "stages": nodes, "edges": edges })
}
