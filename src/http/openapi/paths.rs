//! The operations of the document, one function each (`#[utoipa::path]`): method, path (after
//! the `/v1` server URL), operationId, parameters, body and the answers particular to it. The
//! errors every operation can answer (400, 401, 413 with a body, 5xx) are added by
//! `super::CommonResponses`. `super::tests` checks this list against the router's table.

// The parameter structs exist for their derived `IntoParams`; nothing reads their fields.
#![allow(dead_code)]

use super::NotFound;
use crate::api::assistants::{CreateAssistant, ModifyAssistant};
use crate::api::file_batches::CreateFileBatch;
use crate::api::messages::ModifyMessage;
use crate::api::run_options::{CreateRun, CreateThreadAndRun};
use crate::api::runs::ModifyRun;
use crate::api::schemas::*;
use crate::api::threads::{CreateThread, ModifyThread};
use crate::api::tool_outputs::SubmitToolOutputs;
use crate::api::types::CreateMessage;
use crate::api::vector_search::SearchRequest;
use crate::api::vector_store_files::{CreateVectorStoreFile, UpdateAttributes};
use crate::api::vector_stores::{CreateVectorStore, ModifyVectorStore};
use crate::model::assistant::Assistant;
use crate::model::file::FileObject;
use crate::model::message::Message;
use crate::model::run::Run;
use crate::model::step::RunStep;
use crate::model::thread::Thread;
use crate::model::vector_store::{FileBatch, VectorStore, VectorStoreFile};
use utoipa::IntoParams;

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AssistantPath {
    /// The assistant's id.
    #[param(pattern = "^asst_")]
    assistant_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ThreadPath {
    /// The thread's id.
    #[param(pattern = "^thread_")]
    thread_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MessagePath {
    /// The thread's id.
    #[param(pattern = "^thread_")]
    thread_id: String,
    /// The message's id.
    #[param(pattern = "^msg_")]
    message_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RunPath {
    /// The thread's id.
    #[param(pattern = "^thread_")]
    thread_id: String,
    /// The run's id.
    #[param(pattern = "^run_")]
    run_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct StepPath {
    /// The thread's id.
    #[param(pattern = "^thread_")]
    thread_id: String,
    /// The run's id.
    #[param(pattern = "^run_")]
    run_id: String,
    /// The run step's id.
    #[param(pattern = "^step_")]
    step_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FilePath {
    /// The file's id.
    #[param(pattern = "^file-")]
    file_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VectorStorePath {
    /// The vector store's id.
    #[param(pattern = "^vs_")]
    vector_store_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VectorStoreFilePath {
    /// The vector store's id.
    #[param(pattern = "^vs_")]
    vector_store_id: String,
    /// The file's id.
    #[param(pattern = "^file-")]
    file_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct BatchPath {
    /// The vector store's id.
    #[param(pattern = "^vs_")]
    vector_store_id: String,
    /// The file batch's id.
    #[param(pattern = "^vsfb_")]
    batch_id: String,
}

// ---- Assistants ----

/// List assistants
#[utoipa::path(get, path = "/assistants", operation_id = "listAssistants", tag = "Assistants",
    params(ListParams),
    responses((status = 200, description = "A page of assistants.", body = AssistantList)))]
pub fn list_assistants() {}

/// Create an assistant
#[utoipa::path(post, path = "/assistants", operation_id = "createAssistant", tag = "Assistants",
    request_body = CreateAssistant,
    responses((status = 200, description = "The assistant.", body = Assistant)))]
pub fn create_assistant() {}

/// Retrieve an assistant
#[utoipa::path(get, path = "/assistants/{assistant_id}", operation_id = "getAssistant",
    tag = "Assistants", params(AssistantPath),
    responses((status = 200, description = "The assistant.", body = Assistant),
        (status = 404, response = NotFound)))]
pub fn get_assistant() {}

/// Modify an assistant
///
/// Fields not given keep their values; `null` clears a nullable field.
#[utoipa::path(post, path = "/assistants/{assistant_id}", operation_id = "modifyAssistant",
    tag = "Assistants", params(AssistantPath), request_body = ModifyAssistant,
    responses((status = 200, description = "The assistant.", body = Assistant),
        (status = 404, response = NotFound)))]
