//! Wiring: settings to a store, a work queue, the engine, a backend and the HTTP server;
//! used by `main` and by the tests, which start the same server on a free port.

use crate::api::proxy::Proxy;
use crate::api::stateful::Stateful;
use crate::api::Backend;
use crate::code_interpreter::SharedCodeInterpreter;
use crate::config::{BackendSetting, QueueSetting, Settings, StorageSetting};
use crate::engine::Engine;
use crate::http::{self, auth::Auth, FunctionsHost, HttpState};
use crate::llm::LlmClient;
use crate::queue::azure::AzureQueue;
use crate::queue::fair::TenantSlots;
use crate::queue::local::LocalQueue;
use crate::queue::{DynQueue, WorkHandler};
use crate::retrieval::{Embedder, Retrieval};
use crate::store::azure::{self, request_retry, AzureBlobStore};
use crate::store::local::LocalStore;
use crate::store::DynStore;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// One HTTP client (one connection pool) for an app's Azure blob store and queue, built
/// when the first of them needs it (a local app needs none).
#[derive(Default)]
struct AzureHttp(std::sync::OnceLock<reqwest::Client>);

impl AzureHttp {
    fn get(&self) -> Result<&reqwest::Client, String> {
        if let Some(client) = self.0.get() {
            return Ok(client);
        }
        let client = azure::http_client()?;
        Ok(self.0.get_or_init(|| client))
    }
}

/// Opens the store the settings name; an Azure store makes its calls through `azure_http`.
fn open_store(settings: &Settings, azure_http: &AzureHttp) -> Result<DynStore, String> {
    match &settings.storage {
        StorageSetting::Local { data_dir } => LocalStore::open(data_dir.join("objects"))
            .map(|s| Arc::new(s) as DynStore)
            .map_err(|e| format!("DATA_DIR {}: {e}", data_dir.display())),
        StorageSetting::Azure { account } => AzureBlobStore::new(
            account,
            &settings.container,
            request_retry(),
            azure_http.get()?,
        )
        .map(|s| Arc::new(s) as DynStore)
        .map_err(|e| format!("STORAGE_CONNECTION_STRING: {e}")),
    }
}

/// The queue implementation, kept concrete so its consumer can be started.
enum Queue {
    Local(Arc<LocalQueue>),
    Azure(Arc<AzureQueue>),
}

/// The stored backend's parts (absent in proxy mode).
pub struct Stored {
    pub store: DynStore,
    pub queue: DynQueue,
    pub engine: Arc<Engine>,
    pub retrieval: Arc<Retrieval>,
    queue_impl: Queue,
}

/// A running service's parts, for `serve` and for tests that look inside.
pub struct App {
    pub backend: Arc<dyn Backend>,
    pub stored: Option<Stored>,
    settings: Settings,
    state: Arc<HttpState>,
}

fn open_stored(settings: &Settings) -> Result<Stored, String> {
    let azure_http = AzureHttp::default();
    let store = open_store(settings, &azure_http)?;
    let queue_impl = match (&settings.queue, &settings.storage) {
        (QueueSetting::Local, StorageSetting::Local { data_dir }) => Queue::Local(
            LocalQueue::open(data_dir.join("queue"), settings.runs.work_max_attempts)
                .map_err(|e| format!("DATA_DIR {}: {e}", data_dir.display()))?,
        ),
        (QueueSetting::Azure, StorageSetting::Azure { account }) => Queue::Azure(
            AzureQueue::new(
                account,
                &settings.queue_name,
                request_retry(),
                azure_http.get()?,
            )
            .map_err(|e| format!("STORAGE_CONNECTION_STRING: {e}"))?,
        ),
        _ => return Err("QUEUE: the queue and the store must both be local or both Azure".into()),
    };
    let queue: DynQueue = match &queue_impl {
        Queue::Local(q) => q.clone(),
        Queue::Azure(q) => q.clone(),
    };
    let llm = LlmClient::new(settings.llm.clone(), settings.runs.llm_idle_timeout);
    let (embedding_backend, embedding_model) = settings.embedding.clone();
    let retrieval = Arc::new(Retrieval::new(
        Embedder::new(
            LlmClient::new(embedding_backend, settings.runs.llm_idle_timeout),
            embedding_model,
        ),
        settings.ingest.clone(),
    ));
    let engine = Arc::new(Engine::new(
        store.clone(),
        queue.clone(),
        llm,
        Arc::new(settings.runs.clone()),
        retrieval.clone(),
        Arc::new(SharedCodeInterpreter::from_settings(settings)),
    ));
    Ok(Stored {
        store,
        queue,
        retrieval,
        engine,
        queue_impl,
    })
}

