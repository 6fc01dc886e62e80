//! Every operation of the Assistants API v2 and of the Responses and Conversations APIs,
//! with its path ids as fields. The HTTP router
//! fills one from a method and a path; backends dispatch on it.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    ListAssistants,
    CreateAssistant,
    GetAssistant {
        assistant_id: String,
    },
    ModifyAssistant {
        assistant_id: String,
    },
    DeleteAssistant {
        assistant_id: String,
    },

    CreateThread,
    GetThread {
        thread_id: String,
    },
    ModifyThread {
        thread_id: String,
    },
    DeleteThread {
        thread_id: String,
    },
    CreateThreadAndRun,

    ListMessages {
        thread_id: String,
    },
    CreateMessage {
        thread_id: String,
    },
    GetMessage {
        thread_id: String,
        message_id: String,
    },
    ModifyMessage {
        thread_id: String,
        message_id: String,
    },
    DeleteMessage {
        thread_id: String,
        message_id: String,
    },

    ListRuns {
        thread_id: String,
    },
    CreateRun {
        thread_id: String,
    },
    GetRun {
        thread_id: String,
        run_id: String,
    },
    ModifyRun {
        thread_id: String,
        run_id: String,
    },
    CancelRun {
        thread_id: String,
        run_id: String,
    },
    SubmitToolOutputs {
        thread_id: String,
        run_id: String,
    },
    ListRunSteps {
        thread_id: String,
        run_id: String,
    },
    GetRunStep {
        thread_id: String,
        run_id: String,
        step_id: String,
    },

    ListFiles,
    CreateFile,
    GetFile {
        file_id: String,
    },
    DeleteFile {
        file_id: String,
    },
    DownloadFile {
        file_id: String,
    },

    ListVectorStores,
    CreateVectorStore,
    GetVectorStore {
        vector_store_id: String,
    },
    ModifyVectorStore {
        vector_store_id: String,
    },
    DeleteVectorStore {
        vector_store_id: String,
    },
    SearchVectorStore {
        vector_store_id: String,
    },
    ListVectorStoreFiles {
        vector_store_id: String,
    },
    CreateVectorStoreFile {
        vector_store_id: String,
    },
    GetVectorStoreFile {
        vector_store_id: String,
        file_id: String,
    },
    UpdateVectorStoreFile {
        vector_store_id: String,
        file_id: String,
    },
    DeleteVectorStoreFile {
        vector_store_id: String,
        file_id: String,
    },
    GetVectorStoreFileContent {
        vector_store_id: String,
        file_id: String,
    },
    CreateVectorStoreFileBatch {
        vector_store_id: String,
    },
    GetVectorStoreFileBatch {
        vector_store_id: String,
        batch_id: String,
    },
    CancelVectorStoreFileBatch {
        vector_store_id: String,
        batch_id: String,
    },
    ListVectorStoreFileBatchFiles {
        vector_store_id: String,
        batch_id: String,
    },

    // The Responses API.
    CreateResponse,
    GetResponse {
        response_id: String,
    },
    DeleteResponse {
        response_id: String,
    },
    CancelResponse {
        response_id: String,
    },
    ListInputItems {
        response_id: String,
    },
    CountInputTokens,

    // The Conversations API.
    CreateConversation,
    GetConversation {
        conversation_id: String,
    },
    UpdateConversation {
        conversation_id: String,
    },
    DeleteConversation {
        conversation_id: String,
    },
    ListConversationItems {
        conversation_id: String,
    },
    CreateConversationItems {
        conversation_id: String,
    },
    GetConversationItem {
        conversation_id: String,
        item_id: String,
    },
    DeleteConversationItem {
        conversation_id: String,
        item_id: String,
    },
}

impl Operation {
    /// The OpenAPI operationId (for logs and "not supported" errors).
    pub fn name(&self) -> &'static str {
        use Operation::*;
        match self {
            ListAssistants => "listAssistants",
            CreateAssistant => "createAssistant",
            GetAssistant { .. } => "getAssistant",
            ModifyAssistant { .. } => "modifyAssistant",
            DeleteAssistant { .. } => "deleteAssistant",
            CreateThread => "createThread",
            GetThread { .. } => "getThread",
            ModifyThread { .. } => "modifyThread",
            DeleteThread { .. } => "deleteThread",
            CreateThreadAndRun => "createThreadAndRun",
            ListMessages { .. } => "listMessages",
            CreateMessage { .. } => "createMessage",
            GetMessage { .. } => "getMessage",
            ModifyMessage { .. } => "modifyMessage",
            DeleteMessage { .. } => "deleteMessage",
            ListRuns { .. } => "listRuns",
            CreateRun { .. } => "createRun",
            GetRun { .. } => "getRun",
            ModifyRun { .. } => "modifyRun",
            CancelRun { .. } => "cancelRun",
            SubmitToolOutputs { .. } => "submitToolOuputsToRun",
            ListRunSteps { .. } => "listRunSteps",
            GetRunStep { .. } => "getRunStep",
            ListFiles => "listFiles",
            CreateFile => "createFile",
            GetFile { .. } => "retrieveFile",
            DeleteFile { .. } => "deleteFile",
            DownloadFile { .. } => "downloadFile",
            ListVectorStores => "listVectorStores",
            CreateVectorStore => "createVectorStore",
            GetVectorStore { .. } => "getVectorStore",
            ModifyVectorStore { .. } => "modifyVectorStore",
            DeleteVectorStore { .. } => "deleteVectorStore",
            SearchVectorStore { .. } => "searchVectorStore",
            ListVectorStoreFiles { .. } => "listVectorStoreFiles",
            CreateVectorStoreFile { .. } => "createVectorStoreFile",
            GetVectorStoreFile { .. } => "getVectorStoreFile",
            UpdateVectorStoreFile { .. } => "updateVectorStoreFileAttributes",
            DeleteVectorStoreFile { .. } => "deleteVectorStoreFile",
            GetVectorStoreFileContent { .. } => "retrieveVectorStoreFileContent",
            CreateVectorStoreFileBatch { .. } => "createVectorStoreFileBatch",
            GetVectorStoreFileBatch { .. } => "getVectorStoreFileBatch",
            CancelVectorStoreFileBatch { .. } => "cancelVectorStoreFileBatch",
            ListVectorStoreFileBatchFiles { .. } => "listFilesInVectorStoreBatch",
            CreateResponse => "createResponse",
            GetResponse { .. } => "getResponse",
            DeleteResponse { .. } => "deleteResponse",
            CancelResponse { .. } => "cancelResponse",
            ListInputItems { .. } => "listInputItems",
            CountInputTokens => "Getinputtokencounts",
            CreateConversation => "createConversation",
            GetConversation { .. } => "getConversation",
            UpdateConversation { .. } => "updateConversation",
            DeleteConversation { .. } => "deleteConversation",
            ListConversationItems { .. } => "listConversationItems",
            CreateConversationItems { .. } => "createConversationItems",
            GetConversationItem { .. } => "getConversationItem",
            DeleteConversationItem { .. } => "deleteConversationItem",
        }
    }
}
