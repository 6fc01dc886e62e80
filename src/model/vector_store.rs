//! The records of vector stores: the store (with its file counts and search version), a file
//! in a store, a file batch.

use super::now;
use super::values::Metadata;
use crate::ids::{self, Kind};
use crate::store::{self, keys, Store, StoreError, Update};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use utoipa::ToSchema;

/// Files by ingestion status.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct FileCounts {
    pub in_progress: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub total: u64,
}

impl FileCounts {
    fn slot(&mut self, status: VectorStoreFileStatus) -> &mut u64 {
        match status {
            VectorStoreFileStatus::InProgress => &mut self.in_progress,
            VectorStoreFileStatus::Completed => &mut self.completed,
            VectorStoreFileStatus::Failed => &mut self.failed,
            VectorStoreFileStatus::Cancelled => &mut self.cancelled,
        }
    }

    /// A file moved from `from` (None: newly added) to `to` (None: removed).
    pub fn moved(
        &mut self,
        from: Option<VectorStoreFileStatus>,
        to: Option<VectorStoreFileStatus>,
    ) {
        if let Some(from) = from {
            let slot = self.slot(from);
            *slot = slot.saturating_sub(1);
        }
        if let Some(to) = to {
            *self.slot(to) += 1;
        }
        self.total = self.in_progress + self.completed + self.failed + self.cancelled;
    }
}

/// Where the ingestion of a file in a vector store is, stored and answered as today's
/// strings (`"in_progress"`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VectorStoreFileStatus {
    InProgress,
    Completed,
    Cancelled,
    Failed,
}

impl VectorStoreFileStatus {
    pub const ALL: [VectorStoreFileStatus; 4] = [
        VectorStoreFileStatus::InProgress,
        VectorStoreFileStatus::Completed,
        VectorStoreFileStatus::Cancelled,
        VectorStoreFileStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VectorStoreFileStatus::InProgress => "in_progress",
            VectorStoreFileStatus::Completed => "completed",
            VectorStoreFileStatus::Cancelled => "cancelled",
            VectorStoreFileStatus::Failed => "failed",
        }
    }

    /// Whether a file in this status may move to `next`: only a file in progress moves,
    /// once: ingestion ends it `completed` or `failed`, a batch's cancel `cancelled`.
    pub fn can_become(self, next: VectorStoreFileStatus) -> bool {
        self == VectorStoreFileStatus::InProgress && next != VectorStoreFileStatus::InProgress
    }
}

impl std::fmt::Display for VectorStoreFileStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a file batch is, stored and answered as today's strings. A batch is stored
/// `in_progress`; what is answered is derived from its files as they are now (`of`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileBatchStatus {
    InProgress,
    Completed,
    Cancelled,
    Failed,
}

impl FileBatchStatus {
    pub const ALL: [FileBatchStatus; 4] = [
        FileBatchStatus::InProgress,
        FileBatchStatus::Completed,
        FileBatchStatus::Cancelled,
        FileBatchStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FileBatchStatus::InProgress => "in_progress",
            FileBatchStatus::Completed => "completed",
            FileBatchStatus::Cancelled => "cancelled",
            FileBatchStatus::Failed => "failed",
        }
    }

    /// A batch's status from its files' counts: `cancelled` once cancelled (whatever its
    /// files did), `in_progress` while any file is, `failed` when every file failed,
    /// otherwise `completed`.
    pub fn of(counts: &FileCounts, cancelled: bool) -> FileBatchStatus {
        if cancelled {
            FileBatchStatus::Cancelled
        } else if counts.in_progress > 0 {
            FileBatchStatus::InProgress
        } else if counts.total > 0 && counts.failed == counts.total {
            FileBatchStatus::Failed
        } else {
            FileBatchStatus::Completed
        }
    }

    /// Whether a batch answered in this status may be answered in `next` later, as `of`
    /// can move it: out of `in_progress` to any end as its files end or a cancel comes;
    /// between `completed` and `failed` as files are removed from the store (the counts
    /// change); to `cancelled` by a cancel, which is accepted after the end too. Nothing
    /// leaves `cancelled`, and nothing returns to `in_progress` (a batch's files are added
    /// with it, and a file only leaves `in_progress`).
    pub fn can_become(self, next: FileBatchStatus) -> bool {
        use FileBatchStatus::*;
        matches!(
            (self, next),
            (InProgress, Completed | Failed | Cancelled)
                | (Completed, Failed | Cancelled)
                | (Failed, Completed | Cancelled)
        )
    }
}

