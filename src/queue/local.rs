//! The in-process work queue of the embedded default, persisted in the data directory so
//! that queued work survives a restart: an item is a file until it is done.

use super::{retry_backoff, Outcome, QueueError, WorkHandler, WorkItem, WorkQueue};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, Semaphore};

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

    /// Starts delivering to `handler`, at most `concurrency` items at once, until
    /// `shutdown` resolves. Items persisted by an earlier process are delivered too.
    pub fn start(
        self: &Arc<Self>,
        handler: Arc<dyn WorkHandler>,
        concurrency: usize,
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
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        Ok(tokio::spawn(async move {
            while let Some((path, entry)) = receiver.recv().await {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let queue = queue.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    queue.deliver(handler.as_ref(), path, entry).await;
                    drop(permit);
                });
            }
        }))
    }

    async fn deliver(&self, handler: &dyn WorkHandler, path: PathBuf, mut entry: Entry) {
        entry.attempts += 1;
        let outcome = handler.process(&entry.item, entry.attempts).await;
        match outcome {
            Outcome::Done => {
                let _ = tokio::fs::remove_file(&path).await;
            }
            Outcome::Retry(reason) if entry.attempts >= self.max_attempts => {
                log::warn!(
                    "work item for {} failed {} times, giving up: {reason}",
                    entry.item.run_id,
                    entry.attempts
                );
                handler.give_up(&entry.item, &reason).await;
                let _ = tokio::fs::remove_file(&path).await;
            }
            Outcome::Retry(reason) => {
                log::info!(
                    "work item for {} will be retried (attempt {}): {reason}",
                    entry.item.run_id,
                    entry.attempts
                );
                entry.due_ms = now_ms() + retry_backoff(entry.attempts).as_millis() as u64;
                if let Err(e) = Self::write_entry(&path, &entry).await {
                    log::warn!("cannot persist retry of {}: {e}", entry.item.run_id);
                }
                self.schedule(path, entry);
            }
        }
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
