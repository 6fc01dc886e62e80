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
        let (mut set, raw) = ChunkSet::split(bytes)?;
        set.vectors = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Some(set)
    }

    /// The header (a chunk set without its vectors) and the raw vector bytes, checked to
    /// hold `dims` f32 per chunk.
    fn split(bytes: &[u8]) -> Option<(ChunkSet, &[u8])> {
        if bytes.len() < 8 || &bytes[..4] != MAGIC {
            return None;
        }
        let len = u32::from_le_bytes(bytes[4..8].try_into().ok()?) as usize;
        let header = bytes.get(8..8usize.checked_add(len)?)?;
        let set: ChunkSet = serde_json::from_slice(header).ok()?;
        let raw = &bytes[8 + len..];
        if Some(raw.len()) != set.dims.checked_mul(set.chunks.len())?.checked_mul(4) {
            return None;
        }
        Some((set, raw))
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
///
/// Rows are kept as int8 with one scale per row (a quarter of f32's memory and memory
/// traffic: 100,000 chunks of 1,536 dims are 154 MB instead of 614 MB), scored in two
/// passes: an integer dot product with the int8 query over every row (split across the
/// cores when the index is large), then the best candidates re-scored with the f32 query,
/// which leaves only the rows' rounding in the score (about 1e-4 of cosine).
pub struct Index {
    pub dims: usize,
    pub entries: Vec<Entry>,
    /// `entries.len() * dims` values, row per entry: `round(x / scale)`.
    rows: Vec<i8>,
    /// Per row: `max |x| / 127`, so that `x ≈ row * scale`.
    scales: Vec<f32>,
}

/// Builds an index one chunk set at a time, so that a store's f32 vectors never have to be
/// in memory all at once (only the int8 rows are kept).
#[derive(Default)]
pub struct IndexBuilder {
    dims: usize,
    entries: Vec<Entry>,
    rows: Vec<i8>,
    scales: Vec<f32>,
    /// Scratch for one decoded row.
    row: Vec<f32>,
}

impl IndexBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a decoded chunk set. Sets embedded with another number of dimensions than the
    /// first non-empty one (another model) are skipped: they are not comparable.
    pub fn add(&mut self, set: ChunkSet, attributes: Option<serde_json::Map<String, Value>>) {
        if !self.accepts(set.dims, set.chunks.len(), set.vectors.len()) {
            return;
        }
        let dims = self.dims;
        for (text, row) in set.chunks.into_iter().zip(set.vectors.chunks_exact(dims)) {
            self.push_row(row.iter().copied());
            self.entries.push(Entry {
                file_id: set.file_id.clone(),
                filename: set.filename.clone(),
                text,
                attributes: attributes.clone(),
            });
        }
    }

    /// Adds a chunk set straight from its stored bytes (as `ChunkSet::encode` wrote them),
    /// without decoding its vectors to f32 first. False when the bytes are not a chunk set.
    pub fn add_encoded(
        &mut self,
        bytes: &[u8],
        attributes: Option<serde_json::Map<String, Value>>,
    ) -> bool {
        let Some((header, raw)) = ChunkSet::split(bytes) else {
            return false;
        };
        if !self.accepts(header.dims, header.chunks.len(), raw.len() / 4) {
            return true;
        }
        let dims = self.dims;
        for (text, row) in header.chunks.into_iter().zip(raw.chunks_exact(dims * 4)) {
            self.push_row(
                row.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
            self.entries.push(Entry {
                file_id: header.file_id.clone(),
                filename: header.filename.clone(),
                text,
                attributes: attributes.clone(),
            });
        }
        true
    }

    /// Whether a set of `chunks` rows of `dims` (with `values` values) fits this index;
    /// the first non-empty set fixes the dimensions.
    fn accepts(&mut self, dims: usize, chunks: usize, values: usize) -> bool {
        if dims == 0 || values != dims * chunks {
            return false;
        }
        if self.dims == 0 {
            self.dims = dims;
        }
        self.dims == dims
    }

    fn push_row(&mut self, row: impl Iterator<Item = f32>) {
        self.row.clear();
        self.row.extend(row);
        let scale = quantise_into(&self.row, &mut self.rows);
        self.scales.push(scale);
    }

    pub fn finish(self) -> Index {
        Index {
            dims: self.dims,
            entries: self.entries,
            rows: self.rows,
            scales: self.scales,
        }
    }
}

/// Appends `v` as int8 to `out` and returns its scale (`max |x| / 127`; 0 for a zero or
/// non-finite vector, whose row is then all zeros and scores 0).
fn quantise_into(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if !(max.is_finite() && max > 0.0) {
        out.extend(std::iter::repeat_n(0i8, v.len()));
        return 0.0;
    }
    let scale = max / 127.0;
    let inv = 127.0 / max;
    out.extend(
        v.iter()
            .map(|x| (x * inv).round().clamp(-127.0, 127.0) as i8),
    );
    scale
}

/// Values (rows × dims) each thread must get before the scan is split across cores: below
/// that, starting a thread (tens of microseconds) costs more than it saves.
const PARALLEL_MIN_VALUES: usize = 4 << 20;

fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A candidate in the first pass, ordered by approximate score, then by lower index (so
/// that ties rank the same way every time).
#[derive(PartialEq)]
struct Candidate(f32, usize);

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// How far an approximate (int8 × int8) score may be below the re-scored one: a row is
/// kept as a candidate for `min_score` if its approximate score is within this of it.
const APPROX_SLACK: f32 = 0.01;

impl Index {
    pub fn build(sets: Vec<(ChunkSet, Option<serde_json::Map<String, Value>>)>) -> Index {
        let mut builder = IndexBuilder::new();
        for (set, attributes) in sets {
            builder.add(set, attributes);
        }
        builder.finish()
    }

    /// Bytes held by the vectors (rows and scales), for reports.
    pub fn vector_bytes(&self) -> usize {
        self.rows.len() + self.scales.len() * 4
    }

    /// The `limit` best entries for `query` (normalised) that pass `keep`, with cosine
    /// scores clamped to 0..1, best first. `keep` is asked only about rows that would
    /// enter the current best candidates, not about every row.
    pub fn search(
        &self,
        query: &[f32],
        limit: usize,
        min_score: f32,
        keep: impl Fn(&Entry) -> bool,
    ) -> Vec<(usize, f32)> {
        if self.dims == 0 || query.len() != self.dims || limit == 0 || self.entries.is_empty() {
            return Vec::new();
        }
        let mut q = Vec::with_capacity(self.dims);
        let q_scale = quantise_into(query, &mut q);
        let approx = self.approximate_scores(&q, q_scale);

        // First pass: the best `wanted` rows by approximate score that pass the filter.
        // More than `limit`, so that the exact re-scoring can reorder near-ties.
        let wanted = (limit * 2).max(limit + 16);
        let floor = min_score - APPROX_SLACK;
        let mut best: std::collections::BinaryHeap<std::cmp::Reverse<Candidate>> =
            std::collections::BinaryHeap::with_capacity(wanted + 1);
        for (i, &score) in approx.iter().enumerate() {
            if score < floor {
                continue;
            }
            let candidate = Candidate(score, i);
            if best.len() == wanted {
                match best.peek() {
                    Some(std::cmp::Reverse(worst)) if candidate > *worst => {}
                    _ => continue,
                }
            }
            if !keep(&self.entries[i]) {
                continue;
            }
            best.push(std::cmp::Reverse(candidate));
            if best.len() > wanted {
                best.pop();
            }
        }

        // Second pass: the f32 query against the candidates' rows.
        let mut scored: Vec<(usize, f32)> = best
            .into_iter()
            .map(|std::cmp::Reverse(Candidate(_, i))| {
                let row = &self.rows[i * self.dims..(i + 1) * self.dims];
                let dot: f32 = row.iter().zip(query).map(|(r, x)| *r as f32 * x).sum();
                (i, (dot * self.scales[i]).clamp(0.0, 1.0))
            })
            .filter(|(_, s)| *s >= min_score)
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(limit);
        scored
    }

    /// `row · query` for every row, from the int8 rows and query, in f32 units.
    fn approximate_scores(&self, q: &[i8], q_scale: f32) -> Vec<f32> {
        let threads = cores().min(self.rows.len() / PARALLEL_MIN_VALUES).max(1);
        self.approximate_scores_on(threads, q, q_scale)
    }

    fn approximate_scores_on(&self, threads: usize, q: &[i8], q_scale: f32) -> Vec<f32> {
        let n = self.entries.len();
        let mut out = vec![0f32; n];
        if threads <= 1 || n < threads {
            score_rows(&self.rows, &self.scales, q, q_scale, &mut out);
            return out;
        }
        let per = n.div_ceil(threads);
        std::thread::scope(|s| {
            let mut parts = self
                .rows
                .chunks(per * self.dims)
                .zip(self.scales.chunks(per))
                .zip(out.chunks_mut(per));
            // This thread takes the first part; the others get a thread each.
            let first = parts.next();
            for ((rows, scales), out) in parts {
                s.spawn(move || score_rows(rows, scales, q, q_scale, out));
            }
            if let Some(((rows, scales), out)) = first {
                score_rows(rows, scales, q, q_scale, out);
            }
        });
        out
    }
}

/// Scores `rows` (each `q.len()` long) against `q` into `out`.
fn score_rows(rows: &[i8], scales: &[f32], q: &[i8], q_scale: f32, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { score_rows_avx2(rows, scales, q, q_scale, out) };
    }
    score_rows_portable(rows, scales, q, q_scale, out);
}

/// The same loop compiled for AVX2 (the default x86-64 target only has SSE2, which does a
/// quarter of the work per instruction); chosen at run time, so the binary still runs on
/// any x86-64.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn score_rows_avx2(rows: &[i8], scales: &[f32], q: &[i8], q_scale: f32, out: &mut [f32]) {
    score_rows_portable(rows, scales, q, q_scale, out);
}

