//! The settings of `executor ray { ... }`: each checked here, so a mistake is a diagnostic
//! with a span and never a job Ray refuses (or queues forever) at run time.

use mlp_syntax::ast;

use super::{Lowerer, Scope};
use crate::codes::Code;
use crate::diag::Diagnostic;
use crate::model::RaySettings;

impl Lowerer {
    /// One Ray setting whose name is known and given once: its value into `st`.
    pub(super) fn ray_setting(
        &self,
        fid: usize,
        set: &ast::Setting,
        st: &mut RaySettings,
        scope: Scope<'_>,
    ) {
        let n = set.name.node.as_str();
        let wrong = |what: &str, help: &str| {
            self.err(
                Diagnostic::new(Code::SettingType, format!("`{n}` is {what}"))
                    .at(fid, set.value.span(), format!("not {what}"))
                    .help(help.to_string()),
            );
        };
        if n == "pending_timeout" {
            match &set.value {
                ast::SettingValue::Duration(d) if d.node.millis == 0 => self.err(
                    Diagnostic::new(
                        Code::ZeroDuration,
                        "`pending_timeout` needs a duration above zero",
                    )
                    .at(fid, d.span, "zero")
                    .help("write a duration such as `10m`"),
                ),
                ast::SettingValue::Duration(d) => st.pending_timeout_ms = Some(d.node.millis),
                _ => wrong(
                    "a duration",
                    "write a duration with a unit: `pending_timeout = 10m`",
                ),
            }
            return;
        }
        let ast::SettingValue::Value(v) = &set.value else {
            return wrong(
                if matches!(n, "address" | "runtime_env") {
                    "a string"
                } else {
                    "a list of strings"
                },
                "only `pending_timeout` takes a duration",
            );
        };
        match n {
            "address" | "runtime_env" => {
                let ast::ValueKind::Str(s) = &v.kind else {
                    return wrong("a string", &format!("write `{n} = \"...\"`"));
                };
                let text = self.plain_str(fid, s, scope);
                let checked = if n == "address" {
                    RaySettings::dashboard_url(&text)
                        .map_err(|help| ("not a dashboard address", help))
                } else {
                    runtime_env_problem(&text).map_or(Ok(text), Err)
                };
                match checked {
                    Ok(text) if n == "address" => st.address = Some(text),
                    Ok(text) => st.runtime_env = Some(text),
                    Err((label, help)) => self.err(
                        Diagnostic::new(Code::RaySetting, format!("`{n}` is {label}"))
                            .at(fid, v.span, label)
                            .help(help),
                    ),
                }
            }
            _ => {
                let ast::ValueKind::List(items) = &v.kind else {
                    return wrong("a list of strings", &example(n));
                };
                let mut strings = Vec::new();
                for item in items {
                    match &item.kind {
                        ast::ValueKind::Str(s) => {
                            strings.push((self.plain_str(fid, s, scope), item.span));
                        }
                        _ => self.err(
                            Diagnostic::new(Code::SettingType, format!("`{n}` holds strings only"))
                                .at(fid, item.span, "not a string")
                                .help(example(n)),
                        ),
                    }
                }
                self.ray_list(fid, n, strings, st);
            }
        }
    }

    /// `resources`, `env_vars`, `metadata` or `pip`: its strings, each checked.
    fn ray_list(
        &self,
        fid: usize,
        n: &str,
        strings: Vec<(String, ast::Span)>,
        st: &mut RaySettings,
    ) {
        let bad = |span, label: &str, help: String| {
            self.err(
                Diagnostic::new(Code::RaySetting, format!("a malformed entry of `{n}`"))
                    .at(fid, span, label.to_string())
                    .help(help),
            );
        };
        match n {
            "pip" => st.pip = Some(strings.into_iter().map(|(s, _)| s).collect()),
            "resources" => {
                let mut out = Vec::new();
                for (s, span) in strings {
                    match resource(&s) {
                        Ok(r) => out.push(r),
                        Err(label) => bad(span, label, example(n)),
                    }
                }
                st.resources = Some(out);
            }
            _ => {
                let mut out = Vec::new();
                for (s, span) in strings {
                    match s.split_once('=') {
                        Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
                            out.push((k.to_string(), v.to_string()));
                        }
                        _ => bad(span, "not `KEY=VALUE`", example(n)),
                    }
                }
                if n == "env_vars" {
                    st.env_vars = Some(out);
                } else {
                    st.metadata = Some(out);
                }
            }
        }
    }
}

fn example(n: &str) -> String {
    match n {
        "resources" => {
            "write each custom resource as `NAME=AMOUNT` (or `NAME` for 1): `resources = [\"gpu_a100=1\"]`".into()
        }
        "env_vars" => "write `env_vars = [\"HF_HOME=/shared/hf\"]`".into(),
        "metadata" => "write `metadata = [\"team=ml\"]`".into(),
        _ => "write `pip = [\"torch==2.5.1\"]`".into(),
    }
}

/// `NAME=AMOUNT` or `NAME` (1).
fn resource(s: &str) -> Result<(String, f64), &'static str> {
    let (name, amount) = match s.split_once('=') {
        Some((n, a)) => (n.trim(), a.trim()),
        None => (s.trim(), "1"),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err("not `NAME=AMOUNT`");
    }
    if matches!(name, "CPU" | "GPU" | "memory") {
        return Err("CPU, GPU and memory come from the stage's `resources`");
    }
    match amount.parse::<f64>() {
        Ok(a) if a.is_finite() && a > 0.0 => Ok((name.to_string(), a)),
        _ => Err("the amount is not a number above zero"),
    }
}

/// Why `text` is no JSON object, if it is not one.
fn runtime_env_problem(text: &str) -> Option<(&'static str, String)> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => None,
        Ok(_) => Some((
            "not a JSON object",
            "write a runtime environment as a JSON object: `runtime_env = \"{\\\"conda\\\": \\\"ml\\\"}\"`".into(),
        )),
        Err(e) => Some(("not JSON", format!("the runtime environment is not JSON: {e}"))),
    }
}