impl App {
    pub fn new(settings: &Settings) -> Result<App, String> {
        let (backend, stored): (Arc<dyn Backend>, Option<Stored>) = match &settings.backend {
            BackendSetting::Stored => {
                let stored = open_stored(settings)?;
                let backend = Arc::new(
                    Stateful::new(
                        stored.store.clone(),
                        stored.queue.clone(),
                        Arc::new(settings.runs.clone()),
                        stored.engine.clone(),
                        stored.retrieval.clone(),
                    )
                    .with_sse_buffer(settings.sse_buffer_bytes),
                );
                (backend, Some(stored))
            }
            BackendSetting::Proxy {
                base_url,
                api_key,
                tenant_keys,
                timeout,
            } => (
                Arc::new(
                    Proxy::new(base_url, api_key.clone(), tenant_keys.clone(), *timeout)
                        .with_sse_buffer(settings.sse_buffer_bytes),
                ),
                None,
            ),
        };
        let auth = Auth::new(&settings.api_keys);
        if auth.is_open() {
            log::warn!(
                "ASSISTANTS_API_KEYS is empty: the API is open to anyone who can reach {}",
                settings.bind
            );
        }
        let functions = match (&stored, settings.custom_handler_port) {
            (Some(stored), Some(_)) => Some(FunctionsHost {
                handler: stored.engine.clone(),
                queue: stored.queue.clone(),
                slots: TenantSlots::new(usize::MAX, settings.runs.work_tenant_concurrency),
                max_attempts: settings.runs.work_max_attempts,
            }),
            _ => None,
        };
        let state = Arc::new(HttpState {
            backend: backend.clone(),
            auth,
            max_body_bytes: settings.max_body_bytes,
            sse_keep_alive: settings.sse_keep_alive,
            functions,
        });
        Ok(App {
            backend,
            stored,
            settings: settings.clone(),
            state,
        })
    }

    /// Whether the Functions host runs this process (it then delivers the work queue).
    pub fn is_custom_handler(&self) -> bool {
        self.settings.custom_handler_port.is_some()
    }

    /// What serves the API, for the start-up log.
    pub fn describe(&self) -> String {
        match (&self.stored, &self.settings.backend) {
            (Some(stored), _) => format!("store: {}", stored.store.name()),
            (None, BackendSetting::Proxy { base_url, .. }) => format!("proxy to {base_url}"),
            (None, BackendSetting::Stored) => "no backend".into(),
        }
    }

    /// Starts taking work items in this process: the in-process queue's dispatcher, or
    /// the Azure queue poller (standalone mode; under the Functions host the queue
    /// trigger delivers instead). Nothing to do for a proxy.
    pub fn start_worker(&self) -> Result<Option<tokio::task::JoinHandle<()>>, String> {
        let Some(stored) = &self.stored else {
            return Ok(None);
        };
        let handler: Arc<dyn WorkHandler> = stored.engine.clone();
        let runs = &self.settings.runs;
        match &stored.queue_impl {
            Queue::Local(q) => q
                .start(handler, runs.work_concurrency, runs.work_tenant_concurrency)
                .map(Some)
                .map_err(|e| e.to_string()),
            Queue::Azure(q) => Ok(Some(q.start_poller(
                handler,
                TenantSlots::new(runs.work_concurrency, runs.work_tenant_concurrency),
                runs.work_concurrency,
                runs.work_max_attempts,
                runs.queue_poll_max,
                runs.work_lease,
            ))),
        }
    }

    /// Starts the code interpreter (its executor and self-test) in the background, so that
    /// its state is in the start-up log and the first run that needs it does not wait.
    pub fn start_code_interpreter(&self) {
        if let Some(stored) = &self.stored {
            let shared = stored.engine.code_interpreter().clone();
            tokio::spawn(async move {
                shared.get().await;
            });
        }
    }

    /// Serves HTTP on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let limits = &self.settings.http;
        log::info!(
            "HTTP: at most {} connections{}, request heads within {:?}, idle connections \
             closed after {:?}, clients that take nothing for {:?} disconnected",
            limits
                .max_connections
                .unwrap_or_else(http::server::default_max_connections),
            match (limits.max_connections, http::server::nofile_limit()) {
                (None, Some(n)) => format!(" (from RLIMIT_NOFILE {n})"),
                _ => String::new(),
            },
            limits.header_timeout,
            limits.idle_timeout,
            limits.write_timeout,
        );
        http::server::serve(self.state.clone(), listener, limits, shutdown).await;
    }
}

/// Binds the listening socket with TCP_NODELAY (accepted connections inherit it on Linux):
/// SSE events are small writes, and Nagle's algorithm would hold each one back until the
/// client acknowledged the previous one (tens of milliseconds with delayed ACKs).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// The address to listen on: the Functions host's port on loopback, or `BIND`:`PORT`.
pub fn listen_addr(settings: &Settings) -> SocketAddr {
    match settings.custom_handler_port {
        Some(port) => SocketAddr::from(([127, 0, 0, 1], port)),
        None => SocketAddr::new(settings.bind, settings.port),
    }
}
