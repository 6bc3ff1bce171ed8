//! Server-sent events (the WHATWG HTML "event stream" format), as the MCP Streamable HTTP
//! transport carries JSON-RPC messages in them: an incremental parser that cuts a byte stream
//! into event blocks, and the serialization of a block. Pure: the caller feeds bytes as they
//! arrive.
//!
//! The gateway relays blocks rather than dispatched events: a block with comments only (a
//! keep-alive) or with an `id` and no data is kept, so what the client reads is what the
//! server meant, with only a message's `data` possibly replaced.

/// One event block: the lines up to a blank line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// Comment lines (`:` and what follows, without the colon).
    pub comments: Vec<String>,
    /// The `event` field: the event type (`None`: the default, `message`).
    pub event: Option<String>,
    /// The `id` field.
    pub id: Option<String>,
    /// The `retry` field, in milliseconds.
    pub retry: Option<u64>,
    /// The `data` lines joined with `\n`; `None` when the block had no `data` line.
    pub data: Option<String>,
}

impl SseEvent {
    /// A `message` event carrying `data` (one JSON-RPC message).
    pub fn message(data: impl Into<String>) -> Self {
        Self {
            event: Some("message".to_owned()),
            data: Some(data.into()),
            ..Self::default()
        }
    }

    /// Whether this block carries a message: it has data and the default or `message` type.
    pub fn is_message(&self) -> bool {
        self.data.is_some() && self.event.as_deref().is_none_or(|e| e == "message")
    }

    /// Whether the block has nothing to say.
    pub fn is_empty(&self) -> bool {
        self.comments.is_empty()
            && self.event.is_none()
            && self.id.is_none()
            && self.retry.is_none()
            && self.data.is_none()
    }

