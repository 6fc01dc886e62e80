//! The routing table: method and path segments (after `/v1`) to an `Operation`.
//! One line per route; a known path with another method is a 405, anything else a 404.

use crate::api::Operation;
use crate::api::Operation::*;

#[derive(Debug, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    /// The path exists; these methods are allowed on it.
    MethodNotAllowed(Vec<&'static str>),
}

fn pick(method: &str, options: Vec<(&'static str, Operation)>) -> Result<Operation, RouteError> {
    let allowed: Vec<&'static str> = options.iter().map(|(m, _)| *m).collect();
    options
        .into_iter()
        .find(|(m, _)| *m == method)
        .map(|(_, op)| op)
        .ok_or(RouteError::MethodNotAllowed(allowed))
}

/// Routes `segments` (the path after `/v1`, split on `/`, without empty segments).
pub fn route(method: &str, segments: &[&str]) -> Result<Operation, RouteError> {
    let s = |i: usize| segments[i].to_string();
    match segments {
        ["assistants"] => pick(
            method,
            vec![("GET", ListAssistants), ("POST", CreateAssistant)],
        ),
        ["assistants", _] => pick(
            method,
            vec![
                ("GET", GetAssistant { assistant_id: s(1) }),
                ("POST", ModifyAssistant { assistant_id: s(1) }),
                ("DELETE", DeleteAssistant { assistant_id: s(1) }),
            ],
        ),
        ["threads"] => pick(method, vec![("POST", CreateThread)]),
        ["threads", "runs"] => pick(method, vec![("POST", CreateThreadAndRun)]),
        ["threads", _] => pick(
            method,
            vec![
                ("GET", GetThread { thread_id: s(1) }),
                ("POST", ModifyThread { thread_id: s(1) }),
                ("DELETE", DeleteThread { thread_id: s(1) }),
            ],
        ),
        ["threads", _, "messages"] => pick(
            method,
            vec![
                ("GET", ListMessages { thread_id: s(1) }),
                ("POST", CreateMessage { thread_id: s(1) }),
            ],
        ),
        ["threads", _, "messages", _] => pick(
            method,
            vec![
                (
                    "GET",
                    GetMessage {
                        thread_id: s(1),
                        message_id: s(3),
                    },
                ),
                (
                    "POST",
                    ModifyMessage {
                        thread_id: s(1),
                        message_id: s(3),
                    },
                ),
                (
                    "DELETE",
                    DeleteMessage {
                        thread_id: s(1),
                        message_id: s(3),
                    },
                ),
            ],
        ),
        ["threads", _, "runs"] => pick(
            method,
            vec![
                ("GET", ListRuns { thread_id: s(1) }),
                ("POST", CreateRun { thread_id: s(1) }),
            ],
        ),
        ["threads", _, "runs", _] => pick(
            method,
            vec![
                (
                    "GET",
                    GetRun {
                        thread_id: s(1),
                        run_id: s(3),
                    },
                ),
                (
                    "POST",
                    ModifyRun {
                        thread_id: s(1),
                        run_id: s(3),
                    },
                ),
            ],
        ),
        ["threads", _, "runs", _, "cancel"] => pick(
            method,
            vec![(
                "POST",
                CancelRun {
                    thread_id: s(1),
                    run_id: s(3),
                },
            )],
        ),
        ["threads", _, "runs", _, "submit_tool_outputs"] => pick(
            method,
            vec![(
                "POST",
                SubmitToolOutputs {
                    thread_id: s(1),
                    run_id: s(3),
                },
            )],
        ),
        ["threads", _, "runs", _, "steps"] => pick(
            method,
            vec![(
                "GET",
                ListRunSteps {
                    thread_id: s(1),
                    run_id: s(3),
                },
            )],
        ),
        ["threads", _, "runs", _, "steps", _] => pick(
            method,
            vec![(
                "GET",
                GetRunStep {
                    thread_id: s(1),
                    run_id: s(3),
                    step_id: s(5),
                },
            )],
        ),
        ["files"] => pick(method, vec![("GET", ListFiles), ("POST", CreateFile)]),
        ["files", _] => pick(
            method,
            vec![
                ("GET", GetFile { file_id: s(1) }),
                ("DELETE", DeleteFile { file_id: s(1) }),
            ],
        ),
        ["files", _, "content"] => pick(method, vec![("GET", DownloadFile { file_id: s(1) })]),
        ["vector_stores"] => pick(
            method,
            vec![("GET", ListVectorStores), ("POST", CreateVectorStore)],
        ),
        ["vector_stores", _] => pick(
            method,
            vec![
                (
                    "GET",
                    GetVectorStore {
                        vector_store_id: s(1),
                    },
                ),
                (
                    "POST",
                    ModifyVectorStore {
                        vector_store_id: s(1),
                    },
                ),
                (
                    "DELETE",
                    DeleteVectorStore {
                        vector_store_id: s(1),
                    },
                ),
            ],
        ),
        ["vector_stores", _, "search"] => pick(
            method,
            vec![(
                "POST",
                SearchVectorStore {
                    vector_store_id: s(1),
                },
            )],
        ),
        ["vector_stores", _, "files"] => pick(
            method,
            vec![
                (
                    "GET",
                    ListVectorStoreFiles {
                        vector_store_id: s(1),
                    },
                ),
                (
                    "POST",
                    CreateVectorStoreFile {
                        vector_store_id: s(1),
                    },
                ),
            ],
        ),
        ["vector_stores", _, "files", _] => pick(
            method,
            vec![
                (
                    "GET",
                    GetVectorStoreFile {
                        vector_store_id: s(1),
                        file_id: s(3),
                    },
                ),
                (
                    "POST",
                    UpdateVectorStoreFile {
                        vector_store_id: s(1),
                        file_id: s(3),
                    },
                ),
                (
                    "DELETE",
                    DeleteVectorStoreFile {
                        vector_store_id: s(1),
                        file_id: s(3),
                    },
                ),
            ],
        ),
        ["vector_stores", _, "files", _, "content"] => pick(
            method,
            vec![(
                "GET",
                GetVectorStoreFileContent {
                    vector_store_id: s(1),
                    file_id: s(3),
                },
            )],
        ),
        ["vector_stores", _, "file_batches"] => pick(
            method,
            vec![(
                "POST",
                CreateVectorStoreFileBatch {
                    vector_store_id: s(1),
                },
            )],
        ),
        ["vector_stores", _, "file_batches", _] => pick(
            method,
            vec![(
                "GET",
                GetVectorStoreFileBatch {
                    vector_store_id: s(1),
                    batch_id: s(3),
                },
            )],
        ),
        ["vector_stores", _, "file_batches", _, "cancel"] => pick(
            method,
            vec![(
                "POST",
                CancelVectorStoreFileBatch {
                    vector_store_id: s(1),
                    batch_id: s(3),
                },
            )],
        ),
        ["vector_stores", _, "file_batches", _, "files"] => pick(
            method,
            vec![(
                "GET",
                ListVectorStoreFileBatchFiles {
                    vector_store_id: s(1),
                    batch_id: s(3),
                },
            )],
        ),
        ["responses"] => pick(method, vec![("POST", CreateResponse)]),
        ["responses", "input_tokens"] => pick(method, vec![("POST", CountInputTokens)]),
        ["responses", _] => pick(
            method,
            vec![
                ("GET", GetResponse { response_id: s(1) }),
                ("DELETE", DeleteResponse { response_id: s(1) }),
            ],
        ),
        ["responses", _, "cancel"] => {
            pick(method, vec![("POST", CancelResponse { response_id: s(1) })])
        }
        ["responses", _, "input_items"] => {
            pick(method, vec![("GET", ListInputItems { response_id: s(1) })])
        }
        ["conversations"] => pick(method, vec![("POST", CreateConversation)]),
        ["conversations", _] => pick(
            method,
            vec![
                (
                    "GET",
                    GetConversation {
                        conversation_id: s(1),
                    },
                ),
                (
                    "POST",
                    UpdateConversation {
                        conversation_id: s(1),
                    },
                ),
                (
                    "DELETE",
                    DeleteConversation {
                        conversation_id: s(1),
                    },
                ),
            ],
        ),
        ["conversations", _, "items"] => pick(
            method,
            vec![
                (
                    "GET",
                    ListConversationItems {
                        conversation_id: s(1),
                    },
                ),
                (
                    "POST",
                    CreateConversationItems {
                        conversation_id: s(1),
                    },
                ),
            ],
        ),
        ["conversations", _, "items", _] => pick(
            method,
            vec![
                (
                    "GET",
                    GetConversationItem {
                        conversation_id: s(1),
                        item_id: s(3),
                    },
                ),
                (
                    "DELETE",
                    DeleteConversationItem {
                        conversation_id: s(1),
                        item_id: s(3),
                    },
                ),
            ],
        ),
        _ => Err(RouteError::NotFound),
    }
}

/// Every operation of the API, one line each: METHOD, a path (after `/v1`, with sample ids),
/// operationId. The routing tests and the Functions route-template test read it.
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/assistants", "listAssistants"),
    ("POST", "/assistants", "createAssistant"),
    ("GET", "/assistants/a", "getAssistant"),
    ("POST", "/assistants/a", "modifyAssistant"),
    ("DELETE", "/assistants/a", "deleteAssistant"),
    ("POST", "/threads", "createThread"),
    ("GET", "/threads/t", "getThread"),
    ("POST", "/threads/t", "modifyThread"),
    ("DELETE", "/threads/t", "deleteThread"),
    ("POST", "/threads/runs", "createThreadAndRun"),
    ("GET", "/threads/t/messages", "listMessages"),
    ("POST", "/threads/t/messages", "createMessage"),
    ("GET", "/threads/t/messages/m", "getMessage"),
    ("POST", "/threads/t/messages/m", "modifyMessage"),
    ("DELETE", "/threads/t/messages/m", "deleteMessage"),
    ("GET", "/threads/t/runs", "listRuns"),
    ("POST", "/threads/t/runs", "createRun"),
    ("GET", "/threads/t/runs/r", "getRun"),
    ("POST", "/threads/t/runs/r", "modifyRun"),
    ("POST", "/threads/t/runs/r/cancel", "cancelRun"),
    (
        "POST",
        "/threads/t/runs/r/submit_tool_outputs",
        "submitToolOuputsToRun",
    ),
    ("GET", "/threads/t/runs/r/steps", "listRunSteps"),
    ("GET", "/threads/t/runs/r/steps/s", "getRunStep"),
    ("GET", "/files", "listFiles"),
    ("POST", "/files", "createFile"),
    ("GET", "/files/f", "retrieveFile"),
    ("DELETE", "/files/f", "deleteFile"),
    ("GET", "/files/f/content", "downloadFile"),
    ("GET", "/vector_stores", "listVectorStores"),
    ("POST", "/vector_stores", "createVectorStore"),
    ("GET", "/vector_stores/v", "getVectorStore"),
    ("POST", "/vector_stores/v", "modifyVectorStore"),
    ("DELETE", "/vector_stores/v", "deleteVectorStore"),
    ("POST", "/vector_stores/v/search", "searchVectorStore"),
    ("GET", "/vector_stores/v/files", "listVectorStoreFiles"),
    ("POST", "/vector_stores/v/files", "createVectorStoreFile"),
    ("GET", "/vector_stores/v/files/f", "getVectorStoreFile"),
    (
        "POST",
        "/vector_stores/v/files/f",
        "updateVectorStoreFileAttributes",
    ),
    (
        "DELETE",
        "/vector_stores/v/files/f",
        "deleteVectorStoreFile",
    ),
    (
        "GET",
        "/vector_stores/v/files/f/content",
        "retrieveVectorStoreFileContent",
    ),
    (
        "POST",
        "/vector_stores/v/file_batches",
        "createVectorStoreFileBatch",
    ),
    (
        "GET",
        "/vector_stores/v/file_batches/b",
        "getVectorStoreFileBatch",
    ),
    (
        "POST",
        "/vector_stores/v/file_batches/b/cancel",
        "cancelVectorStoreFileBatch",
    ),
    (
        "GET",
        "/vector_stores/v/file_batches/b/files",
        "listFilesInVectorStoreBatch",
    ),
    ("POST", "/responses", "createResponse"),
    ("POST", "/responses/input_tokens", "Getinputtokencounts"),
    ("GET", "/responses/p", "getResponse"),
    ("DELETE", "/responses/p", "deleteResponse"),
    ("POST", "/responses/p/cancel", "cancelResponse"),
    ("GET", "/responses/p/input_items", "listInputItems"),
    ("POST", "/conversations", "createConversation"),
    ("GET", "/conversations/c", "getConversation"),
    ("POST", "/conversations/c", "updateConversation"),
    ("DELETE", "/conversations/c", "deleteConversation"),
    ("GET", "/conversations/c/items", "listConversationItems"),
    ("POST", "/conversations/c/items", "createConversationItems"),
    ("GET", "/conversations/c/items/i", "getConversationItem"),
    (
        "DELETE",
        "/conversations/c/items/i",
        "deleteConversationItem",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: &str, path: &str) -> Result<Operation, RouteError> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        route(method, &segments)
    }

    /// Every operation of the two specs (44 Assistants, 14 Responses and Conversations)
    /// routes to its operationId.
    #[test]
    fn every_spec_operation_routes() {
        let table = ROUTES;
        assert_eq!(table.len(), 58);
        for &(method, path, name) in table {
            let op = r(method, path).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
            assert_eq!(op.name(), name, "{method} {path}");
        }
    }

    #[test]
    fn path_ids_land_in_the_operation() {
        assert_eq!(
            r("GET", "/threads/t1/runs/r1/steps/s1").unwrap(),
            GetRunStep {
                thread_id: "t1".into(),
                run_id: "r1".into(),
                step_id: "s1".into()
            }
        );
    }

    #[test]
    fn wrong_methods_and_unknown_paths() {
        assert_eq!(
            r("PUT", "/assistants"),
            Err(RouteError::MethodNotAllowed(vec!["GET", "POST"]))
        );
        assert_eq!(
            r("GET", "/threads"),
            Err(RouteError::MethodNotAllowed(vec!["POST"]))
        );
        assert_eq!(r("GET", "/nope"), Err(RouteError::NotFound));
        assert_eq!(
            r("GET", "/threads/t/messages/m/extra"),
            Err(RouteError::NotFound)
        );
    }
}
