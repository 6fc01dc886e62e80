//! The stored backend: every operation served from the `Store`.

use super::{assistants, messages, threads, ApiRequest, Backend, Ctx, Operation, Reply};
use crate::error::ApiError;
use crate::store::DynStore;
use async_trait::async_trait;

pub struct Stateful {
    store: DynStore,
}

impl Stateful {
    pub fn new(store: DynStore) -> Self {
        Stateful { store }
    }

    pub fn store(&self) -> &DynStore {
        &self.store
    }
}

#[async_trait]
impl Backend for Stateful {
    async fn handle(&self, tenant: &str, request: ApiRequest) -> Result<Reply, ApiError> {
        use Operation::*;
        let ctx = Ctx {
            store: self.store.clone(),
            tenant: tenant.to_string(),
        };
        let body = &request.body;
        let query = &request.query;
        let value = match &request.operation {
            ListAssistants => assistants::list(&ctx, query).await?,
            CreateAssistant => assistants::create(&ctx, body).await?,
            GetAssistant { assistant_id } => assistants::get(&ctx, assistant_id).await?,
            ModifyAssistant { assistant_id } => {
                assistants::modify(&ctx, assistant_id, body).await?
            }
            DeleteAssistant { assistant_id } => assistants::delete(&ctx, assistant_id).await?,

            CreateThread => threads::create(&ctx, body).await?,
            GetThread { thread_id } => threads::get(&ctx, thread_id).await?,
            ModifyThread { thread_id } => threads::modify(&ctx, thread_id, body).await?,
            DeleteThread { thread_id } => threads::delete(&ctx, thread_id).await?,

            ListMessages { thread_id } => messages::list(&ctx, thread_id, query).await?,
            CreateMessage { thread_id } => messages::create(&ctx, thread_id, body).await?,
            GetMessage {
                thread_id,
                message_id,
            } => messages::get(&ctx, thread_id, message_id).await?,
            ModifyMessage {
                thread_id,
                message_id,
            } => messages::modify(&ctx, thread_id, message_id, body).await?,
            DeleteMessage {
                thread_id,
                message_id,
            } => messages::delete(&ctx, thread_id, message_id).await?,

            other => return Err(ApiError::NotImplemented(other.name())),
        };
        Ok(Reply::Json(value))
    }
}
