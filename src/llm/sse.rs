//! A minimal Server-Sent Events decoder: bytes in, each complete event's name and data out.

#[derive(Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
}

impl Decoder {
    /// Feeds bytes; returns the data of every event completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.feed_events(bytes)
            .into_iter()
            .map(|(_, data)| data)
            .collect()
    }

    /// Feeds bytes; returns `(event name, data)` of every event completed by them.
    pub fn feed_events(&mut self, bytes: &[u8]) -> Vec<(Option<String>, String)> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push((self.event.take(), self.data.join("\n")));
                    self.data.clear();
                }
                self.event = None;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "data" => self.data.push(value.to_string()),
                "event" => self.event = Some(value.to_string()),
                _ => {}
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_joined() {
        let mut d = Decoder::default();
        assert!(d.feed(b"data: {\"a\"").is_empty());
        assert_eq!(
            d.feed(b":1}\n\n: keep-alive\n\ndata:[DONE]\r\n\r\n"),
            vec!["{\"a\":1}", "[DONE]"]
        );
    }

    #[test]
    fn event_names_come_with_their_data() {
        let mut d = Decoder::default();
        let events = d.feed_events(b"event: thread.run.created\ndata: {}\n\ndata: x\n\n");
        assert_eq!(
            events,
            vec![
                (Some("thread.run.created".to_string()), "{}".to_string()),
                (None, "x".to_string())
            ]
        );
    }
}
