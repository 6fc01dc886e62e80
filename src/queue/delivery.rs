//! The one delivery policy of every consumer: the in-process queue, the Azure queue poller
//! and the Functions `work` trigger each hand a delivered message to `Policy::settle`, and
//! differ only in how they count a delivery and carry out what becomes of the message
//! (`Delivered`: a file, an Azure queue message, the answer to the Functions host).
//!
//! The `attempt`-th delivery of an item (counted from 1, and counted *before* processing) is
//! processed; a failure is retried after a back-off (`retry_backoff`); a failure on the last
//! allowed attempt ends the item's object cleanly (`WorkHandler::give_up`); and an item
//! delivered more often than allowed is not processed at all but ended at once: its earlier
//! deliveries never finished, because the process died while processing them, and
//! processing it again could kill the process again, on every restart. A panic while
//! processing counts as a failed attempt.
//!
//! An item whose tenant already has its share of items in progress is not processed but
//! put back as a copy due a little later (`defer_delay`), the original removed; the copy
//! carries the deliveries made so far minus this one (`prior_attempts`), which did not
//! process it. (The in-process queue chooses fairly what to start and never defers.)
//!
//! Webhook deliveries (`WorkItem::Webhook`) take slots of their own (`webhook_slots`), so a
//! receiver that is slow or down never holds a run's slot. A handler that answers
//! `Outcome::Later` (a webhook's next attempt) has its next item put back as a fresh copy due
//! after the delay, whose deliveries count anew, and this message removed.
//!
//! At shutdown nothing new is started: a message delivered then is put back at once; one
//! whose processing is still going on when the grace is over is dropped (the turn stops
//! where it was, as in a crash, which every turn survives) and put back at once, so that
//! another instance takes it without waiting for a lease to run out. Neither counts as an
//! attempt.

use super::fair::{Slot, TenantSlots};
use super::{Outcome, Queued, WorkHandler, WorkItem};
use crate::shutdown::Shutdown;
use async_trait::async_trait;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

/// A delivered message, as its consumer holds it: what `settle` makes of it is carried out
/// through these.
#[async_trait]
pub trait Delivered: Send + Sync {
    /// Processed, or ended: the message goes.
    async fn remove(&mut self);
    /// Failed for now: the message is delivered again after `delay` (this delivery counted).
    async fn retry_after(&mut self, delay: Duration);
    /// Not processed, or not to its end: `back.copy` goes to the queue, due after
    /// `back.delay`, and this message goes. Where the copy cannot be queued, the message
    /// itself comes back instead (this delivery then counts).
    async fn put_back(&mut self, back: PutBack<'_>);
    /// Keeps the message this consumer's own while it is processed (an Azure queue
    /// message's lease is renewed). Never resolves.
    async fn hold(&self) {
        std::future::pending::<()>().await
    }
}

/// A message going back to the queue as a copy.
pub struct PutBack<'a> {
    pub copy: &'a Queued,
    pub delay: Duration,
    pub why: PutBackReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutBackReason {
    /// Its tenant had its share of items in progress here.
    Deferred,
    /// This process is stopping: another instance, or this one restarted, takes it.
    Released,
    /// Processed; its next step (a webhook's next attempt) is due later.
    Rescheduled,
}

impl PutBackReason {
    /// For the log and the Functions host's invocation log.
    pub fn describe(self) -> &'static str {
        match self {
            PutBackReason::Deferred => "its tenant has its share of work in progress; deferred",
            PutBackReason::Released => "released at shutdown",
            PutBackReason::Rescheduled => "its next attempt is scheduled",
        }
    }
}

/// The policy, with what it needs: the handler (the engine), this consumer's tenant-fair
/// slots, the number of deliveries allowed, and the process's shutdown.
pub struct Policy {
    handler: Arc<dyn WorkHandler>,
    slots: Arc<TenantSlots>,
    /// Webhook deliveries' own slots: a slow receiver never takes a run's.
    webhook_slots: Arc<TenantSlots>,
    max_attempts: u32,
    shutdown: Shutdown,
}

impl Policy {
    pub fn new(
        handler: Arc<dyn WorkHandler>,
        slots: Arc<TenantSlots>,
        max_attempts: u32,
        shutdown: Shutdown,
    ) -> Arc<Policy> {
        Self::with_webhook_slots(
            handler,
            slots,
            TenantSlots::new(1, 1),
            max_attempts,
            shutdown,
        )
    }

    /// `new`, with the slots of webhook deliveries (`new` gives them one).
    pub fn with_webhook_slots(
        handler: Arc<dyn WorkHandler>,
        slots: Arc<TenantSlots>,
        webhook_slots: Arc<TenantSlots>,
        max_attempts: u32,
        shutdown: Shutdown,
    ) -> Arc<Policy> {
        Arc::new(Policy {
            handler,
            slots,
            webhook_slots,
            max_attempts: max_attempts.max(1),
            shutdown,
        })
    }