impl std::fmt::Display for FileBatchStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a vector store is, stored and answered as these strings; derived from its file
/// counts and expiry (`VectorStoreRecord::refresh_status`) whenever it is read or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VectorStoreStatus {
    InProgress,
    Completed,
    Expired,
}

impl VectorStoreStatus {
    pub const ALL: [VectorStoreStatus; 3] = [
        VectorStoreStatus::InProgress,
        VectorStoreStatus::Completed,
        VectorStoreStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VectorStoreStatus::InProgress => "in_progress",
            VectorStoreStatus::Completed => "completed",
            VectorStoreStatus::Expired => "expired",
        }
    }

    /// Whether a store in this status may be in `next` later, as `refresh_status` moves
    /// it: between `in_progress` and `completed` as files are added and end; to `expired`
    /// when its expiry passes; out of `expired` only when its expiry is changed to a later
    /// one (modify's `expires_after`), to whatever its files make it. Staying is no move.
    pub fn can_become(self, next: VectorStoreStatus) -> bool {
        use VectorStoreStatus::*;
        matches!(
            (self, next),
            (InProgress, Completed | Expired)
                | (Completed, InProgress | Expired)
                | (Expired, InProgress | Completed)
        )
    }
}

impl std::fmt::Display for VectorStoreStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A vector store: files chunked and embedded for search.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VectorStore {
    pub id: String,
    #[schema(schema_with = super::schemas::vector_store_object)]
    pub object: String,
    pub created_at: i64,
    pub name: String,
    /// Bytes of the stored chunks.
    pub usage_bytes: u64,
    pub file_counts: FileCounts,
    #[schema(value_type = super::schemas::VectorStoreStatus)]
    pub status: VectorStoreStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = super::schemas::VectorStoreExpiresAfter)]
    pub expires_after: Option<Value>,
    #[schema(required)]
    pub expires_at: Option<i64>,
    #[schema(required)]
    pub last_active_at: Option<i64>,
    #[schema(value_type = super::schemas::Metadata)]
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VectorStoreRecord {
    #[serde(flatten)]
    pub store: VectorStore,
    #[serde(rename = "_description", default)]
    pub description: Option<String>,
    /// Bumped whenever what a search sees changes (files completed or removed, attributes).
    #[serde(rename = "_version", default)]
    pub version: u64,
}

impl VectorStoreRecord {
    /// `status` as the counts and the expiry make it.
    pub fn refresh_status(&mut self) {
        let s = &mut self.store;
        s.status = if s.expires_at.is_some_and(|t| t <= now()) {
            VectorStoreStatus::Expired
        } else if s.file_counts.in_progress > 0 {
            VectorStoreStatus::InProgress
        } else {
            VectorStoreStatus::Completed
        };
    }
}

/// A file in a vector store.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VectorStoreFile {
    /// The file's id.
    pub id: String,
    #[schema(schema_with = super::schemas::vector_store_file_object)]
    pub object: String,
    pub usage_bytes: u64,
    pub created_at: i64,
    pub vector_store_id: String,
    #[schema(value_type = super::schemas::VectorStoreFileStatus)]
    pub status: VectorStoreFileStatus,
    #[schema(value_type = Option<super::schemas::VectorStoreFileError>, required)]
    pub last_error: Option<Value>,
    #[schema(value_type = super::schemas::ChunkingStrategy)]
    pub chunking_strategy: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = super::schemas::Attributes)]
    pub attributes: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VectorStoreFileRecord {
    #[serde(flatten)]
    pub file: VectorStoreFile,
    #[serde(rename = "_batch_id", default)]
    pub batch_id: Option<String>,
}

