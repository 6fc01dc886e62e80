//! Retrieval for vector stores and `file_search`: text extraction, chunking, the stored
//! chunk sets with their embeddings, and the in-memory search index.
//! - `extract`: text out of files by format;
//! - `extractor`: `extract` run in a child process with limits (the only way the service
//!   runs it);
//! - `chunk`: token-window chunking;
//! - `index`: chunk sets (stored), indexes (cached), cosine search;
//! - `ingest`: a file into a vector store (the `ingest` work item);
//! - `search`: a store's index built from its chunk sets, searched with filters.

pub mod chunk;
pub mod extract;
pub mod extractor;
pub mod index;
pub mod ingest;
pub mod search;

use crate::config::IngestSettings;
use crate::llm::{LlmClient, LlmError};
use crate::queue::fair::TenantSlots;
use index::IndexCache;
use std::sync::Arc;

/// What retrieval needs at run time: the embeddings endpoint, the index cache, and the
/// limits of ingestion with its slots (extraction and tokenizing are CPU work: at most
/// `concurrency` files at once, at most `tenant_concurrency` of them one tenant's).
pub struct Retrieval {
    pub embedder: Embedder,
    pub cache: IndexCache,
    pub ingest: IngestSettings,
    pub ingest_slots: Arc<TenantSlots>,
}

impl Retrieval {
    pub fn new(embedder: Embedder, ingest: IngestSettings) -> Self {
        Retrieval {
            embedder,
            cache: IndexCache::new(ingest.search_cache_bytes as usize),
            ingest_slots: TenantSlots::new(ingest.concurrency, ingest.tenant_concurrency),
            ingest,
        }
    }
}

pub struct Embedder {
    client: LlmClient,
    model: String,
}

/// Inputs per embeddings request.
const EMBED_BATCH: usize = 64;

impl Embedder {
    pub fn new(client: LlmClient, model: String) -> Self {
        Embedder { client, model }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// Normalised embeddings of `texts`, in order.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(EMBED_BATCH) {
            for mut v in self.client.embed(&self.model, batch).await? {
                index::normalise(&mut v);
                out.push(v);
            }
        }
        Ok(out)
    }
}