    /// Items in progress, shared fairly between tenants.
    pub fn slots(&self) -> &Arc<TenantSlots> {
        &self.slots
    }

    /// Webhook deliveries in progress, apart from the other items.
    pub fn webhook_slots(&self) -> &Arc<TenantSlots> {
        &self.webhook_slots
    }

    /// The slots `item` takes.
    pub fn slots_for(&self, item: &WorkItem) -> &Arc<TenantSlots> {
        if item.is_webhook() {
            &self.webhook_slots
        } else {
            &self.slots
        }
    }

    pub fn handler(&self) -> &Arc<dyn WorkHandler> {
        &self.handler
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Settles the `attempt`-th delivery of `queued` (see the module's policy): takes a
    /// slot of its tenant or defers it, processes it, and removes the message, has it come
    /// back after a back-off, or releases it at shutdown.
    pub async fn settle(&self, queued: &Queued, attempt: u32, message: &mut dyn Delivered) {
        if self.shutdown.is_stopping() {
            return release(queued, attempt, message).await;
        }
        let tenant = queued.item.tenant();
        let slots = self.slots_for(&queued.item);
        let Some(slot) = slots.try_acquire(tenant) else {
            let copy = uncounted_copy(queued, attempt);
            let delay = defer_delay(slots.held_by(tenant));
            let why = PutBackReason::Deferred;
            return message
                .put_back(PutBack {
                    copy: &copy,
                    delay,
                    why,
                })
                .await;
        };
        self.settle_holding(slot, queued, attempt, message).await
    }

    /// `settle` for a consumer that chose the item because its tenant had room: `slot` is
    /// that room, held until the item is processed.
    pub async fn settle_holding(
        &self,
        slot: Slot,
        queued: &Queued,
        attempt: u32,
        message: &mut dyn Delivered,
    ) {
        if self.shutdown.is_stopping() {
            drop(slot);
            return release(queued, attempt, message).await;
        }
        let outcome = {
            let held = async {
                message.hold().await;
                std::future::pending::<()>().await
            };
            tokio::select! {
                outcome = self.deliver(&queued.item, attempt) => Some(outcome),
                // Never: `held` does not end.
                () = held => None,
                () = self.shutdown.grace_over() => None,
            }
        };
        drop(slot);
        match outcome {
            Some(Outcome::Done) => message.remove().await,
            Some(Outcome::Retry(_)) => message.retry_after(retry_backoff(attempt)).await,
            Some(Outcome::Later(next, delay)) => {
                let copy = Queued::from(*next);
                let why = PutBackReason::Rescheduled;
                message
                    .put_back(PutBack {
                        copy: &copy,
                        delay,
                        why,
                    })
                    .await
            }
            None => {
                log::info!(
                    "work item {} did not finish within the shutdown grace ({:?}); released",
                    queued.item.describe(),
                    self.shutdown.grace()
                );
                release(queued, attempt, message).await
            }
        }
    }

    /// Processes the `attempt`-th delivery, or ends the item's object when it was the last
    /// allowed one (or beyond).
    async fn deliver(&self, item: &WorkItem, attempt: u32) -> Outcome {
        if attempt > self.max_attempts {
            log::warn!(
                "work item {} delivered {attempt} times without finishing; abandoned",
                item.describe()
            );
            abandon(self.handler.as_ref(), item).await;
            return Outcome::Done;
        }
        let processed = AssertUnwindSafe(self.handler.process(item, attempt))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Outcome::Retry("processing it panicked".into()));
        match processed {
            Outcome::Done => Outcome::Done,
            later @ Outcome::Later(..) => later,
            Outcome::Retry(reason) if attempt >= self.max_attempts => {
                log::warn!(
                    "work item {} failed {attempt} times, giving up: {reason}",
                    item.describe()
                );
                self.handler.give_up(item, &reason).await;
                Outcome::Done
            }
            Outcome::Retry(reason) => {
                log::info!(
                    "work item {} will be retried (attempt {attempt}): {reason}",
                    item.describe()
                );
                Outcome::Retry(reason)
            }
        }
    }
}

/// Puts the message back at once, this delivery uncounted.
async fn release(queued: &Queued, attempt: u32, message: &mut dyn Delivered) {
    let copy = uncounted_copy(queued, attempt);
    let why = PutBackReason::Released;
    message
        .put_back(PutBack {
            copy: &copy,
            delay: Duration::ZERO,
            why,
        })
        .await
}

/// The copy of the `attempt`-th delivery of `queued` that goes back to the queue when that
/// delivery did not process it: it does not count.
pub fn uncounted_copy(queued: &Queued, attempt: u32) -> Queued {
    Queued {
        item: queued.item.clone(),
        prior_attempts: attempt.saturating_sub(1),
    }
}

/// Ends the object of an item whose deliveries never finished (see the module; under the
/// Functions host, the poison queue's trigger).
pub async fn abandon(handler: &dyn WorkHandler, item: &WorkItem) {
    handler
        .give_up(
            item,
            "its processing never finished (the process stopped while processing it)",
        )
        .await;
}

/// How long to wait before delivering a failed item again (attempt counts from 1).
pub fn retry_backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(6)))
}

