//! The Responses and Conversations APIs in the document: their 14 operations (the paths of
//! `/responses` and `/conversations`, and `POST /responses/input_tokens`) and the schemas of
//! their bodies and answers, written here as JSON values (the operations parse and answer
//! JSON items of many kinds, not one Rust type each). `super::document` merges them into the
//! generated Assistants document; `super::tests` checks them against the router's table like
//! the others, and `tests/sdk/python/test_openapi.py` against the official spec
//! (`tests/spec/openai-responses-openapi.yaml`: the same paths, methods, parameters and
//! bodies; its `POST /responses/compact` is not served, so not documented).
//!
//! The shapes follow the official spec, narrowed to what the service answers (the item
//! types it makes: messages, function calls and outputs, file search and code interpreter
//! calls, reasoning) and open where a client may store other items in a conversation.

use super::ERROR_RESPONSES;
use serde_json::{json, Map, Value};

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn nullable(schema: Value) -> Value {
    json!({ "anyOf": [schema, { "type": "null" }] })
}

fn constant(value: &str) -> Value {
    json!({ "type": "string", "enum": [value] })
}

fn json_body(name: &str) -> Value {
    json!({ "application/json": { "schema": schema_ref(name) } })
}

fn ok(description: &str, name: &str) -> Value {
    json!({ "description": description, "content": json_body(name) })
}

/// A response or its events (`stream`).
fn ok_or_events(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            "application/json": { "schema": schema_ref("Response") },
            "text/event-stream": { "schema": schema_ref("ResponseStreamEvent") },
        },
    })
}

fn path_param(name: &str, description: &str, pattern: Option<&str>) -> Value {
    let mut schema = json!({ "type": "string" });
    if let Some(p) = pattern {
        schema["pattern"] = json!(p);
    }
    json!({ "name": name, "in": "path", "required": true, "description": description,
            "schema": schema })
}

fn response_id() -> Value {
    path_param("response_id", "The response's id.", Some("^resp_"))
}

fn conversation_id() -> Value {
    path_param(
        "conversation_id",
        "The conversation's id (`conv_...`; an Assistants thread's `thread_...` id names the \
         same conversation).",
        Some("^(conv|thread)_"),
    )
}

fn item_id() -> Value {
    path_param("item_id", "The item's id (`msg_...`, `fc_...`, ...).", None)
}

fn include() -> Value {
    json!({
        "name": "include", "in": "query", "required": false,
        "description": "Fields to add to the items answered.",
        "schema": { "type": "array", "items": schema_ref("ResponseInclude") },
    })
}

/// `limit`, `order`, `after` of the item lists (no `before`, unlike the Assistants lists).
fn item_list_params() -> Vec<Value> {
    vec![
        json!({ "name": "limit", "in": "query", "required": false,
                "description": "How many items a page holds, 1 to 100 (default 20).",
                "schema": { "type": "integer", "minimum": 1, "maximum": 100, "default": 20 } }),
        json!({ "name": "order", "in": "query", "required": false,
                "description": "By creation time: `asc` or `desc` (default).",
                "schema": { "type": "string", "enum": ["asc", "desc"], "default": "desc" } }),
        json!({ "name": "after", "in": "query", "required": false,
                "description": "An item id: the page starts after it.",
                "schema": { "type": "string" } }),
    ]
}

struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: Option<&'static str>,
    params: Vec<Value>,
    body: Option<(&'static str, bool)>,
    ok: Value,
}

