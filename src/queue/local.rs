//! The in-process work queue of the embedded default, persisted in the data directory so
//! that queued work survives a restart: an item is a file until it is done.
//!
//! Each delivery is counted in the item's file before the item is processed, so an item
//! whose processing kills the process is ended after `WORK_MAX_ATTEMPTS` restarts instead of
//! killing every restart. Items due are started fairly between tenants: round robin over the
//! tenants with items waiting, each tenant with at most `per_tenant` items in progress.

use super::fair::{Slot, TenantSlots};
use super::{deliver, retry_backoff, Outcome, QueueError, WorkHandler, WorkItem, WorkQueue};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

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
    sender: mpsc::UnboundedSender<(PathBuf, Entry)>,
    receiver: std::sync::Mutex<Option<mpsc::UnboundedReceiver<(PathBuf, Entry)>>>,
    max_attempts: u32,
    started: OnceLock<()>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl LocalQueue {
    /// Opens the queue directory; items already there are delivered once `start` runs.
    pub fn open(dir: impl Into<PathBuf>, max_attempts: u32) -> Result<Arc<Self>, QueueError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| QueueError(format!("cannot create {}: {e}", dir.display())))?;
        let (sender, receiver) = mpsc::unbounded_channel();
        Ok(Arc::new(LocalQueue {
            dir,
            sender,
            receiver: std::sync::Mutex::new(Some(receiver)),
            max_attempts: max_attempts.max(1),
            started: OnceLock::new(),
        }))
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

    /// Hands the entry to the dispatcher when it is due.
    fn schedule(&self, path: PathBuf, entry: Entry) {
        let wait = entry.due_ms.saturating_sub(now_ms());
        let sender = self.sender.clone();
        if wait == 0 {
            let _ = sender.send((path, entry));
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                let _ = sender.send((path, entry));
            });
        }
    }

    /// Starts delivering to `handler`, at most `concurrency` items at once and at most
    /// `per_tenant` of one tenant. Items persisted by an earlier process are delivered too.
    pub fn start(
        self: &Arc<Self>,
        handler: Arc<dyn WorkHandler>,
        concurrency: usize,
        per_tenant: usize,
    ) -> Result<tokio::task::JoinHandle<()>, QueueError> {
        if self.started.set(()).is_err() {
            return Err(QueueError("already started".into()));
        }
        let mut receiver = self
            .receiver
            .lock()
            .ok()
            .and_then(|mut r| r.take())
            .ok_or_else(|| QueueError("already started".into()))?;
        // Reload what an earlier process left.
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
        let queue = self.clone();
        let slots = TenantSlots::new(concurrency, per_tenant);
        Ok(tokio::spawn(async move {
            let mut waiting = Waiting::default();
            loop {
                let released = slots.released();
                tokio::pin!(released);
                released.as_mut().enable();
                while let Some((path, entry, slot)) = waiting.next_startable(&slots) {
                    let queue = queue.clone();
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        queue.deliver(handler.as_ref(), path, entry).await;
                        drop(slot);
                    });
                }
                tokio::select! {
                    received = receiver.recv() => match received {
                        Some((path, entry)) => waiting.push(path, entry),
                        None => break,
                    },
                    _ = &mut released => {}
                }
            }
        }))
    }

    async fn deliver(&self, handler: &dyn WorkHandler, path: PathBuf, mut entry: Entry) {
        // Counted on disk first: a delivery that never returns (the process died) counts.
        entry.attempts += 1;
        if let Err(e) = Self::write_entry(&path, &entry).await {
            log::warn!("cannot count a delivery of {}: {e}", entry.item.describe());
        }
        match deliver(handler, &entry.item, entry.attempts, self.max_attempts).await {
            Outcome::Done => {
                let _ = tokio::fs::remove_file(&path).await;
            }
            Outcome::Retry(_) => {
                entry.due_ms = now_ms() + retry_backoff(entry.attempts).as_millis() as u64;
                if let Err(e) = Self::write_entry(&path, &entry).await {
                    log::warn!("cannot persist retry of {}: {e}", entry.item.describe());
                }
                self.schedule(path, entry);
            }
        }
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
        let tenant = entry.item.tenant.clone();
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
    async fn enqueue(&self, item: &WorkItem, delay: Duration) -> Result<(), QueueError> {
        let entry = Entry {
            item: item.clone(),
            attempts: 0,
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