pub fn modify_assistant() {}

/// Delete an assistant
#[utoipa::path(delete, path = "/assistants/{assistant_id}", operation_id = "deleteAssistant",
    tag = "Assistants", params(AssistantPath),
    responses((status = 200, description = "Deleted.", body = AssistantDeleted),
        (status = 404, response = NotFound)))]
pub fn delete_assistant() {}

// ---- Threads ----

/// Create a thread
#[utoipa::path(post, path = "/threads", operation_id = "createThread", tag = "Threads",
    request_body(content = Option<CreateThread>, description = "Optional: an empty body creates an empty thread."),
    responses((status = 200, description = "The thread.", body = Thread)))]
pub fn create_thread() {}

/// Retrieve a thread
#[utoipa::path(get, path = "/threads/{thread_id}", operation_id = "getThread", tag = "Threads",
    params(ThreadPath),
    responses((status = 200, description = "The thread.", body = Thread),
        (status = 404, response = NotFound)))]
pub fn get_thread() {}

/// Modify a thread
#[utoipa::path(post, path = "/threads/{thread_id}", operation_id = "modifyThread", tag = "Threads",
    params(ThreadPath), request_body = ModifyThread,
    responses((status = 200, description = "The thread.", body = Thread),
        (status = 404, response = NotFound)))]
pub fn modify_thread() {}

/// Delete a thread
///
/// Deletes its messages, runs and run steps too.
#[utoipa::path(delete, path = "/threads/{thread_id}", operation_id = "deleteThread",
    tag = "Threads", params(ThreadPath),
    responses((status = 200, description = "Deleted.", body = ThreadDeleted),
        (status = 404, response = NotFound)))]
pub fn delete_thread() {}

/// Create a thread and run it
#[utoipa::path(post, path = "/threads/runs", operation_id = "createThreadAndRun", tag = "Runs",
    request_body = CreateThreadAndRun,
    responses(
        (status = 200, description = "The run (queued), or with `stream: true` its events as they happen.",
            content((Run = "application/json"), (EventStream = "text/event-stream"))),
        (status = 404, response = NotFound)))]
pub fn create_thread_and_run() {}

// ---- Messages ----

/// List messages
#[utoipa::path(get, path = "/threads/{thread_id}/messages", operation_id = "listMessages",
    tag = "Messages", params(ThreadPath, ListParams, MessageListParams),
    responses((status = 200, description = "A page of messages.", body = MessageList),
        (status = 404, response = NotFound)))]
pub fn list_messages() {}

/// Create a message
///
/// Refused (400) while a run of the thread is active.
#[utoipa::path(post, path = "/threads/{thread_id}/messages", operation_id = "createMessage",
    tag = "Messages", params(ThreadPath), request_body = CreateMessage,
    responses((status = 200, description = "The message.", body = Message),
        (status = 404, response = NotFound)))]
pub fn create_message() {}

/// Retrieve a message
#[utoipa::path(get, path = "/threads/{thread_id}/messages/{message_id}", operation_id = "getMessage",
    tag = "Messages", params(MessagePath),
    responses((status = 200, description = "The message.", body = Message),
        (status = 404, response = NotFound)))]
pub fn get_message() {}

/// Modify a message
#[utoipa::path(post, path = "/threads/{thread_id}/messages/{message_id}",
    operation_id = "modifyMessage", tag = "Messages", params(MessagePath),
    request_body = ModifyMessage,
    responses((status = 200, description = "The message.", body = Message),
        (status = 404, response = NotFound)))]
pub fn modify_message() {}