/// A batch of files added to a vector store together.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileBatch {
    pub id: String,
    #[schema(schema_with = super::schemas::file_batch_object)]
    pub object: String,
    pub created_at: i64,
    pub vector_store_id: String,
    #[schema(value_type = super::schemas::FileBatchStatus)]
    pub status: FileBatchStatus,
    pub file_counts: FileCounts,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileBatchRecord {
    #[serde(flatten)]
    pub batch: FileBatch,
    #[serde(rename = "_cancelled", default)]
    pub cancelled: bool,
    /// The ids of the batch's files still in progress, kept from when its files are written:
    /// each file that ends leaves it (once: a conditional update), and the one that empties
    /// it reports the batch's end (its webhook event), with no need to read the batch's other
    /// files. `None` for a batch stored before this was kept (it has no event).
    #[serde(rename = "_open", default, skip_serializing_if = "Option::is_none")]
    pub open: Option<BTreeSet<String>>,
    /// How many files the batch started with in `open`, and how many of them ended `failed`.
    #[serde(rename = "_files", default, skip_serializing_if = "is_zero")]
    pub files: u32,
    #[serde(rename = "_failed", default, skip_serializing_if = "is_zero")]
    pub failed: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl FileBatchRecord {
    /// The batch's end, once no file of `open` is left (and it was not cancelled): `failed`
    /// when every file failed, `completed` otherwise. `None` while files are in progress.
    pub fn ended(&self) -> Option<FileBatchStatus> {
        if self.cancelled || !self.open.as_ref().is_some_and(BTreeSet::is_empty) {
            return None;
        }
        Some(if self.files > 0 && self.failed == self.files {
            FileBatchStatus::Failed
        } else {
            FileBatchStatus::Completed
        })
    }

    /// `file_id` ended `status` (`in_progress`: it was detached before it ended, and no
    /// longer counts as one of the batch's files): it leaves `open`. `false` when it had
    /// left already (an earlier delivery counted it) or the batch keeps no `open`.
    pub fn file_ended(&mut self, file_id: &str, status: VectorStoreFileStatus) -> bool {
        let Some(open) = self.open.as_mut() else {
            return false;
        };
        if !open.remove(file_id) {
            return false;
        }
        match status {
            VectorStoreFileStatus::Failed => self.failed += 1,
            VectorStoreFileStatus::InProgress => self.files = self.files.saturating_sub(1),
            _ => {}
        }
        true
    }
}

/// When a store with `expires_after` expires, counted from its last activity.
pub fn expires_at(expires_after: Option<&Value>, last_active: i64) -> Option<i64> {
    expires_after
        .and_then(|e| e["days"].as_i64())
        .map(|d| last_active + d * 86_400)
}

/// Reads a vector store of this tenant, its status brought up to date: `None` when there is
/// none (or the id can name none).
pub async fn load(
    store: &dyn Store,
    tenant: &str,
    id: &str,
) -> Result<Option<VectorStoreRecord>, StoreError> {
    if !ids::is_valid(Kind::VectorStore, id) {
        return Ok(None);
    }
    Ok(
        store::get_json::<VectorStoreRecord>(store, &keys::vector_store(tenant, id))
            .await?
            .map(|(mut r, _)| {
                r.refresh_status();
                r
            }),
    )
}

/// Applies a change to the store record's counts (and version), retried on races; a store
/// deleted meanwhile is left alone.
pub async fn update(
    store: &dyn Store,
    tenant: &str,
    id: &str,
    change: impl Fn(&mut VectorStoreRecord),
) -> Result<(), StoreError> {
    store::update_json(
        store,
        &keys::vector_store(tenant, id),
        |mut r: VectorStoreRecord| {
            change(&mut r);
            r.refresh_status();
            Ok::<_, StoreError>(Update::Write(r, ()))
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{FileBatch, FileBatchRecord, FileBatchStatus, FileCounts, VectorStoreFileStatus};
    use serde_json::json;

    #[test]
    fn only_a_file_in_progress_moves_and_only_once() {
        use VectorStoreFileStatus::*;
        // Ingestion ends a file `completed` or `failed`; a batch's cancel `cancelled`.
        for to in [Completed, Failed, Cancelled] {
            assert!(InProgress.can_become(to), "{to}");
        }
        assert!(!InProgress.can_become(InProgress));
        for from in [Completed, Failed, Cancelled] {
            for to in VectorStoreFileStatus::ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
    }

    /// Every move `FileBatchStatus::of` can make as a batch's files end or leave, and as a
    /// cancel comes.
    #[test]
    fn a_batch_moves_as_its_files_do_and_no_other_way() {
        use FileBatchStatus::*;
        const MADE: &[(FileBatchStatus, FileBatchStatus)] = &[
            (InProgress, Completed),
            (InProgress, Failed),
            (InProgress, Cancelled),
            (Completed, Failed),
            (Completed, Cancelled),
            (Failed, Completed),
            (Failed, Cancelled),
        ];
        for from in FileBatchStatus::ALL {
            for to in FileBatchStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    MADE.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        for from in FileBatchStatus::ALL {
            assert!(!from.can_become(InProgress), "{from} -> in_progress");
            assert!(!Cancelled.can_become(from), "cancelled -> {from}");
        }
    }

    #[test]
    fn a_batch_status_is_derived_from_its_files() {
        use FileBatchStatus::*;
        use VectorStoreFileStatus as F;
        let counts = |files: &[F]| {
            let mut c = FileCounts::default();
            for f in files {
                c.moved(None, Some(*f));
            }
            c
        };
        let two_in_progress = counts(&[F::InProgress, F::InProgress]);
        assert_eq!(FileBatchStatus::of(&two_in_progress, false), InProgress);
        assert_eq!(FileBatchStatus::of(&two_in_progress, true), Cancelled);
        let one_failed = counts(&[F::Failed, F::Completed]);
        assert_eq!(FileBatchStatus::of(&one_failed, false), Completed);
        let mut all_failed = one_failed.clone();
        // The completed file is removed from the store: every file left failed.
        all_failed.moved(Some(F::Completed), None);
        assert_eq!(FileBatchStatus::of(&all_failed, false), Failed);
        assert_eq!(FileBatchStatus::of(&counts(&[]), false), Completed);
        assert_eq!(
            FileBatchStatus::of(&counts(&[F::Cancelled, F::InProgress]), false),
            InProgress
        );
    }

    #[test]
    fn counts_follow_the_moves() {
        use VectorStoreFileStatus::*;
        let mut c = FileCounts::default();
        c.moved(None, Some(InProgress));
        c.moved(None, Some(InProgress));
        c.moved(Some(InProgress), Some(Completed));
        c.moved(Some(InProgress), Some(Cancelled));
        c.moved(Some(Completed), None);
        assert_eq!(
            (c.in_progress, c.completed, c.failed, c.cancelled, c.total),
            (0, 0, 0, 1, 1)
        );
        // A count never goes below zero.
        c.moved(Some(Failed), None);
        assert_eq!((c.failed, c.total), (0, 1));
    }

    #[test]
    fn statuses_are_stored_as_the_strings_they_always_were() {
        let strings = ["in_progress", "completed", "cancelled", "failed"];
        for (status, s) in VectorStoreFileStatus::ALL.into_iter().zip(strings) {
            assert_eq!(serde_json::to_value(status).ok(), Some(json!(s)));
            assert_eq!(status.as_str(), s);
            let back: Option<VectorStoreFileStatus> = serde_json::from_value(json!(s)).ok();
            assert_eq!(back, Some(status));
        }
        for (status, s) in FileBatchStatus::ALL.into_iter().zip(strings) {
            assert_eq!(serde_json::to_value(status).ok(), Some(json!(s)));
            assert_eq!(status.as_str(), s);
            let back: Option<FileBatchStatus> = serde_json::from_value(json!(s)).ok();
            assert_eq!(back, Some(status));
        }
        assert!(serde_json::from_value::<VectorStoreFileStatus>(json!("expired")).is_err());
        assert!(serde_json::from_value::<FileBatchStatus>(json!("queued")).is_err());
    }

    #[test]
    fn a_store_status_moves_as_its_files_and_expiry_make_it() {
        use super::VectorStoreStatus;
        use super::VectorStoreStatus::*;
        for (from, to) in [
            (InProgress, Completed),
            (InProgress, Expired),
            (Completed, InProgress),
            (Completed, Expired),
            (Expired, InProgress),
            (Expired, Completed),
        ] {
            assert!(from.can_become(to), "{from} -> {to}");
        }
        for status in VectorStoreStatus::ALL {
            assert!(!status.can_become(status), "{status} -> {status}");
        }
        let strings = ["in_progress", "completed", "expired"];
        for (status, s) in VectorStoreStatus::ALL.into_iter().zip(strings) {
            assert_eq!(serde_json::to_value(status).ok(), Some(json!(s)));
            assert_eq!(status.as_str(), s);
            let back: Option<VectorStoreStatus> = serde_json::from_value(json!(s)).ok();
            assert_eq!(back, Some(status));
        }
        assert!(serde_json::from_value::<VectorStoreStatus>(json!("cancelled")).is_err());
    }

    fn batch(open: Option<&[&str]>) -> FileBatchRecord {
        FileBatchRecord {
            batch: FileBatch {
                id: "vsfb_a".into(),
                object: "vector_store.files_batch".into(),
                created_at: 0,
                vector_store_id: "vs_a".into(),
                status: FileBatchStatus::InProgress,
                file_counts: FileCounts::default(),
            },
            cancelled: false,
            open: open.map(|ids| ids.iter().map(|s| s.to_string()).collect()),
            files: open.map_or(0, |ids| ids.len() as u32),
            failed: 0,
        }
    }

    #[test]
    fn a_batch_ends_once_its_last_open_file_ends_and_each_file_counts_once() {
        let mut b = batch(Some(&["f1", "f2"]));
        assert!(b.file_ended("f1", VectorStoreFileStatus::Completed));
        assert_eq!(b.ended(), None);
        // A redelivered item: counted already.
        assert!(!b.file_ended("f1", VectorStoreFileStatus::Completed));
        assert!(b.file_ended("f2", VectorStoreFileStatus::Failed));
        assert_eq!(b.ended(), Some(FileBatchStatus::Completed));

        let mut all_failed = batch(Some(&["f1", "f2"]));
        all_failed.file_ended("f1", VectorStoreFileStatus::Failed);
        all_failed.file_ended("f2", VectorStoreFileStatus::Failed);
        assert_eq!(all_failed.ended(), Some(FileBatchStatus::Failed));

        // A file detached before it ended no longer counts: the other one failing fails it.
        let mut detached = batch(Some(&["f1", "f2"]));
        detached.file_ended("f1", VectorStoreFileStatus::InProgress);
        detached.file_ended("f2", VectorStoreFileStatus::Failed);
        assert_eq!(detached.ended(), Some(FileBatchStatus::Failed));

        // Cancelled, or stored before open files were kept: no end to report.
        let mut cancelled = batch(Some(&["f1"]));
        cancelled.cancelled = true;
        cancelled.file_ended("f1", VectorStoreFileStatus::Completed);
        assert_eq!(cancelled.ended(), None);
        let mut legacy = batch(None);
        assert!(!legacy.file_ended("f1", VectorStoreFileStatus::Completed));
        assert_eq!(legacy.ended(), None);
    }
}
