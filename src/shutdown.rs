//! The process's background work, owned, and its shutdown.
//!
//! One `Shutdown` handle (cheap to clone) goes to everything that runs in the background:
//! the work-queue consumers, streamed turns, the watchdog items they queue, the code
//! interpreter's start-up, the memory trimmer. It says when to stop taking new work
//! (`stopping`: the signal came, or a worker died) and when the grace for work in progress
//! is over (`grace_over`, `SHUTDOWN_GRACE_SECONDS` later): a turn still running then is
//! dropped and its item released, so another instance (or this one, restarted) takes it
//! at once. Tasks spawned through it are tracked, and `App::run` waits for them before the
//! process exits, so none is cut off half-way by the runtime going down.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone)]
pub struct Shutdown {
    stopping: CancellationToken,
    /// When the grace ends; set once, when stopping begins.
    deadline: Arc<OnceLock<Instant>>,
    grace: Duration,
    tasks: TaskTracker,
}

impl Shutdown {
    /// A process that, once stopping, gives work in progress `grace` to finish.
    pub fn new(grace: Duration) -> Shutdown {
        Shutdown {
            stopping: CancellationToken::new(),
            deadline: Arc::new(OnceLock::new()),
            grace,
            tasks: TaskTracker::new(),
        }
    }

    /// How long work in progress may go on once stopping begins.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Begins the shutdown (again: nothing): no new work from now on, and the grace for
    /// what is in progress starts.
    pub fn begin(&self) {
        self.deadline.get_or_init(|| Instant::now() + self.grace);
        self.stopping.cancel();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Resolves once stopping has begun.
    pub async fn stopping(&self) {
        self.stopping.cancelled().await
    }

    /// Resolves once the grace after the beginning of the shutdown is over.
    pub async fn grace_over(&self) {
        self.stopping.cancelled().await;
        if let Some(deadline) = self.deadline.get() {
            tokio::time::sleep_until(*deadline).await;
        }
    }

    /// Runs `task` in the background, tracked: the shutdown waits for it.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(task)
    }

    /// Waits until every tracked task has ended (those spawned meanwhile included).
    pub async fn tasks_ended(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Tracked tasks still running.
    pub fn tasks_running(&self) -> usize {
        self.tasks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_grace_starts_when_stopping_begins() {
        let shutdown = Shutdown::new(Duration::from_secs(4));
        assert!(!shutdown.is_stopping());
        // Nothing ends before the beginning, however long it takes.
        let early = tokio::time::timeout(Duration::from_secs(60), shutdown.grace_over()).await;
        assert!(early.is_err());
        let began = Instant::now();
        shutdown.begin();
        shutdown.begin();
        assert!(shutdown.is_stopping());
        shutdown.stopping().await;
        shutdown.grace_over().await;
        assert_eq!(began.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn tracked_tasks_are_waited_for() {
        let shutdown = Shutdown::new(Duration::from_secs(1));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let (done, shutdown2) = (done.clone(), shutdown.clone());
            shutdown.spawn(async move {
                shutdown2.stopping().await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            });
        }
        assert_eq!(shutdown.tasks_running(), 1);
        shutdown.begin();
        shutdown.tasks_ended().await;
        assert!(done.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(shutdown.tasks_running(), 0);
    }
}
