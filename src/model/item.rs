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