/// Delete a message
#[utoipa::path(delete, path = "/threads/{thread_id}/messages/{message_id}",
    operation_id = "deleteMessage", tag = "Messages", params(MessagePath),
    responses((status = 200, description = "Deleted.", body = MessageDeleted),
        (status = 404, response = NotFound)))]
pub fn delete_message() {}

// ---- Runs ----

/// List runs
#[utoipa::path(get, path = "/threads/{thread_id}/runs", operation_id = "listRuns", tag = "Runs",
    params(ThreadPath, ListParams),
    responses((status = 200, description = "A page of runs.", body = RunList),
        (status = 404, response = NotFound)))]
pub fn list_runs() {}

/// Create a run
///
/// Refused (400) while another run of the thread is active. Without `stream` the run is
/// queued and advances in the background; poll it (`openai-poll-after-ms` says how often).
#[utoipa::path(post, path = "/threads/{thread_id}/runs", operation_id = "createRun", tag = "Runs",
    params(ThreadPath, IncludeParams), request_body = CreateRun,
    responses(
        (status = 200, description = "The run (queued), or with `stream: true` its events as they happen.",
            content((Run = "application/json"), (EventStream = "text/event-stream"))),
        (status = 404, response = NotFound)))]
pub fn create_run() {}

/// Retrieve a run
#[utoipa::path(get, path = "/threads/{thread_id}/runs/{run_id}", operation_id = "getRun",
    tag = "Runs", params(RunPath),
    responses((status = 200, description = "The run.", body = Run,
            headers(("openai-poll-after-ms" = u64, description = "How long to wait before polling again."))),
        (status = 404, response = NotFound)))]
pub fn get_run() {}

/// Modify a run
#[utoipa::path(post, path = "/threads/{thread_id}/runs/{run_id}", operation_id = "modifyRun",
    tag = "Runs", params(RunPath), request_body = ModifyRun,
    responses((status = 200, description = "The run.", body = Run),
        (status = 404, response = NotFound)))]
pub fn modify_run() {}

/// Cancel a run
///
/// A run waiting for tool outputs is `cancelled` at once; one that may be calling the model
/// becomes `cancelling` and then `cancelled`. A run that has ended cannot be cancelled (400).
#[utoipa::path(post, path = "/threads/{thread_id}/runs/{run_id}/cancel", operation_id = "cancelRun",
    tag = "Runs", params(RunPath),
    responses((status = 200, description = "The run.", body = Run),
        (status = 404, response = NotFound)))]
pub fn cancel_run() {}

/// Submit tool outputs to a run
///
/// For a run in `requires_action`: one output for each of its pending calls. The run is then
/// queued for its next turn.
#[utoipa::path(post, path = "/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
    operation_id = "submitToolOuputsToRun", tag = "Runs", params(RunPath),
    request_body = SubmitToolOutputs,
    responses(
        (status = 200, description = "The run (queued), or with `stream: true` its events as they happen.",
            content((Run = "application/json"), (EventStream = "text/event-stream"))),
        (status = 404, response = NotFound)))]
pub fn submit_tool_outputs() {}

/// List run steps
#[utoipa::path(get, path = "/threads/{thread_id}/runs/{run_id}/steps", operation_id = "listRunSteps",
    tag = "Runs", params(RunPath, ListParams, IncludeParams),
    responses((status = 200, description = "A page of run steps.", body = RunStepList),
        (status = 404, response = NotFound)))]
pub fn list_run_steps() {}

/// Retrieve a run step
#[utoipa::path(get, path = "/threads/{thread_id}/runs/{run_id}/steps/{step_id}",
    operation_id = "getRunStep", tag = "Runs", params(StepPath, IncludeParams),
    responses((status = 200, description = "The run step.", body = RunStep),
        (status = 404, response = NotFound)))]
pub fn get_run_step() {}

// ---- Files ----

/// List files
#[utoipa::path(get, path = "/files", operation_id = "listFiles", tag = "Files",
    params(FileListParams),
    responses((status = 200, description = "A page of files.", body = FileList)))]
