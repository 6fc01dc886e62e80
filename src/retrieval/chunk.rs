//! Splits text into overlapping chunks of a number of tokens (o200k_base, as the prompt
//! budget counts them): `auto` is 800 tokens with 400 of overlap, `static` what it says.

use std::sync::OnceLock;

fn bpe() -> &'static tiktoken_rs::CoreBPE {
    static BPE: OnceLock<&'static tiktoken_rs::CoreBPE> = OnceLock::new();
    BPE.get_or_init(tiktoken_rs::o200k_base_singleton)
}

/// Chunks of at most `max_tokens` tokens, each starting `max_tokens - overlap` tokens after
/// the previous one. Token boundaries that split a character are moved to whole characters.
pub fn chunk(text: &str, max_tokens: usize, overlap: usize) -> Vec<String> {
    let max_tokens = max_tokens.max(1);
    let step = max_tokens.saturating_sub(overlap).max(1);
    let tokens = bpe().encode_ordinary(text);
    if tokens.len() <= max_tokens {
        return vec![text.to_string()];
    }
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < tokens.len() {
        let end = (start + max_tokens).min(tokens.len());
        // A window may cut a multi-byte character at its edges: drop the broken pieces.
        let bytes = bpe().decode_bytes(&tokens[start..end]).unwrap_or_default();
        let piece = String::from_utf8_lossy(&bytes)
            .trim_matches('\u{FFFD}')
            .to_string();
        chunks.push(piece);
        if end == tokens.len() {
            break;
        }
        start += step;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(chunk("a short text", 800, 400), vec!["a short text"]);
    }

    #[test]
    fn long_text_overlaps() {
        let text: String = (0..1000).map(|i| format!("w{i} ")).collect();
        let chunks = chunk(&text, 100, 50);
        assert!(chunks.len() > 10);
        // Every word survives, and consecutive chunks share words.
        assert!(chunks.iter().any(|c| c.contains("w999")));
        let first: Vec<&str> = chunks[0].split_whitespace().collect();
        assert!(chunks[1].contains(first[first.len() - 1]));
    }
}
