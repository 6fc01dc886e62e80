//! Files: multipart upload (streamed into the store), list, retrieve, download, delete.

use super::pagination::{list_objects, query_value, without_internal_fields, ListQuery, Query};
use super::to_value;
use super::types::one_of;
use super::{ApiRequest, Reply};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::FileId;
use crate::ids::{new_id, Kind};
use crate::model::file::{clean_filename, content_type_for, FileObject, FileRecord, FileStatus};
use crate::model::now;
use crate::store::{self, keys, PutMode, StoreError};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub const PURPOSES: &[&str] = &[
    "assistants",
    "batch",
    "fine-tune",
    "vision",
    "user_data",
    "evals",
];

fn multipart_error(e: multer::Error) -> ApiError {
    ApiError::invalid(
        format!(
            "The multipart body could not be read: {}.",
            crate::error::shown(&e.to_string())
        ),
        None,
    )
}

/// Reads a text part, refusing it as soon as it is longer than `max` bytes: nothing but the
/// file part may be large.
async fn field_text(
    mut field: multer::Field<'_>,
    name: &str,
    max: usize,
) -> Result<String, ApiError> {
    let mut text = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if text.len() + chunk.len() > max {
            return Err(ApiError::invalid_param(
                name,
                format!(
                    "Invalid '{name}': too long. A multipart field other than 'file' may \
                     have at most {max} bytes."
                ),
            ));
        }
        text.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// How many bytes of an upload may be something else than the file's own: the text parts,
/// the part headers and boundaries, and what the parser holds while it looks for the next
/// boundary (a preamble, headers that never end). Sixteen text fields and 1 MiB for the
/// body chunks in flight; beyond, the upload is refused, since the parser would hold them.
fn framing_budget(max_field_bytes: usize) -> u64 {
    16 * max_field_bytes as u64 + (1 << 20)
}

/// `POST /files`: the `file` part streams into the store as it arrives.
pub async fn create(ctx: &Ctx, request: ApiRequest) -> Result<Value, ApiError> {
    let content_type = request
        .header("content-type")
        .unwrap_or_default()
        .to_string();
    let boundary = multer::parse_boundary(&content_type).map_err(|_| {
        ApiError::invalid(
            "Invalid Content-Type header: expected multipart/form-data with a boundary.",
            None,
        )
    })?;
    let Some(upload) = request.upload else {
        return Err(ApiError::invalid("The request has no body.", None));
    };
    // Counts what comes in against the file bytes that went out to the store: the rest is
    // held by the parser or is text, and is bounded (`framing_budget`).
    let file_bytes = Arc::new(AtomicU64::new(0));
    let over_budget = Arc::new(AtomicBool::new(false));
    let budget = framing_budget(ctx.runs.max_field_bytes);
    let body = {
        let (file_bytes, over_budget) = (file_bytes.clone(), over_budget.clone());
        let mut received = 0u64;
        upload.0.map(move |chunk| {
            let chunk = chunk?;
            received += chunk.len() as u64;
            if received.saturating_sub(file_bytes.load(Ordering::Relaxed)) > budget {
                over_budget.store(true, Ordering::Relaxed);
                return Err(std::io::Error::other("too much besides the file"));
            }
            Ok(chunk)
        })
    };
    let multipart_error = |e: multer::Error| {
        if over_budget.load(Ordering::Relaxed) {
            ApiError::invalid(
                format!(
                    "The multipart body could not be read: more than {budget} bytes of it are \
                     not the file's (parts, headers or text before the first boundary)."
                ),
                None,
            )
        } else {
            multipart_error(e)
        }
    };
    // A text part's own error, unless the budget ran out meanwhile.
    let bounded = |e: ApiError| {
        if over_budget.load(Ordering::Relaxed) {
            multipart_error(multer::Error::IncompleteStream)
        } else {
            e
        }
    };
    let max_field = ctx.runs.max_field_bytes;
    let mut multipart = multer::Multipart::new(body, boundary);
    let id = new_id(Kind::File);
    let data_key = keys::file_data(&ctx.tenant, &id);
    let mut purpose: Option<String> = None;
    let mut anchor: Option<String> = None;
    let mut seconds: Option<String> = None;
    let mut stored: Option<(String, String, u64)> = None;
    let limit = ctx.runs.max_file_bytes;
    let outcome: Result<(), ApiError> = async {
        while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
            match field.name().unwrap_or_default() {
                "file" => {
                    if stored.is_some() {
                        return Err(ApiError::invalid_param(
                            "file",
                            "Only one 'file' part is accepted.",
                        ));
                    }
                    let filename = clean_filename(field.file_name().unwrap_or("file"));
                    let declared = field.content_type().map(|m| m.essence_str().to_string());
                    let too_large = Arc::new(AtomicBool::new(false));
                    let flag = too_large.clone();
                    let counted = file_bytes.clone();
                    let mut seen = 0u64;
                    let chunks = field
                        .map(move |chunk| {
                            let chunk =
                                chunk.map_err(|e| StoreError::Other(format!("upload: {e}")))?;
                            seen += chunk.len() as u64;
                            counted.store(seen, Ordering::Relaxed);
                            if seen > limit {
                                flag.store(true, Ordering::Relaxed);
                                return Err(StoreError::Other("upload too large".into()));
                            }
                            Ok::<Bytes, StoreError>(chunk)
                        })
                        .boxed();
                    match ctx.store.put_stream(&data_key, chunks).await {
                        Ok(size) => {
                            stored = Some((
                                filename.clone(),
                                content_type_for(&filename, declared.as_deref()),
                                size,
                            ))
                        }
                        Err(_) if too_large.load(Ordering::Relaxed) => {
                            return Err(ApiError::PayloadTooLarge {
                                limit: limit as usize,
                            })
                        }
                        Err(_) if over_budget.load(Ordering::Relaxed) => {
                            return Err(multipart_error(multer::Error::IncompleteStream))
                        }
                        Err(StoreError::Other(m)) if m.starts_with("upload:") => {
                            return Err(ApiError::invalid(
                                "The upload could not be read completely.",
                                None,
                            ))
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                "purpose" => {
                    purpose = Some(
                        field_text(field, "purpose", max_field)
                            .await
                            .map_err(bounded)?,
                    )
                }
                "expires_after[anchor]" => {
                    anchor = Some(
                        field_text(field, "expires_after[anchor]", max_field)
                            .await
                            .map_err(bounded)?,
                    )
                }
                "expires_after[seconds]" => {
                    seconds = Some(
                        field_text(field, "expires_after[seconds]", max_field)
                            .await
                            .map_err(bounded)?,
                    )
                }
                // The object as one JSON part (how OpenAPI encodes objects in multipart).
                "expires_after" => {
                    let text = field_text(field, "expires_after", max_field)
                        .await
                        .map_err(bounded)?;
                    let value: Value = serde_json::from_str(&text).map_err(|_| {
                        ApiError::invalid_param(
                            "expires_after",
                            "Invalid 'expires_after': expected a JSON object.",
                        )
                    })?;
                    if let Some(extra) = value.as_object().and_then(|o| {
                        o.keys()
                            .find(|k| *k != "anchor" && *k != "seconds")
                            .cloned()
                    }) {
                        return Err(ApiError::invalid(
                            format!(
                                "Unrecognized request argument supplied: expires_after.{}",
                                crate::error::shown(&extra)
                            ),
                            None,
                        ));
                    }
                    anchor = Some(value["anchor"].as_str().map(str::to_string).ok_or_else(
                        || {
                            ApiError::invalid_param(
                                "expires_after.anchor",
                                "Missing required parameter: 'expires_after.anchor'.",
                            )
                        },
                    )?);
                    seconds = value["seconds"].as_i64().map(|n| n.to_string());
                    if seconds.is_none() {
                        return Err(ApiError::invalid_param(
                            "expires_after.seconds",
                            "Missing required parameter: 'expires_after.seconds'.",
                        ));
                    }
                }
                other => {
                    return Err(ApiError::invalid(
                        format!(
                            "Unrecognized request argument supplied: {}",
                            crate::error::shown(other)
                        ),
                        None,
                    ))
                }
            }
        }
        Ok(())
    }
    .await;
    let result = async {
        outcome?;
        let purpose = purpose.ok_or_else(|| ApiError::invalid_param("purpose", "Missing required parameter: 'purpose'."))?;
        one_of("purpose", purpose.trim(), PURPOSES)?;
        let expires_at = match (anchor.as_deref(), seconds.as_deref()) {
            (None, None) => None,
            (anchor, Some(secs)) => {
                one_of("expires_after.anchor", anchor.unwrap_or("created_at"), &["created_at"])?;
                let secs: i64 = secs.trim().parse().ok().filter(|s| (3600..=2_592_000).contains(s)).ok_or_else(|| {
                    ApiError::invalid_param(
                        "expires_after.seconds",
                        "Invalid 'expires_after.seconds': expected an integer between 3600 and 2592000.",
                    )
                })?;
                Some(now() + secs)
            }
            (Some(_), None) => {
                return Err(ApiError::invalid_param(
                    "expires_after.seconds",
                    "Missing required parameter: 'expires_after.seconds'.",
                ))
            }
        };
        let (filename, content_type, size) = stored
            .clone()
            .ok_or_else(|| ApiError::invalid_param("file", "Missing required parameter: 'file'."))?;
        let record = FileRecord {
            file: FileObject {
                id: id.clone(),
                object: "file".into(),
                bytes: size,
                created_at: now(),
                expires_at,
                filename,
                purpose: purpose.trim().to_string(),
                status: FileStatus::Processed,
                status_details: None,
            },
            content_type,
        };
        store::put_json(ctx.store.as_ref(), &keys::file(&ctx.tenant, &id), &record, PutMode::Create).await?;
        to_value(&record.file)
    }
    .await;
    if result.is_err() && stored.is_some() {
        // Nothing is kept of a refused upload.
        let _ = ctx.store.delete(&data_key).await;
    }
    result
}

/// Reads a file of this tenant (expired files are gone), or the 404.
pub async fn load(ctx: &Ctx, file_id: &FileId) -> Result<FileRecord, ApiError> {
    crate::model::file::load(ctx.store.as_ref(), &ctx.tenant, file_id)
        .await?
        .ok_or_else(|| ApiError::not_found(Kind::File, file_id))
}

pub async fn get(ctx: &Ctx, file_id: &FileId) -> Result<Value, ApiError> {
    to_value(&load(ctx, file_id).await?.file)
}

/// `GET /files/{id}/content`: the bytes stream from the store to the client, a chunk at a
/// time, so a download holds a few hundred kB whatever the file's size.
pub async fn content(ctx: &Ctx, file_id: &FileId) -> Result<Reply, ApiError> {
    let record = load(ctx, file_id).await?;
    let Some((size, chunks)) = ctx
        .store
        .get_stream(&keys::file_data(&ctx.tenant, file_id))
        .await?
    else {
        return Err(ApiError::not_found(Kind::File, file_id));
    };
    let body = chunks
        .map(|chunk| {
            chunk.map_err(|e| {
                // The status is sent already: the download breaks off (the client sees a
                // short body); the cause is for the log only.
                log::warn!("a download broke off: {e}");
                std::io::Error::other("storage")
            })
        })
        .boxed();
    Ok(Reply::Stream {
        status: 200,
        content_type: record.content_type,
        length: Some(size),
        body: super::BodyStream(body),
        headers: vec![(
            "content-disposition".into(),
            format!(
                "attachment; filename=\"{}\"",
                record.file.filename.replace('"', "")
            ),
        )],
    })
}

pub async fn delete(ctx: &Ctx, file_id: &FileId) -> Result<Value, ApiError> {
    if !ctx.store.delete(&keys::file(&ctx.tenant, file_id)).await? {
        return Err(ApiError::not_found(Kind::File, file_id));
    }
    ctx.store
        .delete(&keys::file_data(&ctx.tenant, file_id))
        .await?;
    Ok(json!({"id": file_id, "object": "file", "deleted": true}))
}

pub async fn list(ctx: &Ctx, query: &Query) -> Result<Value, ApiError> {
    if query_value(query, "before").is_some() {
        return Err(ApiError::invalid(
            "Unrecognized request argument supplied: before",
            None,
        ));
    }
    let q = ListQuery::parse(query, 10_000, 10_000)?;
    // A filter string: empty means none, and an unknown purpose simply matches nothing.
    let purpose = query_value(query, "purpose")
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let at = now();
    let page = list_objects(
        &ctx.store,
        &keys::files(&ctx.tenant),
        &q,
        |f: &FileRecord| &f.file.id,
        Some(|f: &FileRecord| {
            f.file.expires_at.is_none_or(|t| t > at)
                && purpose.as_deref().is_none_or(|p| f.file.purpose == p)
        }),
    )
    .await?;
    Ok(without_internal_fields(page))
}
