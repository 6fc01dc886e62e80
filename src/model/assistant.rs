//! The assistant record: stored as it is answered.

use super::values::{Metadata, Tool, ToolResources};
use crate::ids::{self, Kind};
use crate::store::{self, keys, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The stored and answered assistant object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Assistant {
    pub id: String,
    #[schema(schema_with = super::schemas::assistant_object)]
    pub object: String,
    /// Unix seconds.
    pub created_at: i64,
    #[schema(required)]
    pub name: Option<String>,
    #[schema(required)]
    pub description: Option<String>,
    pub model: String,
    #[schema(required)]
    pub instructions: Option<String>,
    pub tools: Vec<Tool>,
    pub tool_resources: ToolResources,
    #[schema(value_type = super::schemas::Metadata)]
    pub metadata: Metadata,
    #[schema(required, minimum = 0.0, maximum = 2.0)]
    pub temperature: Option<f64>,
    #[schema(required, minimum = 0.0, maximum = 1.0)]
    pub top_p: Option<f64>,
    #[schema(value_type = super::schemas::ResponseFormat)]
    pub response_format: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::schemas::ReasoningEffort>)]
    pub reasoning_effort: Option<String>,
}

/// The `reasoning_effort` values the service passes on to reasoning models.
pub const REASONING_EFFORTS: &[&str] =
    &["none", "minimal", "low", "medium", "high", "xhigh", "max"];

/// Reads an assistant of this tenant: `None` when there is none (or the id can name none).
pub async fn load(
    store: &dyn Store,
    tenant: &str,
    id: &str,
) -> Result<Option<Assistant>, StoreError> {
    if !ids::is_valid(Kind::Assistant, id) {
        return Ok(None);
    }
    let key = keys::assistant(tenant, id);
    Ok(store::get_json(store, &key).await?.map(|(a, _)| a))
}
