//! The OpenAPI 3.1 document of the API (`GET /openapi.json`), generated at start-up from the
//! types the operations parse and answer (`utoipa` derives on `api::*`, schema-only shapes in
//! `api::schemas`) and the operations in `paths`. The tests below tie the operations to the
//! router's table both ways, so a route without documentation (or documentation without a
//! route) fails the build's tests.

mod paths;
mod responses;

use crate::api::schemas::ErrorResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

/// The error answers, shared by the operations as `#/components/responses/...`.
macro_rules! error_responses {
    ($($name:ident ($status:literal) = $description:literal;)*) => {
        $(
            #[doc = $description]
            pub struct $name;
            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), error_response($description).into())
                }
            }
        )*
        /// Every error answer: status, component name.
        const ERROR_RESPONSES: &[(&str, &str)] = &[$(($status, stringify!($name))),*];
    };
}

error_responses! {
    BadRequest ("400") = "A value the API does not accept (`param` names the field), a body that \
        is not a JSON object, an unknown field, an `OpenAI-Beta` header other than \
        `assistants=v2`, or a request the object's state does not allow (a second active run, a \
        message while a run is active, cancelling a finished run).";
    Unauthorized ("401") = "No API key, or a wrong one (only when the server has keys \
        configured: `ASSISTANTS_API_KEYS`).";
    NotFound ("404") = "No such object for this key's tenant (`No assistant found with id \
        'asst_...'.`).";
    PayloadTooLarge ("413") = "The body is larger than `MAX_REQUEST_BYTES` (uploads: \
        `FILE_MAX_BYTES`).";
    InternalError ("500") = "A server fault; the cause is logged, never sent.";
    BadGateway ("502") = "Proxy mode (`BACKEND=proxy`): the upstream server could not be reached.";
    ServiceUnavailable ("503") = "Storage (or the embeddings endpoint) is unreachable; retry \
        after `Retry-After` seconds.";
    GatewayTimeout ("504") = "Proxy mode (`BACKEND=proxy`): the upstream server did not answer \
        in time.";
}

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name(ErrorResponse::name()))),
    )
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Assistants API (v2), self-hosted",
        description = "The OpenAI Assistants API (v2) served by this service: assistants, threads, \
            messages, runs and run steps (streamed or queued), files and vector stores; and the \
            Responses and Conversations APIs over the same threads, files and stores. Point an \
            OpenAI SDK's `base_url` at the server URL (`.../v1`). Send the key as \
            `Authorization: Bearer <key>` (any key when the server runs without \
            `ASSISTANTS_API_KEYS`, loopback only). Errors have OpenAI's shape, \
            `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    servers((url = "/v1", description = "This server")),
    paths(
        paths::list_assistants, paths::create_assistant, paths::get_assistant,
        paths::modify_assistant, paths::delete_assistant,
        paths::create_thread, paths::get_thread, paths::modify_thread, paths::delete_thread,
        paths::create_thread_and_run,
        paths::list_messages, paths::create_message, paths::get_message, paths::modify_message,
        paths::delete_message,
        paths::list_runs, paths::create_run, paths::get_run, paths::modify_run, paths::cancel_run,
        paths::submit_tool_outputs, paths::list_run_steps, paths::get_run_step,
        paths::list_files, paths::create_file, paths::retrieve_file, paths::delete_file,
        paths::download_file,
        paths::list_vector_stores, paths::create_vector_store, paths::get_vector_store,
        paths::modify_vector_store, paths::delete_vector_store, paths::search_vector_store,
        paths::list_vector_store_files, paths::create_vector_store_file,
        paths::get_vector_store_file, paths::update_vector_store_file_attributes,
        paths::delete_vector_store_file, paths::retrieve_vector_store_file_content,
        paths::create_vector_store_file_batch, paths::get_vector_store_file_batch,
        paths::cancel_vector_store_file_batch, paths::list_files_in_vector_store_batch,
        paths::create_conversation, paths::get_conversation, paths::update_conversation,
        paths::delete_conversation, paths::list_conversation_items,
        paths::create_conversation_items, paths::get_conversation_item,
        paths::delete_conversation_item,
    ),
    components(
        schemas(ErrorResponse),
        responses(BadRequest, Unauthorized, NotFound, PayloadTooLarge, InternalError, BadGateway,
            ServiceUnavailable, GatewayTimeout),
    ),
    modifiers(&CommonResponses),
    security(("bearer" = [])),
    tags(
        (name = "Assistants", description = "Models with instructions and tools."),
        (name = "Threads", description = "Conversations: messages, and the runs on them."),
        (name = "Messages", description = "The messages of a thread."),
        (name = "Runs", description = "An assistant answering on a thread, and its steps."),
        (name = "Files", description = "Uploaded files."),
        (name = "Vector stores", description = "Files chunked and embedded for `file_search` and search."),
        (name = "Conversations", description = "Items of a conversation (a thread, seen as items)."),
    ),
)]
pub struct ApiDoc;

/// What every operation can answer besides its own results, and the bearer scheme.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            "bearer".into(),
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A key of `ASSISTANTS_API_KEYS` (`Authorization: Bearer <key>`). Each \
                         key sees its own tenant's objects only.",
                    ))
                    .build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.delete,
                &mut item.put,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_errors(operation);
            }
        }
    }
}

fn add_errors(operation: &mut Operation) {
    let has_body = operation.request_body.is_some();
    for (status, name) in ERROR_RESPONSES {
        let applies = match *status {
            // Only operations that name objects can miss them; `paths` says which.
            "404" => false,
            "413" => has_body,
            _ => true,
        };
        if applies {
            operation
                .responses
                .responses
                .entry(status.to_string())
                .or_insert_with(|| Ref::from_response_name(*name).into());
        }
    }
}

/// The document as JSON, made once: the generated Assistants operations, then the Responses
/// and Conversations ones (`responses`).
pub fn document() -> &'static serde_json::Value {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        responses::add(&mut doc);
        doc
    })
}

#[cfg(test)]
mod tests;
