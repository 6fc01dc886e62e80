//! A `Store` that injects faults for tests: it wraps the app's real store (local or Azurite)
//! and, once armed, lets the next write of a matching key happen and then answers it with an
//! error, as if the process had died right after the write: the caller sees a failure, but
//! the object is stored. Installed with `App::with_wrappers`.

use assistants::store::{
    ByteStream, DynStore, ETag, ListPage, OpCounts, PutMode, Store, StoreError,
};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::{Arc, Mutex};

type KeyMatch = Box<dyn Fn(&str) -> bool + Send + Sync>;

pub struct FaultyStore {
    inner: DynStore,
    /// Armed: the next write of a key this accepts fails after it is stored.
    fail_after_write: Mutex<Option<KeyMatch>>,
}

impl FaultyStore {
    pub fn wrap(inner: DynStore) -> Arc<FaultyStore> {
        Arc::new(FaultyStore {
            inner,
            fail_after_write: Mutex::new(None),
        })
    }

    /// The next write of a key `matches` accepts is stored and then answered with an error
    /// (once; later writes go through).
    pub fn fail_once_after_write(&self, matches: impl Fn(&str) -> bool + Send + Sync + 'static) {
        *self.fail_after_write.lock().unwrap() = Some(Box::new(matches));
    }

    /// Whether a write of `key` is the armed one (disarming it).
    fn hit(&self, key: &str) -> bool {
        let mut armed = self.fail_after_write.lock().unwrap();
        if armed.as_ref().is_some_and(|matches| matches(key)) {
            *armed = None;
            return true;
        }
        false
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn get(&self, key: &str) -> Result<Option<(Bytes, ETag)>, StoreError> {
        self.inner.get(key).await
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<(Bytes, ETag)>>, StoreError> {
        self.inner.get_many(keys).await
    }
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<ETag, StoreError> {
        let etag = self.inner.put(key, data, mode).await?;
        if self.hit(key) {
            return Err(StoreError::Unavailable(format!(
                "simulated crash right after writing {key}"
            )));
        }
        Ok(etag)
    }
    async fn list_page(
        &self,
        prefix: &str,
        marker: Option<String>,
        max: usize,
    ) -> Result<ListPage, StoreError> {
        self.inner.list_page(prefix, marker, max).await
    }
    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.delete(key).await
    }
    async fn put_stream(&self, key: &str, chunks: ByteStream<'_>) -> Result<u64, StoreError> {
        self.inner.put_stream(key, chunks).await
    }
    async fn get_stream(
        &self,
        key: &str,
    ) -> Result<Option<(u64, ByteStream<'static>)>, StoreError> {
        self.inner.get_stream(key).await
    }
    fn counts(&self) -> OpCounts {
        self.inner.counts()
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
}
