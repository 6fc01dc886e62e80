//! Object ids: `<prefix>` + 24 base62 characters, as OpenAI's look.
//!
//! The first 10 characters encode the creation time in microseconds (fixed width, base62 in
//! ASCII order), the last 14 are random. So ids of one kind sort by creation time as plain
//! strings: a prefix listing of the store comes out in creation order, and the `after` /
//! `before` cursors of list endpoints are string comparisons. Within one process the time part
//! is strictly increasing, so two ids made in the same microsecond still sort in order.

use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const TIME_CHARS: usize = 10;
const RANDOM_CHARS: usize = 14;
/// Length of the part after the prefix.
pub const BODY_LEN: usize = TIME_CHARS + RANDOM_CHARS;

/// The kinds of object that have ids, with their prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Assistant,
    Thread,
    Message,
    Run,
    Step,
    ToolCall,
    File,
    VectorStore,
    FileBatch,
    /// A webhook event.
    Event,
    Response,
    /// A conversation (stored as a thread: the Conversations API also takes thread ids).
    Conversation,
    /// A `function_call` item of a response (its `call_id` is a `ToolCall` id).
    FunctionCall,
    /// A `function_call_output` item.
    FunctionCallOutput,
    /// A `file_search_call` item.
    FileSearchCall,
    /// A `code_interpreter_call` item.
    CodeInterpreterCall,
    /// A `reasoning` item.
    Reasoning,
    /// Any other item a client stores in a conversation or a response's input.
    Item,
    /// The code interpreter's container of a response.
    Container,
}

impl Kind {
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Assistant => "asst_",
            Kind::Thread => "thread_",
            Kind::Message => "msg_",
            Kind::Run => "run_",
            Kind::Step => "step_",
            Kind::ToolCall => "call_",
            Kind::File => "file-",
            Kind::VectorStore => "vs_",
            Kind::FileBatch => "vsfb_",
            Kind::Event => "evt_",
            Kind::Response => "resp_",
            Kind::Conversation => "conv_",
            Kind::FunctionCall => "fc_",
            Kind::FunctionCallOutput => "fco_",
            Kind::FileSearchCall => "fs_",
            Kind::CodeInterpreterCall => "ci_",
            Kind::Reasoning => "rs_",
            Kind::Item => "item_",
            Kind::Container => "cntr_",
        }
    }

    /// The noun used in "No <noun> found with id '...'." messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Assistant => "assistant",
            Kind::Thread => "thread",
            Kind::Message => "message",
            Kind::Run => "run",
            Kind::Step => "run step",
            Kind::ToolCall => "tool call",
            Kind::File => "file",
            Kind::VectorStore => "vector store",
            Kind::FileBatch => "file batch",
            Kind::Event => "event",
            Kind::Response => "response",
            Kind::Conversation => "conversation",
            Kind::FunctionCall
            | Kind::FunctionCallOutput
            | Kind::FileSearchCall
            | Kind::CodeInterpreterCall
            | Kind::Reasoning
            | Kind::Item => "item",
            Kind::Container => "container",
        }
    }

    /// The path parameter that carries this kind of id (for error `param`s).
    pub fn param(self) -> &'static str {
        match self {
            Kind::Assistant => "assistant_id",
            Kind::Thread => "thread_id",
            Kind::Message => "message_id",
            Kind::Run => "run_id",
            Kind::Step => "step_id",
            Kind::ToolCall => "tool_call_id",
            Kind::File => "file_id",
            Kind::VectorStore => "vector_store_id",
            Kind::FileBatch => "batch_id",
            Kind::Event => "event_id",
            Kind::Response => "response_id",
            Kind::Conversation => "conversation_id",
            Kind::FunctionCall
            | Kind::FunctionCallOutput
            | Kind::FileSearchCall
            | Kind::CodeInterpreterCall
            | Kind::Reasoning
            | Kind::Item => "item_id",
            Kind::Container => "container_id",
        }
    }
}

static LAST_MICROS: AtomicU64 = AtomicU64::new(0);

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A time in microseconds that is strictly greater than any earlier one in this process.
fn monotonic_micros() -> u64 {
    let now = now_micros();
    let mut last = LAST_MICROS.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST_MICROS.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

fn encode_fixed(mut value: u64, out: &mut [u8]) {
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
}

/// A new id of the given kind.
pub fn new_id(kind: Kind) -> String {
    let mut body = [0u8; BODY_LEN];
    encode_fixed(monotonic_micros(), &mut body[..TIME_CHARS]);
    let mut rng = rand::thread_rng();
    for slot in body[TIME_CHARS..].iter_mut() {
        *slot = ALPHABET[rng.gen_range(0..62)];
    }
    let mut id = String::with_capacity(kind.prefix().len() + BODY_LEN);
    id.push_str(kind.prefix());
    // The body is ASCII from ALPHABET.
    id.extend(body.iter().map(|&b| b as char));
    id
}

/// An id derived from a parent id and a sequence number, used for objects that a repeated
/// (at-least-once) step must write under the same name. It keeps the parent's time part plus
/// `seq` microseconds, so it sorts after objects created before the parent, and its random
/// part is a hash of the parent id and `seq`.
pub fn derived_id(kind: Kind, parent: &str, seq: u32) -> String {
    let parent_body = parent.rsplit(['_', '-']).next().unwrap_or(parent);
    let time = decode_time(parent_body).unwrap_or_else(now_micros) + u64::from(seq);
    hashed_id(kind, time, parent.bytes().chain(seq.to_le_bytes()))
}

/// An id of `kind` with the time part `micros` for the object `key` names (a response's
/// item for one of its tool calls): the same for the same pair wherever it is computed.
pub fn keyed_id(kind: Kind, micros: u64, key: &str) -> String {
    hashed_id(kind, micros, key.bytes())
}

/// An id of `kind` with the time part `micros` and a random part hashed from `bytes`.
fn hashed_id(kind: Kind, micros: u64, bytes: impl Iterator<Item = u8>) -> String {
    let mut body = [0u8; BODY_LEN];
    encode_fixed(micros, &mut body[..TIME_CHARS]);
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    let mut second = hash.rotate_left(29) ^ 0x9e3779b97f4a7c15;
    for (i, slot) in body[TIME_CHARS..].iter_mut().enumerate() {
        let source = if i < 7 { &mut hash } else { &mut second };
        *slot = ALPHABET[(*source % 62) as usize];
        *source /= 62;
    }
    let mut id = String::from(kind.prefix());
    id.extend(body.iter().map(|&b| b as char));
    id
}

/// When an id of ours was made (Unix microseconds), from its time part.
pub fn created_micros(id: &str) -> Option<u64> {
    decode_time(id.rsplit(['_', '-']).next()?)
}

fn decode_time(body: &str) -> Option<u64> {
    let time = body.get(..TIME_CHARS)?;
    let mut value: u64 = 0;
    for c in time.bytes() {
        let digit = ALPHABET.iter().position(|&a| a == c)? as u64;
        value = value.checked_mul(62)?.checked_add(digit)?;
    }
    Some(value)
}

/// Whether `id` has the form of an id of `kind` that this service makes. Anything else can
/// never name a stored object, and never reaches a storage key.
pub fn is_valid(kind: Kind, id: &str) -> bool {
    match id.strip_prefix(kind.prefix()) {
        Some(body) => body.len() == BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric()),
        None => false,
    }
}

