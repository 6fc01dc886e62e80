//! Options of assistants and runs held as JSON values, run steps, message parts.

use super::*;

/// `"auto"`, or `{"type": "text" | "json_object"}`, or a JSON schema the answer must follow.
pub struct ResponseFormat;

impl PartialSchema for ResponseFormat {
    fn schema() -> RefOr<Schema> {
        one_of_refs(
            "`auto` (the model's default), `{\"type\": \"text\"}`, `{\"type\": \"json_object\"}` \
             or `{\"type\": \"json_schema\", \"json_schema\": {...}}`.",
            &[ResponseFormatObject::name()],
            Some(constant("auto")),
        )
    }
}

impl ToSchema for ResponseFormat {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            ResponseFormatObject::name().into(),
            ResponseFormatObject::schema(),
        ));
        ResponseFormatObject::schemas(schemas);
    }
}

#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResponseFormatObject {
    Text {},
    JsonObject {},
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonSchemaFormat {
    /// The schema's name.
    #[schema(pattern = "^[a-zA-Z0-9_-]{1,64}$")]
    name: String,
    description: Option<String>,
    /// A JSON Schema object.
    #[schema(value_type = Option<Object>)]
    schema: Option<serde_json::Value>,
    strict: Option<bool>,
}

/// `"none"`, `"auto"`, `"required"`, or the one tool the model must call.
pub struct ToolChoice;

impl PartialSchema for ToolChoice {
    fn schema() -> RefOr<Schema> {
        one_of_refs(
            "`none` (no tools), `auto` (the model decides), `required` (some tool), or \
             `{\"type\": \"function\", \"function\": {\"name\": ...}}` for one function.",
            &[NamedToolChoice::name()],
            Some(tool_choice_mode()),
        )
    }
}

impl ToSchema for ToolChoice {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((NamedToolChoice::name().into(), NamedToolChoice::schema()));
        NamedToolChoice::schemas(schemas);
    }
}

fn tool_choice_mode() -> Object {
    string_of(&["none", "auto", "required"], "")
}

#[derive(ToSchema)]
pub struct NamedToolChoice {
    #[schema(rename = "type", schema_with = tool_choice_type)]
    kind: String,
    /// With `type: function`: which one (a function of the run's tools).
    function: Option<FunctionName>,
}

fn tool_choice_type() -> Object {
    string_of(&["function", "code_interpreter", "file_search"], "")
}

#[derive(ToSchema)]
pub struct FunctionName {
    name: String,
}

/// Which messages go to the model: all that fit (`auto`) or the last `last_messages`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TruncationStrategy {
    #[schema(rename = "type", schema_with = truncation_type)]
    kind: String,
    /// With `type: last_messages`: how many of the most recent messages (at least 1).
    #[schema(minimum = 1)]
    last_messages: Option<u64>,
}

fn truncation_type() -> Object {
    string_of(&["auto", "last_messages"], "")
}

/// What a run in `requires_action` waits for.
#[derive(ToSchema)]
pub struct RequiredAction {
    #[schema(rename = "type", schema_with = submit_tool_outputs_type)]
    kind: String,
    submit_tool_outputs: SubmitToolOutputsAction,
}

fn submit_tool_outputs_type() -> Object {
    constant("submit_tool_outputs")
}

#[derive(ToSchema)]
pub struct SubmitToolOutputsAction {
    /// The calls to answer with `submit_tool_outputs`.
    tool_calls: Vec<RequiredToolCall>,
}

#[derive(ToSchema)]
pub struct RequiredToolCall {
    /// Pass it as `tool_call_id` with the output.
    id: String,
    #[schema(rename = "type", schema_with = function_type)]
    kind: String,
    function: FunctionCallRequest,
}

fn function_type() -> Object {
    constant("function")
}

#[derive(ToSchema)]
pub struct FunctionCallRequest {
    name: String,
    /// The arguments, a JSON object as a string.
    arguments: String,
}

/// Why a run failed.
#[derive(ToSchema)]
pub struct RunLastError {
    #[schema(schema_with = run_error_code)]
    code: String,
    message: String,
}

fn run_error_code() -> Object {
    string_of(
        &["server_error", "rate_limit_exceeded", "invalid_prompt"],
        "`rate_limit_exceeded` when the model kept answering 429, `invalid_prompt` when it \
         refused the request, `server_error` otherwise.",
    )
}

/// Why a run ended `incomplete`.
#[derive(ToSchema)]
pub struct RunIncompleteDetails {
    #[schema(schema_with = run_incomplete_reason)]
    reason: String,
}

fn run_incomplete_reason() -> Object {
    string_of(&["max_completion_tokens", "max_prompt_tokens"], "")
}

/// Why a message ended `incomplete`.
#[derive(ToSchema)]
pub struct MessageIncompleteDetails {
    #[schema(schema_with = message_incomplete_reason)]
    reason: String,
}

fn message_incomplete_reason() -> Object {
    string_of(
        &[
            "content_filter",
            "max_tokens",
            "run_cancelled",
            "run_expired",
            "run_failed",
        ],
        "",
    )
}

// ---- Run steps ----

/// What a step did: wrote a message, or called tools.
#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepDetails {
    MessageCreation {
        message_creation: MessageCreation,
    },
    ToolCalls {
        /// The calls of this step (with their outputs once known).
        tool_calls: Vec<StepToolCall>,
    },
}

#[derive(ToSchema)]
pub struct MessageCreation {
    message_id: String,
}

#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepToolCall {
    Function {
        id: String,
        function: StepFunctionCall,
    },
    FileSearch {
        id: String,
        file_search: StepFileSearch,
    },
    CodeInterpreter {
        id: String,
        code_interpreter: StepCodeInterpreter,
    },
}

#[derive(ToSchema)]
pub struct StepFunctionCall {
    name: String,
    arguments: String,
    /// The submitted output; null until then.
    #[schema(required)]
    output: Option<String>,
}

#[derive(ToSchema)]
pub struct StepFileSearch {
    ranking_options: Option<crate::model::values::RankingOptions>,
    results: Option<Vec<FileSearchResult>>,
}

#[derive(ToSchema)]
pub struct FileSearchResult {
    file_id: String,
    file_name: String,
    #[schema(minimum = 0.0, maximum = 1.0)]
    score: f64,
    /// Present with `include[]=step_details.tool_calls[*].file_search.results[*].content`.
    content: Option<Vec<TextChunk>>,
}

#[derive(ToSchema)]
pub struct StepCodeInterpreter {
    input: String,
    outputs: Vec<CodeInterpreterOutput>,
}

#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CodeInterpreterOutput {
    Logs { logs: String },
    Image { image: FileRef },
}

#[derive(ToSchema)]
pub struct FileRef {
    file_id: String,
}

// ---- Messages ----

/// A citation or a file path in a message's text.
#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Annotation {
    FileCitation {
        /// The text in the message that the annotation replaces.
        text: String,
        file_citation: FileRef,
        start_index: u64,
        end_index: u64,
    },
    FilePath {
        text: String,
        file_path: FileRef,
        start_index: u64,
        end_index: u64,
    },
}