fn operations() -> Vec<Op> {
    let mut list_input_params = vec![response_id()];
    list_input_params.extend(item_list_params());
    list_input_params.push(include());
    let mut list_items_params = vec![conversation_id()];
    list_items_params.extend(item_list_params());
    list_items_params.push(include());
    vec![
        Op {
            method: "post",
            path: "/responses",
            id: "createResponse",
            tag: "Responses",
            summary: "Create a response",
            description: Some(
                "The model answers `input` (after `previous_response_id`'s or the \
                 `conversation`'s items). Without `stream` the answer comes when the response \
                 is finished (`background: true`: at once, `queued`; poll it); with \
                 `stream: true` its events come as they happen and the stream ends after \
                 `response.completed`, `response.failed` or `response.incomplete`, without a \
                 `[DONE]`.",
            ),
            params: vec![],
            body: Some(("CreateResponse", true)),
            ok: ok_or_events("The response, or with `stream: true` its events."),
        },
        Op {
            method: "post",
            path: "/responses/input_tokens",
            id: "Getinputtokencounts",
            tag: "Responses",
            summary: "Count input tokens",
            description: Some("How many input tokens a response with this body would use."),
            params: vec![],
            body: Some(("TokenCountsBody", false)),
            ok: ok("The count.", "TokenCountsResource"),
        },
        Op {
            method: "get",
            path: "/responses/{response_id}",
            id: "getResponse",
            tag: "Responses",
            summary: "Retrieve a response",
            description: Some(
                "With `stream=true` the response's events are replayed from the start (or \
                 after `starting_after`) and followed until it ends.",
            ),
            params: vec![
                response_id(),
                include(),
                json!({ "name": "stream", "in": "query", "required": false,
                        "description": "Answer the response's events (`text/event-stream`).",
                        "schema": { "type": "boolean" } }),
                json!({ "name": "starting_after", "in": "query", "required": false,
                        "description": "With `stream`: only the events whose \
                            `sequence_number` is greater.",
                        "schema": { "type": "integer", "minimum": 0 } }),
                json!({ "name": "include_obfuscation", "in": "query", "required": false,
                        "description": "Accepted; the service adds no obfuscation field.",
                        "schema": { "type": "boolean" } }),
            ],
            body: None,
            ok: ok_or_events("The response, or with `stream=true` its events."),
        },
        Op {
            method: "delete",
            path: "/responses/{response_id}",
            id: "deleteResponse",
            tag: "Responses",
            summary: "Delete a response",
            description: None,
            params: vec![response_id()],
            body: None,
            ok: ok("Deleted.", "ResponseDeleted"),
        },
        Op {
            method: "post",
            path: "/responses/{response_id}/cancel",
            id: "cancelResponse",
            tag: "Responses",
            summary: "Cancel a response",
            description: Some("Only a `background` response can be cancelled."),
            params: vec![response_id()],
            body: None,
            ok: ok("The response.", "Response"),
        },
        Op {
            method: "get",
            path: "/responses/{response_id}/input_items",
            id: "listInputItems",
            tag: "Responses",
            summary: "List a response's input items",
            description: None,
            params: list_input_params,
            body: None,
            ok: ok("A page of items.", "ResponseItemList"),
        },
        Op {
            method: "post",
            path: "/conversations",
            id: "createConversation",
            tag: "Conversations",
            summary: "Create a conversation",
            description: Some(
                "A conversation is a thread: its messages are the thread's messages, so the \
                 Assistants API sees them too.",
            ),
            params: vec![],
            body: Some(("CreateConversationBody", false)),
            ok: ok("The conversation.", "Conversation"),
        },
        Op {
            method: "get",
            path: "/conversations/{conversation_id}",
            id: "getConversation",
            tag: "Conversations",
            summary: "Retrieve a conversation",
            description: None,
            params: vec![conversation_id()],
            body: None,
            ok: ok("The conversation.", "Conversation"),
        },
        Op {
            method: "post",
            path: "/conversations/{conversation_id}",
            id: "updateConversation",
            tag: "Conversations",
            summary: "Update a conversation",
            description: None,
            params: vec![conversation_id()],
            body: Some(("UpdateConversationBody", true)),
            ok: ok("The conversation.", "Conversation"),
        },
        Op {
            method: "delete",
            path: "/conversations/{conversation_id}",
            id: "deleteConversation",
            tag: "Conversations",
            summary: "Delete a conversation",
            description: None,
            params: vec![conversation_id()],
            body: None,
            ok: ok("Deleted.", "ConversationDeletedResource"),
        },
        Op {
            method: "get",
            path: "/conversations/{conversation_id}/items",
            id: "listConversationItems",
            tag: "Conversations",
            summary: "List a conversation's items",
            description: Some("Messages and other items, in creation order."),
            params: list_items_params,
            body: None,
            ok: ok("A page of items.", "ConversationItemList"),
        },
        Op {
            method: "post",
            path: "/conversations/{conversation_id}/items",
            id: "createConversationItems",
            tag: "Conversations",
            summary: "Add items to a conversation",
            description: None,
            params: vec![conversation_id(), include()],
            body: Some(("CreateConversationItemsBody", true)),
            ok: ok("The items added.", "ConversationItemList"),
        },
        Op {
            method: "get",
            path: "/conversations/{conversation_id}/items/{item_id}",
            id: "getConversationItem",
            tag: "Conversations",
            summary: "Retrieve a conversation item",
            description: None,
            params: vec![conversation_id(), item_id(), include()],
            body: None,
            ok: ok("The item.", "ResponseItem"),
        },
        Op {
            method: "delete",
            path: "/conversations/{conversation_id}/items/{item_id}",
            id: "deleteConversationItem",
            tag: "Conversations",
            summary: "Delete a conversation item",
            description: None,
            params: vec![conversation_id(), item_id()],
            body: None,
            ok: ok("The conversation (not a deleted marker).", "Conversation"),
        },
    ]
}

