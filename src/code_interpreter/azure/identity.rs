//! Managed-identity tokens for the dynamic sessions API (audience `https://dynamicsessions.io`),
//! cached until five minutes before they expire.
//!
//! On App Service and Azure Functions the platform sets `IDENTITY_ENDPOINT` and
//! `IDENTITY_HEADER` (API version 2019-08-01, the secret in `X-IDENTITY-HEADER`); elsewhere
//! (VMs, Container Apps without those variables) the Instance Metadata Service answers on a
//! link-local address (API version 2018-02-01, `Metadata: true`). Both return
//! `{access_token, expires_on, ...}` with `expires_on` in Unix seconds.

use super::super::ExecError;
use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

pub const RESOURCE: &str = "https://dynamicsessions.io";
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// Where tokens come from.
#[derive(Clone)]
pub enum Identity {
    /// App Service / Functions: `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`.
    AppService {
        endpoint: String,
        header: String,
        client_id: Option<String>,
    },
    /// The Instance Metadata Service (`IMDS_ENDPOINT`, or another for tests).
    Imds {
        endpoint: String,
        client_id: Option<String>,
    },
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::AppService { endpoint, .. } => write!(f, "AppService({endpoint})"),
            Identity::Imds { endpoint, .. } => write!(f, "Imds({endpoint})"),
        }
    }
}

pub struct TokenSource {
    identity: Identity,
    http: reqwest::Client,
    cache: Mutex<Option<(String, SystemTime)>>,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

fn seconds(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl TokenSource {
    pub fn new(identity: Identity, http: reqwest::Client) -> TokenSource {
        TokenSource {
            identity,
            http,
            cache: Mutex::new(None),
        }
    }

    /// A token valid for at least five more minutes.
    pub async fn token(&self) -> Result<String, ExecError> {
        let mut cache = self.cache.lock().await;
        if let Some((token, expires)) = cache.as_ref() {
            if SystemTime::now() + REFRESH_BEFORE < *expires {
                return Ok(token.clone());
            }
        }
        let (token, expires) = self.fetch().await?;
        *cache = Some((token.clone(), expires));
        Ok(token)
    }

    /// Forgets the cached token (after a 401: it may have been revoked early).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    async fn fetch(&self) -> Result<(String, SystemTime), ExecError> {
        let request = match &self.identity {
            Identity::AppService {
                endpoint,
                header,
                client_id,
            } => {
                let mut query = vec![("resource", RESOURCE), ("api-version", "2019-08-01")];
                if let Some(id) = client_id {
                    query.push(("client_id", id));
                }
                self.http
                    .get(endpoint)
                    .query(&query)
                    .header("X-IDENTITY-HEADER", header)
            }
            Identity::Imds {
                endpoint,
                client_id,
            } => {
                let mut query = vec![("resource", RESOURCE), ("api-version", "2018-02-01")];
                if let Some(id) = client_id {
                    query.push(("client_id", id));
                }
                self.http
                    .get(endpoint)
                    .query(&query)
                    .header("Metadata", "true")
            }
        };
        let response = request
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| {
                ExecError::Auth(format!("cannot reach the managed identity endpoint: {e}"))
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ExecError::Auth(format!(
                "the managed identity endpoint answered {status}: {}",
                super::snippet(&body)
            )));
        }
        let reply: TokenReply = response
            .json()
            .await
            .map_err(|e| ExecError::Auth(format!("unreadable managed identity token: {e}")))?;
        let now = SystemTime::now();
        let expires = reply
            .expires_on
            .as_ref()
            .and_then(seconds)
            .map(|s| UNIX_EPOCH + Duration::from_secs(s))
            .or_else(|| {
                reply
                    .expires_in
                    .as_ref()
                    .and_then(seconds)
                    .map(|s| now + Duration::from_secs(s))
            })
            // Unknown expiry: use it for a few minutes, then ask again.
            .unwrap_or(now + REFRESH_BEFORE + Duration::from_secs(300));
        Ok((reply.access_token, expires))
    }
}
