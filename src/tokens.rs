//! Token counting and encoding (o200k_base, as current OpenAI models count), safe on any
//! input: linear time, memory bounded per call, and no panic.
//!
//! The tokenizer splits text into pieces with a backtracking regex and merges each piece
//! with byte-pair encoding. On ordinary text the pieces are words. On a long run without
//! whitespace (40 MB of one letter, a base64 blob) the whole run is one piece: the merge then
//! needs about 50 bytes of memory per byte of the run, and the regex can exceed its
//! backtracking limit, on which `tiktoken-rs` panics. So text is fed to it in segments of
//! at most `SEGMENT` bytes, cut just before whitespace where there is some (a word keeps its
//! leading space, as the tokenizer's own pieces do) and at a character boundary where there
//! is none. Counts differ from whole-text encoding by at most a token at each forced cut,
//! and decoding the concatenated tokens gives back the text exactly.

use std::sync::OnceLock;

/// Largest piece of text handed to the tokenizer at once.
const SEGMENT: usize = 4096;

fn bpe() -> &'static tiktoken_rs::CoreBPE {
    static BPE: OnceLock<&'static tiktoken_rs::CoreBPE> = OnceLock::new();
    BPE.get_or_init(tiktoken_rs::o200k_base_singleton)
}

/// `text` cut into segments of at most `SEGMENT` bytes (a single character longer than
/// that cannot exist: UTF-8 characters are at most 4 bytes).
pub fn segments(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() <= SEGMENT {
            let all = rest;
            rest = "";
            return Some(all);
        }
        let mut end = SEGMENT;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        // Prefer to cut before the last whitespace of the window's second half, so words
        // stay whole; a window with none is one run and is cut where it is.
        let window = &rest.as_bytes()[SEGMENT / 2..end];
        if let Some(i) = window.iter().rposition(|b| b.is_ascii_whitespace()) {
            end = SEGMENT / 2 + i;
        }
        let (head, tail) = rest.split_at(end);
        rest = tail;
        Some(head)
    })
}

/// The tokens of `text`; `None` once there would be more than `limit`.
pub fn encode_limited(text: &str, limit: usize) -> Option<Vec<u32>> {
    let mut tokens = Vec::new();
    for segment in segments(text) {
        tokens.extend(bpe().encode_ordinary(segment));
        if tokens.len() > limit {
            return None;
        }
    }
    Some(tokens)
}

/// How many tokens `text` is.
pub fn count(text: &str) -> u64 {
    segments(text)
        .map(|s| bpe().encode_ordinary(s).len() as u64)
        .sum()
}

/// The text of `tokens`, with characters cut at either end dropped.
pub fn decode(tokens: &[u32]) -> String {
    let bytes = bpe().decode_bytes(tokens).unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .trim_matches('\u{FFFD}')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_the_text_and_stay_small() {
        let texts = [
            "a".repeat(20_000),
            "word ".repeat(5_000),
            "é".repeat(9_999),
            format!("{}{}", " ".repeat(10_000), "x".repeat(10_000)),
            "short".to_string(),
            String::new(),
        ];
        for text in &texts {
            let parts: Vec<&str> = segments(text).collect();
            assert_eq!(parts.concat(), *text);
            assert!(parts.iter().all(|p| p.len() <= SEGMENT && !p.is_empty()));
        }
    }

    #[test]
    fn ordinary_text_counts_as_the_tokenizer_does() {
        assert_eq!(count("hello world"), 2);
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(1_000);
        let whole = bpe().encode_ordinary(&text).len() as u64;
        let ours = count(&text);
        // Cuts before whitespace keep words whole: at most a token per cut.
        assert!(ours.abs_diff(whole) <= text.len() as u64 / SEGMENT as u64 + 1);
        let tokens = encode_limited(&text, usize::MAX).unwrap();
        assert_eq!(decode(&tokens), text);
    }

    #[test]
    fn pathological_runs_are_tokenized() {
        // Each a single piece to the tokenizer if given whole (see the module comment; the
        // time and memory it takes are measured by the hostile-input tests and benchmarks).
        for unit in ["a", "A", "1", "!", " ", "\n", "é", "中", "🙂", "a1!"] {
            let text = unit.repeat((1 << 20) / unit.len());
            let tokens = encode_limited(&text, usize::MAX).unwrap();
            assert!(!tokens.is_empty());
            assert_eq!(decode(&tokens), text, "{unit:?}");
        }
    }

    #[test]
    fn the_limit_stops_early() {
        let text = "word ".repeat(10_000);
        assert!(encode_limited(&text, 100).is_none());
        assert!(encode_limited(&text, 20_000).is_some());
    }
}
