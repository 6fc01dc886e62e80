//! The `work` queue on Azure Storage Queues (or Azurite).
//!
//! Messages are the JSON work item, base64-encoded: the Functions queue trigger decodes
//! base64 by default. In standalone mode `start_poller` takes messages itself: it keeps a
//! message invisible while it is processed (renewing the lease), deletes it when done, lets
//! it reappear after a back-off on a transient failure, and ends the run on the last attempt
//! (`super::deliver`). A message of a tenant that already has its share of items in progress
//! is put back as a delayed copy (`defer`), so that other tenants' items are not held up.

use super::fair::TenantSlots;
use super::{deliver, retry_backoff, Outcome, QueueError, WorkHandler, WorkItem, WorkQueue};
use crate::store::connection_string::StorageAccount;
use async_trait::async_trait;
use azure_core::RetryOptions;
use azure_storage_queues::prelude::QueueClient;
use azure_storage_queues::QueueServiceClientBuilder;
use base64::Engine as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Azure's limit for a message's initial invisibility.
const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct AzureQueue {
    client: QueueClient,
    created: AtomicBool,
}

pub fn encode(item: &WorkItem) -> String {
    base64::engine::general_purpose::STANDARD.encode(item.to_json())
}

/// Decodes a message text: base64 JSON as we write it, or plain JSON.
pub fn decode(text: &str) -> Option<WorkItem> {
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

    /// Polls the queue and delivers to `handler`, at most `slots` items at once and a
    /// tenant's share of them (standalone mode only; under the Functions host the queue
    /// trigger delivers instead). Runs until the task is dropped.
    pub fn start_poller(
        self: &Arc<Self>,
        handler: Arc<dyn WorkHandler>,
        slots: Arc<TenantSlots>,
        concurrency: usize,
        max_attempts: u32,
        max_idle_wait: Duration,
        lease: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let queue = self.clone();
        tokio::spawn(async move {
            let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
            let mut idle = Duration::from_millis(50);
            loop {
                if let Err(e) = queue.ensure_queue().await {
                    log::warn!("{e}");
                    tokio::time::sleep(max_idle_wait).await;
                    continue;
                }
                let free = permits.available_permits().clamp(1, 32) as u8;
                let batch = queue
                    .client
                    .get_messages()
                    .number_of_messages(free)
                    .visibility_timeout(lease)
                    .await;
                let messages = match batch {
                    Ok(r) => r.messages,
                    Err(e) => {
                        log::warn!("work queue poll failed: {}", e.kind());
                        tokio::time::sleep(max_idle_wait).await;
                        continue;
                    }
                };
                if messages.is_empty() {
                    tokio::time::sleep(idle).await;
                    idle = (idle * 2).min(max_idle_wait);
                    continue;
                }
                idle = Duration::from_millis(50);
                for message in messages {
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        return;
                    };
                    let queue = queue.clone();
                    let handler = handler.clone();
                    let slots = slots.clone();
                    tokio::spawn(async move {
                        queue
                            .handle_message(handler.as_ref(), &slots, message, max_attempts, lease)
                            .await;
                        drop(permit);
                    });
                }
            }
        })
    }

    async fn handle_message(
        &self,
        handler: &dyn WorkHandler,
        slots: &Arc<TenantSlots>,
        message: azure_storage_queues::operations::Message,
        max_attempts: u32,
        lease: Duration,
    ) {
        let Some(item) = decode(&message.message_text) else {
            log::warn!("dropping an unreadable work queue message");
            let _ = self
                .client
                .pop_receipt_client(message.pop_receipt())
                .delete()
                .await;
            return;
        };
        let dequeued = message.dequeue_count.min(u64::from(u32::MAX)) as u32;
        let attempt = item.prior_attempts.saturating_add(dequeued);
        let Some(slot) = slots.try_acquire(&item.tenant) else {
            let pop = self.client.pop_receipt_client(message.pop_receipt());
            let copy = deferred_copy(&item, attempt);
            let delay = defer_delay(slots.held_by(&item.tenant));
            match self.enqueue(&copy, delay).await {
                Ok(()) => {
                    let _ = pop.delete().await;
                }
                // Not put back: let this message come back after its lease instead.
                Err(e) => log::warn!("cannot defer a work item: {e}"),
            }
            return;
        };
        // Keep the message invisible while the step runs (LLM calls can be slow).
        let receipt = Arc::new(tokio::sync::Mutex::new(message.pop_receipt()));
        let renewer = {
            let client = self.client.clone();
            let receipt = receipt.clone();
            let text = message.message_text.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 2).await;
                    let mut current = receipt.lock().await;
                    match client
                        .pop_receipt_client(current.clone())
                        .update(text.clone(), lease)
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
            })
        };
        let outcome = deliver(handler, &item, attempt, max_attempts).await;
        drop(slot);
        renewer.abort();
        let receipt = receipt.lock().await.clone();
        let pop = self.client.pop_receipt_client(receipt);
        match outcome {
            Outcome::Done => {
                if let Err(e) = pop.delete().await {
                    log::warn!("cannot delete a finished work item: {}", e.kind());
                }
            }
            Outcome::Retry(_) => {
                let _ = pop
                    .update(message.message_text.clone(), retry_backoff(attempt))
                    .await;
            }
        }
    }
}

/// The copy of `item` that goes back to the queue when its tenant has no free slot on its
/// `attempt`-th delivery: that delivery did not process it, so it does not count.
pub fn deferred_copy(item: &WorkItem, attempt: u32) -> WorkItem {
    WorkItem {
        prior_attempts: attempt.saturating_sub(1),
        ..item.clone()
    }
}

/// How long a deferred item waits: longer the more of its tenant's items are in progress
/// (those take a while to finish), with jitter so a burst does not come back at once.
pub fn defer_delay(tenant_in_progress: usize) -> Duration {
    use rand::Rng;
    let base = 500 + 250 * tenant_in_progress.min(40) as u64;
    Duration::from_millis(base + rand::thread_rng().gen_range(0..=base / 2))
}

#[async_trait]
impl WorkQueue for AzureQueue {
    async fn enqueue(&self, item: &WorkItem, delay: Duration) -> Result<(), QueueError> {
        self.ensure_queue().await?;
        self.client
            .put_message(encode(item))
            .visibility_timeout(delay.min(MAX_DELAY))
            .await
            .map_err(|e| QueueError(format!("put message: {}", e.kind())))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::WorkKind;

    #[test]
    fn messages_round_trip_as_base64_json() {
        let item = WorkItem {
            kind: WorkKind::Step,
            tenant: "t".into(),
            thread_id: "thread_x".into(),
            run_id: "run_x".into(),
            seq: 3,
            ..WorkItem::default()
        };
        let text = encode(&item);
        assert!(!text.contains('{'));
        assert_eq!(decode(&text), Some(item.clone()));
        assert_eq!(decode(&item.to_json()), Some(item));
        assert_eq!(decode("garbage"), None);
    }
}