/// The operation object of `op`, with the errors every operation can answer (the rules of
/// `super::add_errors`: 413 where there is a body, 404 where the path names objects).
fn operation(op: Op) -> Value {
    let mut responses = Map::new();
    responses.insert("200".into(), op.ok);
    for (status, name) in ERROR_RESPONSES {
        let applies = match *status {
            "404" => op.path.contains('{'),
            "413" => op.body.is_some(),
            _ => true,
        };
        if applies {
            responses.insert(
                status.to_string(),
                json!({ "$ref": format!("#/components/responses/{name}") }),
            );
        }
    }
    let mut out = json!({
        "tags": [op.tag],
        "summary": op.summary,
        "operationId": op.id,
        "responses": responses,
    });
    if let Some(d) = op.description {
        out["description"] = json!(d);
    }
    if !op.params.is_empty() {
        out["parameters"] = Value::Array(op.params);
    }
    if let Some((name, required)) = op.body {
        out["requestBody"] = json!({ "content": json_body(name), "required": required });
    }
    out
}

/// The schemas, by name. None is named like one of the Assistants document's.
fn schemas() -> Vec<(&'static str, Value)> {
    let metadata = || nullable(schema_ref("Metadata"));
    let int = || json!({ "type": "integer" });
    let string = || json!({ "type": "string" });
    let item_status =
        || json!({ "type": "string", "enum": ["in_progress", "completed", "incomplete"] });
    vec![
        (
            "ResponseInclude",
            json!({
                "type": "string",
                "description": "Fields a response or an item list can add.",
                "enum": ["file_search_call.results", "web_search_call.results",
                    "web_search_call.action.sources", "message.input_image.image_url",
                    "computer_call_output.output.image_url", "code_interpreter_call.outputs",
                    "reasoning.encrypted_content", "message.output_text.logprobs"],
            }),
        ),
        // ---- Content parts ----
        (
            "ResponseInputText",
            json!({ "type": "object", "required": ["type", "text"],
                "properties": { "type": constant("input_text"), "text": string() } }),
        ),
        (
            "ResponseInputImage",
            json!({ "type": "object", "required": ["type"],
                "properties": {
                    "type": constant("input_image"),
                    "image_url": nullable(string()),
                    "file_id": nullable(string()),
                    "detail": { "type": "string", "enum": ["low", "high", "auto"] },
                } }),
        ),
        (
            "ResponseInputFile",
            json!({ "type": "object", "required": ["type"],
                "properties": {
                    "type": constant("input_file"),
                    "file_id": nullable(string()),
                    "filename": string(),
                    "file_data": string(),
                    "file_url": string(),
                } }),
        ),
        (
            "ResponseOutputText",
            json!({ "type": "object", "required": ["type", "text", "annotations"],
                "properties": {
                    "type": constant("output_text"),
                    "text": string(),
                    "annotations": { "type": "array", "items": schema_ref("ResponseAnnotation") },
                    "logprobs": { "type": "array", "items": { "type": "object" } },
                } }),
        ),
        (
            "ResponseAnnotation",
            json!({ "type": "object", "required": ["type"],
                "description": "A citation in output text: `file_citation` (`file_id`, \
                    `filename`, `index`), `container_file_citation`, `file_path` or `url_citation`.",
                "properties": {
                    "type": { "type": "string", "enum": ["file_citation", "url_citation",
                        "container_file_citation", "file_path"] },
                    "file_id": string(),
                    "filename": string(),
                    "index": int(),
                } }),
        ),
        (
            "ResponseRefusal",
            json!({ "type": "object", "required": ["type", "refusal"],
                "properties": { "type": constant("refusal"), "refusal": string() } }),
        ),
        (
            "ResponseContentPart",
            json!({ "oneOf": [
                schema_ref("ResponseInputText"), schema_ref("ResponseInputImage"),
                schema_ref("ResponseInputFile"), schema_ref("ResponseOutputText"),
                schema_ref("ResponseRefusal"),
            ] }),
        ),
        // ---- Items ----
        (
            "ResponseOutputMessage",
            json!({ "type": "object", "required": ["id", "type", "role", "content", "status"],
                "description": "A message the model wrote.",
                "properties": {
                    "id": string(),
                    "type": constant("message"),
                    "role": constant("assistant"),
                    "status": item_status(),
                    "content": { "type": "array", "items": { "oneOf": [
                        schema_ref("ResponseOutputText"), schema_ref("ResponseRefusal")] } },
                } }),
        ),
        (
            "ResponseMessageItem",
            json!({ "type": "object", "required": ["id", "type", "role", "content"],
                "description": "A message of a conversation or of a response's input: the \
                    thread's messages, or a system or developer message.",
                "properties": {
                    "id": string(),
                    "type": constant("message"),
                    "role": { "type": "string", "enum": ["user", "assistant", "system", "developer"] },
                    "status": item_status(),
                    "content": { "type": "array", "items": schema_ref("ResponseContentPart") },
                } }),
        ),
        (
            "ResponseFunctionCall",
            json!({ "type": "object", "required": ["type", "id", "call_id", "name", "arguments"],
                "description": "A call of one of the request's functions; answer it with a \
                    `function_call_output` item of the same `call_id`.",
                "properties": {
                    "id": string(),
                    "type": constant("function_call"),
                    "call_id": string(),
                    "name": string(),
                    "arguments": { "type": "string", "description": "JSON text." },
                    "status": item_status(),
                } }),
        ),
        (
            "ResponseFunctionCallOutput",
            json!({ "type": "object", "required": ["type", "id", "call_id", "output"],
                "properties": {
                    "id": string(),
                    "type": constant("function_call_output"),
                    "call_id": string(),
                    "output": { "oneOf": [string(),
                        { "type": "array", "items": schema_ref("ResponseContentPart") }] },
                    "status": item_status(),
                } }),
        ),
        (
            "ResponseFileSearchCall",
            json!({ "type": "object", "required": ["id", "type", "status", "queries"],
                "properties": {
                    "id": string(),
                    "type": constant("file_search_call"),
                    "status": { "type": "string", "enum": ["in_progress", "searching",
                        "completed", "incomplete", "failed"] },
                    "queries": { "type": "array", "items": string() },
                    "results": nullable(json!({ "type": "array", "items": {
                        "type": "object",
                        "properties": {
                            "file_id": string(),
                            "filename": string(),
                            "text": string(),
                            "score": { "type": "number" },
                            "attributes": nullable(json!({ "type": "object",
                                "additionalProperties": { "type": ["string", "number", "boolean"] } })),
                        },
                    } })),
                } }),
        ),
        (
            "ResponseCodeInterpreterCall",
            json!({ "type": "object",
                "required": ["type", "id", "status", "container_id", "code", "outputs"],
                "properties": {
                    "id": string(),
                    "type": constant("code_interpreter_call"),
                    "status": { "type": "string", "enum": ["in_progress", "completed",
                        "incomplete", "interpreting", "failed"] },
                    "container_id": string(),
                    "code": nullable(string()),
                    "outputs": nullable(json!({ "type": "array", "items": { "oneOf": [
                        { "type": "object", "required": ["type", "logs"],
                          "properties": { "type": constant("logs"), "logs": string() } },
                        { "type": "object", "required": ["type", "url"],
                          "properties": { "type": constant("image"), "url": string() } },
                    ] } })),
                } }),
        ),
        (
            "ResponseReasoningItem",
            json!({ "type": "object", "required": ["id", "type", "summary"],
                "properties": {
                    "id": string(),
                    "type": constant("reasoning"),
                    "summary": { "type": "array", "items": { "type": "object",
                        "required": ["type", "text"],
                        "properties": { "type": constant("summary_text"), "text": string() } } },
                    "content": { "type": "array", "items": { "type": "object",
                        "required": ["type", "text"],
                        "properties": { "type": constant("reasoning_text"), "text": string() } } },
                    "encrypted_content": nullable(string()),
                    "status": item_status(),
                } }),
        ),
        (
            "ResponseOtherItem",
            json!({ "type": "object", "required": ["type"],
                "description": "An item of another type a client stored in a conversation, \
                    answered as it was given (with its `id`).",
                "properties": {
                    "type": { "type": "string", "not": { "enum": ["message", "function_call",
                        "function_call_output", "file_search_call", "code_interpreter_call",
                        "reasoning"] } },
                    "id": string(),
                } }),
        ),
        (
            "ResponseOutputItem",
            json!({ "description": "An item of a response's `output`.", "anyOf": [
                schema_ref("ResponseOutputMessage"), schema_ref("ResponseFunctionCall"),
                schema_ref("ResponseFileSearchCall"), schema_ref("ResponseCodeInterpreterCall"),
                schema_ref("ResponseReasoningItem"),
            ] }),
        ),
        (
            "ResponseItem",
            json!({ "description": "An item of a conversation or of a response's input.",
                "anyOf": [
                    schema_ref("ResponseMessageItem"), schema_ref("ResponseFunctionCall"),
                    schema_ref("ResponseFunctionCallOutput"), schema_ref("ResponseFileSearchCall"),
                    schema_ref("ResponseCodeInterpreterCall"), schema_ref("ResponseReasoningItem"),
                    schema_ref("ResponseOtherItem"),
                ] }),
        ),
        (
            "ResponseInputItem",
            json!({ "type": "object",
                "description": "An input item: a message (`{\"role\", \"content\"}`, content a \
                    string or a list of parts, `type` optional), an item of any type above \
                    (`function_call_output` to answer a call), or `{\"type\": \
                    \"item_reference\", \"id\"}`.",
                "properties": {
                    "type": string(),
                    "id": nullable(string()),
                    "role": { "type": "string", "enum": ["user", "assistant", "system", "developer"] },
                    "content": { "oneOf": [string(),
                        { "type": "array", "items": schema_ref("ResponseContentPart") }] },
                    "call_id": string(),
                    "output": { "oneOf": [string(),
                        { "type": "array", "items": schema_ref("ResponseContentPart") }] },
                } }),
        ),
        // ---- Responses ----
        (
            "ResponseUsage",
            json!({ "type": "object",
                "required": ["input_tokens", "input_tokens_details", "output_tokens",
                    "output_tokens_details", "total_tokens"],
                "properties": {
                    "input_tokens": int(),
                    "input_tokens_details": { "type": "object", "required": ["cached_tokens"],
                        "properties": { "cached_tokens": int() } },
                    "output_tokens": int(),
                    "output_tokens_details": { "type": "object", "required": ["reasoning_tokens"],
                        "properties": { "reasoning_tokens": int() } },
                    "total_tokens": int(),
                } }),
        ),
        (
            "Response",
            json!({ "type": "object",
                "required": ["id", "object", "created_at", "status", "error", "incomplete_details",
                    "instructions", "model", "tools", "output", "parallel_tool_calls",
                    "metadata", "tool_choice", "temperature", "top_p"],
                "properties": {
                    "id": { "type": "string", "pattern": "^resp_" },
                    "object": constant("response"),
                    "created_at": { "type": "number" },
                    "completed_at": nullable(json!({ "type": "number" })),
                    "status": { "type": "string", "enum": ["completed", "failed", "in_progress",
                        "cancelled", "queued", "incomplete"] },
                    "background": nullable(json!({ "type": "boolean" })),
                    "error": nullable(json!({ "type": "object", "required": ["code", "message"],
                        "properties": { "code": string(), "message": string() } })),
                    "incomplete_details": nullable(json!({ "type": "object", "properties": {
                        "reason": { "type": "string",
                            "enum": ["max_output_tokens", "content_filter"] } } })),
                    "instructions": { "anyOf": [string(),
                        { "type": "array", "items": schema_ref("ResponseItem") },
                        { "type": "null" }] },
                    "model": string(),
                    "output": { "type": "array", "items": schema_ref("ResponseOutputItem") },
                    "output_text": nullable(string()),
                    "previous_response_id": nullable(string()),
                    "conversation": nullable(json!({ "type": "object", "required": ["id"],
                        "properties": { "id": string() } })),
                    "parallel_tool_calls": { "type": "boolean" },
                    "tools": { "type": "array", "items": schema_ref("ResponseTool") },
                    "tool_choice": schema_ref("ResponseToolChoice"),
                    "temperature": nullable(json!({ "type": "number" })),
                    "top_p": nullable(json!({ "type": "number" })),
                    "max_output_tokens": nullable(int()),
                    "max_tool_calls": nullable(int()),
                    "reasoning": nullable(json!({ "type": "object", "properties": {
                        "effort": nullable(string()), "summary": nullable(string()) } })),
                    "text": { "type": "object", "properties": {
                        "format": { "type": "object", "required": ["type"],
                            "properties": { "type": string() } },
                        "verbosity": nullable(string()) } },
                    "truncation": nullable(json!({ "type": "string", "enum": ["auto", "disabled"] })),
                    "store": { "type": "boolean" },
                    "usage": nullable(schema_ref("ResponseUsage")),
                    "user": nullable(string()),
                    "metadata": metadata(),
                } }),
        ),
        (
            "ResponseTool",
            json!({ "type": "object", "required": ["type"],
                "description": "A tool the model may call: `function` (`name`, `parameters`, \
                    `strict`, `description`), `file_search` (`vector_store_ids`, \
                    `max_num_results`, `ranking_options`, `filters`) or `code_interpreter` \
                    (`container`).",
                "properties": {
                    "type": string(),
                    "name": string(),
                    "description": nullable(string()),
                    "parameters": nullable(json!({ "type": "object" })),
                    "strict": nullable(json!({ "type": "boolean" })),
                    "vector_store_ids": { "type": "array", "items": string() },
                    "max_num_results": int(),
                    "container": { "oneOf": [string(), { "type": "object" }] },
                } }),
        ),
        (
            "ResponseToolChoice",
            json!({ "oneOf": [
                { "type": "string", "enum": ["none", "auto", "required"] },
                { "type": "object", "required": ["type"],
                  "description": "`{\"type\": \"function\", \"name\"}`, or a built-in tool's \
                      type (`{\"type\": \"file_search\"}`).",
                  "properties": { "type": string(), "name": string() } },
            ] }),
        ),
        (
            "ResponseDeleted",
            json!({ "type": "object", "required": ["id", "object", "deleted"],
                "properties": { "id": string(), "object": constant("response"),
                    "deleted": { "type": "boolean" } } }),
        ),
        (
            "ResponseItemList",
            json!({ "type": "object", "required": ["object", "data", "has_more", "first_id", "last_id"],
                "properties": {
                    "object": constant("list"),
                    "data": { "type": "array", "items": schema_ref("ResponseItem") },
                    "has_more": { "type": "boolean" },
                    "first_id": nullable(string()),
                    "last_id": nullable(string()),
                } }),
        ),
        (
            "ResponseStreamEvent",
            json!({ "type": "object", "required": ["type", "sequence_number"],
                "description": "One event of a response's stream (`event:` is its `type`): \
                    `response.created`, `response.in_progress`, `response.output_item.added`, \
                    `response.content_part.added`, `response.output_text.delta`, ..., ending \
                    with `response.completed`, `response.failed` or `response.incomplete` \
                    (then the stream closes, without `[DONE]`), or `error`.",
                "properties": {
                    "type": string(),
                    "sequence_number": { "type": "integer", "minimum": 0 },
                    "response": schema_ref("Response"),
                    "output_index": int(),
                    "item_id": string(),
                    "content_index": int(),
                    "item": schema_ref("ResponseOutputItem"),
                    "part": { "type": "object", "required": ["type"],
                        "properties": { "type": string() } },
                    "delta": string(),
                    "text": string(),
                    "arguments": string(),
                    "code": nullable(string()),
                    "message": string(),
                } }),
        ),
        // ---- Request bodies ----
        (
            "CreateResponse",
            json!({ "type": "object",
                "properties": {
                    "model": { "type": "string", "description": "The model (default: the \
                        previous response's, or the server's)." },
                    "input": { "oneOf": [string(),
                        { "type": "array", "items": schema_ref("ResponseInputItem") }] },
                    "instructions": nullable(string()),
                    "previous_response_id": nullable(string()),
                    "conversation": { "anyOf": [string(),
                        { "type": "object", "required": ["id"], "properties": { "id": string() } },
                        { "type": "null" }] },
                    "tools": { "type": "array", "items": schema_ref("ResponseTool") },
                    "tool_choice": schema_ref("ResponseToolChoice"),
                    "parallel_tool_calls": nullable(json!({ "type": "boolean" })),
                    "max_output_tokens": nullable(json!({ "type": "integer", "minimum": 16 })),
                    "max_tool_calls": nullable(json!({ "type": "integer", "minimum": 1 })),
                    "temperature": nullable(json!({ "type": "number", "minimum": 0, "maximum": 2 })),
                    "top_p": nullable(json!({ "type": "number", "minimum": 0, "maximum": 1 })),
                    "text": { "type": "object", "properties": {
                        "format": { "type": "object", "required": ["type"],
                            "properties": { "type": { "type": "string",
                                "enum": ["text", "json_object", "json_schema"] } } } } },
                    "reasoning": nullable(json!({ "type": "object", "properties": {
                        "effort": nullable(string()), "summary": nullable(string()) } })),
                    "include": nullable(json!({ "type": "array", "items": schema_ref("ResponseInclude") })),
                    "store": nullable(json!({ "type": "boolean" })),
                    "background": nullable(json!({ "type": "boolean" })),
                    "stream": nullable(json!({ "type": "boolean" })),
                    "truncation": nullable(json!({ "type": "string", "enum": ["auto", "disabled"] })),
                    "user": string(),
                    "metadata": metadata(),
                } }),
        ),
        (
            "TokenCountsBody",
            json!({ "type": "object",
                "properties": {
                    "model": nullable(string()),
                    "input": { "anyOf": [string(),
                        { "type": "array", "items": schema_ref("ResponseInputItem") },
                        { "type": "null" }] },
                    "instructions": nullable(string()),
                    "previous_response_id": nullable(string()),
                    "conversation": { "anyOf": [string(),
                        { "type": "object", "required": ["id"], "properties": { "id": string() } },
                        { "type": "null" }] },
                    "tools": nullable(json!({ "type": "array", "items": schema_ref("ResponseTool") })),
                    "tool_choice": { "anyOf": [schema_ref("ResponseToolChoice"), { "type": "null" }] },
                    "parallel_tool_calls": nullable(json!({ "type": "boolean" })),
                } }),
        ),
        (
            "TokenCountsResource",
            json!({ "type": "object", "required": ["object", "input_tokens"],
                "properties": { "object": constant("response.input_tokens"),
                    "input_tokens": int() } }),
        ),
        // ---- Conversations ----
        (
            "Conversation",
            json!({ "type": "object", "required": ["id", "object", "metadata", "created_at"],
                "properties": {
                    "id": { "type": "string", "pattern": "^(conv|thread)_" },
                    "object": constant("conversation"),
                    "created_at": int(),
                    "metadata": metadata(),
                } }),
        ),
        (
            "ConversationDeletedResource",
            json!({ "type": "object", "required": ["id", "object", "deleted"],
                "properties": { "id": string(), "object": constant("conversation.deleted"),
                    "deleted": { "type": "boolean" } } }),
        ),
        (
            "ConversationItemList",
            json!({ "type": "object", "required": ["object", "data", "has_more", "first_id", "last_id"],
                "properties": {
                    "object": constant("list"),
                    "data": { "type": "array", "items": schema_ref("ResponseItem") },
                    "has_more": { "type": "boolean" },
                    "first_id": nullable(string()),
                    "last_id": nullable(string()),
                } }),
        ),
        (
            "CreateConversationBody",
            json!({ "type": "object",
                "properties": {
                    "metadata": metadata(),
                    "items": nullable(json!({ "type": "array", "maxItems": 20,
                        "items": schema_ref("ResponseInputItem") })),
                } }),
        ),
        (
            "UpdateConversationBody",
            json!({ "type": "object", "required": ["metadata"],
                "properties": { "metadata": metadata() } }),
        ),
        (
            "CreateConversationItemsBody",
            json!({ "type": "object", "required": ["items"],
                "properties": { "items": { "type": "array", "minItems": 1, "maxItems": 20,
                    "items": schema_ref("ResponseInputItem") } } }),
        ),
    ]
}

