//! The embedded default store: one file per object under a data directory.
//!
//! Writes go to a temporary file in the same directory and are then renamed (or hard-linked,
//! for create-only writes, which fails atomically if the name exists), so a reader never sees
//! a half-written object. Conditional writes take an in-process lock per key (sharded), which
//! makes check-and-write atomic for this process; the directory belongs to one process. The
//! ETag is a hash of the content: a write based on what was read is valid exactly when the
//! content is still what was read.
//!
//! Each store operation does all its file work with `std::fs` in one `spawn_blocking` task
//! (and `get_many` reads a whole page of objects in one): a hand-off to the blocking pool and
//! back costs more CPU than reading a small file, so one per operation, not one per system
//! call (see BENCHMARKS.md, finding 2).

use super::{ByteStream, ETag, ListPage, OpCounters, OpCounts, PutMode, Store, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

const LOCK_SHARDS: usize = 256;

/// Downloads read the file in chunks of this size, each in one blocking task.
const READ_CHUNK: usize = 256 * 1024;

pub struct LocalStore {
    files: Arc<Files>,
    counters: OpCounters,
}

/// The directory and the per-key locks, shared with the blocking tasks.
struct Files {
    root: PathBuf,
    locks: Vec<Mutex<()>>,
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

/// Runs one operation's file work on the blocking pool.
async fn blocking<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Other(format!("store task: {e}")))?
}

impl Files {
    fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        if !key.split('/').all(valid_segment) {
            return Err(StoreError::Other(format!("invalid key {key:?}")));
        }
        Ok(self.root.join(key))
    }

    fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        let shard = &self.locks[(fnv1a(key.as_bytes()) as usize) % LOCK_SHARDS];
        // The lock guards no data, so a panic elsewhere while holding it leaves nothing
        // inconsistent behind.
        shard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read(path: &Path) -> Result<Option<(Bytes, ETag)>, StoreError> {
        match std::fs::read(path) {
            Ok(data) => {
                let etag = etag_of(&data);
                Ok(Some((Bytes::from(data), etag)))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("read", e)),
        }
    }

    /// Writes `data` to a new temporary file beside `path`, creating the directory when it
    /// is missing.
    fn write_temp(path: &Path, data: &[u8]) -> Result<PathBuf, StoreError> {
        let dir = path
            .parent()
            .ok_or_else(|| StoreError::Other("key without parent".into()))?;
        let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        // Usually the directory exists. A concurrent delete may also remove it once it is
        // empty, between our creating it and writing into it: then create it again.
        let mut attempts = 0;
        loop {
            match std::fs::write(&tmp, data) {
                Ok(()) => return Ok(tmp),
                Err(e) if e.kind() == ErrorKind::NotFound && attempts < 5 => {
                    attempts += 1;
                    std::fs::create_dir_all(dir).map_err(|e| io_error("create dir", e))?;
                }
                Err(e) => return Err(io_error("write", e)),
            }
        }
    }

    fn put(&self, key: &str, path: &Path, data: &[u8], mode: PutMode) -> Result<ETag, StoreError> {
        let etag = etag_of(data);
        let tmp = Self::write_temp(path, data)?;
        let mode_was_create = matches!(mode, PutMode::Create);
        let result = match mode {
            PutMode::Overwrite => std::fs::rename(&tmp, path).map_err(|e| io_error("rename", e)),
            PutMode::Create => {
                let _guard = self.lock(key);
                // A hard link fails atomically when the name exists.
                match std::fs::hard_link(&tmp, path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(StoreError::Conflict),
                    Err(e) => Err(io_error("link", e)),
                }
            }
            PutMode::IfMatch(expected) => {
                let _guard = self.lock(key);
                match Self::read(path)? {
                    None => Err(StoreError::NotFound),
                    Some((_, current)) if current != expected => Err(StoreError::Conflict),
                    Some(_) => std::fs::rename(&tmp, path).map_err(|e| io_error("rename", e)),
                }
            }
        };
        // After a rename the temporary name is gone; after a link or a failure it remains.
        if mode_was_create || result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map(|()| etag)
    }

    fn delete(&self, key: &str, path: &Path) -> Result<bool, StoreError> {
        let _guard = self.lock(key);
        match std::fs::remove_file(path) {
            Ok(()) => {
                // Tidy up directories that became empty (fails harmlessly when not empty).
                let mut dir = path.parent();
                while let Some(d) = dir {
                    if d == self.root || std::fs::remove_dir(d).is_err() {
                        break;
                    }
                    dir = d.parent();
                }
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("delete", e)),
        }
    }
}

