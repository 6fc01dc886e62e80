//! Where a turn reports what happens, as Assistants stream events. The queued path discards
//! them; a streamed request forwards them to its client (`api::events::ChannelSink`). One
//! engine, two sinks.

use serde_json::Value;

pub trait EventSink: Send {
    fn emit(&mut self, event: &'static str, data: Value);
}

/// The sink of runs nobody streams.
pub struct Discard;

impl EventSink for Discard {
    fn emit(&mut self, _event: &'static str, _data: Value) {}
}
