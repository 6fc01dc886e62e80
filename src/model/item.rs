//! Conversation items (placeholder until the conversations work lands: stores every item as
//! JSON under `items/`).

use crate::store::{self, keys, PutMode, Store, StoreError};
use serde_json::Value;

/// Stores normalised items (ids set) in the conversation `thread_id`.
pub async fn put_items(
    store: &dyn Store,
    tenant: &str,
    thread_id: &str,
    items: &[Value],
) -> Result<(), StoreError> {
    for item in items {
        let id = item["id"].as_str().unwrap_or_default();
        let key = keys::item(tenant, thread_id, id);
        store::put_json(store, &key, item, PutMode::Overwrite).await?;
    }
    Ok(())
}

/// Every item of the conversation `thread_id`, oldest first (placeholder: its `items/`).
pub async fn list(
    store: &dyn Store,
    tenant: &str,
    thread_id: &str,
) -> Result<Vec<Value>, StoreError> {
    let prefix = keys::items(tenant, thread_id);
    let mut ids: Vec<String> = store::list_all(store, &prefix)
        .await?
        .iter()
        .map(|k| keys::last_segment(k).to_string())
        .collect();
    ids.sort_unstable();
    store::read_all(store, &prefix, &ids).await
}
