//! Bearer-key authentication and the tenant each key names.
//!
//! Keys are compared as SHA-256 digests with a constant-time comparison against every
//! configured key, so neither the content nor the length of a key leaks through timing.
//! With no keys configured the service is open (and `config` only lets it bind loopback).

use crate::config::{ApiKey, DEFAULT_TENANT};
use crate::error::ApiError;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub struct Auth {
    keys: Vec<([u8; 32], String)>,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

const MISSING_KEY: &str = "You didn't provide an API key. You need to provide your API key in an \
     Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";

impl Auth {
    pub fn new(keys: &[ApiKey]) -> Self {
        Auth {
            keys: keys
                .iter()
                .map(|k| (digest(&k.key), k.tenant.clone()))
                .collect(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The tenant of the request, from its `Authorization` header.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<String, ApiError> {
        if self.is_open() {
            return Ok(DEFAULT_TENANT.to_string());
        }
        let token = authorization
            .map(str::trim)
            .and_then(|h| {
                let (scheme, rest) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(ApiError::Unauthorized {
                message: MISSING_KEY.into(),
                code: None,
            });
        };
        let presented = digest(token);
        let mut found: Option<&str> = None;
        for (key, tenant) in &self.keys {
            if bool::from(key.ct_eq(&presented)) {
                found = Some(tenant);
            }
        }
        match found {
            Some(tenant) => Ok(tenant.to_string()),
            None => {
                // Show only the last four characters, as OpenAI masks keys.
                let tail: String = token
                    .chars()
                    .rev()
                    .take(4)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                Err(ApiError::Unauthorized {
                    message: format!(
                        "Incorrect API key provided: ****{tail}. Check the key the service \
                         was configured with."
                    ),
                    code: Some("invalid_api_key".into()),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new(&[
            ApiKey {
                key: "sk-a".into(),
                tenant: "default".into(),
            },
            ApiKey {
                key: "sk-bbbbbbbb".into(),
                tenant: "b".into(),
            },
        ])
    }

    #[test]
    fn keys_map_to_tenants() {
        assert_eq!(auth().authenticate(Some("Bearer sk-a")).unwrap(), "default");
        assert_eq!(
            auth().authenticate(Some("bearer  sk-bbbbbbbb ")).unwrap(),
            "b"
        );
    }

    #[test]
    fn missing_and_wrong_keys_are_401_without_the_key() {
        let e = auth().authenticate(None).unwrap_err();
        assert_eq!(e.status(), 401);
        let e = auth()
            .authenticate(Some("Bearer sk-secret-value-1234"))
            .unwrap_err();
        assert_eq!(e.status(), 401);
        assert_eq!(e.code(), Some("invalid_api_key"));
        assert!(!e.to_string().contains("secret"));
        assert!(auth().authenticate(Some("Basic sk-a")).is_err());
    }

    #[test]
    fn open_mode_accepts_anything() {
        assert_eq!(Auth::new(&[]).authenticate(None).unwrap(), DEFAULT_TENANT);
    }
}
