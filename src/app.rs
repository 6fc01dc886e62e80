//! Wiring: settings to a store, a work queue, the engine, a backend, the HTTP server and
//! the work-queue consumer; used by `main` and by the tests, which start the same server on
//! a free port.
//!
//! `App::run` is the process's life: it serves HTTP and runs the consumer until the signal
//! comes or one of the two dies, then shuts down in order (`crate::shutdown`): the listener
//! closes and nothing new is taken from the queue; turns in progress have
//! `SHUTDOWN_GRACE_SECONDS` to finish, after which they are released to the queue; then the
//! requests in progress are answered and every background task is joined. A consumer that
//! dies ends the process with an error (a server that accepts runs nobody advances is worse
//! than one that is restarted).

use crate::api::proxy::Proxy;
use crate::api::stateful::Stateful;
use crate::api::Backend;
use crate::code_interpreter::SharedCodeInterpreter;
use crate::config::{BackendSetting, QueueSetting, Settings, StorageSetting};
use crate::engine::Engine;
use crate::http::{self, auth::Auth, FunctionsHost, HttpState};
use crate::llm::LlmClient;
use crate::queue::azure::AzureQueue;
use crate::queue::delivery::Policy;
use crate::queue::fair::TenantSlots;
use crate::queue::local::LocalQueue;
use crate::queue::{DynQueue, WorkHandler};
use crate::retrieval::{Embedder, Retrieval};
use crate::shutdown::Shutdown;
use crate::store::azure::{self, request_retry, AzureBlobStore};
use crate::store::local::LocalStore;
use crate::store::DynStore;
use crate::webhooks::Webhooks;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::{JoinError, JoinHandle};

/// What the end of the shutdown may take beyond the grace: releasing the turns cut off,
/// ending their streams, answering the last requests.
const AFTER_GRACE: Duration = Duration::from_secs(3);

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

/// A consumer of the work queue, run by `App::run`; it returns once the shutdown has begun
/// and its deliveries are settled, and earlier only when it fails.
type Worker = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A service's parts, for `run` and for tests that look inside.
pub struct App {
    pub backend: Arc<dyn Backend>,
    pub stored: Option<Stored>,
    settings: Settings,
    state: Arc<HttpState>,
    shutdown: Shutdown,
    /// The work-queue consumer of this process: the in-process queue's, or the Azure queue
    /// poller. None under the Functions host (its queue trigger delivers) and for a proxy.
    worker: Option<Worker>,
}

/// What an app's store and the queue it writes work to are given to before anything uses
/// them: tests wrap them to inject faults; `App::new` leaves them as they are. (The queue's
/// consumer reads the queue itself.)
pub struct Wrappers {
    pub store: Box<dyn FnOnce(DynStore) -> DynStore>,
    pub queue: Box<dyn FnOnce(DynQueue) -> DynQueue>,
}

impl Default for Wrappers {
    fn default() -> Self {
        Wrappers {
            store: Box::new(|store| store),
            queue: Box::new(|queue| queue),
        }
    }
}

