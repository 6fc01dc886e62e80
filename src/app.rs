//! Wiring: settings to a store, a backend and the HTTP server; used by `main` and by the
//! tests, which start the same server on a free port.

use crate::api::stateful::Stateful;
use crate::api::Backend;
use crate::config::{Settings, StorageSetting};
use crate::http::{self, auth::Auth, HttpState};
use crate::store::azure::{request_retry, AzureBlobStore};
use crate::store::local::LocalStore;
use crate::store::DynStore;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Opens the store the settings name.
pub fn open_store(settings: &Settings) -> Result<DynStore, String> {
    match &settings.storage {
        StorageSetting::Local { data_dir } => LocalStore::open(data_dir)
            .map(|s| Arc::new(s) as DynStore)
            .map_err(|e| format!("DATA_DIR {}: {e}", data_dir.display())),
        StorageSetting::Azure { account } => {
            AzureBlobStore::new(account, &settings.container, request_retry())
                .map(|s| Arc::new(s) as DynStore)
                .map_err(|e| format!("STORAGE_CONNECTION_STRING: {e}"))
        }
    }
}

/// A running service's parts, for `serve` and for tests that look inside.
pub struct App {
    pub store: DynStore,
    pub backend: Arc<dyn Backend>,
    state: Arc<HttpState>,
}

impl App {
    pub fn new(settings: &Settings) -> Result<App, String> {
        let store = open_store(settings)?;
        let backend: Arc<dyn Backend> = Arc::new(Stateful::new(store.clone()));
        let auth = Auth::new(&settings.api_keys);
        if auth.is_open() {
            log::warn!(
                "ASSISTANTS_API_KEYS is empty: the API is open to anyone who can reach {}",
                settings.bind
            );
        }
        let state = Arc::new(HttpState {
            backend: backend.clone(),
            auth,
            max_body_bytes: settings.max_body_bytes,
        });
        Ok(App {
            store,
            backend,
            state,
        })
    }

    /// Serves HTTP on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let filter = http::routes(self.state.clone());
        warp::serve(filter)
            .incoming(listener)
            .graceful(shutdown)
            .run()
            .await;
    }
}

/// The address to listen on: the Functions host's port on loopback, or `BIND`:`PORT`.
pub fn listen_addr(settings: &Settings) -> SocketAddr {
    match settings.custom_handler_port {
        Some(port) => SocketAddr::from(([127, 0, 0, 1], port)),
        None => SocketAddr::new(settings.bind, settings.port),
    }
}
