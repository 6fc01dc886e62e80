//! Where a turn reports what happens, as Assistants stream events. The queued path discards
//! them; a streamed request forwards them to its client. One engine, two sinks.

use serde_json::Value;

pub trait EventSink: Send {
    fn emit(&mut self, event: &'static str, data: Value);
}

/// The sink of runs nobody streams.
pub struct Discard;

impl EventSink for Discard {
    fn emit(&mut self, _event: &'static str, _data: Value) {}
}

/// Sends events into a stream's bounded buffer (a streamed HTTP response reads the other
/// end) without ever waiting. A client that went away, or fell so far behind that its
/// stream was dropped, closes it; the run goes on regardless.
pub struct ChannelSink(pub crate::api::events::EventSender);

impl EventSink for ChannelSink {
    fn emit(&mut self, event: &'static str, data: Value) {
        if !self.0.is_open() {
            return;
        }
        let data = serde_json::to_string(&data).unwrap_or_else(|_| "null".into());
        let _ = self.0.send(crate::api::StreamEvent {
            name: std::borrow::Cow::Borrowed(event),
            data,
        });
    }
}
