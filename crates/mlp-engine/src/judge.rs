//! Judging: `when` conditions, `check`s and `gate`s, evaluated on the metrics of this run
//! (a stage that ran or was restored), of the last success (a fresh stage), and of the
//! baseline.

use mlp_plan::{AssertionKind, Pipeline, Stage, StageId, Value};

use crate::events::{FailureKind, Status};
use crate::state::StageState;
use crate::store::Store;

/// The promoted run: its id and record.
pub type Baseline = Option<(String, serde_json::Value)>;

/// What conditions, checks and gates see.
pub struct Judge<'a> {
    pub p: &'a Pipeline,
    pub states: &'a [StageState],
    pub store: &'a dyn Store,
    pub baseline: &'a Baseline,
}

/// A `check` or `gate` that does not hold: which kind, and the message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Judgement {
    pub kind: FailureKind,
    pub message: String,
}

impl Judgement {
    pub fn status(&self) -> Status {
        Status::failed(self.kind, self.message.clone())
    }
}

/// What a `when` says.
pub enum When {
    Holds,
    /// False, or undecidable: the skip reason.
    Skip(String),
}

impl Judge<'_> {
    /// A stage's metrics as seen in this run: what it produced now, or at its last
    /// success when it was fresh or not part of the run.
    fn metrics_of(&self, i: StageId) -> Option<serde_json::Value> {
        let st = &self.states[i];
        match &st.status {
            Some(Status::Ran { .. } | Status::Restored) => {
                st.record.as_ref().map(|r| r.metrics.clone())
            }
            Some(Status::Fresh) | None => self
                .store
                .last_success(&self.p.stages[i].name)
                .ok()
                .flatten()
                .map(|r| r.metrics),
            _ => None,
        }
    }

    /// A stage's `when` (true when it has none).
    pub fn when(&self, s: &Stage) -> When {
        let Some(w) = &s.when else {
            return When::Holds;
        };
        let mut seen = Vec::new();
        let names = |j: StageId| self.p.stages[j].name.clone();
        let text = s.when_text.clone().unwrap_or_default();
        match w.eval(&Ctx { j: self, own: None }, &names, &mut seen) {
            Ok(Value::Bool(true)) => When::Holds,
            Ok(_) => {
                let saw = if seen.is_empty() {
                    String::new()
                } else {
                    format!(" {}", mlp_plan::expr::describe_seen(w, &seen))
                };
                When::Skip(format!("`when {text}` is false{saw}"))
            }
            Err(e) => When::Skip(format!("`when {text}` cannot be decided: {e}")),
        }
    }

    /// Evaluate a stage's checks and gates on its metrics: notes when they hold, the
    /// failure (the expression and the values it saw) when one does not.
    pub fn checks(&self, i: StageId, own: &serde_json::Value) -> Result<Vec<String>, Judgement> {
        let s = &self.p.stages[i];
        let ctx = Ctx {
            j: self,
            own: Some((i, own)),
        };
        let names = |j: StageId| self.p.stages[j].name.clone();
        let mut notes = Vec::new();
        for a in &s.checks {
            let (word, kind) = match a.kind {
                AssertionKind::Check => ("check", FailureKind::Check),
                AssertionKind::Gate => ("gate", FailureKind::Gate),
            };
            let fail = |message: String| Judgement { kind, message };
            let mut seen = Vec::new();
            let suffix = a
                .message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            match a.cond.eval(&ctx, &names, &mut seen) {
                Ok(Value::Bool(true)) => {
                    if seen
                        .iter()
                        .any(|(k, v)| k.starts_with("baseline.") && *v == Value::Str("none".into()))
                    {
                        notes.push(format!("{word} `{}` passed without comparing: no baseline yet (a run with a `promote` stage, or `mlp promote RUN`, sets it)", a.text));
                    }
                }
                Ok(Value::Bool(false)) => {
                    return Err(fail(format!(
                        "{word} failed: {} {}{suffix}",
                        a.text,
                        mlp_plan::expr::describe_seen(&a.cond, &seen)
                    )));
                }
                Ok(v) => {
                    return Err(fail(format!(
                        "{word} failed: `{}` is a {}, not a bool",
                        a.text,
                        v.type_name()
                    )));
                }
                Err(e) => return Err(fail(format!("{word} failed: {}: {e}{suffix}", a.text))),
            }
        }
        Ok(notes)
    }
}

/// What checks and gates see, with the metrics the stage being judged just produced.
struct Ctx<'a, 'b> {
    j: &'a Judge<'b>,
    own: Option<(StageId, &'a serde_json::Value)>,
}

impl mlp_plan::expr::EvalContext for Ctx<'_, '_> {
    fn metric(
        &self,
        stage: StageId,
        name: &str,
        field: &[mlp_plan::expr::Segment],
    ) -> Option<Value> {
        let all = match self.own {
            Some((j, m)) if j == stage => m.clone(),
            _ => self.j.metrics_of(stage)?,
        };
        let v = crate::metrics::field(all.get(name)?, field)?;
        Some(Value::from_json(v.clone()))
    }

    fn baseline(
        &self,
        stage: StageId,
        name: &str,
        field: &[mlp_plan::expr::Segment],
    ) -> Option<Value> {
        let (_, run) = self.j.baseline.as_ref()?;
        let m = run
            .get("stages")?
            .get(&self.j.p.stages[stage].name)?
            .get("metrics")?
            .get(name)?;
        Some(Value::from_json(crate::metrics::field(m, field)?.clone()))
    }

    fn failed(&self, stage: StageId) -> bool {
        matches!(self.j.states[stage].status, Some(Status::Failed { .. }))
    }
}

/// The store's `meta` key naming the promoted run.
pub const BASELINE: &str = "baseline";

/// The promoted run, if any: its id and record.
pub fn baseline(store: &dyn Store) -> Result<Baseline, crate::store::StoreError> {
    let Some(id) = store.meta(BASELINE)? else {
        return Ok(None);
    };
    Ok(store.run(&id)?.map(|r| (id, r)))
}

/// What a stage's checks and gates say, as written: a record judged under other checks is
/// judged again. Empty for a stage without any.
pub fn checks_digest(s: &Stage) -> String {
    if s.checks.is_empty() {
        return String::new();
    }
    let mut h = blake3::Hasher::new();
    for a in &s.checks {
        h.update(
            format!(
                "{:?}\0{}\0{}\n",
                a.kind,
                a.text,
                a.message.as_deref().unwrap_or("")
            )
            .as_bytes(),
        );
    }
    h.finalize().to_hex().to_string()
}
