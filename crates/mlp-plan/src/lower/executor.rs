//! Executors: `executor NAME { settings }` at the top (the pipeline's) or in a stage (its
//! own, over the pipeline's settings).

use std::collections::HashMap;
use std::sync::Arc;

use mlp_syntax::ast::{self, Span};

use super::{Lowerer, RawStage, Scope};
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::model::{Executor, ExecutorKind, RaySettings, SlurmSettings};

/// The settings one `executor` item gives.
pub(super) struct Given {
    pub kind: ExecutorKind,
    pub slurm: SlurmSettings,
    pub ray: RaySettings,
}

impl Lowerer {
    /// A stage's executor: its own `executor` item over the pipeline's, or the pipeline's.
    pub(super) fn stage_executor(&self, r: &RawStage) -> Executor {
        let pipeline = &self.executor;
        let own = r.ast.items.iter().find_map(|i| match &i.kind {
            ast::StageItemKind::Executor(e) => Some(e),
            _ => None,
        });
        let Some(e) = own else {
            return pipeline.clone();
        };
        match self.executor(r.file, e, self.scope(&r.vars)) {
            Some(g) => Executor {
                kind: g.kind,
                own: true,
                slurm: Arc::new(pipeline.slurm.overlay(&g.slurm)),
                ray: Arc::new(pipeline.ray.overlay(&g.ray)),
            },
            None => pipeline.clone(),
        }
    }

    /// `executor NAME { settings }`: the kind and the settings it gives (`None` for an
    /// unknown executor; every mistake is reported).
    pub(super) fn executor(
        &self,
        fid: usize,
        e: &ast::Executor,
        scope: Scope<'_>,
    ) -> Option<Given> {
        let Some(kind) = ExecutorKind::parse(&e.name.node) else {
            let help = did_you_mean(&e.name.node, ExecutorKind::NAMES)
                .unwrap_or_else(|| "the executors are `local`, `slurm` and `ray`".into());
            self.err(
                Diagnostic::new(
                    Code::UnknownExecutor,
                    format!("unknown executor `{}`", e.name.node),
                )
                .at(fid, e.name.span, "not an executor")
                .help(help),
            );
            return None;
        };
        let mut st = SlurmSettings::default();
        let mut ray = RaySettings::default();
        let mut seen: HashMap<String, Span> = HashMap::new();
        for set in e.settings.iter().flatten() {
            let n = set.name.node.as_str();
            if kind == ExecutorKind::Local {
                self.err(
                    Diagnostic::new(
                        Code::UnknownSetting,
                        format!("`executor local` has no setting `{n}`"),
                    )
                    .at(fid, set.name.span, "a setting of `local`")
                    .help("`local` takes no settings; Slurm's go in `executor slurm { ... }`, Ray's in `executor ray { ... }`"),
                );
                continue;
            }
            let (names, what, all): (&[&str], _, _) = match kind {
                ExecutorKind::Ray => (
                    &RaySettings::NAMES,
                    "Ray",
                    "`address`, `resources`, `env_vars`, `metadata`, `pip`, `runtime_env` and `pending_timeout`",
                ),
                _ => (
                    &SlurmSettings::NAMES,
                    "Slurm",
                    "`partition`, `account`, `qos`, `time` and `args`",
                ),
            };
            if !names.contains(&n) {
                let help = did_you_mean(n, names.iter().copied())
                    .unwrap_or_else(|| format!("the {what} settings are {all}"));
                self.err(
                    Diagnostic::new(
                        Code::UnknownSetting,
                        format!("unknown {what} setting `{n}`"),
                    )
                    .at(fid, set.name.span, "not a setting")
                    .help(help),
                );
                continue;
            }
            if let Some(prev) = seen.insert(n.to_string(), set.name.span) {
                self.err(
                    Diagnostic::new(Code::DuplicateExecutor, format!("`{n}` is set twice"))
                        .at(fid, set.name.span, "again here")
                        .also(prev, "first here")
                        .help("set each setting once"),
                );
                continue;
            }
            if kind == ExecutorKind::Ray {
                self.ray_setting(fid, set, &mut ray, scope);
            } else {
                self.slurm_setting(fid, set, &mut st, scope);
            }
        }
        Some(Given {
            kind,
            slurm: st,
            ray,
        })
    }

    /// One Slurm setting whose name is known and given once: its value into `st`.
    fn slurm_setting(
        &self,
        fid: usize,
        set: &ast::Setting,
        st: &mut SlurmSettings,
        scope: Scope<'_>,
    ) {
        let n = set.name.node.as_str();
        let wrong = |what: &str, help: String| {
            Diagnostic::new(Code::SettingType, format!("`{n}` is {what}"))
                .at(fid, set.value.span(), format!("not {what}"))
                .help(help)
        };
        match (n, &set.value) {
            ("time", ast::SettingValue::Duration(d)) => {
                if d.node.millis == 0 {
                    self.err(
                        Diagnostic::new(Code::ZeroDuration, "`time` needs a duration above zero")
                            .at(fid, d.span, "zero")
                            .help("write a duration such as `30m` or `2h`"),
                    );
                } else {
                    st.time_ms = Some(d.node.millis);
                }
            }
            ("time", _) => self.err(wrong(
                "a duration",
                "write a duration with a unit: `time = 30m` or `time = 2h` (Slurm counts whole minutes)".into(),
            )),
            ("args", ast::SettingValue::Value(v)) => match &v.kind {
                ast::ValueKind::List(items) => {
                    let mut args = Vec::new();
                    for item in items {
                        match &item.kind {
                            ast::ValueKind::Str(s) => {
                                args.push(self.plain_str(fid, s, scope));
                            }
                            _ => self.err(
                                Diagnostic::new(Code::SettingType, "`args` holds strings only")
                                    .at(fid, item.span, "not a string")
                                    .help("quote every argument: `args = [\"--exclusive\", \"--nodes=1\"]`"),
                            ),
                        }
                    }
                    st.args = Some(args);
                }
                _ => self.err(wrong(
                    "a list of strings",
                    "write `args = [\"--exclusive\"]`".into(),
                )),
            },
            ("args", _) => self.err(wrong(
                "a list of strings",
                "write `args = [\"--exclusive\"]`".into(),
            )),
            (_, ast::SettingValue::Value(ast::Value {
                kind: ast::ValueKind::Str(s),
                ..
            })) => {
                let v = self.plain_str(fid, s, scope);
                match n {
                    "partition" => st.partition = Some(v),
                    "account" => st.account = Some(v),
                    _ => st.qos = Some(v),
                }
            }
            (_, _) => self.err(wrong("a string", format!("write `{n} = \"...\"`"))),
        }
    }
}