fn open_stored(settings: &Settings, shutdown: &Shutdown, wrap: Wrappers) -> Result<Stored, String> {
    let azure_http = AzureHttp::default();
    let store = (wrap.store)(open_store(settings, &azure_http)?);
    let queue_impl = match (&settings.queue, &settings.storage) {
        (QueueSetting::Local, StorageSetting::Local { data_dir }) => Queue::Local(
            LocalQueue::open(data_dir.join("queue"))
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
    let queue: DynQueue = (wrap.queue)(match &queue_impl {
        Queue::Local(q) => q.clone(),
        Queue::Azure(q) => q.clone(),
    });
    let llm = LlmClient::new(settings.llm.clone(), settings.runs.llm_idle_timeout);
    let (embedding_backend, embedding_model) = settings.embedding.clone();
    let retrieval = Arc::new(Retrieval::new(
        Embedder::new(
            LlmClient::new(embedding_backend, settings.runs.llm_idle_timeout),
            embedding_model,
        ),
        settings.ingest.clone(),
    ));
    let webhooks = Webhooks::new(settings.webhooks.clone())?;
    webhooks.warn_about_private_endpoints();
    let engine = Arc::new(
        Engine::new(
            store.clone(),
            queue.clone(),
            llm,
            Arc::new(settings.runs.clone()),
            retrieval.clone(),
            Arc::new(SharedCodeInterpreter::from_settings(settings)),
            shutdown.clone(),
        )
        .with_webhooks(Arc::new(webhooks)),
    );
    Ok(Stored {
        store,
        queue,
        retrieval,
        engine,
        queue_impl,
    })
}

/// The delivery policy of this process's consumer, whose slots hold at most `total` items;
/// webhook deliveries have `WEBHOOK_CONCURRENCY` slots of their own (half of them for one
/// tenant when several share them), so that a slow receiver never takes a run's slot.
fn policy(stored: &Stored, settings: &Settings, total: usize, shutdown: &Shutdown) -> Arc<Policy> {
    let handler: Arc<dyn WorkHandler> = stored.engine.clone();
    let runs = &settings.runs;
    let hooks = settings.webhooks.concurrency;
    let hooks_per_tenant = if runs.work_tenant_concurrency >= runs.work_concurrency {
        hooks
    } else {
        hooks.div_ceil(2)
    };
    Policy::with_webhook_slots(
        handler,
        TenantSlots::new(total, runs.work_tenant_concurrency),
        TenantSlots::new(hooks, hooks_per_tenant),
        runs.work_max_attempts,
        shutdown.clone(),
    )
}

/// The consumer this process runs: the in-process queue's dispatcher or the Azure queue
/// poller (standalone mode; under the Functions host the queue trigger delivers instead).
fn worker(stored: &Stored, settings: &Settings, shutdown: &Shutdown) -> Worker {
    let runs = &settings.runs;
    let policy = policy(stored, settings, runs.work_concurrency, shutdown);
    match &stored.queue_impl {
        Queue::Local(queue) => {
            let queue = queue.clone();
            Box::pin(async move { queue.consume(policy).await.map_err(|e| e.to_string()) })
        }
        Queue::Azure(queue) => {
            let queue = queue.clone();
            let (concurrency, idle, lease) =
                (runs.work_concurrency, runs.queue_poll_max, runs.work_lease);
            Box::pin(async move {
                queue
                    .consume(policy, concurrency, idle, lease)
                    .await
                    .map_err(|e| e.to_string())
            })
        }
    }
}

impl App {
    pub fn new(settings: &Settings) -> Result<App, String> {
        Self::with_wrappers(settings, Wrappers::default())
    }

    /// `new`, with the store and the work queue the settings name given to `wrap` for every
    /// part of the app (tests wrap them in a store or queue that injects faults).
    pub fn with_wrappers(settings: &Settings, wrap: Wrappers) -> Result<App, String> {
        let shutdown = Shutdown::new(settings.runs.shutdown_grace);
        let (backend, stored): (Arc<dyn Backend>, Option<Stored>) = match &settings.backend {
            BackendSetting::Stored => {
                let stored = open_stored(settings, &shutdown, wrap)?;
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
                // The host decides how many it delivers at once.
                policy: policy(stored, settings, usize::MAX, &shutdown),
                queue: stored.queue.clone(),
            }),
            _ => None,
        };
        let worker = match (&stored, settings.custom_handler_port) {
            (Some(stored), None) => Some(worker(stored, settings, &shutdown)),
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
            shutdown,
            worker,
        })
    }

    /// The process's shutdown, which owns its background tasks.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
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

    /// Starts the code interpreter (its executor and self-test) in the background, so that
    /// its state is in the start-up log and the first run that needs it does not wait. The
    /// start-up is given up when the process stops first.
    pub fn start_code_interpreter(&self) {
        if let Some(stored) = &self.stored {
            let shared = stored.engine.code_interpreter().clone();
            let shutdown = self.shutdown.clone();
            self.shutdown.spawn(async move {
                tokio::select! {
                    _ = shared.get() => {}
                    () = shutdown.stopping() => {}
                }
            });
        }
    }

    /// Serves HTTP on `listener` and runs the work-queue consumer until `signal` resolves
    /// or one of them ends; then shuts down (see the module). `Err` says what ended
    /// before the signal.
    pub async fn run(
        mut self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        self.log_limits();
        let shutdown = self.shutdown.clone();
        let limits = self.settings.http.clone();
        let state = self.state.clone();
        let stopping = shutdown.clone();
        let mut http = Some(tokio::spawn(async move {
            http::server::serve(state, listener, &limits, async move {
                stopping.stopping().await
            })
            .await
        }));
        let mut worker = self.worker.take().map(tokio::spawn);
        let ended = tokio::select! {
            () = signal => Ended::Signal,
            ended = until_ended(&mut worker) => Ended::Worker(ended),
            ended = until_ended(&mut http) => Ended::Http(ended),
        };
        let failure = match ended {
            Ended::Signal => None,
            Ended::Worker(ended) => {
                worker = None;
                Some(match ended {
                    Ok(Ok(())) => "the work queue's consumer stopped".to_string(),
                    Ok(Err(e)) => format!("the work queue's consumer failed: {e}"),
                    Err(e) => format!("the work queue's consumer died: {e}"),
                })
            }
            Ended::Http(ended) => {
                http = None;
                Some(match ended {
                    Ok(()) => "the HTTP server stopped".to_string(),
                    Err(e) => format!("the HTTP server died: {e}"),
                })
            }
        };
        match &failure {
            None => log::info!(
                "stopping: no new work is taken; turns in progress have {:?} to finish",
                shutdown.grace()
            ),
            Some(why) => log::error!(
                "{why}; stopping the process, so that it is restarted rather than accept work \
                 nobody does"
            ),
        }
        shutdown.begin();
        let tasks: Vec<_> = (worker.iter().map(JoinHandle::abort_handle))
            .chain(http.iter().map(JoinHandle::abort_handle))
            .collect();
        let drained = tokio::time::timeout(shutdown.grace() + AFTER_GRACE, async {
            if let Some(consumer) = worker {
                match consumer.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => log::error!("the work queue's consumer failed: {e}"),
                    Err(e) => log::error!("the work queue's consumer died: {e}"),
                }
            }
            if let Some(server) = http {
                let _ = server.await;
            }
            shutdown.tasks_ended().await;
        })
        .await;
        if drained.is_err() {
            log::warn!(
                "still busy {:?} after the grace ({} background task(s)); stopping anyway",
                AFTER_GRACE,
                shutdown.tasks_running()
            );
            for task in tasks {
                task.abort();
            }
        }
        log::info!("stopped");
        failure.map_or(Ok(()), Err)
    }

    fn log_limits(&self) {
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
    }
}