pub fn list_files() {}

/// Upload a file
///
/// A `multipart/form-data` body, streamed into storage; larger than `FILE_MAX_BYTES` is a 413.
#[utoipa::path(post, path = "/files", operation_id = "createFile", tag = "Files",
    request_body(content = CreateFileRequest, content_type = "multipart/form-data"),
    responses((status = 200, description = "The file.", body = FileObject)))]
pub fn create_file() {}

/// Retrieve a file
#[utoipa::path(get, path = "/files/{file_id}", operation_id = "retrieveFile", tag = "Files",
    params(FilePath),
    responses((status = 200, description = "The file.", body = FileObject),
        (status = 404, response = NotFound)))]
pub fn retrieve_file() {}

/// Delete a file
///
/// Also removes it from every vector store that has it.
#[utoipa::path(delete, path = "/files/{file_id}", operation_id = "deleteFile", tag = "Files",
    params(FilePath),
    responses((status = 200, description = "Deleted.", body = FileDeleted),
        (status = 404, response = NotFound)))]
pub fn delete_file() {}

/// Download a file's content
#[utoipa::path(get, path = "/files/{file_id}/content", operation_id = "downloadFile", tag = "Files",
    params(FilePath),
    responses((status = 200, description = "The stored bytes, with the content type they were uploaded with.",
            content((FileBytes = "*/*"))),
        (status = 404, response = NotFound)))]
pub fn download_file() {}

// ---- Vector stores ----

/// List vector stores
#[utoipa::path(get, path = "/vector_stores", operation_id = "listVectorStores",
    tag = "Vector stores", params(ListParams),
    responses((status = 200, description = "A page of vector stores.", body = VectorStoreList)))]
pub fn list_vector_stores() {}

/// Create a vector store
///
/// Files given in `file_ids` are ingested in the background (`file_counts.in_progress`).
#[utoipa::path(post, path = "/vector_stores", operation_id = "createVectorStore",
    tag = "Vector stores", request_body = CreateVectorStore,
    responses((status = 200, description = "The vector store.", body = VectorStore),
        (status = 404, response = NotFound)))]
pub fn create_vector_store() {}

/// Retrieve a vector store
#[utoipa::path(get, path = "/vector_stores/{vector_store_id}", operation_id = "getVectorStore",
    tag = "Vector stores", params(VectorStorePath),
    responses((status = 200, description = "The vector store.", body = VectorStore),
        (status = 404, response = NotFound)))]
pub fn get_vector_store() {}

/// Modify a vector store
#[utoipa::path(post, path = "/vector_stores/{vector_store_id}", operation_id = "modifyVectorStore",
    tag = "Vector stores", params(VectorStorePath), request_body = ModifyVectorStore,
    responses((status = 200, description = "The vector store.", body = VectorStore),
        (status = 404, response = NotFound)))]
pub fn modify_vector_store() {}

/// Delete a vector store
///
/// Its files stay (as files); their chunks go.
#[utoipa::path(delete, path = "/vector_stores/{vector_store_id}", operation_id = "deleteVectorStore",
    tag = "Vector stores", params(VectorStorePath),
    responses((status = 200, description = "Deleted.", body = VectorStoreDeleted),
        (status = 404, response = NotFound)))]
pub fn delete_vector_store() {}

/// Search a vector store
///
/// The chunks of its completed files most similar to the query, best first.
#[utoipa::path(post, path = "/vector_stores/{vector_store_id}/search",
    operation_id = "searchVectorStore", tag = "Vector stores", params(VectorStorePath),
    request_body = SearchRequest,
    responses((status = 200, description = "The results.", body = SearchResultsPage),
        (status = 404, response = NotFound)))]
pub fn search_vector_store() {}

