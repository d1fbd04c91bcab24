//! The validated pipeline: what the engine runs. Built by `lower`; serializable so that the
//! engine can cache it keyed by the hash of its sources.

use std::collections::BTreeMap;
use std::sync::Arc;

use mlp_syntax::ast::Span;
use serde::{Deserialize, Serialize};

use crate::expr::Cond;
pub use crate::id::StageId;
use crate::value::Value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub name: String,
    /// Every file the plan was made from, workspace-relative: the root `.mlp` first, then
    /// includes, then params files. A change to any of them means re-planning.
    pub sources: Vec<String>,
    /// All params, nested (`train.lr` is `params["train"]["lr"]`), overrides applied.
    pub params: BTreeMap<String, Value>,
    /// `--set` overrides that were applied, as given.
    pub overrides: Vec<(String, Value)>,
    /// Stages in source order (after `for` expansion); a `StageId` indexes this.
    pub stages: Vec<Stage>,
    /// A topological order: every stage comes after the stages it depends on.
    pub order: Vec<StageId>,
    /// `tracking mlflow { ... }`: where runs are exported after they end.
    pub tracking: Option<Tracking>,
    /// `remote "URL" { pull = true }`: the team remote push, pull and `run --pull` use.
    #[serde(default)]
    pub remote: Option<RemoteItem>,
}

/// `remote "s3://bucket/prefix" { pull = true }`. `pull`: `mlp run` asks the remote's
/// run-cache on a local miss, as `--pull` does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteItem {
    pub url: String,
    pub pull: bool,
}

impl RemoteItem {
    /// The settings of `remote`.
    pub const SETTINGS: [&'static str; 1] = ["pull"];
}

/// `tracking mlflow { uri = "http://127.0.0.1:5000"  experiment = "churn" }`. A setting
/// left out comes from `MLFLOW_TRACKING_URI` / `MLFLOW_EXPERIMENT_NAME` (which also win
/// over the file's, so that one machine can point elsewhere).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    pub uri: Option<String>,
    pub experiment: Option<String>,
}

