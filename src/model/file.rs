//! The file record: the file object plus the content type its bytes are served with.

use super::now;
use crate::ids::{self, Kind};
use crate::store::{self, keys, PutMode, Store, StoreError};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The purpose of the files the service makes itself (`code_interpreter` figures and
/// written files); never accepted in an upload.
pub const OUTPUT_PURPOSE: &str = "assistants_output";

/// Every purpose a file object can show: an upload's, or `OUTPUT_PURPOSE`.
pub const OBJECT_PURPOSES: &[&str] = &[
    "assistants",
    "assistants_output",
    "batch",
    "fine-tune",
    "vision",
    "user_data",
    "evals",
];

/// The file object (`OpenAIFile`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileObject {
    pub id: String,
    #[schema(schema_with = super::schemas::file_object)]
    pub object: String,
    /// The file's size.
    pub bytes: u64,
    pub created_at: i64,
    /// When the file expires (Unix seconds); left out when it does not (optional and not
    /// nullable in the spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = i64)]
    pub expires_at: Option<i64>,
    pub filename: String,
    #[schema(value_type = super::schemas::FileObjectPurpose)]
    pub purpose: String,
    #[schema(value_type = super::schemas::FileStatus)]
    pub status: FileStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub status_details: Option<String>,
}

/// A file's processing status, stored and answered as today's strings (`"processed"`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Uploaded,
    Processed,
    Error,
}

impl FileStatus {
    pub const ALL: [FileStatus; 3] = [
        FileStatus::Uploaded,
        FileStatus::Processed,
        FileStatus::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Uploaded => "uploaded",
            FileStatus::Processed => "processed",
            FileStatus::Error => "error",
        }
    }

    /// Whether a file in this status may move to `next`: none may. This service stores
    /// every file (an upload or an output) `processed` at once, and the documented
    /// `uploaded -> processed | error` processing is not something it does; a status is
    /// written once.
    pub fn can_become(self, _next: FileStatus) -> bool {
        false
    }
}

impl std::fmt::Display for FileStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The file as stored: the object plus the content type its bytes are served with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRecord {
    #[serde(flatten)]
    pub file: FileObject,
    #[serde(rename = "_content_type", default)]
    pub content_type: String,
}

/// A filename as given, without any path (clients send `C:\\x\\a.txt` or `../a.txt`).
pub fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "file".into()
    } else {
        cleaned
    }
}

pub fn content_type_for(filename: &str, declared: Option<&str>) -> String {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    let by_extension = match ext.as_deref() {
        Some("txt") => Some("text/plain"),
        Some("md") => Some("text/markdown"),
        Some("json") => Some("application/json"),
        Some("html" | "htm") => Some("text/html"),
        Some("csv") => Some("text/csv"),
        Some("pdf") => Some("application/pdf"),
        Some("docx") => {
            Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document")
        }
        Some("png") => Some("image/png"),
        Some("jpg" | "jpeg") => Some("image/jpeg"),
        Some("gif") => Some("image/gif"),
        Some("webp") => Some("image/webp"),
        _ => None,
    };
    match declared.filter(|d| !d.is_empty() && *d != "application/octet-stream") {
        Some(d) => d.to_string(),
        None => by_extension
            .unwrap_or("application/octet-stream")
            .to_string(),
    }
}

/// Reads a file of this tenant: `None` when there is none, it expired, or the id can name
/// none (expired files are gone, whether or not the sweep has deleted them yet).
pub async fn load(
    store: &dyn Store,
    tenant: &str,
    id: &str,
) -> Result<Option<FileRecord>, StoreError> {
    if !ids::is_valid(Kind::File, id) {
        return Ok(None);
    }
    Ok(
        match store::get_json::<FileRecord>(store, &keys::file(tenant, id)).await? {
            Some((f, _)) if f.file.expires_at.is_none_or(|t| t > now()) => Some(f),
            _ => None,
        },
    )
}

/// The stored bytes of a file of this tenant (none when they are gone).
pub async fn read_content(
    store: &dyn Store,
    tenant: &str,
    id: &str,
) -> Result<Option<Bytes>, StoreError> {
    Ok(store
        .get(&keys::file_data(tenant, id))
        .await?
        .map(|(bytes, _)| bytes))
}

/// Stores a file the service made (a `code_interpreter` output: purpose `assistants_output`)
/// under an id the caller chose; a repeated turn overwrites the same id. Returns the keys
/// written (data first), so that a turn a cancel takes back can delete them.
pub async fn put_output(
    store: &dyn Store,
    tenant: &str,
    id: &str,
    filename: &str,
    content: Bytes,
) -> Result<[String; 2], StoreError> {
    let filename = clean_filename(filename);
    let record = FileRecord {
        file: FileObject {
            id: id.to_string(),
            object: "file".into(),
            bytes: content.len() as u64,
            created_at: now(),
            expires_at: None,
            purpose: OUTPUT_PURPOSE.into(),
            status: FileStatus::Processed,
            status_details: None,
            filename: filename.clone(),
        },
        content_type: content_type_for(&filename, None),
    };
    let data_key = keys::file_data(tenant, id);
    store.put(&data_key, content, PutMode::Overwrite).await?;
    let key = keys::file(tenant, id);
    store::put_json(store, &key, &record, PutMode::Overwrite).await?;
    Ok([data_key, key])
}

#[cfg(test)]
mod tests {
    use super::FileStatus;

    #[test]
    fn a_file_status_never_moves() {
        for from in FileStatus::ALL {
            for to in FileStatus::ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn statuses_are_stored_as_the_strings_they_always_were() {
        for (status, s) in FileStatus::ALL
            .into_iter()
            .zip(["uploaded", "processed", "error"])
        {
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(serde_json::json!(s))
            );
            assert_eq!(status.as_str(), s);
            let back: Option<FileStatus> = serde_json::from_value(serde_json::json!(s)).ok();
            assert_eq!(back, Some(status));
        }
        assert!(serde_json::from_value::<FileStatus>(serde_json::json!("deleted")).is_err());
    }
}