/// An id of one kind, checked once where it enters (a path, a request body) and then
/// carried typed: a value of these types always has the form `is_valid` accepts, so it can
/// name a storage key. It reads as the `&str` it holds (`Deref`), and serialises as it.
pub trait TypedId: Sized + std::ops::Deref<Target = str> {
    const KIND: Kind;
    /// The id if `id` is well formed for this kind.
    fn parse(id: &str) -> Option<Self>;
}

macro_rules! typed_id {
    ($($(#[$doc:meta])* $name:ident => $kind:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new id of this kind.
            pub fn new() -> Self {
                $name(new_id(Kind::$kind))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl TypedId for $name {
            const KIND: Kind = Kind::$kind;

            fn parse(id: &str) -> Option<Self> {
                is_valid(Kind::$kind, id).then(|| $name(id.to_string()))
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    )*};
}

typed_id! {
    /// `asst_...`
    AssistantId => Assistant;
    /// `thread_...`
    ThreadId => Thread;
    /// `msg_...`
    MessageId => Message;
    /// `run_...`
    RunId => Run;
    /// `step_...`
    StepId => Step;
    /// `file-...`
    FileId => File;
    /// `vs_...`
    VectorStoreId => VectorStore;
    /// `vsfb_...`
    FileBatchId => FileBatch;
    ResponseId => Response;
}

/// A conversation's id: `conv_` for conversations made by the Conversations API, `thread_`
/// for an Assistants thread continued as a conversation (both are thread records).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ConversationId(String);

impl ConversationId {
    pub fn new() -> Self {
        ConversationId(new_id(Kind::Conversation))
    }

    /// A well-formed `conv_` or `thread_` id.
    pub fn parse(id: &str) -> Option<Self> {
        (is_valid(Kind::Conversation, id) || is_valid(Kind::Thread, id))
            .then(|| ConversationId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ConversationId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::ops::Deref for ConversationId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ConversationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_24_base62_chars() {
        let id = new_id(Kind::Assistant);
        assert!(id.starts_with("asst_"));
        assert!(is_valid(Kind::Assistant, &id));
        assert!(!is_valid(Kind::Thread, &id));
        assert_eq!(id.len(), 5 + 24);
    }

    #[test]
    fn ids_sort_by_creation_order() {
        let ids: Vec<String> = (0..1000).map(|_| new_id(Kind::Message)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn derived_ids_are_stable_distinct_and_sort_after_parent() {
        let run = new_id(Kind::Run);
        let a = derived_id(Kind::Message, &run, 1);
        assert_eq!(a, derived_id(Kind::Message, &run, 1));
        assert_ne!(a, derived_id(Kind::Message, &run, 2));
        assert!(is_valid(Kind::Message, &a));
        assert!(a["msg_".len()..] > run["run_".len()..]);
        assert!(derived_id(Kind::Message, &run, 2) > a);
    }

    #[test]
    fn creation_time_is_read_back() {
        let id = new_id(Kind::Run);
        let t = created_micros(&id).unwrap();
        assert!(t.abs_diff(now_micros()) < 5_000_000);
    }

    #[test]
    fn malformed_ids_are_rejected() {
        assert!(!is_valid(Kind::Thread, "thread_../../etc"));
        assert!(!is_valid(Kind::Thread, "thread_"));
        assert!(!is_valid(
            Kind::Thread,
            "thread_abcdefghijklmnopqrstuvwx%2F"
        ));
        assert!(is_valid(Kind::Thread, "thread_abcdefghijklmnopqrstuvwx"));
    }

    #[test]
    fn typed_ids_parse_only_their_own_well_formed_kind() {
        let thread = ThreadId::new();
        assert_eq!(ThreadId::parse(&thread).as_ref(), Some(&thread));
        assert!(RunId::parse(&thread).is_none());
        assert!(ThreadId::parse("thread_../../etc").is_none());
        assert!(FileId::parse("file-abcdefghijklmnopqrstuvwx").is_some());
        assert_eq!(
            serde_json::to_value(&thread).unwrap(),
            serde_json::Value::String(thread.to_string())
        );
    }
}
