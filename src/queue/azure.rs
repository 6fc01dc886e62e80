//! The `work` queue on Azure Storage Queues (or Azurite).
//!
//! Messages are the JSON work item, base64-encoded: the Functions queue trigger decodes
//! base64 by default. In standalone mode `consume` takes messages itself and settles each
//! through the delivery policy (`super::delivery`): the message stays invisible while it is
//! processed (its lease renewed), is deleted when done, reappears after a back-off on a
//! transient failure, and goes back as a copy when its tenant has no room or the process
//! stops before it is done.

use super::delivery::{Delivered, Policy, PutBack};
use super::{QueueError, Queued, WorkQueue};
use crate::store::connection_string::StorageAccount;
use async_trait::async_trait;
use azure_core::RetryOptions;
use azure_storage_queues::prelude::QueueClient;
use azure_storage_queues::QueueServiceClientBuilder;
use base64::Engine as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Azure's limit for a message's initial invisibility.
const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct AzureQueue {
    client: QueueClient,
    created: AtomicBool,
}

pub fn encode(message: &Queued) -> String {
    base64::engine::general_purpose::STANDARD.encode(message.to_json())
}

/// Decodes a message text: base64 JSON as we write it, or plain JSON.
pub fn decode(text: &str) -> Option<Queued> {
    let text = text.trim();
    if let Ok(item) = serde_json::from_str(text) {
        return Some(item);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl AzureQueue {
    /// The queue `name`, its calls going through `http` (see `store::azure::http_client`).
    pub fn new(
        account: &StorageAccount,
        name: &str,
        retry: RetryOptions,
        http: &reqwest::Client,
    ) -> Result<Arc<Self>, String> {
        let credentials = account.credentials()?;
        let client =
            QueueServiceClientBuilder::with_location(account.queue_location(), credentials)
                .retry(retry)
                .transport(crate::store::azure::transport(http))
                .build()
                .queue_client(name);
        Ok(Arc::new(AzureQueue {
            client,
            created: AtomicBool::new(false),
        }))
    }

    async fn ensure_queue(&self) -> Result<(), QueueError> {
        if self.created.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.client
            .create()
            .await
            .map_err(|e| QueueError(format!("create queue: {}", e.kind())))?;
        self.created.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Polls the queue and delivers its messages through `policy` (standalone mode only;
    /// under the Functions host the queue trigger delivers instead), at most `concurrency`
    /// at once, until the shutdown begins; then takes no more and returns once the
    /// deliveries in progress are settled (finished, or released).
    pub async fn consume(
        self: Arc<Self>,
        policy: Arc<Policy>,
        concurrency: usize,
        max_idle_wait: Duration,
        lease: Duration,
    ) -> Result<(), QueueError> {
        let shutdown = policy.shutdown().clone();
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let mut deliveries = JoinSet::new();
        let mut idle = Duration::from_millis(50);
        // Waits `wait` unless the shutdown begins first; false then.
        let pause = |wait: Duration| {
            let shutdown = shutdown.clone();
            async move {
                tokio::select! {
                    () = tokio::time::sleep(wait) => true,
                    () = shutdown.stopping() => false,
                }
            }
        };
        let ended = 'polling: loop {
            // Finished deliveries leave the set (a panic in one is this consumer's failure).
            while let Some(joined) = deliveries.try_join_next() {
                if let Err(e) = joined {
                    break 'polling Err(QueueError(format!("a delivery failed: {e}")));
                }
            }
            if shutdown.is_stopping() {
                break Ok(());
            }
            if let Err(e) = self.ensure_queue().await {
                log::warn!("{e}");
                pause(max_idle_wait).await;
                continue;
            }
            let free = permits.available_permits().clamp(1, 32) as u8;
            let batch = tokio::select! {
                batch = self
                    .client
                    .get_messages()
                    .number_of_messages(free)
                    .visibility_timeout(lease)
                    .into_future() => batch,
                () = shutdown.stopping() => break Ok(()),
            };
            let messages = match batch {
                Ok(r) => r.messages,
                Err(e) => {
                    log::warn!("work queue poll failed: {}", e.kind());
                    pause(max_idle_wait).await;
                    continue;
                }
            };
            if messages.is_empty() {
                pause(idle).await;
                idle = (idle * 2).min(max_idle_wait);
                continue;
            }
            idle = Duration::from_millis(50);
            for message in messages {
                // A webhook delivery takes none of the runs' permits: the policy bounds
                // those with slots of their own (a slow receiver must not hold up runs).
                let webhook = decode(&message.message_text).is_some_and(|q| q.item.is_webhook());
                // Once stopping, the rest go straight to the policy, which releases them.
                let permit = if webhook {
                    None
                } else {
                    tokio::select! {
                        permit = permits.clone().acquire_owned() => permit.ok(),
                        () = shutdown.stopping() => None,
                    }
                };
                let (queue, policy) = (self.clone(), policy.clone());
                deliveries.spawn(async move {
                    queue.deliver(&policy, message, lease).await;
                    drop(permit);
                });
            }
        };
        while let Some(joined) = deliveries.join_next().await {
            if let Err(e) = joined {
                log::error!("a work item's delivery failed: {e}");
            }
        }
        ended
    }

    async fn deliver(
        &self,
        policy: &Policy,
        message: azure_storage_queues::operations::Message,
        lease: Duration,
    ) {
        let Some(queued) = decode(&message.message_text) else {
            log::warn!("dropping an unreadable work queue message");
            let _ = self
                .client
                .pop_receipt_client(message.pop_receipt())
                .delete()
                .await;
            return;
        };
        let dequeued = message.dequeue_count.min(u64::from(u32::MAX)) as u32;
        let attempt = queued.prior_attempts.saturating_add(dequeued);
        let mut leased = Leased {
            queue: self,
            receipt: tokio::sync::Mutex::new(message.pop_receipt()),
            text: message.message_text,
            lease,
        };
        policy.settle(&queued, attempt, &mut leased).await;
    }
}

/// A message this consumer took, invisible to others for `lease` from its last renewal.
struct Leased<'a> {
    queue: &'a AzureQueue,
    /// Changes with each renewal.
    receipt: tokio::sync::Mutex<azure_storage_queues::PopReceipt>,
    text: String,
    lease: Duration,
}

impl Leased<'_> {
    async fn client(&self) -> azure_storage_queues::PopReceiptClient {
        let receipt = self.receipt.lock().await.clone();
        self.queue.client.pop_receipt_client(receipt)
    }

    /// Makes the message visible again after `delay`.
    async fn show_after(&self, delay: Duration) {
        if let Err(e) = self.client().await.update(self.text.clone(), delay).await {
            log::warn!("cannot put a work item back: {}", e.kind());
        }
    }
}

#[async_trait]
impl Delivered for Leased<'_> {
    async fn remove(&mut self) {
        if let Err(e) = self.client().await.delete().await {
            log::warn!("cannot delete a finished work item: {}", e.kind());
        }
    }

    async fn retry_after(&mut self, delay: Duration) {
        self.show_after(delay).await;
    }

    async fn put_back(&mut self, back: PutBack<'_>) {
        match self.queue.put(back.copy, back.delay).await {
            Ok(()) => self.remove().await,
            Err(e) => {
                log::warn!(
                    "cannot put back a copy of a work item ({}): {e}",
                    back.why.describe()
                );
                self.show_after(back.delay).await;
            }
        }
    }

    /// Renews the lease at half its length (a turn's model calls can be slow).
    async fn hold(&self) {
        loop {
            tokio::time::sleep(self.lease / 2).await;
            let mut current = self.receipt.lock().await;
            match self
                .queue
                .client
                .pop_receipt_client(current.clone())
                .update(self.text.clone(), self.lease)
                .await
            {
                Ok(r) => {
                    *current = azure_storage_queues::PopReceipt::new(
                        current.message_id().to_string(),
                        r.pop_receipt,
                    )
                }
                Err(e) => log::warn!("cannot renew a work item's lease: {}", e.kind()),
            }
        }
    }
}