#[inline(always)]
fn score_rows_portable(rows: &[i8], scales: &[f32], q: &[i8], q_scale: f32, out: &mut [f32]) {
    for ((row, scale), out) in rows.chunks_exact(q.len()).zip(scales).zip(out) {
        // |dot| ≤ dims × 127²: no overflow of i32 below 133,000 dimensions.
        let dot: i32 = row
            .iter()
            .zip(q)
            .map(|(a, b)| i32::from(*a) * i32::from(*b))
            .sum();
        *out = dot as f32 * scale * q_scale;
    }
}

/// Indexes of vector stores by `(tenant/store id)`, each with the store version it was
/// built at; a search whose store has another version rebuilds. The indexes held take at
/// most `budget` bytes (`SEARCH_CACHE_MB`): beyond, the least recently used go (a tenant with
/// many large stores could otherwise make the process hold all of them at once). An index
/// larger than the whole budget is used for its search and not kept.
pub struct IndexCache {
    budget: usize,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    entries: HashMap<String, Cached>,
    bytes: usize,
    /// Counts uses, to find the least recently used.
    clock: u64,
}

struct Cached {
    version: u64,
    index: Arc<Index>,
    bytes: usize,
    used: u64,
}

impl Index {
    /// About how much memory the index holds.
    pub fn memory_bytes(&self) -> usize {
        let texts: usize = self
            .entries
            .iter()
            .map(|e| {
                e.file_id.len()
                    + e.filename.len()
                    + e.text.len()
                    + e.attributes.as_ref().map_or(0, |a| 64 * (a.len() + 1))
                    + std::mem::size_of::<Entry>()
            })
            .sum();
        self.rows.len() + 4 * self.scales.len() + texts
    }
}

