//! Citation markers in the model's text → `file_citation` annotations.
//!
//! `file_search` gives the model passages under markers `【search:result†name】`; a marker
//! the answer repeats becomes an annotation whose `text` is the marker and whose indices
//! are character positions in the message text (as OpenAI's were: the text keeps the
//! marker). Markers naming a search or result that does not exist are left as plain text.

use serde_json::{json, Value};

/// A marker found in the text.
pub struct Found {
    /// Byte offset just past the marker (to resume scanning).
    pub end_byte: usize,
    pub annotation: Value,
}

const OPEN: char = '【';
const CLOSE: char = '】';

/// Annotations for markers in `text` starting at or after byte `from`, and the byte offset
/// up to which the text is settled: an opened marker that has not closed yet may still
/// become one, so scanning resumes there when more text arrives.
pub fn scan(text: &str, from: usize, sources: &[Vec<String>]) -> (Vec<Found>, usize) {
    let mut found = Vec::new();
    let mut at = from.min(text.len());
    while let Some(rel) = text[at..].find(OPEN) {
        let start = at + rel;
        let body_start = start + OPEN.len_utf8();
        let Some(close_rel) = text[body_start..].find(CLOSE) else {
            // Unfinished marker: wait for more text (unless it is clearly not one).
            if text.len() - start > 300 {
                at = body_start;
                continue;
            }
            return (found, start);
        };
        let end = body_start + close_rel + CLOSE.len_utf8();
        let body = &text[body_start..body_start + close_rel];
        if let Some(file_id) = resolve(body, sources) {
            let marker = &text[start..end];
            let start_index = text[..start].chars().count();
            let end_index = start_index + marker.chars().count();
            found.push(Found {
                end_byte: end,
                annotation: json!({
                    "type": "file_citation",
                    "text": marker,
                    "start_index": start_index,
                    "end_index": end_index,
                    "file_citation": {"file_id": file_id},
                }),
            });
            at = end;
        } else {
            at = body_start;
        }
    }
    (found, text.len())
}

/// The file a marker body `search:result†name` points at.
fn resolve<'a>(body: &str, sources: &'a [Vec<String>]) -> Option<&'a str> {
    let (numbers, _name) = body.split_once('†')?;
    let (search, result) = numbers.trim().split_once(':')?;
    let search: usize = search.trim().parse().ok()?;
    let result: usize = result.trim().parse().ok()?;
    sources.get(search)?.get(result).map(String::as_str)
}

/// All annotations of a finished text.
pub fn annotate(text: &str, sources: &[Vec<String>]) -> Vec<Value> {
    scan(text, 0, sources)
        .0
        .into_iter()
        .map(|f| f.annotation)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> Vec<Vec<String>> {
        vec![vec!["file-a".into(), "file-b".into()]]
    }

    #[test]
    fn markers_become_annotations_with_character_indices() {
        let text = "Café opens at 9【0:1†hours.txt】 and closes at 5【0:0†a.md】.";
        let notes = annotate(text, &sources());
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0]["file_citation"]["file_id"], "file-b");
        assert_eq!(notes[0]["text"], "【0:1†hours.txt】");
        let start = notes[0]["start_index"].as_u64().unwrap() as usize;
        let end = notes[0]["end_index"].as_u64().unwrap() as usize;
        let chars: Vec<char> = text.chars().collect();
        assert_eq!(
            chars[start..end].iter().collect::<String>(),
            "【0:1†hours.txt】"
        );
        assert_eq!(notes[1]["file_citation"]["file_id"], "file-a");
    }

    #[test]
    fn unknown_or_malformed_markers_stay_text() {
        assert!(annotate("x【3:0†a】 y【0:9†b】 z【nonsense】", &sources()).is_empty());
    }

    #[test]
    fn an_open_marker_waits_for_more_text() {
        let s = sources();
        let (found, settled) = scan("abc【0:1†ho", 0, &s);
        assert!(found.is_empty());
        assert_eq!(settled, 3);
        let (found, settled) = scan("abc【0:1†hours】 more", settled, &s);
        assert_eq!(found.len(), 1);
        assert_eq!(settled, "abc【0:1†hours】 more".len());
    }
}