/// How long a deferred item waits: longer the more of its tenant's items are in progress
/// (those take a while to finish), with jitter so a burst does not come back at once.
pub fn defer_delay(tenant_in_progress: usize) -> Duration {
    use rand::Rng;
    let base = 500 + 250 * tenant_in_progress.min(40) as u64;
    Duration::from_millis(base + rand::thread_rng().gen_range(0..=base / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::RunTurn;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    /// A handler that answers from a script (`None`: panic), or waits forever when told.
    #[derive(Default)]
    struct Scripted {
        answers: Mutex<Vec<Option<Outcome>>>,
        processed: AtomicU32,
        given_up: Mutex<Vec<String>>,
        hang: bool,
    }

    #[async_trait]
    impl WorkHandler for Scripted {
        async fn process(&self, _item: &WorkItem, _attempt: u32) -> Outcome {
            self.processed.fetch_add(1, Ordering::SeqCst);
            if self.hang {
                std::future::pending::<()>().await;
            }
            let next = self.answers.lock().unwrap().remove(0);
            match next {
                Some(outcome) => outcome,
                None => panic!("scripted panic"),
            }
        }
        async fn give_up(&self, _item: &WorkItem, reason: &str) {
            self.given_up.lock().unwrap().push(reason.to_string());
        }
    }

    /// What became of a message.
    #[derive(Debug, PartialEq)]
    enum Fate {
        Removed,
        RetryAfter(Duration),
        PutBack(Queued, Duration, PutBackReason),
    }

    #[derive(Default)]
    struct Recorded {
        fate: Vec<Fate>,
        holds: Arc<AtomicU32>,
    }

    #[async_trait]
    impl Delivered for Recorded {
        async fn remove(&mut self) {
            self.fate.push(Fate::Removed);
        }
        async fn retry_after(&mut self, delay: Duration) {
            self.fate.push(Fate::RetryAfter(delay));
        }
        async fn put_back(&mut self, back: PutBack<'_>) {
            self.fate
                .push(Fate::PutBack(back.copy.clone(), back.delay, back.why));
        }
        async fn hold(&self) {
            loop {
                self.holds.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    fn queued(prior_attempts: u32) -> Queued {
        Queued {
            item: WorkItem::Step(RunTurn {
                tenant: "t".into(),
                thread_id: "thread_x".into(),
                run_id: "run_x".into(),
                seq: 0,
            }),
            prior_attempts,
        }
    }

    fn policy(handler: Arc<Scripted>, per_tenant: usize) -> (Arc<Policy>, Shutdown) {
        let shutdown = Shutdown::new(Duration::from_secs(5));
        let policy = Policy::new(
            handler,
            TenantSlots::new(8, per_tenant),
            3,
            shutdown.clone(),
        );
        (policy, shutdown)
    }

    fn scripted(answers: Vec<Option<Outcome>>) -> Arc<Scripted> {
        Arc::new(Scripted {
            answers: Mutex::new(answers),
            ..Scripted::default()
        })
    }

    #[tokio::test]
    async fn a_processed_item_is_removed_and_a_failed_one_comes_back_after_a_back_off() {
        let handler = scripted(vec![
            Some(Outcome::Done),
            Some(Outcome::Retry("storage".into())),
            None,
        ]);
        let (policy, _) = policy(handler.clone(), 8);
        let mut message = Recorded::default();
        policy.settle(&queued(0), 1, &mut message).await;
        policy.settle(&queued(0), 2, &mut message).await;
        // A panic is a failed attempt like any other.
        policy.settle(&queued(0), 1, &mut message).await;
        assert_eq!(
            message.fate,
            vec![
                Fate::Removed,
                Fate::RetryAfter(retry_backoff(2)),
                Fate::RetryAfter(retry_backoff(1)),
            ]
        );
        assert!(handler.given_up.lock().unwrap().is_empty());
        assert_eq!(policy.slots().held_by("t"), 0, "slots are given back");
    }

    #[tokio::test]
    async fn the_last_attempt_ends_the_object_and_one_beyond_is_not_processed() {
        let handler = scripted(vec![Some(Outcome::Retry("storage".into()))]);
        let (policy, _) = policy(handler.clone(), 8);
        let mut message = Recorded::default();
        policy.settle(&queued(0), 3, &mut message).await;
        assert_eq!(handler.given_up.lock().unwrap().as_slice(), ["storage"]);
        // Two earlier deliveries of a copy plus two of this message: past the three allowed.
        policy.settle(&queued(2), 4, &mut message).await;
        assert_eq!(message.fate, vec![Fate::Removed, Fate::Removed]);
        assert_eq!(handler.processed.load(Ordering::SeqCst), 1);
        assert_eq!(handler.given_up.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_tenant_over_its_share_is_deferred_without_counting_the_delivery() {
        let handler = scripted(vec![]);
        let (policy, _) = policy(handler.clone(), 1);
        let _held = policy.slots().try_acquire("t").unwrap();
        let mut message = Recorded::default();
        policy.settle(&queued(1), 3, &mut message).await;
        let [Fate::PutBack(copy, delay, why)] = message.fate.as_slice() else {
            panic!("{:?}", message.fate);
        };
        assert_eq!(*copy, queued(2), "this delivery does not count");
        assert_eq!(*why, PutBackReason::Deferred);
        assert!(*delay >= Duration::from_millis(750), "{delay:?}");
        assert_eq!(handler.processed.load(Ordering::SeqCst), 0);
        // Another tenant has room.
        let other = Queued {
            item: WorkItem::Ingest(crate::queue::FileIngest {
                tenant: "u".into(),
                vector_store_id: "vs_x".into(),
                file_id: "file-x".into(),
            }),
            prior_attempts: 0,
        };
        handler.answers.lock().unwrap().push(Some(Outcome::Done));
        policy.settle(&other, 1, &mut message).await;
        assert_eq!(message.fate.last(), Some(&Fate::Removed));
    }

    /// A webhook attempt takes a slot of the webhook slots, never a run's; its next
    /// attempt (`Later`) goes back as a fresh copy, uncounted, due after the delay.
    #[tokio::test]
    async fn webhook_items_have_their_own_slots_and_their_next_attempt_is_a_copy() {
        let post = |attempt| {
            WorkItem::Webhook(crate::queue::WebhookPost {
                tenant: "t".into(),
                event_id: "evt_x".into(),
                event_type: "thread.run.completed".into(),
                created_at: 0,
                body: "{}".into(),
                attempt,
            })
        };
        let handler = scripted(vec![Some(Outcome::Later(
            Box::new(post(2)),
            Duration::from_secs(7),
        ))]);
        let shutdown = Shutdown::new(Duration::from_secs(5));
        let policy = Policy::with_webhook_slots(
            handler.clone(),
            TenantSlots::new(1, 1),
            TenantSlots::new(2, 2),
            3,
            shutdown,
        );
        // Every run slot is taken: the webhook item still goes.
        let _run = policy.slots().try_acquire("t").unwrap();
        let mut message = Recorded::default();
        let queued = Queued {
            item: post(1),
            prior_attempts: 2,
        };
        policy.settle(&queued, 3, &mut message).await;
        assert_eq!(
            message.fate,
            vec![Fate::PutBack(
                Queued::from(post(2)),
                Duration::from_secs(7),
                PutBackReason::Rescheduled
            )]
        );
        assert_eq!(handler.processed.load(Ordering::SeqCst), 1);
        assert_eq!(policy.webhook_slots().held_by("t"), 0);
    }

    #[tokio::test]
    async fn nothing_starts_once_stopping() {
        let handler = scripted(vec![Some(Outcome::Done)]);
        let (policy, shutdown) = policy(handler.clone(), 8);
        shutdown.begin();
        let mut message = Recorded::default();
        policy.settle(&queued(0), 2, &mut message).await;
        assert_eq!(
            message.fate,
            vec![Fate::PutBack(
                queued(1),
                Duration::ZERO,
                PutBackReason::Released
            )]
        );
        assert_eq!(handler.processed.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_past_the_grace_is_released_and_its_message_held_until_then() {
        let handler = Arc::new(Scripted {
            hang: true,
            ..Scripted::default()
        });
        let (policy, shutdown) = policy(handler.clone(), 8);
        let mut message = Recorded::default();
        let holds = message.holds.clone();
        let settling = {
            let policy = policy.clone();
            tokio::spawn(async move {
                policy.settle(&queued(0), 1, &mut message).await;
                message
            })
        };
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!settling.is_finished());
        assert!(holds.load(Ordering::SeqCst) >= 30, "the lease is kept");
        let began = tokio::time::Instant::now();
        shutdown.begin();
        let message = settling.await.unwrap();
        assert_eq!(began.elapsed(), Duration::from_secs(5), "the grace");
        assert_eq!(
            message.fate,
            vec![Fate::PutBack(
                queued(0),
                Duration::ZERO,
                PutBackReason::Released
            )]
        );
        assert!(handler.given_up.lock().unwrap().is_empty());
        assert_eq!(policy.slots().held_by("t"), 0);
    }
}
