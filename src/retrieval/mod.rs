//! Retrieval for vector stores and `file_search`: text extraction, chunking, the stored
//! chunk sets with their embeddings, and the in-memory search index.
//! - `extract`: text out of files by format;
//! - `chunk`: token-window chunking;
//! - `index`: chunk sets (stored), indexes (cached), cosine search.

pub mod chunk;
pub mod extract;
pub mod index;
pub mod ingest;

use crate::llm::{LlmClient, LlmError};
use index::IndexCache;

/// What retrieval needs at run time: the embeddings endpoint and the index cache.
pub struct Retrieval {
    pub embedder: Embedder,
    pub cache: IndexCache,
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
