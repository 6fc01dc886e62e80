//! The Conversations API: the conversation, its items as answered and as requests send them,
//! the request bodies and query parameters.

use super::*;

string_enum!(
    /// The kinds of item a conversation holds.
    ConversationItemType = &[
        "message",
        "function_call",
        "function_call_output",
        "reasoning",
        "file_search_call",
        "code_interpreter_call",
    ]
);
string_enum!(
    /// The role of a message item.
    ItemRole = &["user", "assistant", "system", "developer"]
);
string_enum!(
    /// Item fields that reads can add (`include[]=...`).
    ItemInclude = &crate::api::items::INCLUDE_VALUES
);

object_constants! {
    conversation_object = "conversation",
    conversation_deleted_object = "conversation.deleted",
}

/// A conversation (a thread: `thread_` ids of the Assistants API are conversations too).
#[derive(ToSchema)]
pub struct Conversation {
    /// `conv_...` (or `thread_...`).
    id: String,
    #[schema(schema_with = conversation_object)]
    object: String,
    /// Unix seconds.
    created_at: i64,
    #[schema(value_type = Metadata)]
    metadata: String,
}

/// The answer of a delete (`object`: `conversation.deleted`).
#[derive(ToSchema)]
pub struct ConversationDeleted {
    id: String,
    #[schema(schema_with = conversation_deleted_object)]
    object: String,
    deleted: bool,
}

/// An item of a conversation: a `message` (`role`, `content` parts: `input_text`,
/// `input_image`, `input_file`, `output_text`, `refusal`), a `function_call` (`call_id`,
/// `name`, `arguments`), a `function_call_output` (`call_id`, `output`), `reasoning`
/// (`summary`), a `file_search_call` (`queries`, `results`: null unless included) or a
/// `code_interpreter_call` (`code`, `outputs`: null unless included).
#[derive(ToSchema)]
pub struct ConversationItem {
    #[schema(value_type = ConversationItemType)]
    r#type: String,
    /// `msg_`, `fc_`, `fco_`, `rs_`, `fs_` or `ci_` and 24 characters.
    id: String,
    /// `completed` for items added through the API.
    status: String,
    /// Messages only.
    #[schema(value_type = Option<ItemRole>)]
    role: Option<String>,
}

/// A page of conversation items (`limit`, `order`, `after`).
#[derive(ToSchema)]
pub struct ConversationItemList {
    #[schema(schema_with = list_object)]
    object: String,
    data: Vec<ConversationItem>,
    /// The id of the first item of the page (null when the page is empty).
    #[schema(required)]
    first_id: Option<String>,
    /// The id of the last item; pass it as `after` for the next page.
    #[schema(required)]
    last_id: Option<String>,
    /// Whether more items follow in this order.
    has_more: bool,
}

/// An item as requests send it: an easy message `{role, content: string | parts}`, a
/// `message`, `function_call`, `function_call_output`, `reasoning`, `file_search_call` or
/// `code_interpreter_call` item. Ids sent are replaced by fresh ones.
#[derive(ToSchema)]
pub struct InputItem {
    /// The item's kind (`message` when only `role` is given).
    #[schema(value_type = Option<ConversationItemType>)]
    r#type: Option<String>,
    /// Messages only.
    #[schema(value_type = Option<ItemRole>)]
    role: Option<String>,
}

/// Create a conversation.
#[derive(ToSchema)]
pub struct CreateConversation {
    /// Items to start the conversation with.
    #[schema(max_items = 20)]
    items: Option<Vec<InputItem>>,
    #[schema(value_type = Option<Metadata>)]
    metadata: Option<String>,
}

/// Update a conversation: `metadata` replaces the whole map (`null` empties it).
#[derive(ToSchema)]
pub struct UpdateConversation {
    #[schema(value_type = Option<Metadata>, required)]
    metadata: Option<String>,
}

/// Add items to a conversation.
#[derive(ToSchema)]
pub struct CreateConversationItems {
    #[schema(min_items = 1, max_items = 20)]
    items: Vec<InputItem>,
}

/// Paging of a conversation's items.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemListParams {
    /// How many items to return.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<i64>,
    /// Creation order; `desc` (newest first) by default.
    #[param(value_type = Option<ListOrder>, inline)]
    order: Option<String>,
    /// A cursor: the item id after which the page starts (`last_id` of the previous page).
    after: Option<String>,
}

/// Item fields to add (`include=...`, the official spec's name; `include[]=...` works too).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemIncludeParams {
    /// What to include: `file_search_call.results`, `code_interpreter_call.outputs`,
    /// `message.output_text.logprobs`, `reasoning.encrypted_content` show stored fields;
    /// the other values are accepted.
    #[param(value_type = Option<Vec<ItemInclude>>, inline)]
    include: Option<Vec<String>>,
}
