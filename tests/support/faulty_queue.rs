//! A work queue that injects faults for tests: it wraps the queue the app writes work to
//! (local or Azurite) and, once armed, refuses the next item of a matching kind, as if the
//! process had died right before queueing it: the caller sees a failure and nothing is
//! queued. Installed with `App::with_wrappers`.

use assistants::queue::{DynQueue, QueueError, Queued, WorkItem, WorkQueue};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type ItemMatch = Box<dyn Fn(&WorkItem) -> bool + Send + Sync>;

pub struct FaultyQueue {
    inner: DynQueue,
    /// Armed: the next item this accepts is refused.
    refuse_next: Mutex<Option<ItemMatch>>,
}

impl FaultyQueue {
    pub fn wrap(inner: DynQueue) -> Arc<FaultyQueue> {
        Arc::new(FaultyQueue {
            inner,
            refuse_next: Mutex::new(None),
        })
    }

    /// The next item `matches` accepts is not queued and its caller gets an error (once;
    /// later items go through).
    pub fn refuse_once(&self, matches: impl Fn(&WorkItem) -> bool + Send + Sync + 'static) {
        *self.refuse_next.lock().unwrap() = Some(Box::new(matches));
    }

    /// Whether `item` is the armed one (disarming it).
    fn hit(&self, item: &WorkItem) -> bool {
        let mut armed = self.refuse_next.lock().unwrap();
        if armed.as_ref().is_some_and(|matches| matches(item)) {
            *armed = None;
            return true;
        }
        false
    }
}

#[async_trait]
impl WorkQueue for FaultyQueue {
    async fn put(&self, message: &Queued, delay: Duration) -> Result<(), QueueError> {
        if self.hit(&message.item) {
            return Err(QueueError(format!(
                "injected fault: {} not queued",
                message.item.describe()
            )));
        }
        self.inner.put(message, delay).await
    }
}
