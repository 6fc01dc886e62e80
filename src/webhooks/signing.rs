//! Standard Webhooks signing, exactly as OpenAI's SDKs verify it
//! (`client.webhooks.unwrap` / `verify_signature`): the headers `webhook-id`,
//! `webhook-timestamp` (Unix seconds; the SDKs refuse one more than 300 s away from their
//! clock) and `webhook-signature` = `v1,` + base64 of HMAC-SHA256, keyed with the secret's
//! key (`config::WebhookSecret`), over `<webhook-id>.<timestamp>.<body>`: the body's exact
//! bytes, as sent.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `webhook-signature` header of `body` sent with `webhook_id` at `timestamp`.
pub fn signature(key: &[u8], webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length: this never fails.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return "v1,".to_string();
    };
    mac.update(webhook_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WebhookSecret;

    /// The worked example of the protocol notes (§13), verified there with both official
    /// SDKs: the same secret, id, timestamp and body give the same signature.
    #[test]
    fn the_worked_example_signs_as_the_sdks_verify() {
        let secret =
            WebhookSecret::parse("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        assert_eq!(secret.0, b"0123456789abcdef0123456789abcdef");
        let body = r#"{"id":"evt_685343a1381c819085d44c354e1b330e","type":"response.completed","created_at":1750287018,"data":{"id":"resp_abc123"}}"#;
        assert_eq!(
            signature(
                &secret.0,
                "wh_685342e6c53c8190a1be43f081506c52",
                1750287018,
                body.as_bytes()
            ),
            "v1,QmKKuENL3bKtNDRb1Rm00qdeTSH/JQy6ZVeIF8BGVL4="
        );
        // One byte more, another signature.
        let changed = format!("{body} ");
        assert_ne!(
            signature(
                &secret.0,
                "wh_685342e6c53c8190a1be43f081506c52",
                1750287018,
                changed.as_bytes()
            ),
            "v1,QmKKuENL3bKtNDRb1Rm00qdeTSH/JQy6ZVeIF8BGVL4="
        );
    }

    #[test]
    fn secrets_are_read_as_the_sdks_read_them() {
        // Not whsec_: the secret's own bytes.
        assert_eq!(WebhookSecret::parse("plain").unwrap().0, b"plain");
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
        assert!(WebhookSecret::parse("whsec_").is_err());
        assert!(!format!("{:?}", WebhookSecret::parse("plain").unwrap()).contains("plain"));
    }
}