/// What ended `App::run`'s serving.
enum Ended {
    Signal,
    Worker(Result<Result<(), String>, JoinError>),
    Http(Result<(), JoinError>),
}

/// Waits for the task in `task`, if any (forever otherwise).
async fn until_ended<T>(task: &mut Option<JoinHandle<T>>) -> Result<T, JoinError> {
    match task {
        Some(handle) => handle.await,
        None => std::future::pending().await,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn local_settings(dir: &Path) -> Settings {
        Settings::from_lookup(|name| match name {
            "STORAGE" => Some("local".into()),
            "DATA_DIR" => Some(dir.display().to_string()),
            "SHUTDOWN_GRACE_SECONDS" => Some("1".into()),
            _ => None,
        })
        .expect("settings")
    }

    /// Starts `app` on a free port; its address and the task running it.
    async fn start(app: App) -> (SocketAddr, JoinHandle<Result<(), String>>, impl FnOnce()) {
        let listener = bind(([127, 0, 0, 1], 0).into()).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(app.run(listener, async {
            let _ = stopped.await;
        }));
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(tokio::time::Instant::now() < until, "not serving");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (addr, running, move || {
            let _ = stop.send(());
        })
    }

    async fn ended(running: JoinHandle<Result<(), String>>) -> Result<(), String> {
        tokio::time::timeout(Duration::from_secs(10), running)
            .await
            .expect("the app stops within the grace and its margin")
            .expect("run does not panic")
    }

    #[tokio::test]
    async fn a_worker_that_dies_stops_the_server_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = App::new(&local_settings(dir.path())).unwrap();
        assert!(app.worker.is_some(), "standalone, the app runs a consumer");
        // The consumer dies once the server is seen serving (a timer could fire before
        // the first connection is accepted, on a busy machine).
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        app.worker = Some(Box::pin(async {
            let _ = killed.await;
            panic!("a bug in the consumer");
        }));
        let (addr, running, _stop) = start(app).await;
        let _ = kill.send(());
        let why = ended(running).await.unwrap_err();
        assert!(why.contains("consumer died"), "{why}");
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the listener is closed"
        );

        // A consumer that gives up (returns) ends it the same way.
        let mut app = App::new(&local_settings(dir.path())).unwrap();
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        app.worker = Some(Box::pin(async {
            let _ = killed.await;
            Err("its directory is gone".to_string())
        }));
        let (_, running, _stop) = start(app).await;
        let _ = kill.send(());
        let why = ended(running).await.unwrap_err();
        assert!(why.contains("failed: its directory is gone"), "{why}");
    }

    #[tokio::test]
    async fn the_signal_stops_the_server_and_its_consumer_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let app = App::new(&local_settings(dir.path())).unwrap();
        let shutdown = app.shutdown().clone();
        let (addr, running, stop) = start(app).await;
        assert!(!shutdown.is_stopping());
        let began = tokio::time::Instant::now();
        stop();
        assert_eq!(ended(running).await, Ok(()));
        // Nothing was in progress: no need to wait for the grace.
        assert!(
            began.elapsed() < Duration::from_secs(1),
            "{:?}",
            began.elapsed()
        );
        assert!(shutdown.is_stopping());
        assert_eq!(shutdown.tasks_running(), 0);
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
