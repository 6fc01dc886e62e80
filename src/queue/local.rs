//! The in-process work queue of the embedded default, persisted in the data directory so
//! that queued work survives a restart: an item is a file until it is done.
//!
//! Each delivery is counted in the item's file before the item is processed, so an item
//! whose processing kills the process is ended after `WORK_MAX_ATTEMPTS` restarts instead of
//! killing every restart. Items due are started fairly between tenants: round robin over the
//! tenants with items waiting, each tenant with at most its share of the policy's slots in
//! progress. One task, `consume`, owns everything: the items not yet due (a timeline, no
//! task per item), those waiting for room, and the deliveries in progress, which it joins
//! before it returns at shutdown. An item released at shutdown stays a file, its delivery
//! uncounted, and is delivered again by the next process.

use super::delivery::{Delivered, Policy, PutBack};
use super::fair::{Slot, TenantSlots};
use super::{QueueError, Queued, WorkItem, WorkQueue};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// An item's file (`{"item": {...}, "attempts": n, "due_ms": n}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    item: WorkItem,
    /// Deliveries so far.
    attempts: u32,
    /// When the item becomes due, Unix milliseconds.
    due_ms: u64,
}

pub struct LocalQueue {
    dir: PathBuf,
    /// To the consumer: entries written, to deliver when due.
    sender: mpsc::UnboundedSender<(PathBuf, Entry)>,
    receiver: std::sync::Mutex<Option<mpsc::UnboundedReceiver<(PathBuf, Entry)>>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl LocalQueue {
    /// Opens the queue directory; items already there are delivered once `consume` runs.
    /// They are read now, before anything is queued: a file written later is handed to
    /// the consumer by `put` alone (read twice, it would be delivered twice, and a `.tmp`
    /// file being written would be taken for debris).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Arc<Self>, QueueError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| QueueError(format!("cannot create {}: {e}", dir.display())))?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let queue = Arc::new(LocalQueue {
            dir,
            sender,
            receiver: std::sync::Mutex::new(Some(receiver)),
        });
        queue.recover();
        Ok(queue)
    }

    async fn write_entry(path: &Path, entry: &Entry) -> Result<(), QueueError> {
        let bytes = serde_json::to_vec(entry).map_err(|e| QueueError(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        tokio::fs::write(&tmp, bytes)
            .await
            .map_err(|e| QueueError(format!("write: {e}")))?;
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(|e| QueueError(format!("rename: {e}")))
    }

    /// Hands a written entry to the consumer, which delivers it when it is due. (Once the
    /// consumer has ended, the file waits for the next process.)
    fn schedule(&self, path: PathBuf, entry: Entry) {
        let _ = self.sender.send((path, entry));
    }

    /// What an earlier process left: its entries, handed to the consumer.
    fn recover(&self) {
        let mut recovered = 0;
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for file in entries.flatten() {
                let path = file.path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                match std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
                {
                    Some(entry) => {
                        recovered += 1;
                        self.schedule(path, entry);
                    }
                    None => {
                        log::warn!("dropping unreadable queue item {}", path.display());
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        if recovered > 0 {
            log::info!("work queue: {recovered} item(s) recovered from the data directory");
        }
    }

    /// Delivers the queue's items through `policy` (items persisted by an earlier process
    /// too), at most as many at once as its slots allow, until the shutdown begins; then
    /// starts nothing more and returns once the deliveries in progress are settled. An
    /// error says why it could not go on.
    pub async fn consume(self: Arc<Self>, policy: Arc<Policy>) -> Result<(), QueueError> {
        let mut receiver = self
            .receiver
            .lock()
            .ok()
            .and_then(|mut r| r.take())
            .ok_or_else(|| QueueError("the queue already has a consumer".into()))?;
        let slots = policy.slots().clone();
        let webhook_slots = policy.webhook_slots().clone();
        let shutdown = policy.shutdown().clone();
        let mut timeline = Timeline::default();
        // Two lanes: webhook deliveries wait for slots of their own, never for a run's.
        let mut waiting = Waiting::default();
        let mut webhooks = Waiting::default();
        let mut deliveries = JoinSet::new();
        let ended = loop {
            let released = slots.released();
            tokio::pin!(released);
            released.as_mut().enable();
            let webhook_released = webhook_slots.released();
            tokio::pin!(webhook_released);
            webhook_released.as_mut().enable();
            for (path, entry) in timeline.take_due(now_ms()) {
                if entry.item.is_webhook() {
                    webhooks.push(path, entry);
                } else {
                    waiting.push(path, entry);
                }
            }
            for (lane, slots) in [(&mut waiting, &slots), (&mut webhooks, &webhook_slots)] {
                while let Some((path, entry, slot)) = lane.next_startable(slots) {
                    let (queue, policy) = (self.clone(), policy.clone());
                    deliveries
                        .spawn(async move { queue.deliver(&policy, path, entry, slot).await });
                }
            }
            let next_due = timeline.next_due().map(|due| {
                tokio::time::Instant::now() + Duration::from_millis(due.saturating_sub(now_ms()))
            });
            tokio::select! {
                received = receiver.recv() => match received {
                    Some((path, entry)) => timeline.insert(path, entry),
                    None => break Err(QueueError("the queue's channel closed".into())),
                },
                _ = &mut released => {}
                _ = &mut webhook_released => {}
                _ = sleep_until_some(next_due) => {}
                Some(joined) = deliveries.join_next() => {
                    if let Err(e) = joined {
                        break Err(QueueError(format!("a delivery failed: {e}")));
                    }
                }
                () = shutdown.stopping() => break Ok(()),
            }
        };
        // Items not started stay files for the next process; those in progress finish
        // within the grace or are released by the policy.
        while let Some(joined) = deliveries.join_next().await {
            if let Err(e) = joined {
                log::error!("a work item's delivery failed: {e}");
            }
        }
        ended
    }

    async fn deliver(&self, policy: &Policy, path: PathBuf, mut entry: Entry, slot: Slot) {
        // Counted on disk first: a delivery that never returns (the process died) counts.
        entry.attempts += 1;
        if let Err(e) = Self::write_entry(&path, &entry).await {
            log::warn!("cannot count a delivery of {}: {e}", entry.item.describe());
        }
        let queued = Queued::from(entry.item.clone());
        let attempt = entry.attempts;
        let mut message = LocalMessage {
            queue: self,
            path,
            entry,
        };
        policy
            .settle_holding(slot, &queued, attempt, &mut message)
            .await;
    }
}

async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A delivered item's file.
struct LocalMessage<'a> {
    queue: &'a LocalQueue,
    path: PathBuf,
    entry: Entry,
}

impl LocalMessage<'_> {
    /// Rewrites the file due after `delay` and hands it to the consumer again.
    async fn reschedule(&mut self, delay: Duration) {
        self.entry.due_ms = now_ms() + delay.as_millis() as u64;
        if let Err(e) = LocalQueue::write_entry(&self.path, &self.entry).await {
            log::warn!(
                "cannot persist the retry of {}: {e}",
                self.entry.item.describe()
            );
        }
        self.queue.schedule(self.path.clone(), self.entry.clone());
    }
}

#[async_trait]
impl Delivered for LocalMessage<'_> {
    async fn remove(&mut self) {
        let _ = tokio::fs::remove_file(&self.path).await;
    }

    async fn retry_after(&mut self, delay: Duration) {
        self.reschedule(delay).await;
    }

    /// The file stays; the copy's count of deliveries replaces its own.
    async fn put_back(&mut self, back: PutBack<'_>) {
        self.entry.item = back.copy.item.clone();
        self.entry.attempts = back.copy.prior_attempts;
        self.reschedule(back.delay).await;
    }
}

/// Entries not yet due, in the order they become due.
#[derive(Default)]
struct Timeline {
    entries: BTreeMap<(u64, u64), (PathBuf, Entry)>,
    /// Tells apart entries due at the same millisecond.
    inserted: u64,
}

impl Timeline {
    fn insert(&mut self, path: PathBuf, entry: Entry) {
        self.inserted += 1;
        self.entries
            .insert((entry.due_ms, self.inserted), (path, entry));
    }

    fn next_due(&self) -> Option<u64> {
        self.entries.keys().next().map(|(due, _)| *due)
    }

    /// Removes and returns the entries due at `now`.
    fn take_due(&mut self, now: u64) -> Vec<(PathBuf, Entry)> {
        let later = self.entries.split_off(&(now + 1, 0));
        std::mem::replace(&mut self.entries, later)
            .into_values()
            .collect()
    }
}

/// Items due but not started, by tenant, and the order in which tenants take turns.
#[derive(Default)]
struct Waiting {
    by_tenant: HashMap<String, VecDeque<(PathBuf, Entry)>>,
    turns: VecDeque<String>,
}

impl Waiting {
    fn push(&mut self, path: PathBuf, entry: Entry) {
        let tenant = entry.item.tenant().to_string();
        let items = self.by_tenant.entry(tenant.clone()).or_default();
        if items.is_empty() {
            self.turns.push_back(tenant);
        }
        items.push_back((path, entry));
    }

    /// The oldest item of the next tenant (in turn) that has room, with its slot.
    fn next_startable(&mut self, slots: &Arc<TenantSlots>) -> Option<(PathBuf, Entry, Slot)> {
        for _ in 0..self.turns.len() {
            let tenant = self.turns.pop_front()?;
            let Some(slot) = slots.try_acquire(&tenant) else {
                self.turns.push_back(tenant);
                continue;
            };
            let items = self.by_tenant.get_mut(&tenant)?;
            let (path, entry) = items.pop_front()?;
            if items.is_empty() {
                self.by_tenant.remove(&tenant);
            } else {
                self.turns.push_back(tenant);
            }
            return Some((path, entry, slot));
        }
        None
    }
}

#[async_trait]
impl WorkQueue for LocalQueue {
    /// Written as a new file; a copy's earlier deliveries are its starting count.
    async fn put(&self, message: &Queued, delay: Duration) -> Result<(), QueueError> {
        let entry = Entry {
            item: message.item.clone(),
            attempts: message.prior_attempts,
            due_ms: now_ms() + delay.as_millis() as u64,
        };
        let path = self
            .dir
            .join(format!("{}.json", uuid::Uuid::new_v4().simple()));
        Self::write_entry(&path, &entry).await?;
        self.schedule(path, entry);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{Outcome, RunTurn, WorkHandler};
    use crate::shutdown::Shutdown;
    use std::sync::Mutex;

    /// Records what it processes; items of run `run_slow` take `slow` each.
    struct Recorder {
        seen: Mutex<Vec<(String, u32)>>,
        slow: Duration,
    }

    #[async_trait]
    impl WorkHandler for Recorder {
        async fn process(&self, item: &WorkItem, attempt: u32) -> Outcome {
            let WorkItem::Step(turn) = item else {
                return Outcome::Done;
            };
            self.seen
                .lock()
                .unwrap()
                .push((turn.run_id.clone(), attempt));
            if turn.run_id == "run_slow" {
                tokio::time::sleep(self.slow).await;
            }
            Outcome::Done
        }
        async fn give_up(&self, _item: &WorkItem, _reason: &str) {}
    }

    fn step(run_id: &str) -> WorkItem {
        WorkItem::Step(RunTurn {
            tenant: "t".into(),
            thread_id: "thread_x".into(),
            run_id: run_id.into(),
            seq: 0,
        })
    }

    fn files(dir: &Path) -> Vec<Entry> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|f| serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn items_are_delivered_when_due_and_released_ones_stay_uncounted() {
        let dir = tempfile::tempdir().unwrap();
        let queue = LocalQueue::open(dir.path()).unwrap();
        // Queued before the consumer runs, and one due later.
        queue.enqueue(&step("run_a"), Duration::ZERO).await.unwrap();
        queue
            .enqueue(&step("run_b"), Duration::from_millis(300))
            .await
            .unwrap();
        let handler = Arc::new(Recorder {
            seen: Mutex::default(),
            slow: Duration::from_secs(60),
        });
        let shutdown = Shutdown::new(Duration::from_millis(200));
        let policy = Policy::new(handler.clone(), TenantSlots::new(4, 4), 5, shutdown.clone());
        let consumer = tokio::spawn(queue.clone().consume(policy));
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while handler.seen.lock().unwrap().len() < 2 {
            assert!(std::time::Instant::now() < until, "not delivered");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            handler.seen.lock().unwrap().as_slice(),
            [("run_a".to_string(), 1), ("run_b".to_string(), 1)]
        );
        assert!(files(dir.path()).is_empty(), "done items are removed");

        // A slow one in progress when the shutdown begins: released after the grace, its
        // file left with the delivery uncounted; one not yet due stays as it was.
        queue
            .enqueue(&step("run_slow"), Duration::ZERO)
            .await
            .unwrap();
        queue
            .enqueue(&step("run_later"), Duration::from_secs(3600))
            .await
            .unwrap();
        while handler.seen.lock().unwrap().len() < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let began = std::time::Instant::now();
        shutdown.begin();
        tokio::time::timeout(Duration::from_secs(5), consumer)
            .await
            .expect("the consumer ends")
            .unwrap()
            .unwrap();
        assert!(began.elapsed() >= Duration::from_millis(200));
        let mut left: Vec<(String, u32)> = files(dir.path())
            .into_iter()
            .map(|e| match e.item {
                WorkItem::Step(t) => (t.run_id, e.attempts),
                other => panic!("{other:?}"),
            })
            .collect();
        left.sort();
        assert_eq!(
            left,
            [("run_later".to_string(), 0), ("run_slow".to_string(), 0)]
        );

        // The next process delivers the released item again, as its first attempt.
        let queue = LocalQueue::open(dir.path()).unwrap();
        let shutdown = Shutdown::new(Duration::from_millis(200));
        let handler = Arc::new(Recorder {
            seen: Mutex::default(),
            slow: Duration::ZERO,
        });
        let policy = Policy::new(handler.clone(), TenantSlots::new(4, 4), 5, shutdown.clone());
        let consumer = tokio::spawn(queue.consume(policy));
        while handler.seen.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            handler.seen.lock().unwrap().as_slice(),
            [("run_slow".to_string(), 1)]
        );
        shutdown.begin();
        consumer.await.unwrap().unwrap();
    }

    #[test]
    fn files_written_before_the_enum_are_read() {
        let old = r#"{"item":{"kind":"ingest","tenant":"t","thread_id":"","run_id":"","seq":0,"vector_store_id":"vs_x","file_id":"file-x"},"attempts":2,"due_ms":5}"#;
        let entry: Entry = serde_json::from_str(old).unwrap();
        assert_eq!(entry.attempts, 2);
        assert_eq!(entry.item.describe(), "ingest file-x into vs_x (t)");
    }
}
