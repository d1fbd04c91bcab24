//! Where runs go: the tracking URI, the experiment and the credentials.

/// How to authenticate, as MLflow's client reads it from the environment.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    #[default]
    None,
    /// `MLFLOW_TRACKING_TOKEN`: `Authorization: Bearer ...`.
    Token(String),
    /// `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD`: HTTP basic auth.
    Basic { user: String, password: String },
}

impl Auth {
    /// From MLflow's variables, read through `var` (the token wins over a user name).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Auth {
        if let Some(t) = var("MLFLOW_TRACKING_TOKEN").filter(|t| !t.is_empty()) {
            return Auth::Token(t);
        }
        match (
            var("MLFLOW_TRACKING_USERNAME").filter(|u| !u.is_empty()),
            var("MLFLOW_TRACKING_PASSWORD"),
        ) {
            (Some(user), password) => Auth::Basic {
                user,
                password: password.unwrap_or_default(),
            },
            _ => Auth::None,
        }
    }

    /// The `Authorization` header's value, if any.
    pub(crate) fn header(&self) -> Option<String> {
        use base64::Engine as _;
        match self {
            Auth::None => None,
            Auth::Token(t) => Some(format!("Bearer {t}")),
            Auth::Basic { user, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
        }
    }
}

/// Never shows a secret, even in `{:?}`.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "Auth::None",
            Auth::Token(_) => "Auth::Token(<redacted>)",
            Auth::Basic { .. } => "Auth::Basic(<redacted>)",
        })
    }
}

/// An MLflow tracking server and the experiment runs go to.
#[derive(Clone, Debug)]
pub struct Target {
    /// `http://host:port` (a path prefix is kept; a trailing `/` is not).
    pub uri: String,
    /// The experiment's name (made when it does not exist).
    pub experiment: String,
    pub auth: Auth,
}

impl Target {
    /// The URI as it may be shown: without any `user:password@`.
    pub fn display_uri(&self) -> String {
        redact_uri(&self.uri)
    }
}

/// `scheme://user:pass@host/...` without the user info.
pub fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_wins_and_debug_hides_it() {
        let vars = |k: &str| match k {
            "MLFLOW_TRACKING_TOKEN" => Some("s3cr3t".to_string()),
            "MLFLOW_TRACKING_USERNAME" => Some("u".to_string()),
            _ => None,
        };
        let a = Auth::from_vars(vars);
        assert_eq!(a.header().as_deref(), Some("Bearer s3cr3t"));
        assert!(!format!("{a:?}").contains("s3cr3t"));
    }

    #[test]
    fn basic_auth_header() {
        let a = Auth::from_vars(|k| match k {
            "MLFLOW_TRACKING_USERNAME" => Some("alice".into()),
            "MLFLOW_TRACKING_PASSWORD" => Some("pw".into()),
            _ => None,
        });
        assert_eq!(a.header().as_deref(), Some("Basic YWxpY2U6cHc="));
        assert_eq!(Auth::from_vars(|_| None), Auth::None);
    }

    #[test]
    fn user_info_is_not_shown() {
        assert_eq!(
            redact_uri("http://bob:pw@mlflow:5000/x@y"),
            "http://mlflow:5000/x@y"
        );
        assert_eq!(redact_uri("http://127.0.0.1:5000"), "http://127.0.0.1:5000");
    }
}
