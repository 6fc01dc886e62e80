//! The HTTP server: the warp filter served through hyper (HTTP/1.1) with the bounds warp's
//! own server does not offer, so that no client, with or without a key, can hold the
//! process's connections or descriptors:
//! - a request head must arrive whole within `header_timeout` of its first byte (of the
//!   connection's opening, for its first request): half-sent heads (slowloris) are cut;
//! - a kept-alive connection with no request in progress is closed after `idle_timeout`;
//! - a client that accepts no byte of an answer for `write_timeout` is disconnected (a
//!   download or stream nobody reads does not keep its connection forever);
//! - at most `max_connections` connections are served at once, which keeps descriptors for
//!   what the requests themselves open (files, storage and model connections); the default
//!   is derived from RLIMIT_NOFILE. At the cap, a new connection takes the place of the one
//!   that has waited longest without a request in progress (a half-sent head, an idle
//!   kept-alive connection), so that held connections cannot lock new clients out; when
//!   every connection has a request in progress, new ones wait in the listen backlog.
//!
//! hyper's own `header_read_timeout` is not used: it starts when a connection becomes idle,
//! so it would also be the idle keep-alive timeout, and those two want different lengths.
//! Both are kept here instead, by the connection's I/O (`Guarded`), which knows from the
//! service (`Tracked`) whether a request is in progress.
//!
//! Graceful shutdown is warp's: on the signal the listener closes, idle connections are
//! closed, and the server returns once the requests in progress are answered.

use crate::config::HttpLimits;
use futures::future::{select, Either};
use hyper::body::{Body, Frame, SizeHint};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

/// Descriptors kept for the process itself when the connection cap is derived.
const RESERVED_FDS: u64 = 128;

/// The connection cap when `HTTP_MAX_CONNECTIONS` is not set: half of what RLIMIT_NOFILE
/// leaves after a reserve, since a request may open a descriptor of its own (a stored file,
/// a storage, model or upstream connection) beside its connection.
pub fn default_max_connections() -> usize {
    let soft = nofile_limit().unwrap_or(1024).min(1 << 20);
    (soft.saturating_sub(RESERVED_FDS) / 2).max(16) as usize
}

/// The process's soft RLIMIT_NOFILE.
pub fn nofile_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // Reads the process's own limit into a local struct.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    ok.then_some(limit.rlim_cur)
}

