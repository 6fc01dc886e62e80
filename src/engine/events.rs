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

/// Sends events into a channel (a streamed HTTP response reads the other end). A client
/// that went away closes the channel; the run goes on regardless.
pub struct ChannelSink(pub tokio::sync::mpsc::UnboundedSender<crate::api::StreamEvent>);

impl EventSink for ChannelSink {
    fn emit(&mut self, event: &'static str, data: Value) {
        let _ = self.0.send((std::borrow::Cow::Borrowed(event), data));
    }
}