#[async_trait]
impl WorkQueue for AzureQueue {
    async fn put(&self, message: &Queued, delay: Duration) -> Result<(), QueueError> {
        self.ensure_queue().await?;
        self.client
            .put_message(encode(message))
            .visibility_timeout(delay.min(MAX_DELAY))
            .await
            .map_err(|e| QueueError(format!("put message: {}", e.kind())))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{RunTurn, WorkItem};

    #[test]
    fn messages_round_trip_as_base64_json() {
        let message = Queued {
            item: WorkItem::Step(RunTurn {
                tenant: "t".into(),
                thread_id: "thread_x".into(),
                run_id: "run_x".into(),
                seq: 3,
            }),
            prior_attempts: 1,
        };
        let text = encode(&message);
        assert!(!text.contains('{'));
        assert_eq!(decode(&text), Some(message.clone()));
        assert_eq!(decode(&message.to_json()), Some(message));
        assert_eq!(decode("garbage"), None);
        // As the code before the enum wrote it.
        let old = base64::engine::general_purpose::STANDARD.encode(
            r#"{"kind":"expire","tenant":"t","thread_id":"thread_x","run_id":"run_x","seq":2}"#,
        );
        assert_eq!(
            decode(&old).map(|q| q.item.describe()),
            Some("expire run_x turn 2 (t)".to_string())
        );
    }
}