impl IndexCache {
    pub fn new(budget: usize) -> IndexCache {
        IndexCache {
            budget,
            held: Mutex::new(Held::default()),
        }
    }

    pub fn get(&self, key: &str, version: u64) -> Option<Arc<Index>> {
        let mut held = self.held.lock().ok()?;
        held.clock += 1;
        let now = held.clock;
        let cached = held.entries.get_mut(key).filter(|c| c.version == version)?;
        cached.used = now;
        Some(cached.index.clone())
    }

    pub fn put(&self, key: &str, version: u64, index: Arc<Index>) {
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        if let Some(old) = held.entries.remove(key) {
            held.bytes -= old.bytes;
        }
        let bytes = index.memory_bytes();
        if bytes > self.budget {
            return;
        }
        while held.bytes + bytes > self.budget {
            let Some(oldest) = held
                .entries
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(gone) = held.entries.remove(&oldest) {
                held.bytes -= gone.bytes;
            }
        }
        held.clock += 1;
        let used = held.clock;
        held.bytes += bytes;
        held.entries.insert(
            key.to_string(),
            Cached {
                version,
                index,
                bytes,
                used,
            },
        );
    }

    pub fn forget(&self, key: &str) {
        if let Ok(mut held) = self.held.lock() {
            if let Some(gone) = held.entries.remove(key) {
                held.bytes -= gone.bytes;
            }
        }
    }

