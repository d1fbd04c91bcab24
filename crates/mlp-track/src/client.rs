//! A small blocking JSON client for MLflow's REST API: short timeouts, the credentials in
//! a header, errors that name the endpoint and MLflow's own message (never a secret).

use std::time::Duration;

use serde_json::Value;

use crate::TrackError;
use crate::target::{Target, redact_uri};

/// Connecting gives up after this: a server that is down must not slow a run.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One request, from connecting to the last byte of the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
}

/// An answer that is not a 2xx: its status and MLflow's `error_code`.
pub(crate) struct Refused {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl Client {
    pub(crate) fn new(t: &Target) -> Result<Client, TrackError> {
        let base = t.uri.trim_end_matches('/').to_string();
        if base.starts_with("https://") {
            return Err(TrackError::Config(format!(
                "`{}`: this build of mlp speaks plain `http://` to MLflow; reach the server through an HTTP endpoint (a local proxy, or the server's own port)",
                redact_uri(&base)
            )));
        }
        if !base.starts_with("http://") {
            return Err(TrackError::Config(format!(
                "`{}` is not an MLflow tracking server's URI: give `http://HOST:PORT`",
                redact_uri(&base)
            )));
        }
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .user_agent(concat!("mlp/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            agent: config.into(),
            base,
            auth: t.auth.header(),
        })
    }

    /// `GET /api/2.0/mlflow/<endpoint>?<query>`.
    pub(crate) fn get(
        &self,
        endpoint: &str,
        query: &[(&str, &str)],
    ) -> Result<Result<Value, Refused>, TrackError> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        let mut req = self.agent.get(&url);
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        answer(endpoint, req.call())
    }

    /// `POST /api/2.0/mlflow/<endpoint>` with a JSON body.
    pub(crate) fn post(
        &self,
        endpoint: &str,
        body: &Value,
    ) -> Result<Result<Value, Refused>, TrackError> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        let mut req = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json");
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        answer(endpoint, req.send(body.to_string().as_bytes()))
    }

    /// `POST`, where any refusal is an error.
    pub(crate) fn call(&self, endpoint: &str, body: &Value) -> Result<Value, TrackError> {
        self.post(endpoint, body)?
            .map_err(|r| refused(endpoint, &r))
    }

    /// `PUT /api/2.0/mlflow-artifacts/artifacts/<path>`: one file into the server's
    /// artifact store (`mlflow server` serves artifacts by default).
    pub(crate) fn put_artifact(&self, path: &str, bytes: &[u8]) -> Result<(), TrackError> {
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}",
            self.base,
            encode_path(path)
        );
        let mut req = self
            .agent
            .put(&url)
            .header("Content-Type", "application/octet-stream");
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let endpoint = "mlflow-artifacts";
        match answer(endpoint, req.send(bytes))? {
            Ok(_) => Ok(()),
            Err(r) => Err(refused(endpoint, &r)),
        }
    }
}

fn answer(
    endpoint: &str,
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Result<Value, Refused>, TrackError> {
    let mut resp = r.map_err(|e| transport(endpoint, &e))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| transport(endpoint, &e))?;
    let json: Value = if text.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    if (200..300).contains(&status) {
        if json.is_null() {
            return Err(TrackError::Server(format!(
                "MLflow's `{endpoint}` answered something that is not JSON (is this an MLflow server?)"
            )));
        }
        return Ok(Ok(json));
    }
    Ok(Err(Refused {
        status,
        code: json["error_code"].as_str().unwrap_or("").to_string(),
        message: json["message"]
            .as_str()
            .map(|m| m.chars().take(300).collect())
            .unwrap_or_else(|| text.chars().take(200).collect()),
    }))
}

/// A request that got no answer: the server is down, unreachable or too slow.
fn transport(endpoint: &str, e: &ureq::Error) -> TrackError {
    let what = match e {
        ureq::Error::Timeout(_) => "timed out".to_string(),
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        other => other.to_string(),
    };
    TrackError::Unreachable(format!("MLflow's `{endpoint}`: {what}"))
}

pub(crate) fn refused(endpoint: &str, r: &Refused) -> TrackError {
    let hint = match r.status {
        401 | 403 => {
            " (set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"
        }
        _ => "",
    };
    let code = if r.code.is_empty() {
        String::new()
    } else {
        format!(" {}", r.code)
    };
    TrackError::Server(format!(
        "MLflow's `{endpoint}` answered {}{code}: {}{hint}",
        r.status, r.message
    ))
}

/// Percent-encode each segment of an artifact path (`/` kept).
fn encode_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
