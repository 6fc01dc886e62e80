//! Session ids: `hex(HMAC-SHA256(key, tenant NUL thread_id))`.
//!
//! Keyed, so an id cannot be guessed from a thread id (ACA treats the identifier as the
//! session's only credential, and Microsoft asks for identifiers that are unguessable);
//! stable, so the same thread finds its session again after a restart or on another instance
//! with the same key; and including the tenant, so two tenants never share a session. The
//! 64 hex characters fit ACA's identifier rules (4-128 characters from a small set) and are
//! safe as a directory name.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;

/// A session's id, with the tenant it belongs to (for per-tenant quotas; the id itself
/// already differs per tenant). Never shown to API clients.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId {
    id: String,
    tenant: String,
}

impl SessionId {
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The tenant whose thread this session serves (empty for the executors' own probes).
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// An id outside the keyed space, for the executors' own probes (self-test).
    pub(crate) fn probe(label: &str) -> SessionId {
        let random: [u8; 16] = rand::random();
        SessionId {
            id: format!("{label}-{}", hex(&random)),
            tenant: String::new(),
        }
    }
}

impl fmt::Debug for SessionId {
    // Shortened: logs should not carry a whole session credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", &self.id[..self.id.len().min(8)])
    }
}

/// The secret that session ids are derived with (`CODE_INTERPRETER_SESSION_KEY`), kept as
/// HMAC's block-sized key (RFC 2104: hashed when longer than a block, zero-padded), which
/// makes keying infallible.
#[derive(Clone)]
pub struct SessionKey([u8; 64]);

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<hidden>)")
    }
}

impl SessionKey {
    pub fn new(secret: &[u8]) -> SessionKey {
        let mut block = [0u8; 64];
        if secret.len() > block.len() {
            block[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            block[..secret.len()].copy_from_slice(secret);
        }
        SessionKey(block)
    }

    /// A random key, for a process whose sessions need not outlive it.
    pub fn random() -> SessionKey {
        let bytes: [u8; 32] = rand::random();
        SessionKey::new(&bytes)
    }

    pub fn session_id(&self, tenant: &str, thread_id: &str) -> SessionId {
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&self.0.into());
        mac.update(tenant.as_bytes());
        mac.update(&[0]);
        mac.update(thread_id.as_bytes());
        SessionId {
            id: hex(&mac.finalize().into_bytes()),
            tenant: tenant.to_string(),
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_keyed_and_per_tenant() {
        let key = SessionKey::new(b"secret");
        let a = key.session_id("default", "thread_abc");
        assert_eq!(a, key.session_id("default", "thread_abc"));
        assert_eq!(a.as_str().len(), 64);
        assert!(a.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, key.session_id("other", "thread_abc"));
        assert_ne!(a, key.session_id("default", "thread_abd"));
        assert_ne!(
            a,
            SessionKey::new(b"other").session_id("default", "thread_abc")
        );
        // The separator keeps (tenant, thread) pairs apart.
        assert_ne!(key.session_id("ab", "c"), key.session_id("a", "bc"),);
        assert!(!format!("{a:?}").contains(&a.as_str()[8..]));
        assert_eq!(a.tenant(), "default");
    }

    #[test]
    fn the_block_sized_key_is_standard_hmac() {
        // RFC 4231 test case 2 (key "Jefe") and test case 6 (a 131-byte key, hashed first):
        // the padded key gives the standard HMAC, so ids match any other HMAC implementation.
        for (secret, data, want) in [
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ] {
            let key = SessionKey::new(&secret);
            let mut mac = <Hmac<Sha256> as KeyInit>::new(&key.0.into());
            mac.update(&data);
            assert_eq!(hex(&mac.finalize().into_bytes()), want);
        }
    }
}
