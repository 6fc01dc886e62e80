//! The storage layout: every key the service uses is built here.
//!
//! ```text
//! t/<tenant>/assistants/<asst_id>
//! t/<tenant>/threads/<thread_id>/thread
//! t/<tenant>/threads/<thread_id>/messages/<msg_id>
//! t/<tenant>/threads/<thread_id>/runs/<run_id>
//! t/<tenant>/threads/<thread_id>/steps/<run_id>/<step_id>
//! t/<tenant>/files/<file_id>                  the file object
//! t/<tenant>/file-data/<file_id>              its bytes
//! t/<tenant>/file-links/<file_id>/<vs_id>      the stores that hold a file
//! t/<tenant>/vector_stores/<vs_id>             the store + counts + version
//! t/<tenant>/vs-files/<vs_id>/<file_id>        a file in a store
//! t/<tenant>/vs-chunks/<vs_id>/<file_id>       its chunks and embeddings
//! t/<tenant>/vs-batches/<vs_id>/<batch_id>     a file batch
//! t/<tenant>/threads/<thread_id>/webhooks/<evt_id>   a run event queued for its webhook
//! t/<tenant>/vs-webhooks/<vs_id>/<evt_id>      a file or batch event queued
//! t/<tenant>/webhook-dead/<evt_id>             an event whose delivery was given up
//! t/<tenant>/threads/<thread_id>/items/<item_id>     a conversation item other than a message
//! t/<tenant>/responses/<resp_id>/response      a response (a run record with its response face)
//! t/<tenant>/responses/<resp_id>/input         its input items (context and own input)
//! t/<tenant>/responses/<resp_id>/events/<n>    its stream's events from number n (background)
//! ```
//! A conversation is a thread (`conv_` or `thread_` id): its message items are the thread's
//! messages, its other items (function calls and outputs, tool calls, reasoning) are `items/`.
//! Ids sort by creation time, so a prefix listing is already in creation order. Everything of
//! a thread lives under its prefix, so deleting a thread is one prefix deletion, and the
//! tenant prefix keeps tenants apart. Callers pass only validated ids and tenant names.

pub fn assistants(tenant: &str) -> String {
    format!("t/{tenant}/assistants/")
}

pub fn assistant(tenant: &str, id: &str) -> String {
    format!("t/{tenant}/assistants/{id}")
}

pub fn thread_prefix(tenant: &str, thread_id: &str) -> String {
    format!("t/{tenant}/threads/{thread_id}/")
}

pub fn thread(tenant: &str, thread_id: &str) -> String {
    format!("t/{tenant}/threads/{thread_id}/thread")
}

pub fn messages(tenant: &str, thread_id: &str) -> String {
    format!("t/{tenant}/threads/{thread_id}/messages/")
}

pub fn message(tenant: &str, thread_id: &str, id: &str) -> String {
    format!("t/{tenant}/threads/{thread_id}/messages/{id}")
}

pub fn runs(tenant: &str, thread_id: &str) -> String {
    format!("t/{tenant}/threads/{thread_id}/runs/")
}

/// A run's record. A response is a run too (the engine's other face), kept under
/// `responses/` so that it is found by its id alone and outlives its conversation.
pub fn run(tenant: &str, thread_id: &str, id: &str) -> String {
    if id.starts_with(crate::ids::Kind::Response.prefix()) {
        return response(tenant, id);
    }
    format!("t/{tenant}/threads/{thread_id}/runs/{id}")
}

/// Everything a response keeps: its record, its input, its event log.
pub fn response_prefix(tenant: &str, id: &str) -> String {
    format!("t/{tenant}/responses/{id}/")
}

/// A response's record (a run record with its response face).
pub fn response(tenant: &str, id: &str) -> String {
    format!("t/{tenant}/responses/{id}/response")
}

/// A response's input items: the context it was given and its own input, with ids.
pub fn response_input(tenant: &str, id: &str) -> String {
    format!("t/{tenant}/responses/{id}/input")
}

/// A streamed background response's event log: chunks named by their first event's number
/// (zero-padded, so they list in order).
pub fn response_events(tenant: &str, id: &str) -> String {
    format!("t/{tenant}/responses/{id}/events/")
}

/// A conversation's items other than messages (which are the thread's messages).
pub fn items(tenant: &str, thread_id: &str) -> String {
    format!("t/{tenant}/threads/{thread_id}/items/")
}

pub fn item(tenant: &str, thread_id: &str, id: &str) -> String {
    format!("t/{tenant}/threads/{thread_id}/items/{id}")
}

pub fn steps(tenant: &str, thread_id: &str, run_id: &str) -> String {
    format!("t/{tenant}/threads/{thread_id}/steps/{run_id}/")
}

pub fn step(tenant: &str, thread_id: &str, run_id: &str, id: &str) -> String {
    format!("t/{tenant}/threads/{thread_id}/steps/{run_id}/{id}")
}

pub fn files(tenant: &str) -> String {
    format!("t/{tenant}/files/")
}

pub fn file(tenant: &str, id: &str) -> String {
    format!("t/{tenant}/files/{id}")
}

pub fn file_data(tenant: &str, id: &str) -> String {
    format!("t/{tenant}/file-data/{id}")
}

pub fn file_links(tenant: &str, file_id: &str) -> String {
    format!("t/{tenant}/file-links/{file_id}/")
}

pub fn file_link(tenant: &str, file_id: &str, vs_id: &str) -> String {
    format!("t/{tenant}/file-links/{file_id}/{vs_id}")
}

pub fn vector_stores(tenant: &str) -> String {
    format!("t/{tenant}/vector_stores/")
}

pub fn vector_store(tenant: &str, id: &str) -> String {
    format!("t/{tenant}/vector_stores/{id}")
}

pub fn vector_store_files(tenant: &str, vs_id: &str) -> String {
    format!("t/{tenant}/vs-files/{vs_id}/")
}

pub fn vector_store_file(tenant: &str, vs_id: &str, file_id: &str) -> String {
    format!("t/{tenant}/vs-files/{vs_id}/{file_id}")
}

pub fn vector_store_chunks(tenant: &str, vs_id: &str) -> String {
    format!("t/{tenant}/vs-chunks/{vs_id}/")
}

pub fn vector_store_chunk_set(tenant: &str, vs_id: &str, file_id: &str) -> String {
    format!("t/{tenant}/vs-chunks/{vs_id}/{file_id}")
}

pub fn vector_store_batches(tenant: &str, vs_id: &str) -> String {
    format!("t/{tenant}/vs-batches/{vs_id}/")
}

pub fn vector_store_batch(tenant: &str, vs_id: &str, batch_id: &str) -> String {
    format!("t/{tenant}/vs-batches/{vs_id}/{batch_id}")
}

pub fn run_webhook(tenant: &str, thread_id: &str, event_id: &str) -> String {
    format!("t/{tenant}/threads/{thread_id}/webhooks/{event_id}")
}

pub fn vector_store_webhooks(tenant: &str, vs_id: &str) -> String {
    format!("t/{tenant}/vs-webhooks/{vs_id}/")
}

pub fn vector_store_webhook(tenant: &str, vs_id: &str, event_id: &str) -> String {
    format!("t/{tenant}/vs-webhooks/{vs_id}/{event_id}")
}

pub fn webhooks_dead(tenant: &str) -> String {
    format!("t/{tenant}/webhook-dead/")
}

pub fn webhook_dead(tenant: &str, event_id: &str) -> String {
    format!("t/{tenant}/webhook-dead/{event_id}")
}

/// The last path segment of a key (an object id for the listings above).
pub fn last_segment(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}