/// List vector store files
#[utoipa::path(get, path = "/vector_stores/{vector_store_id}/files",
    operation_id = "listVectorStoreFiles", tag = "Vector stores",
    params(VectorStorePath, ListParams, VectorStoreFileListParams),
    responses((status = 200, description = "A page of files.", body = VectorStoreFileList),
        (status = 404, response = NotFound)))]
pub fn list_vector_store_files() {}

/// Add a file to a vector store
///
/// The file is ingested in the background: poll it until its `status` is no longer
/// `in_progress`.
#[utoipa::path(post, path = "/vector_stores/{vector_store_id}/files",
    operation_id = "createVectorStoreFile", tag = "Vector stores", params(VectorStorePath),
    request_body = CreateVectorStoreFile,
    responses((status = 200, description = "The vector store file.", body = VectorStoreFile),
        (status = 404, response = NotFound)))]
pub fn create_vector_store_file() {}

/// Retrieve a vector store file
#[utoipa::path(get, path = "/vector_stores/{vector_store_id}/files/{file_id}",
    operation_id = "getVectorStoreFile", tag = "Vector stores", params(VectorStoreFilePath),
    responses((status = 200, description = "The vector store file.", body = VectorStoreFile),
        (status = 404, response = NotFound)))]
pub fn get_vector_store_file() {}

/// Update a vector store file's attributes
#[utoipa::path(post, path = "/vector_stores/{vector_store_id}/files/{file_id}",
    operation_id = "updateVectorStoreFileAttributes", tag = "Vector stores",
    params(VectorStoreFilePath), request_body = UpdateAttributes,
    responses((status = 200, description = "The vector store file.", body = VectorStoreFile),
        (status = 404, response = NotFound)))]
pub fn update_vector_store_file_attributes() {}

/// Remove a file from a vector store
///
/// The file itself stays.
#[utoipa::path(delete, path = "/vector_stores/{vector_store_id}/files/{file_id}",
    operation_id = "deleteVectorStoreFile", tag = "Vector stores", params(VectorStoreFilePath),
    responses((status = 200, description = "Removed.", body = VectorStoreFileDeleted),
        (status = 404, response = NotFound)))]
pub fn delete_vector_store_file() {}

/// Retrieve a vector store file's chunks
#[utoipa::path(get, path = "/vector_stores/{vector_store_id}/files/{file_id}/content",
    operation_id = "retrieveVectorStoreFileContent", tag = "Vector stores",
    params(VectorStoreFilePath),
    responses((status = 200, description = "The file's chunks, in order.", body = FileContentPage),
        (status = 404, response = NotFound)))]
pub fn retrieve_vector_store_file_content() {}

/// Create a file batch
#[utoipa::path(post, path = "/vector_stores/{vector_store_id}/file_batches",
    operation_id = "createVectorStoreFileBatch", tag = "Vector stores", params(VectorStorePath),
    request_body = CreateFileBatch,
    responses((status = 200, description = "The batch.", body = FileBatch),
        (status = 404, response = NotFound)))]
pub fn create_vector_store_file_batch() {}

/// Retrieve a file batch
#[utoipa::path(get, path = "/vector_stores/{vector_store_id}/file_batches/{batch_id}",
    operation_id = "getVectorStoreFileBatch", tag = "Vector stores", params(BatchPath),
    responses((status = 200, description = "The batch.", body = FileBatch),
        (status = 404, response = NotFound)))]
pub fn get_vector_store_file_batch() {}

/// Cancel a file batch
///
/// Its files still in progress become `cancelled`.
#[utoipa::path(post, path = "/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel",
    operation_id = "cancelVectorStoreFileBatch", tag = "Vector stores", params(BatchPath),
    responses((status = 200, description = "The batch.", body = FileBatch),
        (status = 404, response = NotFound)))]
pub fn cancel_vector_store_file_batch() {}

/// List the files of a file batch
#[utoipa::path(get, path = "/vector_stores/{vector_store_id}/file_batches/{batch_id}/files",
    operation_id = "listFilesInVectorStoreBatch", tag = "Vector stores",
    params(BatchPath, ListParams, VectorStoreFileListParams),
    responses((status = 200, description = "A page of files.", body = VectorStoreFileList),
        (status = 404, response = NotFound)))]
