//! Reading one string field out of JSON arguments while they are still being streamed, so
//! the code a model writes for `code_interpreter` can be shown as it arrives
//! (`code_interpreter.input` deltas) although the model sends it as `{"code": "..."}`.

/// The decoded value of string field `field` in the (possibly incomplete) JSON object
/// `buffer`, as far as it has arrived; `None` until the value has started. Arguments that
/// are not a JSON object (a model that sent bare code) are the value themselves.
pub fn string_field_prefix(buffer: &str, field: &str) -> Option<String> {
    let trimmed = buffer.trim_start();
    if trimmed.is_empty() {
        return None;
    }
    if !trimmed.starts_with('{') {
        return Some(buffer.to_string());
    }
    let key = format!("\"{field}\"");
    let mut from = 0;
    let value_start = loop {
        let at = from + buffer[from..].find(&key)?;
        let rest = buffer[at + key.len()..].trim_start();
        if let Some(after_colon) = rest.strip_prefix(':') {
            let value = after_colon.trim_start();
            if value.is_empty() {
                return None;
            }
            let value = value.strip_prefix('"')?;
            break buffer.len() - value.len();
        }
        if rest.is_empty() {
            return None;
        }
        from = at + key.len();
    };
    Some(decode_prefix(&buffer[value_start..]))
}

/// Decodes a JSON string body up to its closing quote or as far as it is complete (an
/// escape cut in half waits for the rest).
fn decode_prefix(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let hex = body.get(i + 2..i + 6);
                        let Some(code) = hex.and_then(|h| u32::from_str_radix(h, 16).ok()) else {
                            break;
                        };
                        for _ in 0..4 {
                            chars.next();
                        }
                        if (0xD800..0xDC00).contains(&code) {
                            // A surrogate pair: the low half follows as \uXXXX.
                            let low = body
                                .get(i + 8..i + 12)
                                .filter(|_| body.get(i + 6..i + 8) == Some("\\u"))
                                .and_then(|h| u32::from_str_radix(h, 16).ok());
                            let Some(low) = low else { break };
                            for _ in 0..6 {
                                chars.next();
                            }
                            let joined = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            out.extend(char::from_u32(joined));
                        } else {
                            out.extend(char::from_u32(code));
                        }
                    }
                    other => out.push(other),
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Follows one field of streamed arguments and hands out what is new each time.
#[derive(Default)]
pub struct FieldStream {
    buffer: String,
    sent_chars: usize,
}

impl FieldStream {
    /// Adds a fragment of the arguments; returns the newly decoded part of the field.
    pub fn push(&mut self, fragment: &str, field: &str) -> Option<String> {
        self.buffer.push_str(fragment);
        let value = string_field_prefix(&self.buffer, field)?;
        let total = value.chars().count();
        if total <= self.sent_chars {
            return None;
        }
        let new: String = value.chars().skip(self.sent_chars).collect();
        self.sent_chars = total;
        Some(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_is_decoded_as_it_streams() {
        let whole = r#"{"code": "import math\nprint(\"π≈\", math.pi) # \u00e9 \ud83d\ude00"}"#;
        let expected = "import math\nprint(\"π≈\", math.pi) # é 😀";
        // Any split into fragments gives the same text, never ahead of what arrived.
        for size in [1, 2, 3, 5, 7, 64] {
            let mut stream = FieldStream::default();
            let mut got = String::new();
            let chars: Vec<char> = whole.chars().collect();
            for piece in chars.chunks(size) {
                let piece: String = piece.iter().collect();
                if let Some(new) = stream.push(&piece, "code") {
                    got.push_str(&new);
                }
                assert!(expected.starts_with(&got), "{size}: {got:?}");
            }
            assert_eq!(got, expected, "fragments of {size}");
        }
    }

    #[test]
    fn other_fields_and_bare_code() {
        assert_eq!(
            string_field_prefix(r#"{"note": "\"code\"", "code": "x = 1"#, "code").as_deref(),
            Some("x = 1")
        );
        assert_eq!(string_field_prefix(r#"{"code""#, "code"), None);
        assert_eq!(
            string_field_prefix("print(1)", "code").as_deref(),
            Some("print(1)")
        );
    }
}