impl LocalStore {
    /// Opens (and creates) the store directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .map_err(|e| io_error(&format!("cannot create {}", root.display()), e))?;
        Ok(LocalStore {
            files: Arc::new(Files {
                root,
                locks: (0..LOCK_SHARDS).map(|_| Mutex::new(())).collect(),
            }),
            counters: OpCounters::default(),
        })
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
        let path = self.files.path_of(key)?;
        self.counters.read();
        blocking(move || Files::read(&path)).await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<(Bytes, ETag)>>, StoreError> {
        let paths = keys
            .iter()
            .map(|key| self.files.path_of(key))
            .collect::<Result<Vec<_>, _>>()?;
        self.counters.read_many(paths.len());
        blocking(move || paths.iter().map(|path| Files::read(path)).collect()).await
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<ETag, StoreError> {
        let path = self.files.path_of(key)?;
        self.counters.write();
        let files = self.files.clone();
        let key = key.to_string();
        blocking(move || files.put(&key, &path, &data, mode)).await
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
        let root = self.files.root.clone();
        let dir = root.join(dir_part);
        let prefix = prefix.to_string();
        blocking(move || {
            let mut keys = Vec::new();
            walk(&root, &dir, &prefix, &mut keys).map_err(|e| io_error("list", e))?;
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
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.files.path_of(key)?;
        self.counters.delete();
        let files = self.files.clone();
        let key = key.to_string();
        blocking(move || files.delete(&key, &path)).await
    }

    async fn put_stream(&self, key: &str, mut chunks: ByteStream<'_>) -> Result<u64, StoreError> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let path = self.files.path_of(key)?;
        self.counters.write();
        let tmp = {
            let path = path.clone();
            blocking(move || Files::write_temp(&path, b"")).await?
        };
        // The chunks arrive over time: each is written as it comes (an upload is large and
        // rare, so a hand-off per chunk does not matter here).
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

    async fn get_stream(
        &self,
        key: &str,
    ) -> Result<Option<(u64, ByteStream<'static>)>, StoreError> {
        let path = self.files.path_of(key)?;
        self.counters.read();
        let opened = blocking(move || match std::fs::File::open(&path) {
            Ok(file) => {
                let size = file.metadata().map_err(|e| io_error("stat", e))?.len();
                Ok(Some((file, size)))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("open", e)),
        })
        .await?;
        let Some((file, size)) = opened else {
            return Ok(None);
        };
        // The open file keeps the version it opened: a rename or delete meanwhile does not
        // change what is read.
        let chunks = futures::stream::try_unfold((file, 0u64), move |(file, at)| async move {
            if at >= size {
                return Ok(None);
            }
            let want = READ_CHUNK.min((size - at) as usize);
            let (file, chunk) = blocking(move || {
                use std::io::Read;
                let mut file = file;
                let mut chunk = vec![0u8; want];
                let mut filled = 0;
                while filled < want {
                    match file.read(&mut chunk[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err(io_error("read", e)),
                    }
                }
                chunk.truncate(filled);
                Ok((file, chunk))
            })
            .await?;
            if chunk.is_empty() {
                return Err(StoreError::Other(format!(
                    "{} bytes missing at the end",
                    size - at
                )));
            }
            let next = at + chunk.len() as u64;
            Ok(Some((Bytes::from(chunk), (file, next))))
        });
        Ok(Some((size, Box::pin(chunks))))
    }

    fn counts(&self) -> OpCounts {
        self.counters.snapshot()
    }

    fn name(&self) -> &'static str {
        "local"
    }
}
