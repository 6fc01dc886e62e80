//! One delivery attempt of a webhook event (a `work` item of kind `webhook`), and what
//! follows it.
//!
//! The event is posted to its tenant's endpoint with the `webhook-*` headers, signed at the
//! time of the attempt (the SDKs refuse a timestamp more than 300 s old) over the body as
//! queued, byte for byte, and with the same `webhook-id` on every attempt. Any 2xx is
//! delivered; anything else (3xx included), a connection failure or the timeout
//! (`WEBHOOK_TIMEOUT_SECONDS`) is a failed attempt: the next one is queued as a fresh item
//! due after an exponential back-off with jitter (`WEBHOOK_RETRY_BASE_MS`, doubled per
//! attempt, at most an hour), until `WEBHOOK_RETRY_HOURS` after the event; then the event
//! is dead-lettered: stored readably under `t/<tenant>/webhook-dead/<evt_id>` and logged.
//! Attempts go through the work queue's one delivery policy, in slots of their own
//! (`WEBHOOK_CONCURRENCY`), so that no receiver can hold up a run.

use super::event::webhook_id;
use super::signing::signature;
use super::Webhooks;
use crate::queue::{Outcome, WebhookPost, WorkItem};
use crate::store::{self, keys, PutMode, Store};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn now() -> i64 {
    crate::model::now()
}

/// The wait after failed attempt `attempt` (from 1): `base` doubled per attempt, at most
/// `cap`, then between three quarters and all of it.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    use rand::Rng;
    let full = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(cap);
    full.mul_f64(rand::thread_rng().gen_range(0.75..=1.0))
}

impl Webhooks {
    /// Makes one attempt at `post`: `Done` when delivered (or dead-lettered, or nowhere to
    /// go any more), `Later` with the next attempt, `Retry` when not even that could be
    /// settled (storage trouble while dead-lettering).
    pub async fn deliver(&self, store: &dyn Store, post: &WebhookPost) -> Outcome {
        let Some(endpoint) = self.settings.endpoint(&post.tenant) else {
            log::warn!(
                "webhook event {} {} ({}): the tenant has no webhook endpoint any more; dropped",
                post.event_type,
                post.event_id,
                post.tenant
            );
            return Outcome::Done;
        };
        if post.attempt > 1 {
            let _ = self.counts.awaiting_retry.fetch_update(
                Ordering::Relaxed,
                Ordering::Relaxed,
                |n| n.checked_sub(1),
            );
        }
        let id = webhook_id(&post.event_id);
        let timestamp = now();
        let signed = signature(&endpoint.secret.0, &id, timestamp, post.body.as_bytes());
        let sent = self
            .client
            .post(&endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signed)
            .body(post.body.clone())
            .send()
            .await;
        let failure = match sent {
            Ok(answer) if answer.status().is_success() => {
                self.counts.delivered.fetch_add(1, Ordering::Relaxed);
                log::debug!(
                    "webhook event {} {} delivered (attempt {})",
                    post.event_type,
                    post.event_id,
                    post.attempt
                );
                if post.attempt > 1 {
                    self.log_counts();
                }
                return Outcome::Done;
            }
            Ok(answer) => format!("the endpoint answered {}", answer.status().as_u16()),
            Err(e) if e.is_timeout() => format!(
                "no answer within {:?} (WEBHOOK_TIMEOUT_SECONDS)",
                self.settings.timeout
            ),
            Err(e) if e.is_connect() => "cannot connect to the endpoint".to_string(),
            Err(_) => "the request failed".to_string(),
        };
        self.counts.failed_attempts.fetch_add(1, Ordering::Relaxed);
        let delay = backoff(
            post.attempt,
            self.settings.retry_base,
            self.settings.retry_cap,
        );
        let give_up_at = post
            .created_at
            .saturating_add(self.settings.retry_for.as_secs().min(i64::MAX as u64) as i64);
        let next_at = now().saturating_add(delay.as_secs().min(i64::MAX as u64) as i64);
        if next_at > give_up_at {
            log::warn!(
                "webhook event {} {} ({}) failed attempt {}: {failure}; retried for {:?}, \
                 dead-lettered",
                post.event_type,
                post.event_id,
                post.tenant,
                post.attempt,
                self.settings.retry_for
            );
            return match self.dead_letter(store, post, &failure).await {
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::Retry(e),
            };
        }
        log::warn!(
            "webhook event {} {} ({}) failed attempt {}: {failure}; next attempt in {:?}",
            post.event_type,
            post.event_id,
            post.tenant,
            post.attempt,
            delay
        );
        self.counts.awaiting_retry.fetch_add(1, Ordering::Relaxed);
        self.log_counts();
        let next = WebhookPost {
            attempt: post.attempt.saturating_add(1),
            ..post.clone()
        };
        Outcome::Later(Box::new(WorkItem::Webhook(next)), delay)
    }

    /// Stores the event, readable, under `t/<tenant>/webhook-dead/<evt_id>`: the event as
    /// sent, its `webhook-id`, the attempts made and the last failure.
    pub async fn dead_letter(
        &self,
        store: &dyn Store,
        post: &WebhookPost,
        failure: &str,
    ) -> Result<(), String> {
        let event: Value =
            serde_json::from_str(&post.body).unwrap_or(Value::String(post.body.clone()));
        let record = json!({
            "event": event,
            "webhook_id": webhook_id(&post.event_id),
            "attempts": post.attempt,
            "last_error": failure,
            "dead_at": now(),
        });
        let key = keys::webhook_dead(&post.tenant, &post.event_id);
        store::put_json(store, &key, &record, PutMode::Overwrite)
            .await
            .map_err(|e| format!("cannot dead-letter webhook event {}: {e}", post.event_id))?;
        self.counts.dead.fetch_add(1, Ordering::Relaxed);
        log::warn!(
            "webhook event {} {} ({}) dead-lettered at {key} after {} attempt(s): {failure}",
            post.event_type,
            post.event_id,
            post.tenant,
            post.attempt
        );
        self.log_counts();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_doubles_with_jitter_up_to_its_cap() {
        let (base, cap) = (Duration::from_secs(5), Duration::from_secs(3600));
        for attempt in 1..=40 {
            let full = (base * 2u32.pow(attempt.min(20) - 1)).min(cap);
            let wait = backoff(attempt, base, cap);
            assert!(
                wait <= full && wait >= full.mul_f64(0.75),
                "{attempt}: {wait:?}"
            );
        }
        assert!(backoff(30, base, cap) <= cap);
    }
}
