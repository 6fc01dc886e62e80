//! The embedded default store: one file per object under a data directory.
//!
//! Writes go to a temporary file in the same directory and are then renamed (or hard-linked,
//! for create-only writes, which fails atomically if the name exists), so a reader never sees
//! a half-written object. Conditional writes take an in-process lock per key (sharded), which
//! makes check-and-write atomic for this process; the directory belongs to one process. The
//! ETag is a hash of the content: a write based on what was read is valid exactly when the
//! content is still what was read.

use super::{ByteStream, ETag, ListPage, OpCounters, OpCounts, PutMode, Store, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tokio::sync::Mutex;

const LOCK_SHARDS: usize = 256;

pub struct LocalStore {
    root: PathBuf,
    locks: Vec<Mutex<()>>,
    counters: OpCounters,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    hash
}

fn etag_of(bytes: &[u8]) -> ETag {
    ETag(format!("\"{:016x}-{:x}\"", fnv1a(bytes), bytes.len()))
}

fn io_error(context: &str, e: std::io::Error) -> StoreError {
    StoreError::Other(format!("{context}: {e}"))
}

/// A key segment may only hold characters ids and fixed words use; no dot files (temporary
/// files start with a dot), no `..`.
fn valid_segment(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('.')
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

impl LocalStore {
    /// Opens (and creates) the store directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .map_err(|e| io_error(&format!("cannot create {}", root.display()), e))?;
        Ok(LocalStore {
            root,
            locks: (0..LOCK_SHARDS).map(|_| Mutex::new(())).collect(),
            counters: OpCounters::default(),
        })
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        if !key.split('/').all(valid_segment) {
            return Err(StoreError::Other(format!("invalid key {key:?}")));
        }
        Ok(self.root.join(key))
    }

    fn lock_for(&self, key: &str) -> &Mutex<()> {
        &self.locks[(fnv1a(key.as_bytes()) as usize) % LOCK_SHARDS]
    }

    async fn read_file(path: &Path) -> Result<Option<Bytes>, StoreError> {
        match tokio::fs::read(path).await {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("read", e)),
        }
    }

    async fn write_temp(path: &Path, data: &[u8]) -> Result<PathBuf, StoreError> {
        let dir = path
            .parent()
            .ok_or_else(|| StoreError::Other("key without parent".into()))?;
        let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        // A concurrent delete may remove the directory once it is empty, between our
        // creating it and writing into it: then create it again.
        let mut attempts = 0;
        loop {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io_error("create dir", e))?;
            match tokio::fs::write(&tmp, data).await {
                Ok(()) => return Ok(tmp),
                Err(e) if e.kind() == ErrorKind::NotFound && attempts < 5 => attempts += 1,
                Err(e) => return Err(io_error("write", e)),
            }
        }
    }
}

/// Every file under `dir` (recursively) whose key starts with `prefix`, as keys relative to
/// `root`.
fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(root) else {
            continue;
        };
        let Some(key) = relative.to_str() else {
            continue;
        };
        if entry.file_type()?.is_dir() {
            let dir_key = format!("{key}/");
            // Descend only where keys under this directory can match the prefix.
            if dir_key.starts_with(prefix) || prefix.starts_with(&dir_key) {
                walk(root, &path, prefix, out)?;
            }
        } else if key.starts_with(prefix) {
            out.push(key.to_string());
        }
    }
    Ok(())
}

#[async_trait]
impl Store for LocalStore {
    async fn get(&self, key: &str) -> Result<Option<(Bytes, ETag)>, StoreError> {
        let path = self.path_of(key)?;
        self.counters.read();
        Ok(Self::read_file(&path).await?.map(|data| {
            let etag = etag_of(&data);
            (data, etag)
        }))
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<ETag, StoreError> {
        let path = self.path_of(key)?;
        self.counters.write();
        let etag = etag_of(&data);
        let tmp = Self::write_temp(&path, &data).await?;
        let result = async {
            match mode {
                PutMode::Overwrite => tokio::fs::rename(&tmp, &path)
                    .await
                    .map_err(|e| io_error("rename", e)),
                PutMode::Create => {
                    let _guard = self.lock_for(key).lock().await;
                    // A hard link fails atomically when the name exists.
                    match tokio::fs::hard_link(&tmp, &path).await {
                        Ok(()) => Ok(()),
                        Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(StoreError::Conflict),
                        Err(e) => Err(io_error("link", e)),
                    }
                }
                PutMode::IfMatch(expected) => {
                    let _guard = self.lock_for(key).lock().await;
                    match Self::read_file(&path).await? {
                        None => Err(StoreError::NotFound),
                        Some(current) if etag_of(&current) != expected => Err(StoreError::Conflict),
                        Some(_) => tokio::fs::rename(&tmp, &path)
                            .await
                            .map_err(|e| io_error("rename", e)),
                    }
                }
            }
        }
        .await;
        // After a rename the temporary name is gone; after a link or a failure it remains.
        let _ = tokio::fs::remove_file(&tmp).await;
        result.map(|()| etag)
    }

    async fn list_page(
        &self,
        prefix: &str,
        marker: Option<String>,
        max: usize,
    ) -> Result<ListPage, StoreError> {
        self.counters.list();
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        if !dir_part.is_empty() && !dir_part.split('/').all(valid_segment) {
            return Err(StoreError::Other(format!("invalid prefix {prefix:?}")));
        }
        let root = self.root.clone();
        let dir = root.join(dir_part);
        let prefix_owned = prefix.to_string();
        let mut keys = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&root, &dir, &prefix_owned, &mut out).map(|()| out)
        })
        .await
        .map_err(|e| StoreError::Other(e.to_string()))?
        .map_err(|e| io_error("list", e))?;
        keys.sort_unstable();
        if let Some(marker) = marker {
            keys.retain(|k| k.as_str() > marker.as_str());
        }
        let next = if keys.len() > max {
            keys.truncate(max);
            keys.last().cloned()
        } else {
            None
        };
        Ok(ListPage { keys, next })
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.path_of(key)?;
        self.counters.delete();
        let _guard = self.lock_for(key).lock().await;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                // Tidy up directories that became empty (fails harmlessly when not empty).
                let mut dir = path.parent().map(Path::to_path_buf);
                while let Some(d) = dir {
                    if d == self.root || tokio::fs::remove_dir(&d).await.is_err() {
                        break;
                    }
                    dir = d.parent().map(Path::to_path_buf);
                }
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("delete", e)),
        }
    }

    async fn put_stream(&self, key: &str, mut chunks: ByteStream<'_>) -> Result<u64, StoreError> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let path = self.path_of(key)?;
        self.counters.write();
        let tmp = Self::write_temp(&path, b"").await?;
        let written = async {
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&tmp)
                .await
                .map_err(|e| io_error("open", e))?;
            let mut size = 0u64;
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                size += chunk.len() as u64;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| io_error("write", e))?;
            }
            file.flush().await.map_err(|e| io_error("flush", e))?;
            tokio::fs::rename(&tmp, &path)
                .await
                .map_err(|e| io_error("rename", e))?;
            Ok(size)
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written
    }

    fn counts(&self) -> OpCounts {
        self.counters.snapshot()
    }

    fn name(&self) -> &'static str {
        "local"
    }
}
