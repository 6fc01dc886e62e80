//! List pages, deleted objects and the query parameters of lists.

use super::*;

/// A page of a list, as every list endpoint answers.
macro_rules! list_page {
    ($name:ident, $item:ty, $what:literal) => {
        #[doc = concat!("A page of ", $what, " (`limit`, `order`, `after`, `before`).")]
        #[derive(ToSchema)]
        pub struct $name {
            #[schema(schema_with = list_object)]
            object: String,
            data: Vec<$item>,
            /// The id of the first object of the page (null when the page is empty).
            #[schema(required)]
            first_id: Option<String>,
            /// The id of the last object; pass it as `after` for the next page.
            #[schema(required)]
            last_id: Option<String>,
            /// Whether more objects follow in this order.
            has_more: bool,
        }
    };
}

list_page!(
    AssistantList,
    crate::model::assistant::Assistant,
    "assistants"
);
list_page!(MessageList, crate::model::message::Message, "messages");
list_page!(RunList, crate::model::run::Run, "runs");
list_page!(RunStepList, crate::model::step::RunStep, "run steps");
list_page!(FileList, crate::model::file::FileObject, "files");
list_page!(
    VectorStoreList,
    crate::model::vector_store::VectorStore,
    "vector stores"
);
list_page!(
    VectorStoreFileList,
    crate::model::vector_store::VectorStoreFile,
    "vector store files"
);

/// The answer of a delete.
macro_rules! deleted {
    ($name:ident, $object:literal) => {
        #[doc = concat!("The answer of a delete (`object`: `", $object, "`).")]
        #[derive(ToSchema)]
        pub struct $name {
            id: String,
            #[schema(schema_with = $name::object)]
            object: String,
            deleted: bool,
        }
        impl $name {
            fn object() -> Object {
                constant($object)
            }
        }
    };
}

deleted!(AssistantDeleted, "assistant.deleted");
deleted!(ThreadDeleted, "thread.deleted");
deleted!(MessageDeleted, "thread.message.deleted");
deleted!(FileDeleted, "file");
deleted!(VectorStoreDeleted, "vector_store.deleted");
deleted!(VectorStoreFileDeleted, "vector_store.file.deleted");

// ---- Query parameters ----

/// Paging of every list but files.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many objects to return.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<i64>,
    /// Sort by `created_at`; `desc` by default.
    #[param(value_type = Option<ListOrder>, inline)]
    order: Option<String>,
    /// A cursor: the object id after which the page starts (`last_id` of the previous page).
    after: Option<String>,
    /// A cursor: the object id before which the page ends (`first_id` of the next page).
    before: Option<String>,
}

/// Paging of the file list (no `before`; a larger `limit`) and its `purpose` filter.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileListParams {
    /// Only files with this purpose (any string; one that is no purpose matches nothing).
    purpose: Option<String>,
    /// How many files to return.
    #[param(minimum = 1, maximum = 10000, default = 10000)]
    limit: Option<i64>,
    /// Sort by `created_at`; `desc` by default.
    #[param(value_type = Option<ListOrder>, inline)]
    order: Option<String>,
    /// A cursor: the file id after which the page starts.
    after: Option<String>,
}

/// The `run_id` filter of the message list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageListParams {
    /// Only the messages this run wrote.
    run_id: Option<String>,
}

/// The `filter` of vector store file lists.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VectorStoreFileListParams {
    /// Only files with this status.
    #[param(value_type = Option<VectorStoreFileStatus>, inline)]
    filter: Option<String>,
}

/// Step fields to add (`include[]=...`), on run creation and step reads.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncludeParams {
    /// Additional fields to include in the run steps.
    #[param(rename = "include[]", value_type = Option<Vec<RunStepInclude>>, inline)]
    include: Option<Vec<String>>,
}
