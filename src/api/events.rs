//! The buffer between what produces a stream's events (a streamed run's turns, the proxy's
//! relay) and the HTTP response that writes them to the client.
//!
//! The producer never waits for the client: a turn must run at the model's pace whoever
//! reads (`EventSink::emit` is synchronous). So the buffer is bounded in bytes instead: when
//! a client stops reading and its events reach the limit, its stream is dropped (the queued
//! events are freed at once, the response ends with an error, so the client sees a broken
//! stream, never a complete-looking one) and the producer is told to stop sending. The run
//! itself goes on and is stored as usual. A single event larger than the limit still goes
//! through when nothing is queued.

use crate::engine::events::EventSink;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// One stream event: its name and its data, serialised once, by the producer.
#[derive(Debug, Clone)]
pub struct StreamEvent {
    pub name: Cow<'static, str>,
    pub data: String,
}

impl StreamEvent {
    /// What it costs in the buffer: about its size on the wire.
    fn weight(&self) -> usize {
        self.name.len() + self.data.len() + 16
    }
}

/// The client went away, or its stream was dropped for falling behind: stop sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// The stream was dropped because its client did not read (the error the response ends
/// with).
#[derive(Debug)]
pub struct Overflow {
    pub limit: usize,
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the client did not read its stream: more than {} bytes of events waited",
            self.limit
        )
    }
}

impl std::error::Error for Overflow {}

#[derive(Debug)]
struct State {
    queue: VecDeque<StreamEvent>,
    queued_bytes: usize,
    limit: usize,
    /// Set when the limit was reached; the receiver then ends with `Overflow`.
    overflowed: bool,
    /// `Overflow` was handed out; the receiver ends next.
    reported: bool,
    sender_alive: bool,
    receiver_alive: bool,
    waker: Option<Waker>,
    /// Names the stream in the log line of its drop (e.g. its run).
    label: String,
}

#[derive(Debug)]
struct Shared(Mutex<State>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Only plain fields are changed under the lock, never left half-done by a panic.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A buffer for one stream that holds at most `limit` bytes of events for its client;
/// `label` names the stream in the log.
pub fn channel(limit: usize, label: impl Into<String>) -> (EventSender, EventReceiver) {
    let shared = Arc::new(Shared(Mutex::new(State {
        queue: VecDeque::new(),
        queued_bytes: 0,
        limit,
        overflowed: false,
        reported: false,
        sender_alive: true,
        receiver_alive: true,
        waker: None,
        label: label.into(),
    })));
    (EventSender(shared.clone()), EventReceiver(shared))
}

/// The producer's end: `send` never waits.
#[derive(Debug)]
pub struct EventSender(Arc<Shared>);

impl EventSender {
    /// Queues an event for the client, or drops the stream when the client has fallen
    /// more than the limit behind (then, and once the client is gone: `Err(Closed)`).
    pub fn send(&self, event: StreamEvent) -> Result<(), Closed> {
        let mut state = self.0.lock();
        if state.overflowed || !state.receiver_alive {
            return Err(Closed);
        }
        let weight = event.weight();
        if !state.queue.is_empty() && state.queued_bytes + weight > state.limit {
            log::info!(
                "{}: stream dropped: {}",
                state.label,
                Overflow { limit: state.limit }
            );
            state.overflowed = true;
            state.queue = VecDeque::new();
            state.queued_bytes = 0;
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
            return Err(Closed);
        }
        state.queued_bytes += weight;
        state.queue.push_back(event);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
        Ok(())
    }

    /// Whether the stream still takes events (false once the client went away or the
    /// stream was dropped).
    pub fn is_open(&self) -> bool {
        let state = self.0.lock();
        state.receiver_alive && !state.overflowed
    }
}

impl Drop for EventSender {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.sender_alive = false;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }
}

/// The response's end: the events in order; ends when the producer is done, or with
/// `Overflow` when the stream was dropped.
#[derive(Debug)]
pub struct EventReceiver(Arc<Shared>);

impl futures::Stream for EventReceiver {
    type Item = Result<StreamEvent, Overflow>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut state = self.0.lock();
        if state.overflowed {
            if state.reported {
                return Poll::Ready(None);
            }
            state.reported = true;
            return Poll::Ready(Some(Err(Overflow { limit: state.limit })));
        }
        if let Some(event) = state.queue.pop_front() {
            state.queued_bytes -= event.weight();
            return Poll::Ready(Some(Ok(event)));
        }
        if !state.sender_alive {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.receiver_alive = false;
        state.queue = VecDeque::new();
        state.queued_bytes = 0;
    }
}

/// Sends events into a stream's bounded buffer (a streamed HTTP response reads the other
/// end) without ever waiting. A client that went away, or fell so far behind that its
/// stream was dropped, closes it; the run goes on regardless.
pub struct ChannelSink(pub EventSender);

impl EventSink for ChannelSink {
    fn emit(&mut self, event: &'static str, data: Value) {
        if !self.0.is_open() {
            return;
        }
        let data = serde_json::to_string(&data).unwrap_or_else(|_| "null".into());
        let _ = self.0.send(StreamEvent {
            name: std::borrow::Cow::Borrowed(event),
            data,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn event(data: &str) -> StreamEvent {
        StreamEvent {
            name: Cow::Borrowed("e"),
            data: data.to_string(),
        }
    }

    #[tokio::test]
    async fn events_pass_in_order_and_end_with_the_sender() {
        let (tx, mut rx) = channel(1024, "test");
        tx.send(event("1")).unwrap();
        tx.send(event("2")).unwrap();
        drop(tx);
        assert_eq!(rx.next().await.unwrap().unwrap().data, "1");
        assert_eq!(rx.next().await.unwrap().unwrap().data, "2");
        assert!(rx.next().await.is_none());
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_loses_its_stream_not_the_producer() {
        let (tx, mut rx) = channel(100, "test");
        // One event larger than the limit passes when nothing waits.
        tx.send(event(&"x".repeat(500))).unwrap();
        assert_eq!(tx.send(event("y")), Err(Closed));
        assert!(!tx.is_open());
        // The queue was freed at once; the client sees the stream end with an error.
        assert!(matches!(
            rx.next().await,
            Some(Err(Overflow { limit: 100 }))
        ));
        assert!(rx.next().await.is_none());
        assert_eq!(tx.send(event("z")), Err(Closed));
    }

    #[tokio::test]
    async fn a_reading_client_keeps_its_stream() {
        let (tx, mut rx) = channel(100, "test");
        for i in 0..1000 {
            tx.send(event(&i.to_string())).unwrap();
            assert_eq!(rx.next().await.unwrap().unwrap().data, i.to_string());
        }
    }

    #[test]
    fn a_client_that_went_away_closes_the_stream() {
        let (tx, rx) = channel(100, "test");
        drop(rx);
        assert_eq!(tx.send(event("1")), Err(Closed));
    }
}
