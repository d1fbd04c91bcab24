//! The few calls of Ray's Jobs REST API (and one of its state API) that the Ray executor
//! makes: blocking HTTP with `ureq`, JSON with `serde_json`.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// What Ray says of one job (`GET /api/jobs/`, `GET /api/jobs/ID`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub(crate) struct JobInfo {
    #[serde(default)]
    pub submission_id: Option<String>,
    /// PENDING, RUNNING, STOPPED, SUCCEEDED or FAILED.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub driver_node_id: Option<String>,
    #[serde(default)]
    pub driver_exit_code: Option<i32>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

impl JobInfo {
    pub fn terminal(&self) -> bool {
        matches!(self.status.as_str(), "STOPPED" | "SUCCEEDED" | "FAILED")
    }
}

/// A node of the cluster (`GET /api/v0/nodes`).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Node {
    pub node_id: String,
    #[serde(default)]
    pub node_ip: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub resources_total: BTreeMap<String, f64>,
}

/// A call that did not get an answer it could use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ApiError {
    /// No HTTP answer: the cluster is down, or the address is wrong.
    Unreachable(String),
    /// An HTTP answer other than 2xx: the status and the body.
    Status(u16, String),
    /// A 2xx answer that is not what the API documents.
    Bad(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Unreachable(e) => write!(f, "no answer ({e})"),
            ApiError::Status(code, body) => write!(f, "HTTP {code}: {}", last_line(body)),
            ApiError::Bad(e) => write!(f, "an answer mlp cannot read ({e})"),
        }
    }
}

/// The last non-empty line of a (Python traceback) body: the error itself.
pub(crate) fn last_line(body: &str) -> &str {
    body.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && *l != ".")
        .unwrap_or("")
}

/// The one HTTP agent of the process (it keeps connections to the dashboard open).
fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A dashboard on the cluster's network: no proxy from the environment.
            .proxy(None)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into()
    })
}

/// The biggest answer read (job logs are returned whole).
const BODY_LIMIT: u64 = 256 << 20;

fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<String, ApiError> {
    let mut resp = r.map_err(|e| ApiError::Unreachable(e.to_string()))?;
    let code = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(BODY_LIMIT)
        .read_to_string()
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if (200..300).contains(&code) {
        Ok(text)
    } else {
        Err(ApiError::Status(code, text))
    }
}

fn json<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, ApiError> {
    serde_json::from_str(text).map_err(|e| ApiError::Bad(e.to_string()))
}

/// The Jobs API of one cluster: `base` is `http://HOST:PORT`.
#[derive(Debug, Clone)]
pub(crate) struct Client<'a> {
    pub base: &'a str,
}

impl Client<'_> {
    fn get(&self, path: &str) -> Result<String, ApiError> {
        answer(agent().get(&format!("{}{path}", self.base)).call())
    }

    fn post(&self, path: &str, body: &Value) -> Result<String, ApiError> {
        answer(
            agent()
                .post(&format!("{}{path}", self.base))
                .content_type("application/json")
                .send(body.to_string()),
        )
    }

    /// `POST /api/jobs/`: the submission id Ray took.
    pub fn submit(&self, body: &Value) -> Result<String, ApiError> {
        let v: Value = json(&self.post("/api/jobs/", body)?)?;
        v.get("submission_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ApiError::Bad(format!("no submission_id in {v}")))
    }

    /// `GET /api/jobs/ID` (`None`: Ray does not know it).
    pub fn job(&self, id: &str) -> Result<Option<JobInfo>, ApiError> {
        match self.get(&format!("/api/jobs/{}", encode(id))) {
            Ok(text) => json(&text).map(Some),
            Err(ApiError::Status(404, _)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/jobs/`: every job the cluster knows.
    pub fn jobs(&self) -> Result<Vec<JobInfo>, ApiError> {
        json(&self.get("/api/jobs/")?)
    }

    /// `GET /api/jobs/ID/logs`.
    pub fn logs(&self, id: &str) -> Result<String, ApiError> {
        let v: Value = json(&self.get(&format!("/api/jobs/{}/logs", encode(id)))?)?;
        Ok(v.get("logs")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string())
    }

    /// `POST /api/jobs/ID/stop`.
    pub fn stop(&self, id: &str) -> Result<(), ApiError> {
        self.post(&format!("/api/jobs/{}/stop", encode(id)), &Value::Null)
            .map(|_| ())
    }

    /// `GET /api/v0/nodes`: the nodes of the cluster (the state API of `ray[default]`).
    pub fn nodes(&self) -> Result<Vec<Node>, ApiError> {
        let v: Value = json(&self.get("/api/v0/nodes?limit=10000")?)?;
        let list = v
            .pointer("/data/result/result")
            .cloned()
            .ok_or_else(|| ApiError::Bad("no node list".into()))?;
        serde_json::from_value(list).map_err(|e| ApiError::Bad(e.to_string()))
    }
}

/// A submission id in a URL path (mlp's ids are `[A-Za-z0-9._-]`; anything else escaped).
fn encode(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_job_as_ray_writes_it() {
        let text = r#"{"type": "SUBMISSION", "job_id": null, "submission_id": "t1", "driver_info": null, "status": "FAILED", "entrypoint": "exit 3", "message": "Job entrypoint command failed with exit code 3", "error_type": "JOB_ENTRYPOINT_COMMAND_ERROR", "start_time": 1, "end_time": 2, "metadata": {"a": "b"}, "runtime_env": {}, "driver_agent_http_address": "http://10.0.0.2:52365", "driver_node_id": "b0c7", "driver_exit_code": 3}"#;
        let j: JobInfo = json(text).unwrap();
        assert_eq!(j.status, "FAILED");
        assert!(j.terminal());
        assert_eq!(j.driver_exit_code, Some(3));
        assert_eq!(j.driver_node_id.as_deref(), Some("b0c7"));
        assert_eq!(j.metadata.unwrap()["a"], "b");
    }

    #[test]
    fn the_error_of_a_traceback_is_its_last_line() {
        let body = "Traceback (most recent call last):\n  File x\nValueError: Job with submission_id t1 already exists.\n.\n";
        assert_eq!(
            last_line(body),
            "ValueError: Job with submission_id t1 already exists."
        );
    }

    #[test]
    fn ids_are_escaped_in_paths() {
        assert_eq!(encode("mlp-1.a_b"), "mlp-1.a_b");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}
