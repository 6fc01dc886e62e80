//! Splits text into overlapping chunks of a number of tokens (o200k_base, as the prompt
//! budget counts them): `auto` is 800 tokens with 400 of overlap, `static` what it says.

use crate::tokens;

/// Chunks of at most `max_tokens` tokens, each starting `max_tokens - overlap` tokens after
/// the previous one; `None` when the text is more than `token_limit` tokens. Token boundaries
/// that split a character are moved to whole characters.
pub fn chunk(
    text: &str,
    max_tokens: usize,
    overlap: usize,
    token_limit: usize,
) -> Option<Vec<String>> {
    let max_tokens = max_tokens.max(1);
    let step = max_tokens.saturating_sub(overlap).max(1);
    let tokens = tokens::encode_limited(text, token_limit)?;
    if tokens.len() <= max_tokens {
        return Some(vec![text.to_string()]);
    }
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < tokens.len() {
        let end = (start + max_tokens).min(tokens.len());
        // A window may cut a multi-byte character at its edges: `decode` drops the pieces.
        chunks.push(tokens::decode(&tokens[start..end]));
        if end == tokens.len() {
            break;
        }
        start += step;
    }
    Some(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(
            chunk("a short text", 800, 400, 100),
            Some(vec!["a short text".to_string()])
        );
    }

    #[test]
    fn long_text_overlaps() {
        let text: String = (0..1000).map(|i| format!("w{i} ")).collect();
        let chunks = chunk(&text, 100, 50, usize::MAX).unwrap();
        assert!(chunk(&text, 100, 50, 1000).is_none());
        assert!(chunks.len() > 10);
        // Every word survives, and consecutive chunks share words.
        assert!(chunks.iter().any(|c| c.contains("w999")));
        let first: Vec<&str> = chunks[0].split_whitespace().collect();
        assert!(chunks[1].contains(first[first.len() - 1]));
    }
}