    /// The block as bytes, ending with its blank line; nothing for an empty block. Line
    /// breaks inside a value are split into lines of their own (a `data` value into several
    /// `data` lines; elsewhere they would end the field, so they are replaced by spaces).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        if self.is_empty() {
            return Vec::new();
        }
        for comment in &self.comments {
            out.push(':');
            out.push_str(&one_line(comment));
            out.push('\n');
        }
        if let Some(event) = &self.event {
            out.push_str("event: ");
            out.push_str(&one_line(event));
            out.push('\n');
        }
        if let Some(id) = &self.id {
            out.push_str("id: ");
            out.push_str(&one_line(id));
            out.push('\n');
        }
        if let Some(retry) = self.retry {
            out.push_str(&format!("retry: {retry}\n"));
        }
        if let Some(data) = &self.data {
            for line in split_lines(data) {
                out.push_str("data: ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
        out.into_bytes()
    }
}

/// `text` with its line breaks replaced by spaces.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// `text` split at `\r\n`, `\n` and `\r` (one piece for the empty string).
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    loop {
        match rest.find(['\r', '\n']) {
            None => {
                lines.push(rest);
                return lines;
            }
            Some(i) => {
                lines.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
        }
    }
}

/// The UTF-8 byte order mark, which a stream may open with.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Cuts an event stream into [`SseEvent`] blocks as its bytes arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line being read.
    line: Vec<u8>,
    /// The block being read.
    current: SseEvent,
    /// Bytes held in `current`, to bound memory.
    held: usize,
    /// Whether the last byte seen was a `\r` (a `\n` right after it ends nothing more).
    after_cr: bool,
    /// Whether the stream's start (and a byte order mark there) is behind us.
    started: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many bytes are held for the event not complete yet: the caller bounds this.
    pub fn buffered(&self) -> usize {
        self.line.len() + self.held
    }

    /// Feeds the next bytes; returns the blocks they completed, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if self.started {
            self.feed(bytes, &mut events);
            return events;
        }
        // A byte order mark may open the stream: wait until it is here or ruled out.
        let mut head = std::mem::take(&mut self.line);
        head.extend_from_slice(bytes);
        if head.len() < BOM.len() && BOM.starts_with(&head) {
            self.line = head;
            return events;
        }
        self.started = true;
        self.feed(head.strip_prefix(BOM).unwrap_or(&head), &mut events);
        events
    }

    fn feed(&mut self, bytes: &[u8], events: &mut Vec<SseEvent>) {
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.end_line(&line, events);
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(b);
                }
            }
        }
    }

    fn end_line(&mut self, line: &[u8], events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            let event = std::mem::take(&mut self.current);
            self.held = 0;
            if !event.is_empty() {
                events.push(event);
            }
            return;
        }
        let line = String::from_utf8_lossy(line);
        self.held += line.len();
        if let Some(comment) = line.strip_prefix(':') {
            self.current.comments.push(comment.to_owned());
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "event" => self.current.event = Some(value.to_owned()),
            "data" => match &mut self.current.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.current.data = Some(value.to_owned()),
            },
            // An id with a NUL is ignored, as the standard says.
            "id" if !value.contains('\0') => self.current.id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.current.retry = value.parse().ok();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for chunk in input.chunks(piece) {
            events.extend(parser.push(chunk));
        }
        events
    }

    #[test]
    fn events_are_cut_at_blank_lines_whatever_the_chunking() {
        let input = b"\xEF\xBB\xBFevent: message\r\nid: 7\r\ndata: {\"a\":\r\ndata:1}\r\n\r\n: ping\n\nretry: 1500\rdata\r\rdata: tail";
        let want = vec![
            SseEvent {
                event: Some("message".into()),
                id: Some("7".into()),
                data: Some("{\"a\":\n1}".into()),
                ..SseEvent::default()
            },
            SseEvent {
                comments: vec![" ping".into()],
                ..SseEvent::default()
            },
            SseEvent {
                retry: Some(1500),
                data: Some(String::new()),
                ..SseEvent::default()
            },
        ];
        for piece in [1, 2, 3, 5, 1000] {
            assert_eq!(parse_in_pieces(input, piece), want, "pieces of {piece}");
        }
    }

    #[test]
    fn the_unfinished_event_is_held_and_counted() {
        let mut parser = SseParser::new();
        assert!(parser.push(b"data: 12345\ndata: 67").is_empty());
        assert!(parser.buffered() >= 12);
        let events = parser.push(b"\n\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.as_deref(), Some("12345\n67"));
        assert_eq!(parser.buffered(), 0);
    }

    #[test]
    fn odd_fields_are_ignored_or_kept_as_the_standard_says() {
        let events = parse_in_pieces(
            b"data:no space\nretry: soon\nid: a\0b\nfoo: bar\nevent\n\n",
            4,
        );
        assert_eq!(
            events,
            vec![SseEvent {
                event: Some(String::new()),
                data: Some("no space".into()),
                ..SseEvent::default()
            }]
        );
        assert!(!events[0].is_message());
        assert!(SseEvent::message("{}").is_message());
        assert!(SseEvent {
            data: Some("{}".into()),
            ..SseEvent::default()
        }
        .is_message());
    }

    #[test]
    fn serialized_events_parse_back_to_themselves() {
        let event = SseEvent {
            comments: vec!["keep".into()],
            event: Some("message".into()),
            id: Some("x-1".into()),
            retry: Some(10),
            data: Some("line 1\nline 2\r\nline 3".into()),
        };
        let bytes = event.to_bytes();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            ":keep\nevent: message\nid: x-1\nretry: 10\ndata: line 1\ndata: line 2\ndata: line 3\n\n"
        );
        let back = parse_in_pieces(&bytes, 3);
        let mut want = event.clone();
        want.data = Some("line 1\nline 2\nline 3".into());
        assert_eq!(back, vec![want]);
        assert!(SseEvent::default().to_bytes().is_empty());
        assert_eq!(
            SseEvent::message("{\"id\":1}").to_bytes(),
            b"event: message\ndata: {\"id\":1}\n\n"
        );
    }
}