impl Tracking {
    /// The trackers there are.
    pub const NAMES: [&'static str; 1] = ["mlflow"];
    /// The settings of `tracking mlflow`.
    pub const SETTINGS: [&'static str; 2] = ["uri", "experiment"];
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    /// Where the stage is written: index into `Pipeline::sources`, and the span of its name.
    pub origin: Origin,
    pub inputs: Vec<Input>,
    pub outputs: Vec<Output>,
    /// The params keys it lists, with their values.
    pub params: Vec<(String, Value)>,
    /// The shell command, interpolated and quoted.
    pub command: String,
    /// The pipeline's env with the stage's own on top.
    pub env: BTreeMap<String, String>,
    pub checks: Vec<Assertion>,
    pub when: Option<Cond>,
    /// The `when` expression as written.
    pub when_text: Option<String>,
    pub every_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub retry: u32,
    pub fallback: Option<String>,
    pub resources: Resources,
    /// Where its command runs. Not part of its identity: a stage run on Slurm and the same
    /// stage run locally share the cache.
    pub executor: Executor,
    pub always: bool,
    pub frozen: bool,
    pub promote: bool,
    /// How its outputs go into the object cache and come back (`cache copy|link`). Not
    /// part of its identity: both modes give the same bytes.
    pub cache: CacheMode,
    /// Every stage this one waits for, with why: sorted, no duplicates.
    pub deps: Vec<Dep>,
}

/// `cache copy` (the default) or `cache link`: how outputs are stored and restored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// A copy of its own: a reflink where the filesystem shares extents, else a
    /// kernel-side copy.
    #[default]
    Copy,
    /// A read-only hard link to the cached object (copied where it cannot be: an
    /// executable file, another filesystem, a file that already has other names).
    Link,
}

impl CacheMode {
    /// The modes, as written.
    pub const NAMES: [&'static str; 2] = ["copy", "link"];

    /// The mode named `s`.
    pub fn parse(s: &str) -> Option<CacheMode> {
        match s {
            "copy" => Some(CacheMode::Copy),
            "link" => Some(CacheMode::Link),
            _ => None,
        }
    }

    /// As written in a pipeline.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheMode::Copy => "copy",
            CacheMode::Link => "link",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub file: usize,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// Workspace-relative, `/`-separated, normalized (no `./`, no trailing `/`).
    pub path: String,
    pub kind: InputKind,
    /// The stage that produces it, when it is (under) another stage's output.
    pub producer: Option<StageId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputKind {
    /// A file or a directory (what it is is seen when it is hashed).
    Path,
    /// A glob pattern such as `data/*.csv`.
    Glob,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    pub name: Option<String>,
    pub path: String,
    /// A metrics file (`metrics name = "..."`): an output that is also read as metrics.
    pub metrics: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DepKind {
    /// Reads one of its outputs (a reference or an overlapping path).
    Data,
    /// `after`: ordering only.
    After,
    /// Reads its metrics in a `when`, `check` or `gate`.
    Metrics,
    /// `when failed(stage)`: a failure handler runs after it, especially when it fails.
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dep {
    pub stage: StageId,
    pub kind: DepKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssertionKind {
    Check,
    Gate,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assertion {
    pub kind: AssertionKind,
    pub cond: Cond,
    /// The expression as written.
    pub text: String,
    pub message: Option<String>,
    pub origin: Origin,
}

/// What a stage takes while it runs. The scheduler never hands out more than it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub cpu: u32,
    pub mem_bytes: u64,
    pub gpu: u32,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpu: 1,
            mem_bytes: 0,
            gpu: 0,
        }
    }
}

/// Where a stage's command runs: `executor local` / `executor slurm { ... }`, in the stage
/// or at the top of the pipeline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executor {
    pub kind: ExecutorKind,
    /// The stage names its executor itself; `mlp run --executor` changes only the others.
    pub own: bool,
    /// The Slurm settings: the pipeline's, with the stage's own on top. Shared: every
    /// stage without an `executor` item of its own holds the pipeline's (at 100,000 stages
    /// a copy each was 28 MB of `None`s).
    pub slurm: Arc<SlurmSettings>,
    /// The Ray settings: the pipeline's, with the stage's own on top. Shared, as `slurm`.
    #[serde(default)]
    pub ray: Arc<RaySettings>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutorKind {
    /// A child process of `mlp` on this machine.
    #[default]
    Local,
    /// A batch job on a Slurm cluster (`sbatch`).
    Slurm,
    /// A job on a Ray cluster (its Jobs REST API).
    Ray,
}

impl ExecutorKind {
    pub const NAMES: [&'static str; 3] = ["local", "slurm", "ray"];

    pub fn name(self) -> &'static str {
        match self {
            ExecutorKind::Local => "local",
            ExecutorKind::Slurm => "slurm",
            ExecutorKind::Ray => "ray",
        }
    }

    pub fn parse(name: &str) -> Option<ExecutorKind> {
        match name {
            "local" => Some(ExecutorKind::Local),
            "slurm" => Some(ExecutorKind::Slurm),
            "ray" => Some(ExecutorKind::Ray),
            _ => None,
        }
    }
}

/// `executor slurm { partition = "gpu"  account = "ml"  qos = "normal"  time = 2h
/// args = ["--exclusive"] }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlurmSettings {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// The job's time limit (`--time`), in milliseconds.
    pub time_ms: Option<u64>,
    /// More `sbatch` arguments, as written.
    pub args: Option<Vec<String>>,
}

impl SlurmSettings {
    /// Every setting name, for "did you mean".
    pub const NAMES: [&'static str; 5] = ["partition", "account", "qos", "time", "args"];

    /// `self` with every setting that `top` has replaced by it.
    pub fn overlay(&self, top: &SlurmSettings) -> SlurmSettings {
        SlurmSettings {
            partition: top.partition.clone().or_else(|| self.partition.clone()),
            account: top.account.clone().or_else(|| self.account.clone()),
            qos: top.qos.clone().or_else(|| self.qos.clone()),
            time_ms: top.time_ms.or(self.time_ms),
            args: top.args.clone().or_else(|| self.args.clone()),
        }
    }
}

/// `executor ray { address = "http://head:8265"  resources = ["gpu_a100=1"]
/// env_vars = ["HF_HOME=/shared/hf"]  metadata = ["team=ml"]  pip = ["torch"]
/// runtime_env = "{...}"  pending_timeout = 10m }`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RaySettings {
    /// The dashboard's address (`http://HOST:8265`); unset: `RAY_ADDRESS` when the stage runs.
    pub address: Option<String>,
    /// Custom resources the job's entrypoint needs (`entrypoint_resources`), in order.
    pub resources: Option<Vec<(String, f64)>>,
    /// The runtime environment's `env_vars`, over the stage's `env`.
    pub env_vars: Option<Vec<(String, String)>>,
    /// The job's `metadata`.
    pub metadata: Option<Vec<(String, String)>>,
    /// The runtime environment's `pip` packages.
    pub pip: Option<Vec<String>>,
    /// More of the runtime environment, a JSON object (`conda`, `container`, ...).
    pub runtime_env: Option<String>,
    /// Stop a job that is still PENDING after this long, in milliseconds.
    pub pending_timeout_ms: Option<u64>,
}

impl Eq for RaySettings {}

impl RaySettings {
    /// Every setting name, for "did you mean".
    pub const NAMES: [&'static str; 7] = [
        "address",
        "resources",
        "env_vars",
        "metadata",
        "pip",
        "runtime_env",
        "pending_timeout",
    ];

    /// The dashboard's base URL from an address as written (`http://HOST:PORT` or
    /// `HOST:PORT`, as Ray's own `RAY_ADDRESS` takes it), or why it is none.
    pub fn dashboard_url(text: &str) -> Result<String, String> {
        let text = text.trim().trim_end_matches('/');
        let rest = match text.split_once("://") {
            None => text,
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err("mlp talks plain HTTP to the Ray dashboard (port 8265); reach a TLS-only endpoint through a local tunnel such as `kubectl port-forward`".into());
            }
            Some((scheme, _)) => {
                return Err(format!(
                    "`{scheme}://` is not the Jobs API: give the dashboard's address, `http://HEAD:8265`"
                ));
            }
        };
        if rest.is_empty() || rest.contains(char::is_whitespace) || rest == "auto" {
            return Err("give the Ray dashboard's address: `http://HEAD:8265`".into());
        }
        Ok(format!("http://{rest}"))
    }

    /// `self` with every setting that `top` has replaced by it.
    pub fn overlay(&self, top: &RaySettings) -> RaySettings {
        RaySettings {
            address: top.address.clone().or_else(|| self.address.clone()),
            resources: top.resources.clone().or_else(|| self.resources.clone()),
            env_vars: top.env_vars.clone().or_else(|| self.env_vars.clone()),
            metadata: top.metadata.clone().or_else(|| self.metadata.clone()),
            pip: top.pip.clone().or_else(|| self.pip.clone()),
            runtime_env: top.runtime_env.clone().or_else(|| self.runtime_env.clone()),
            pending_timeout_ms: top.pending_timeout_ms.or(self.pending_timeout_ms),
        }
    }
}

impl Pipeline {
    pub fn stage(&self, name: &str) -> Option<StageId> {
        self.stages.iter().position(|s| s.name == name)
    }

    /// The stages that depend on `id` (directly).
    pub fn dependents(&self, id: StageId) -> Vec<StageId> {
        self.stages
            .iter()
            .enumerate()
            .filter(|(_, s)| s.deps.iter().any(|d| d.stage == id))
            .map(|(i, _)| i)
            .collect()
    }
}

impl Stage {
    pub fn output(&self, name: &str) -> Option<&Output> {
        self.outputs
            .iter()
            .find(|o| o.name.as_deref() == Some(name))
    }
}
