//! What one call needs, whoever serves it: the api answering a client, the engine advancing
//! a run, retrieval ingesting a file. Below all three, so that none names the one above.

use crate::config::RunSettings;
use crate::queue::DynQueue;
use crate::store::DynStore;
use std::sync::Arc;

/// What one API call needs: who is asking, the store their objects live in, the work
/// queue that advances runs, and how runs behave.
#[derive(Clone)]
pub struct Ctx {
    pub store: DynStore,
    pub queue: DynQueue,
    pub runs: Arc<RunSettings>,
    /// Embeddings and search indexes, for vector stores and `file_search`.
    pub retrieval: Arc<crate::retrieval::Retrieval>,
    /// The `code_interpreter` tool's executor (started on first use).
    pub code_interpreter: Arc<crate::code_interpreter::SharedCodeInterpreter>,
    /// Where run and vector-store events go (`crate::webhooks`).
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// Validated tenant name: the first segment of every key this call touches.
    pub tenant: String,
}
