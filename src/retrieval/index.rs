//! The searchable form of a vector store: each file's chunks with their (normalised)
//! embeddings, stored compactly as one object per file, and an in-memory index per vector
//! store built from them on first search and kept while the store does not change.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One file's chunks as stored: a small JSON header then the vectors as raw f32 (LE).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkSet {
    pub file_id: String,
    pub filename: String,
    pub dims: usize,
    pub chunks: Vec<String>,
    #[serde(skip)]
    pub vectors: Vec<f32>,
}

const MAGIC: &[u8; 4] = b"VSC1";

impl ChunkSet {
    pub fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(8 + header.len() + self.vectors.len() * 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        for v in &self.vectors {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<ChunkSet> {
        if bytes.len() < 8 || &bytes[..4] != MAGIC {
            return None;
        }
        let len = u32::from_le_bytes(bytes[4..8].try_into().ok()?) as usize;
        let header = bytes.get(8..8 + len)?;
        let mut set: ChunkSet = serde_json::from_slice(header).ok()?;
        let raw = &bytes[8 + len..];
        if raw.len() != set.dims * set.chunks.len() * 4 {
            return None;
        }
        set.vectors = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Some(set)
    }
}

/// Scales a vector to unit length (so a dot product is the cosine).
pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

pub struct Entry {
    pub file_id: String,
    pub filename: String,
    pub text: String,
    /// The file's attributes, for filters and results.
    pub attributes: Option<serde_json::Map<String, Value>>,
}

/// All chunks of one vector store, ready to score.
pub struct Index {
    pub dims: usize,
    pub entries: Vec<Entry>,
    /// `entries.len() * dims` values, row per entry.
    pub vectors: Vec<f32>,
}

impl Index {
    pub fn build(sets: Vec<(ChunkSet, Option<serde_json::Map<String, Value>>)>) -> Index {
        let dims = sets
            .iter()
            .map(|(s, _)| s.dims)
            .find(|d| *d > 0)
            .unwrap_or(0);
        let mut entries = Vec::new();
        let mut vectors = Vec::new();
        for (set, attributes) in sets {
            if set.dims != dims {
                continue; // Embedded with another model: not comparable.
            }
            for (i, text) in set.chunks.into_iter().enumerate() {
                entries.push(Entry {
                    file_id: set.file_id.clone(),
                    filename: set.filename.clone(),
                    text,
                    attributes: attributes.clone(),
                });
                vectors.extend_from_slice(&set.vectors[i * dims..(i + 1) * dims]);
            }
        }
        Index {
            dims,
            entries,
            vectors,
        }
    }

    /// The `limit` best entries for `query` (normalised) that pass `keep`, with cosine
    /// scores clamped to 0..1, best first.
    pub fn search(
        &self,
        query: &[f32],
        limit: usize,
        min_score: f32,
        keep: impl Fn(&Entry) -> bool,
    ) -> Vec<(usize, f32)> {
        if self.dims == 0 || query.len() != self.dims {
            return Vec::new();
        }
        let mut scored: Vec<(usize, f32)> = self
            .vectors
            .chunks_exact(self.dims)
            .enumerate()
            .map(|(i, row)| {
                (
                    i,
                    row.iter()
                        .zip(query)
                        .map(|(a, b)| a * b)
                        .sum::<f32>()
                        .clamp(0.0, 1.0),
                )
            })
            .filter(|(i, s)| *s >= min_score && keep(&self.entries[*i]))
            .collect();
        let limit = limit.min(scored.len());
        if limit == 0 {
            return Vec::new();
        }
        scored.select_nth_unstable_by(limit - 1, |a, b| b.1.total_cmp(&a.1));
        scored.truncate(limit);
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored
    }
}

/// Indexes of vector stores by `(tenant/store id)`, each with the store version it was
/// built at; a search whose store has another version rebuilds.
#[derive(Default)]
pub struct IndexCache {
    entries: Mutex<HashMap<String, (u64, Arc<Index>)>>,
}

impl IndexCache {
    pub fn get(&self, key: &str, version: u64) -> Option<Arc<Index>> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(v, _)| *v == version)
            .map(|(_, i)| i.clone())
    }

    pub fn put(&self, key: &str, version: u64, index: Arc<Index>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(key.to_string(), (version, index));
        }
    }

    pub fn forget(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sets_round_trip() {
        let set = ChunkSet {
            file_id: "file-x".into(),
            filename: "a.txt".into(),
            dims: 2,
            chunks: vec!["one".into(), "two".into()],
            vectors: vec![1.0, 0.0, 0.0, 1.0],
        };
        let back = ChunkSet::decode(&set.encode()).unwrap();
        assert_eq!(back.vectors, set.vectors);
        assert_eq!(back.chunks, set.chunks);
        assert!(ChunkSet::decode(b"nonsense").is_none());
    }

    #[test]
    fn search_ranks_by_cosine() {
        let set = ChunkSet {
            file_id: "f".into(),
            filename: "f".into(),
            dims: 2,
            chunks: vec!["x".into(), "y".into(), "xy".into()],
            vectors: vec![
                1.0,
                0.0,
                0.0,
                1.0,
                std::f32::consts::FRAC_1_SQRT_2,
                std::f32::consts::FRAC_1_SQRT_2,
            ],
        };
        let index = Index::build(vec![(set, None)]);
        let hits = index.search(&[1.0, 0.0], 2, 0.0, |_| true);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![0, 2]);
        assert!(index.search(&[1.0, 0.0], 5, 0.9, |_| true).len() == 1);
    }
}