/// Adds the operations, the schemas they use and their tags to `doc` (the generated
/// document). An operation the generated document has already (documented with the types of
/// its own module) is left as it is; so is a schema of the same name, and the schemas only
/// such an operation would use are not added.
pub fn add(doc: &mut Value) {
    let (operations, schemas) = plan(doc);
    let mut tags = Vec::new();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in operations {
            if !tags.contains(&op.tag) {
                tags.push(op.tag);
            }
            let (path, method) = (op.path, op.method);
            let item = paths.entry(path).or_insert_with(|| json!({}));
            item[method] = operation(op);
        }
    }
    if let Some(components) = doc["components"]["schemas"].as_object_mut() {
        for (name, schema) in schemas {
            components.entry(name).or_insert(schema);
        }
    }
    if let Some(list) = doc["tags"].as_array_mut() {
        for tag in tags {
            if list.iter().any(|t| t["name"] == tag) {
                continue;
            }
            list.push(match tag {
                "Responses" => json!({ "name": "Responses",
                    "description": "Model responses: input items in, output items out, \
                        streamed or not, chained by `previous_response_id` or kept in a \
                        conversation." }),
                _ => json!({ "name": tag,
                    "description": "Conversations (threads) and their items." }),
            });
        }
    }
}

/// The operations `doc` does not have yet, and the schemas they use (transitively).
fn plan(doc: &Value) -> (Vec<Op>, Vec<(&'static str, Value)>) {
    let operations: Vec<Op> = operations()
        .into_iter()
        .filter(|op| doc["paths"][op.path].get(op.method).is_none())
        .collect();
    let all = schemas();
    let mut wanted: Vec<&'static str> = Vec::new();
    let mut queue: Vec<Value> = operations
        .iter()
        .map(|op| json!([op.ok, op.params, op.body.map(|(name, _)| schema_ref(name))]))
        .collect();
    while let Some(value) = queue.pop() {
        for name in references(&value) {
            if let Some((n, schema)) = all.iter().find(|(n, _)| *n == name) {
                if !wanted.contains(n) {
                    wanted.push(n);
                    queue.push(schema.clone());
                }
            }
        }
    }
    let schemas = schemas()
        .into_iter()
        .filter(|(n, _)| wanted.contains(n))
        .collect();
    (operations, schemas)
}

/// The component schema names `value` refers to.
fn references(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                if let Some(name) = r.strip_prefix("#/components/schemas/") {
                    out.push(name.to_string());
                }
            }
            for v in map.values() {
                out.extend(references(v));
            }
        }
        Value::Array(items) => items.iter().for_each(|v| out.extend(references(v))),
        _ => {}
    }
    out
}

/// The names of the schemas `add` would add to `doc`.
#[cfg(test)]
pub(super) fn schemas_added_to(doc: &Value) -> Vec<&'static str> {
    plan(doc).1.into_iter().map(|(n, _)| n).collect()
}