/// Serves `filter` on `listener` within `limits` until `shutdown` resolves, then finishes
/// the requests in progress.
pub async fn serve(
    state: Arc<super::HttpState>,
    listener: TcpListener,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let max_connections = limits
        .max_connections
        .unwrap_or_else(default_max_connections);
    let timeouts = Timeouts {
        header: limits.header_timeout,
        idle: limits.idle_timeout,
        write: limits.write_timeout,
    };
    let slots = Arc::new(Semaphore::new(max_connections));
    // A quarter of the header timeout (at most 1 s): attackers' heads are cut four times
    // as fast as the timeout alone would, and a new client's head has been read by then.
    let min_age = (timeouts.header / 4).min(Duration::from_secs(1));
    let waiting = Arc::new(Waiting::new(min_age));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let service =
        hyper_util::service::TowerToHyperService::new(warp::service(super::routes(state)));
    let mut shutdown = pin!(shutdown);
    let full_logged = AtomicU64::new(0);
    loop {
        let stream = match select(pin!(listener.accept()), shutdown.as_mut()).await {
            Either::Left((Ok((stream, _)), _)) => stream,
            Either::Left((Err(e), _)) => {
                accept_error(e).await;
                continue;
            }
            Either::Right(_) => break,
        };
        // At the cap, the connection that has waited longest without a request in
        // progress makes room (slowloris heads, then idle kept-alive ones); with none, this
        // one waits for a slot and no other is accepted meanwhile.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                let freed = async {
                    let mut logged = false;
                    loop {
                        if waiting.evict_oldest() {
                            return slots.clone().acquire_owned().await;
                        }
                        if !logged {
                            log_full(&full_logged, max_connections);
                            logged = true;
                        }
                        // None may go yet: a slot, or another look once one may.
                        let retry = tokio::time::sleep(min_age.max(Duration::from_millis(10)));
                        if let Either::Left((slot, _)) =
                            select(pin!(slots.clone().acquire_owned()), pin!(retry)).await
                        {
                            return slot;
                        }
                    }
                };
                match select(pin!(freed), shutdown.as_mut()).await {
                    Either::Left((Ok(slot), _)) => slot,
                    Either::Left((Err(_), _)) | Either::Right(_) => break,
                }
            }
        };
        let phase = Phase::new(waiting.clone());
        let io = hyper_util::rt::TokioIo::new(Guarded::new(stream, phase.clone(), timeouts));
        let service = Tracked {
            inner: service.clone(),
            phase,
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .header_read_timeout(None)
            .serve_connection(io, service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // The connection's errors are the client's doing (a reset, a timeout): not
            // worth a log line each.
            if let Err(e) = connection.await {
                log::debug!("connection ended: {e}");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// One warning per minute at most while the cap holds new connections back (every open one
/// has a request in progress, or is too young to make room).
fn log_full(last: &AtomicU64, max: usize) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let before = last.load(Ordering::Relaxed);
    if now >= before + 60
        && last
            .compare_exchange(before, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        log::warn!(
            "{max} connections open (HTTP_MAX_CONNECTIONS), none of them free to make room: \
             new ones wait until one closes"
        );
    }
}

/// Out of descriptors (or another transient failure): wait a little for some to close.
async fn accept_error(e: io::Error) {
    if !matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    ) {
        log::warn!("accept failed: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header: Duration,
    idle: Duration,
    write: Duration,
}

/// The connections without a request in progress, oldest first: what makes room at the
/// cap. New connections that have not finished a request yet go first (half-sent heads,
/// silent connections: what an attack holds), kept-alive idle ones only when there are none
/// (a client that uses its connection keeps it: it is seldom the oldest). Entries are added
/// when a connection opens or its request ends, and are stale once its `generation` moved
/// on; stale ones are skipped, and swept out when they pile up. A connection is never
/// evicted within `min_age` of its entry: a new client's head is read by then, and a
/// client that uses its kept-alive connection is never the one that idles longest.
#[derive(Debug)]
struct Waiting {
    fresh: Mutex<Queue>,
    idle: Mutex<Queue>,
    min_age: Duration,
}

/// Entries, and the length beyond which the stale ones are swept out: twice what was left
/// by the last sweep (at least 64), so the queue stays within a small multiple of the
/// connections it stands for, at a constant cost per entry (a fixed limit derived from the
/// connection cap let ~20,000 stale entries pile up per queue under steady traffic).
#[derive(Debug, Default)]
struct Queue {
    entries: VecDeque<Entry>,
    sweep_at: usize,
}

#[derive(Debug)]
struct Entry {
    since: Instant,
    generation: u64,
    phase: Weak<Phase>,
}

fn lock_queue(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

const MIN_SWEEP_AT: usize = 64;

impl Waiting {
    fn new(min_age: Duration) -> Waiting {
        Waiting {
            fresh: Mutex::new(Queue::default()),
            idle: Mutex::new(Queue::default()),
            min_age,
        }
    }

    fn push(&self, served: bool, generation: u64, phase: Weak<Phase>) {
        let mut queue = lock_queue(if served { &self.idle } else { &self.fresh });
        queue.entries.push_back(Entry {
            since: Instant::now(),
            generation,
            phase,
        });
        if queue.entries.len() > queue.sweep_at.max(MIN_SWEEP_AT) {
            queue.entries.retain(|e| {
                e.phase
                    .upgrade()
                    .is_some_and(|p| p.lock().evictable(e.generation))
            });
            let left = queue.entries.len();
            queue.sweep_at = left.saturating_mul(2);
            if queue.entries.capacity() > 4 * left.max(MIN_SWEEP_AT) {
                queue.entries.shrink_to(2 * left.max(MIN_SWEEP_AT));
            }
        }
    }

    /// Closes the connection that has waited longest without a request in progress, a new
    /// one if there is any; false when there is none.
    fn evict_oldest(&self) -> bool {
        self.evict_from(&self.fresh) || self.evict_from(&self.idle)
    }

    fn evict_from(&self, queue: &Mutex<Queue>) -> bool {
        let mut queue = lock_queue(queue);
        let queue = &mut queue.entries;
        while let Some(entry) = queue.front() {
            let phase = entry.phase.upgrade();
            let Some(phase) = phase.filter(|p| p.lock().evictable(entry.generation)) else {
                queue.pop_front();
                continue;
            };
            // The oldest that may go: younger ones may not either.
            if entry.since + self.min_age > Instant::now() {
                return false;
            }
            queue.pop_front();
            let mut state = phase.lock();
            state.evicted = true;
            if let Some(reader) = state.reader.take() {
                reader.wake();
            }
            return true;
        }
        false
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock_queue(&self.fresh).entries.len() + lock_queue(&self.idle).entries.len()
    }
}

/// Where a connection is between requests, shared by its I/O and its service.
#[derive(Debug)]
struct Phase {
    state: Mutex<PhaseState>,
    waiting: Arc<Waiting>,
}

#[derive(Debug)]
struct PhaseState {
    /// Requests taken by the service whose answer is not yet written.
    in_flight: usize,
    /// Since when no request is in progress (the opening, or the end of the last answer).
    idle_since: Instant,
    /// Whether an answer was written on the connection (the next head is then a
    /// kept-alive connection's, which may first idle).
    served: bool,
    /// When the first byte of the next request head arrived.
    head_started: Option<Instant>,
    /// The connection's task while its read waits: woken when its request ends (so that
    /// the idle deadline is set) or when it is evicted.
    reader: Option<std::task::Waker>,
    /// Changes whenever a request starts or ends (dates the `Waiting` entries).
    generation: u64,
    /// Closed to make room at the cap: its next read fails.
    evicted: bool,
}

impl PhaseState {
    fn evictable(&self, generation: u64) -> bool {
        self.generation == generation && self.in_flight == 0 && !self.evicted
    }
}

impl Phase {
    fn new(waiting: Arc<Waiting>) -> Arc<Phase> {
        let phase = Arc::new(Phase {
            state: Mutex::new(PhaseState {
                in_flight: 0,
                idle_since: Instant::now(),
                served: false,
                head_started: None,
                reader: None,
                generation: 0,
                evicted: false,
            }),
            waiting,
        });
        phase.waiting.push(false, 0, Arc::downgrade(&phase));
        phase
    }

    fn lock(&self) -> MutexGuard<'_, PhaseState> {
        // Plain fields only: a panic elsewhere cannot leave them half-changed.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The instant by which the connection must have received more, if any: none while a
    /// request is in progress (its body, its handler and its answer have their own bounds;
    /// `waker` is then woken when it ends).
    fn read_deadline(
        &self,
        timeouts: &Timeouts,
        waker: Option<&std::task::Waker>,
    ) -> Option<Instant> {
        let mut state = self.lock();
        if let Some(waker) = waker {
            state.reader = Some(waker.clone());
        }
        if state.in_flight > 0 {
            return None;
        }
        Some(match state.head_started {
            Some(started) => started + timeouts.header,
            None if state.served => state.idle_since + timeouts.idle,
            None => state.idle_since + timeouts.header,
        })
    }

    fn evicted(&self) -> bool {
        self.lock().evicted
    }

    fn bytes_arrived(&self) {
        let mut state = self.lock();
        if state.in_flight == 0 && state.head_started.is_none() {
            state.head_started = Some(Instant::now());
        }
    }
}

/// A request in progress on a connection; dropped when its answer has been written (or
/// abandoned).
struct InFlight(Arc<Phase>);

impl InFlight {
    fn start(phase: Arc<Phase>) -> InFlight {
        {
            let mut state = phase.lock();
            state.in_flight += 1;
            state.generation += 1;
            state.head_started = None;
        }
        InFlight(phase)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let generation = {
            let mut state = self.0.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            if state.in_flight > 0 {
                return;
            }
            state.idle_since = Instant::now();
            state.served = true;
            state.generation += 1;
            if let Some(reader) = state.reader.take() {
                reader.wake();
            }
            state.generation
        };
        self.0
            .waiting
            .push(true, generation, Arc::downgrade(&self.0));
    }
}

/// The warp service, marking its requests in progress until their answers are written.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    phase: Arc<Phase>,
}

impl<S, B> hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Tracked<S>
where
    S: hyper::service::Service<
        hyper::Request<hyper::body::Incoming>,
        Response = hyper::Response<B>,
    >,
    S::Future: Send + 'static,
    B: Body + Unpin,
{
    type Response = hyper::Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        let in_flight = InFlight::start(self.phase.clone());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| TrackedBody {
                inner: body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// An answer's body, which ends its request's time in progress when hyper drops it.
struct TrackedBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's socket with its read and write deadlines: past one, the pending read or
/// write fails with `TimedOut` and hyper closes the connection.
struct Guarded {
    stream: TcpStream,
    phase: Arc<Phase>,
    timeouts: Timeouts,
    read_timer: Pin<Box<Sleep>>,
    read_deadline: Option<Instant>,
    write_timer: Pin<Box<Sleep>>,
    /// Set while writes make no progress.
    write_deadline: Option<Instant>,
}

impl Guarded {
    fn new(stream: TcpStream, phase: Arc<Phase>, timeouts: Timeouts) -> Guarded {
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        Guarded {
            stream,
            phase,
            timeouts,
            read_timer: Box::pin(tokio::time::sleep_until(far)),
            read_deadline: None,
            write_timer: Box::pin(tokio::time::sleep_until(far)),
            write_deadline: None,
        }
    }

    /// A write that is pending: has it been pending too long?
    fn write_stalled(&mut self, cx: &mut Context<'_>) -> bool {
        if self.write_deadline.is_none() {
            let deadline = Instant::now() + self.timeouts.write;
            self.write_deadline = Some(deadline);
            self.write_timer.as_mut().reset(deadline);
        }
        self.write_timer.as_mut().poll(cx).is_ready()
    }

    fn write_progress<T>(&mut self, result: &Poll<io::Result<T>>) {
        if matches!(result, Poll::Ready(Ok(_))) {
            self.write_deadline = None;
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        if this.phase.evicted() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed to make room for a new connection",
            )));
        }
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.phase.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some(deadline) = this.phase.read_deadline(&this.timeouts, Some(cx.waker()))
                else {
                    return Poll::Pending;
                };
                if this.read_deadline != Some(deadline) {
                    this.read_deadline = Some(deadline);
                    this.read_timer.as_mut().reset(deadline);
                }
                if this.read_timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(timed_out("no request in time")));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, data);
        self.write_progress(&result);
        if result.is_pending() && self.write_stalled(cx) {
            return Poll::Ready(Err(timed_out("the client took nothing in time")));
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.write_progress(&result);
        if result.is_pending() && self.write_stalled(cx) {
            return Poll::Ready(Err(timed_out("the client took nothing in time")));
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.stream).poll_flush(cx);
        self.write_progress(&result);
        if result.is_pending() && self.write_stalled(cx) {
            return Poll::Ready(Err(timed_out("the client took nothing in time")));
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_descriptors_for_the_work() {
        let cap = default_max_connections() as u64;
        let soft = nofile_limit().unwrap_or(1024).min(1 << 20);
        assert!(cap >= 16);
        if soft >= 2 * 16 + RESERVED_FDS {
            // Each connection and one descriptor of its own, and the reserve, fit.
            assert!(cap * 2 + RESERVED_FDS <= soft, "{cap} of {soft}");
        }
    }

    #[test]
    fn at_the_cap_the_longest_waiting_connection_without_a_request_makes_room() {
        let waiting = Arc::new(Waiting::new(Duration::ZERO));
        let first = Phase::new(waiting.clone());
        let busy = Phase::new(waiting.clone());
        let third = Phase::new(waiting.clone());
        let request = InFlight::start(busy.clone());
        assert!(waiting.evict_oldest());
        assert!(first.evicted() && !busy.evicted() && !third.evicted());
        assert!(waiting.evict_oldest());
        assert!(third.evicted() && !busy.evicted());
        assert!(
            !waiting.evict_oldest(),
            "a connection with a request in progress stays"
        );
        drop(request);
        // A kept-alive connection goes only when no new one is waiting.
        let new = Phase::new(waiting.clone());
        assert!(waiting.evict_oldest());
        assert!(new.evicted() && !busy.evicted());
        assert!(waiting.evict_oldest());
        assert!(busy.evicted());
        // Entries of connections that are gone or busy again are swept out.
        for _ in 0..200 {
            let phase = Phase::new(waiting.clone());
            let _busy = InFlight::start(phase);
        }
        assert!(waiting.len() <= 2 * (64 + 1));
        // Nothing younger than the minimum age goes.
        let waiting = Arc::new(Waiting::new(Duration::from_secs(60)));
        let young = Phase::new(waiting.clone());
        assert!(!waiting.evict_oldest());
        assert!(!young.evicted());
    }

    #[test]
    fn steady_traffic_leaves_no_pile_of_stale_entries() {
        // Every answer of a kept-alive connection adds an entry; the one before goes stale.
        let waiting = Arc::new(Waiting::new(Duration::ZERO));
        let phases: Vec<_> = (0..10).map(|_| Phase::new(waiting.clone())).collect();
        for i in 0..100_000 {
            drop(InFlight::start(phases[i % phases.len()].clone()));
        }
        assert!(
            waiting.len() <= 2 * MIN_SWEEP_AT + 2 * phases.len(),
            "{}",
            waiting.len()
        );
        let capacity = lock_queue(&waiting.idle).entries.capacity();
        assert!(capacity <= 8 * MIN_SWEEP_AT, "{capacity}");
    }

    #[tokio::test]
    async fn deadlines_follow_the_connection_between_requests() {
        let timeouts = Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            write: Duration::from_secs(60),
        };
        let left = |phase: &Phase| {
            phase
                .read_deadline(&timeouts, None)
                .map(|d| d.saturating_duration_since(Instant::now()))
        };
        let phase = Phase::new(Arc::new(Waiting::new(Duration::ZERO)));
        // A new connection must send its first head within the header timeout, counted
        // from its first byte once that came.
        assert!(left(&phase).is_some_and(|d| d <= timeouts.header));
        phase.bytes_arrived();
        let started = phase.lock().head_started;
        phase.bytes_arrived();
        assert_eq!(phase.lock().head_started, started, "the first byte counts");
        assert!(left(&phase).is_some_and(|d| d <= timeouts.header));
        // While a request is in progress there is none.
        let request = InFlight::start(phase.clone());
        assert_eq!(left(&phase), None);
        phase.bytes_arrived();
        assert_eq!(left(&phase), None);
        drop(request);
        // Then the connection may idle, and the next head has the header timeout again.
        assert!(left(&phase).is_some_and(|d| d > timeouts.header && d <= timeouts.idle));
        phase.bytes_arrived();
        assert!(left(&phase).is_some_and(|d| d <= timeouts.header));
    }
}