pub fn list_files_in_vector_store_batch() {}

// ---- Conversations ----

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ConversationPath {
    /// The conversation's id (`conv_...`, or an Assistants thread's `thread_...`).
    #[param(pattern = "^(conv|thread)_")]
    conversation_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ConversationItemPath {
    /// The conversation's id (`conv_...`, or an Assistants thread's `thread_...`).
    #[param(pattern = "^(conv|thread)_")]
    conversation_id: String,
    /// The item's id.
    item_id: String,
}

/// Create a conversation
///
/// With up to 20 items, stored in order with fresh ids.
#[utoipa::path(post, path = "/conversations", operation_id = "createConversation",
    tag = "Conversations",
    request_body(content = Option<CreateConversation>, description = "Optional: an empty body creates an empty conversation."),
    responses((status = 200, description = "The conversation.", body = Conversation)))]
pub fn create_conversation() {}

/// Retrieve a conversation
#[utoipa::path(get, path = "/conversations/{conversation_id}", operation_id = "getConversation",
    tag = "Conversations", params(ConversationPath),
    responses((status = 200, description = "The conversation.", body = Conversation),
        (status = 404, response = NotFound)))]
pub fn get_conversation() {}

/// Update a conversation
#[utoipa::path(post, path = "/conversations/{conversation_id}",
    operation_id = "updateConversation", tag = "Conversations", params(ConversationPath),
    request_body = UpdateConversation,
    responses((status = 200, description = "The conversation.", body = Conversation),
        (status = 404, response = NotFound)))]
pub fn update_conversation() {}

/// Delete a conversation
///
/// Deletes its items too (and, for a thread, its runs). Refused (409) while a run or
/// response is active on it.
#[utoipa::path(delete, path = "/conversations/{conversation_id}",
    operation_id = "deleteConversation", tag = "Conversations", params(ConversationPath),
    responses((status = 200, description = "Deleted.", body = ConversationDeleted),
        (status = 404, response = NotFound),
        (status = 409, description = "A run or response is active on the conversation.",
            body = ErrorResponse)))]
pub fn delete_conversation() {}

/// List a conversation's items
#[utoipa::path(get, path = "/conversations/{conversation_id}/items",
    operation_id = "listConversationItems", tag = "Conversations",
    params(ConversationPath, ItemListParams, ItemIncludeParams),
    responses((status = 200, description = "A page of items.", body = ConversationItemList),
        (status = 404, response = NotFound)))]
pub fn list_conversation_items() {}

/// Add items to a conversation
///
/// Refused (400) while a run or response is active on the conversation.
#[utoipa::path(post, path = "/conversations/{conversation_id}/items",
    operation_id = "createConversationItems", tag = "Conversations",
    params(ConversationPath, ItemIncludeParams), request_body = CreateConversationItems,
    responses((status = 200, description = "The items added.", body = ConversationItemList),
        (status = 404, response = NotFound)))]
pub fn create_conversation_items() {}

/// Retrieve an item
#[utoipa::path(get, path = "/conversations/{conversation_id}/items/{item_id}",
    operation_id = "getConversationItem", tag = "Conversations",
    params(ConversationItemPath, ItemIncludeParams),
    responses((status = 200, description = "The item.", body = ConversationItem),
        (status = 404, response = NotFound)))]
pub fn get_conversation_item() {}

/// Delete an item
///
/// Refused (400) while a run or response is active on the conversation.
#[utoipa::path(delete, path = "/conversations/{conversation_id}/items/{item_id}",
    operation_id = "deleteConversationItem", tag = "Conversations",
    params(ConversationItemPath),
    responses((status = 200, description = "The conversation.", body = Conversation),
        (status = 404, response = NotFound)))]
pub fn delete_conversation_item() {}
