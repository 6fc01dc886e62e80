//! The model: the records the service stores and the rules they keep, below both the api
//! (which answers clients with them) and the engine (which advances runs with them), naming
//! neither. Records here are plain data with the (de)serialisation they are stored and
//! answered in; a missing object is `None` here, and the api alone makes it a 404.
//! - `values`: tools, tool resources, content parts, attachments, metadata;
//! - `assistant`, `thread`, `message`, `run`, `step`, `file`, `vector_store`: one module
//!   per record, with its loaders and status;
//! - `item`: conversation items (a conversation is a thread): messages converted to and
//!   from `message` items, other items stored as JSON values; merged listing, paging;
//! - `response`: the response face of a run record (a response is a run), its object
//!   and output items;
//! - `claim`: the thread claim (one active run per thread), in one place;
//! - `schemas`: the documented shapes of the records' JSON-valued fields (OpenAPI).

pub mod assistant;
pub mod claim;
pub mod file;
pub mod item;
pub mod message;
pub mod response;
pub mod run;
pub mod schemas;
pub mod step;
pub mod thread;
pub mod values;
pub mod vector_store;

/// Current time in Unix seconds, as every `*_at` field has it.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Current time in Unix milliseconds (a run's last change, for the stall check).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