    /// Bytes of the indexes held now.
    pub fn held_bytes(&self) -> usize {
        self.held.lock().map(|h| h.bytes).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

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
        assert!((hits[0].1 - 1.0).abs() < 1e-6);
        assert!((hits[1].1 - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-3);
        assert!(index.search(&[1.0, 0.0], 5, 0.9, |_| true).len() == 1);
        // The filter is honoured; the query's dimensions must match.
        let hits = index.search(&[1.0, 0.0], 5, 0.0, |e| e.text != "x");
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![2, 1]);
        assert!(index.search(&[1.0, 0.0, 0.0], 5, 0.0, |_| true).is_empty());
        assert!(index.search(&[1.0, 0.0], 0, 0.0, |_| true).is_empty());
    }

    /// `n` random unit vectors of `dims` (components uniform in -1..1, then normalised).
    fn random_rows(rng: &mut impl rand::Rng, n: usize, dims: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n * dims);
        for _ in 0..n {
            let mut v: Vec<f32> = (0..dims).map(|_| rng.gen_range(-1.0..1.0)).collect();
            normalise(&mut v);
            out.extend(v);
        }
        out
    }

    fn random_set(rng: &mut impl rand::Rng, name: &str, n: usize, dims: usize) -> ChunkSet {
        ChunkSet {
            file_id: name.into(),
            filename: format!("{name}.txt"),
            dims,
            chunks: (0..n).map(|i| format!("{name} {i}")).collect(),
            vectors: random_rows(rng, n, dims),
        }
    }

    /// Exact f32 cosine ranking, the reference the int8 index is held to.
    fn exact(vectors: &[f32], dims: usize, query: &[f32], limit: usize) -> Vec<(usize, f32)> {
        let mut all: Vec<(usize, f32)> = vectors
            .chunks_exact(dims)
            .enumerate()
            .map(|(i, row)| (i, row.iter().zip(query).map(|(a, b)| a * b).sum::<f32>()))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        all.truncate(limit);
        all
    }

    #[test]
    fn int8_ranking_agrees_with_exact_cosine_on_random_data() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let dims = 384;
        let set = random_set(&mut rng, "f", 2000, dims);
        let vectors = set.vectors.clone();
        let index = Index::build(vec![(set, None)]);
        let (mut same_top10, mut same_first, mut overlap, mut max_error) = (0, 0, 0, 0f32);
        let queries = 60;
        for _ in 0..queries {
            // Queries near a row (as a question near its answer) and purely random ones.
            let mut q = random_rows(&mut rng, 1, dims);
            let near = rng.gen_range(0..2000);
            let is_near = rng.gen_bool(0.5);
            if is_near {
                q.iter_mut()
                    .zip(&vectors[near * dims..(near + 1) * dims])
                    .for_each(|(x, r)| *x = *x * 0.6 + r);
                normalise(&mut q);
            }
            let want = exact(&vectors, dims, &q, 10);
            let got = index.search(&q, 10, 0.0, |_| true);
            let want_ids: Vec<usize> = want.iter().filter(|w| w.1 > 0.0).map(|w| w.0).collect();
            let got_ids: Vec<usize> = got.iter().map(|g| g.0).collect();
            same_top10 += usize::from(want_ids == got_ids);
            overlap += got_ids.iter().filter(|i| want_ids.contains(i)).count();
            // Rank by rank, the scores are the exact ones up to rounding, even where two
            // near-equal rows swapped places.
            for (w, g) in want.iter().zip(&got) {
                assert!(
                    (w.1 - g.1).abs() < 2e-3,
                    "rank score {} vs exact {}",
                    g.1,
                    w.1
                );
            }
            // Near a row, the best hit is clear and must be the exact one; a random query's
            // best few can be closer to each other than the rows' rounding.
            assert!(!is_near || want_ids.first() == got_ids.first());
            same_first += usize::from(want_ids.first() == got_ids.first());
            for (i, score) in &got {
                let exact_score: f32 = vectors[i * dims..(i + 1) * dims]
                    .iter()
                    .zip(&q)
                    .map(|(a, b)| a * b)
                    .sum();
                max_error = max_error.max((score - exact_score).abs());
            }
        }
        let recall = overlap as f32 / (queries * 10) as f32;
        eprintln!(
            "same best hit {same_first}, same top 10 {same_top10} of {queries}; \
             recall@10 {recall}; max score error {max_error}"
        );
        assert!(
            same_first >= queries * 98 / 100,
            "same best hit in {same_first} of {queries}"
        );
        assert!(recall >= 0.97, "recall@10 {recall}");
        assert!(max_error < 2e-3, "score error {max_error}");
    }

    #[test]
    fn split_scan_scores_as_one_thread_does() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let index = Index::build(vec![(random_set(&mut rng, "f", 1001, 64), None)]);
        let mut q = Vec::new();
        let q_scale = quantise_into(&random_rows(&mut rng, 1, 64), &mut q);
        let one = index.approximate_scores_on(1, &q, q_scale);
        for threads in [2, 3, 7] {
            assert_eq!(index.approximate_scores_on(threads, &q, q_scale), one);
        }
    }

    #[test]
    fn stored_bytes_index_as_decoded_sets_do() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let a = random_set(&mut rng, "a", 30, 16);
        let b = random_set(&mut rng, "b", 20, 16);
        let other_model = random_set(&mut rng, "c", 5, 8);
        let mut builder = IndexBuilder::new();
        assert!(builder.add_encoded(&a.encode(), None));
        assert!(builder.add_encoded(&other_model.encode(), None));
        assert!(builder.add_encoded(&b.encode(), None));
        assert!(!builder.add_encoded(b"VSC1junk", None));
        let from_bytes = builder.finish();
        let decoded = Index::build(vec![(a, None), (other_model, None), (b, None)]);
        assert_eq!(from_bytes.entries.len(), 50);
        assert_eq!(from_bytes.rows, decoded.rows);
        assert_eq!(from_bytes.scales, decoded.scales);
        let q = random_rows(&mut rng, 1, 16);
        assert_eq!(
            from_bytes.search(&q, 5, 0.0, |_| true),
            decoded.search(&q, 5, 0.0, |_| true)
        );
    }

    #[test]
    fn the_filter_is_asked_only_about_contenders() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let n = 20_000;
        let index = Index::build(vec![(random_set(&mut rng, "f", n, 32), None)]);
        let q = random_rows(&mut rng, 1, 32);
        let asked = std::cell::Cell::new(0);
        let hits = index.search(&q, 5, 0.0, |e| {
            asked.set(asked.get() + 1);
            !e.text.ends_with('7')
        });
        assert_eq!(hits.len(), 5);
        assert!(hits.iter().all(|(i, _)| i % 10 != 7));
        assert!(asked.get() < n / 20, "asked {} times", asked.get());
    }

    #[test]
    fn zero_and_odd_vectors_do_not_break_scoring() {
        let set = ChunkSet {
            file_id: "f".into(),
            filename: "f".into(),
            dims: 2,
            chunks: vec!["zero".into(), "nan".into(), "x".into()],
            vectors: vec![0.0, 0.0, f32::NAN, 1.0, 1.0, 0.0],
        };
        let index = Index::build(vec![(set, None)]);
        let hits = index.search(&[1.0, 0.0], 3, 0.0, |_| true);
        assert_eq!(hits[0], (2, 1.0));
        assert!(hits.iter().all(|(_, s)| (0.0..=1.0).contains(s)));
    }

    #[test]
    fn the_cache_keeps_within_its_budget_dropping_the_least_recently_used() {
        let mut rng = rand::thread_rng();
        let mut index = |name: &str| {
            Arc::new(Index::build(vec![(
                random_set(&mut rng, name, 100, 64),
                None,
            )]))
        };
        let one = index("a").memory_bytes();
        let cache = IndexCache::new(3 * one + one / 2);
        for key in ["a", "b", "c"] {
            cache.put(key, 1, index(key));
        }
        assert!(cache.get("a", 1).is_some());
        // A fourth makes room by dropping the least recently used: b (a was just used).
        cache.put("d", 1, index("d"));
        assert!(cache.held_bytes() <= 3 * one + one / 2);
        assert!(cache.get("b", 1).is_none());
        assert!(cache.get("a", 1).is_some() && cache.get("d", 1).is_some());
        // Another version is a miss; a replaced entry counts once.
        assert!(cache.get("a", 2).is_none());
        cache.put("a", 2, index("a"));
        assert!(cache.held_bytes() <= 3 * one + one / 2);
        cache.forget("a");
        assert!(cache.get("a", 2).is_none());
        // One larger than the whole budget is not kept.
        let small = IndexCache::new(one / 2);
        small.put("x", 1, index("x"));
        assert!(small.get("x", 1).is_none());
        assert_eq!(small.held_bytes(), 0);
    }
}
