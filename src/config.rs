//! Settings, read once at start-up from the environment (names as in the README and in
//! `local.settings.json.example`). A bad value stops start-up with a message naming the setting.

use crate::llm::LlmBackend;
use crate::store::connection_string::StorageAccount;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum StorageSetting {
    Local { data_dir: PathBuf },
    Azure { account: StorageAccount },
}

/// One configured API key: the key itself stays here; only its digest is compared.
#[derive(Clone)]
pub struct ApiKey {
    pub key: String,
    pub tenant: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey {{ tenant: {:?}, key: <hidden> }}", self.tenant)
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub port: u16,
    pub bind: IpAddr,
    pub storage: StorageSetting,
    /// Blob container that holds the state (Azure storage only).
    pub container: String,
    /// Name of the work queue.
    pub queue_name: String,
    pub api_keys: Vec<ApiKey>,
    /// Largest JSON request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Interval of SSE keep-alive comments while a stream is silent.
    pub sse_keep_alive: Duration,
    /// Events a stream may hold for a client that does not read them, in bytes; beyond,
    /// the stream is dropped (the run goes on).
    pub sse_buffer_bytes: usize,
    /// Connection limits of the HTTP server.
    pub http: HttpLimits,
    /// Set by the Functions host: then the binary serves as a custom handler on this port.
    pub custom_handler_port: Option<u16>,
    /// Where work items go: the in-process queue or the Azure Storage Queue.
    pub queue: QueueSetting,
    pub llm: LlmBackend,
    /// Where embeddings come from (the chat endpoint unless EMBEDDING_BASE_URL is set), and
    /// the model.
    pub embedding: (LlmBackend, String),
    pub runs: RunSettings,
    /// Limits of vector-store file ingestion.
    pub ingest: IngestSettings,
    /// What serves the API: the stored implementation, or a proxy to another server.
    pub backend: BackendSetting,
    /// The code_interpreter tool's executor (`CODE_INTERPRETER_*`).
    pub code_interpreter: CodeInterpreterSettings,
    /// Where run and vector-store events are pushed, signed (`WEBHOOK_*`).
    pub webhooks: WebhookSettings,
}

/// What one client connection may hold, and how long (the HTTP server's bounds).
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// A request head must arrive whole within this time of its first byte (or of the
    /// connection's opening).
    pub header_timeout: Duration,
    /// A kept-alive connection with no request is closed after this long.
    pub idle_timeout: Duration,
    /// A client that accepts no byte of an answer for this long is disconnected.
    pub write_timeout: Duration,
    /// Connections served at once; `None`: derived from RLIMIT_NOFILE at start-up.
    pub max_connections: Option<usize>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            // Longer than the pools of common clients keep idle connections (.NET's 60 s,
            // under the Functions host), so that a client seldom reuses one as it closes.
            idle_timeout: Duration::from_secs(75),
            write_timeout: Duration::from_secs(60),
            max_connections: None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum BackendSetting {
    Stored,
    Proxy {
        base_url: String,
        /// The key sent upstream for tenants without their own.
        api_key: Option<String>,
        /// Per-tenant upstream keys, so tenants stay apart upstream too.
        tenant_keys: HashMap<String, String>,
        timeout: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueSetting {
    /// In-process, persisted in `DATA_DIR/queue` (only with the local store).
    Local,
    /// The Azure Storage Queue `QUEUE_NAME` in the storage account.
    Azure,
}

/// How runs are advanced.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// How long a run waits in `requires_action` before it expires.
    pub expiry: Duration,
    /// Tries of one LLM call (with back-off) before the run fails.
    pub llm_max_attempts: u32,
    /// Longest wait between two LLM tries (a larger Retry-After fails the run).
    pub llm_max_retry_wait: Duration,
    /// Longest silence tolerated from the LLM while it answers.
    pub llm_idle_timeout: Duration,
    /// Deliveries of one work item before its run is failed.
    pub work_max_attempts: u32,
    /// Work items processed at once by this instance.
    pub work_concurrency: usize,
    /// Of those, at most this many of one tenant (the others wait their turn).
    pub work_tenant_concurrency: usize,
    /// The Azure queue poller's longest wait between polls when idle.
    pub queue_poll_max: Duration,
    /// How long a work item the Azure queue poller took stays invisible (renewed while its
    /// turn runs): after a crash, its items come back within this time.
    pub work_lease: Duration,
    /// A run whose state has not changed for this long while queued or in progress is
    /// handed to the queue again when it is read (heals a crash between write and enqueue).
    pub stall_after: Duration,
    /// On SIGTERM, how long turns in progress may go on before they are released to the
    /// queue (`SHUTDOWN_GRACE_SECONDS`).
    pub shutdown_grace: Duration,
    /// `openai-poll-after-ms` on run reads.
    pub poll_after_ms: u64,
    /// Largest file upload accepted (413 beyond).
    pub max_file_bytes: u64,
    /// Largest multipart part other than the file (`purpose`, `expires_after`...).
    pub max_field_bytes: usize,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            expiry: Duration::from_secs(600),
            llm_max_attempts: 3,
            llm_max_retry_wait: Duration::from_secs(30),
            llm_idle_timeout: Duration::from_secs(120),
            work_max_attempts: 5,
            work_concurrency: 64,
            work_tenant_concurrency: 16,
            queue_poll_max: Duration::from_millis(1000),
            work_lease: Duration::from_secs(60),
            stall_after: Duration::from_secs(600),
            // Short: what the Functions host gives a custom handler between SIGTERM and
            // SIGKILL is not documented (Azure/Azure-Functions#2490; container stops commonly
            // give 5 to 10 s), and a turn cut off is only taken again, by another instance.
            shutdown_grace: Duration::from_secs(4),
            poll_after_ms: 200,
            max_file_bytes: 512 * 1024 * 1024,
            max_field_bytes: 4096,
        }
    }
}

/// Webhooks (`WEBHOOK_*`): the endpoint each tenant's events go to, signed with its secret
/// as the Standard Webhooks scheme (and OpenAI's SDKs) verify them, and how deliveries are
/// retried. A tenant without an endpoint gets no events.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The endpoint of tenants without one of their own (`WEBHOOK_URL`, `WEBHOOK_SECRET`,
    /// `WEBHOOK_EVENTS`).
    pub default: Option<WebhookEndpoint>,
    /// Tenants' own endpoints (`WEBHOOK_TENANT_URLS`, `WEBHOOK_TENANT_SECRETS`,
    /// `WEBHOOK_TENANT_EVENTS`).
    pub tenants: HashMap<String, WebhookEndpoint>,
    /// Longest an attempt may take, connection included (`WEBHOOK_TIMEOUT_SECONDS`).
    pub timeout: Duration,
    /// Attempts go on until this long after the event (`WEBHOOK_RETRY_HOURS`); then the
    /// event is dead-lettered.
    pub retry_for: Duration,
    /// The first wait between attempts, doubled after each (`WEBHOOK_RETRY_BASE_MS`, a test
    /// knob), up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Deliveries in progress at once on this instance, apart from the runs' slots
    /// (`WEBHOOK_CONCURRENCY`).
    pub concurrency: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            default: None,
            tenants: HashMap::new(),
            timeout: Duration::from_secs(10),
            retry_for: Duration::from_secs(24 * 3600),
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(3600),
            concurrency: 8,
        }
    }
}

impl WebhookSettings {
    /// The endpoint of `tenant`'s events, if it has one.
    pub fn endpoint(&self, tenant: &str) -> Option<&WebhookEndpoint> {
        self.tenants.get(tenant).or(self.default.as_ref())
    }
}

/// Where one tenant's events go.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    pub url: String,
    pub secret: WebhookSecret,
    /// Event types sent; all when `None`.
    pub events: Option<Vec<String>>,
}

impl WebhookEndpoint {
    pub fn wants(&self, event_type: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| t == event_type))
    }
}

/// The HMAC key of a webhook secret: the base64 after `whsec_`, or the secret's own bytes
/// (as the SDKs read it). Never shown.
#[derive(Clone)]
pub struct WebhookSecret(pub Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<hidden>)")
    }
}

impl WebhookSecret {
    /// The key of `secret` as the SDKs derive it; `Err` says what is wrong, without the
    /// secret.
    pub fn parse(secret: &str) -> Result<WebhookSecret, String> {
        use base64::Engine as _;
        let key = match secret.strip_prefix("whsec_") {
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| "a whsec_ secret must be followed by base64".to_string())?,
            None => secret.as_bytes().to_vec(),
        };
        if key.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(WebhookSecret(key))
    }
}

/// The event types this service sends (`WEBHOOK_EVENTS` may name only these).
pub const WEBHOOK_EVENT_TYPES: &[&str] = &[
    "thread.run.requires_action",
    "thread.run.completed",
    "thread.run.failed",
    "thread.run.cancelled",
    "thread.run.expired",
    "thread.run.incomplete",
    "vector_store.file.completed",
    "vector_store.file.failed",
    "vector_store.file_batch.completed",
    "vector_store.file_batch.failed",
    "response.completed",
    "response.failed",
    "response.cancelled",
    "response.incomplete",
];

/// A list of event types separated by `separator`, each one this service sends.
fn event_types(
    name: &'static str,
    raw: &str,
    separator: char,
) -> Result<Option<Vec<String>>, SettingError> {
    let types: Vec<String> = raw
        .split(separator)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(unknown) = types
        .iter()
        .find(|t| !WEBHOOK_EVENT_TYPES.contains(&t.as_str()))
    {
        return Err(err(
            name,
            format!(
                "{unknown:?} is not an event type (one of {})",
                WEBHOOK_EVENT_TYPES.join(", ")
            ),
        ));
    }
    Ok((!types.is_empty()).then_some(types))
}

fn webhook_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<WebhookSettings, SettingError> {
    let d = WebhookSettings::default();
    let secret =
        |name: &'static str, raw: &str| WebhookSecret::parse(raw).map_err(|m| err(name, m));
    let default_secret = match get("WEBHOOK_SECRET") {
        Some(raw) => Some(secret("WEBHOOK_SECRET", raw.trim())?),
        None => None,
    };
    let default_events = event_types(
        "WEBHOOK_EVENTS",
        &get("WEBHOOK_EVENTS").unwrap_or_default(),
        ',',
    )?;
    let default = match get("WEBHOOK_URL") {
        Some(url) => Some(WebhookEndpoint {
            url: http_url("WEBHOOK_URL", url.trim(), "an http(s) URL")?,
            secret: default_secret.clone().ok_or_else(|| {
                err(
                    "WEBHOOK_SECRET",
                    "is required with WEBHOOK_URL (whsec_ and base64)",
                )
            })?,
            events: default_events.clone(),
        }),
        None => None,
    };
    let urls = key_value_map(
        "WEBHOOK_TENANT_URLS",
        &get("WEBHOOK_TENANT_URLS").unwrap_or_default(),
        "tenant=url",
    )?;
    let secrets = key_value_map(
        "WEBHOOK_TENANT_SECRETS",
        &get("WEBHOOK_TENANT_SECRETS").unwrap_or_default(),
        "tenant=secret",
    )?;
    let events = key_value_map(
        "WEBHOOK_TENANT_EVENTS",
        &get("WEBHOOK_TENANT_EVENTS").unwrap_or_default(),
        "tenant=type|type...",
    )?;
    for (name, map) in [
        ("WEBHOOK_TENANT_URLS", &urls),
        ("WEBHOOK_TENANT_SECRETS", &secrets),
        ("WEBHOOK_TENANT_EVENTS", &events),
    ] {
        if let Some(bad) = map.keys().find(|t| !valid_tenant(t)) {
            return Err(err(
                name,
                format!("{:?} is not a tenant name", crate::error::shown(bad)),
            ));
        }
    }
    let mut tenants = HashMap::new();
    for (tenant, url) in &urls {
        let secret = match secrets.get(tenant) {
            Some(raw) => secret("WEBHOOK_TENANT_SECRETS", raw)?,
            None => default_secret.clone().ok_or_else(|| {
                err(
                    "WEBHOOK_TENANT_SECRETS",
                    format!("has no secret for tenant {tenant:?}, and WEBHOOK_SECRET is not set"),
                )
            })?,
        };
        let events = match events.get(tenant) {
            Some(raw) => event_types("WEBHOOK_TENANT_EVENTS", raw, '|')?,
            None => default_events.clone(),
        };
        tenants.insert(
            tenant.clone(),
            WebhookEndpoint {
                url: http_url("WEBHOOK_TENANT_URLS", url, "tenant=url with an http(s) URL")?,
                secret,
                events,
            },
        );
    }
    for (name, map) in [
        ("WEBHOOK_TENANT_SECRETS", &secrets),
        ("WEBHOOK_TENANT_EVENTS", &events),
    ] {
        if let Some(tenant) = map.keys().find(|t| !urls.contains_key(*t)) {
            return Err(err(
                name,
                format!("names tenant {tenant:?}, which has no URL in WEBHOOK_TENANT_URLS"),
            ));
        }
    }
    let seconds = |name: &'static str, default: f64, rule: &str| {
        number(
            get,
            name,
            default,
            |n: &f64| *n > 0.0 && n.is_finite(),
            rule,
        )
    };
    let timeout = seconds(
        "WEBHOOK_TIMEOUT_SECONDS",
        d.timeout.as_secs_f64(),
        "a positive number of seconds",
    )?;
    let hours = seconds("WEBHOOK_RETRY_HOURS", 24.0, "a positive number of hours")?;
    let base_ms = number(
        get,
        "WEBHOOK_RETRY_BASE_MS",
        5000u64,
        |n| *n >= 1,
        "a positive number of milliseconds",
    )?;
    let concurrency = number(
        get,
        "WEBHOOK_CONCURRENCY",
        d.concurrency,
        |n| *n >= 1,
        "a number >= 1",
    )?;
    Ok(WebhookSettings {
        default,
        tenants,
        timeout: Duration::from_secs_f64(timeout.min(3600.0)),
        retry_for: Duration::from_secs_f64((hours * 3600.0).min(1e9)),
        retry_base: Duration::from_millis(base_ms),
        retry_cap: d.retry_cap.max(Duration::from_millis(base_ms)),
        concurrency,
    })
}

/// Limits of vector-store file ingestion: text is extracted in a child process (this
/// binary, `__extract`) with these rlimits, so a hostile document can cost that process its
/// life but never the service's (see `retrieval::extractor`).
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// The program run for extraction: this binary (a library embedder, such as the tests,
    /// names the service binary).
    pub extractor: PathBuf,
    /// Files extracted and tokenized at once.
    pub concurrency: usize,
    /// Of those, at most this many of one tenant (half, when the keys name several).
    pub tenant_concurrency: usize,
    /// Address-space limit of the extraction process.
    pub memory_bytes: u64,
    /// CPU-time limit of the extraction process (its wall-clock limit is twice that).
    pub cpu_seconds: u64,
    /// Most text taken out of one file; a file with more fails.
    pub max_text_bytes: u64,
    /// Most tokens of one file (OpenAI documents 5,000,000); a file with more fails.
    pub max_tokens: usize,
    /// Largest decompressed stream inside a document (a PDF stream, a DOCX part).
    pub max_stream_bytes: u64,
    /// Memory the cached search indexes of vector stores may take together.
    pub search_cache_bytes: u64,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            extractor: std::env::current_exe()
                .unwrap_or_else(|_| PathBuf::from("assistants-service")),
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            tenant_concurrency: 1,
            memory_bytes: 1024 << 20,
            cpu_seconds: 60,
            max_text_bytes: 32 << 20,
            max_tokens: 5_000_000,
            max_stream_bytes: 256 << 20,
            search_cache_bytes: 1024 << 20,
        }
    }
}

/// `tenants`: how many tenants the keys name (a lone tenant is not limited to a share).
fn ingest_settings(
    get: &dyn Fn(&str) -> Option<String>,
    tenants: usize,
) -> Result<IngestSettings, SettingError> {
    let d = IngestSettings::default();
    let concurrency = number(
        get,
        "INGEST_CONCURRENCY",
        d.concurrency,
        |n| *n >= 1,
        "a count >= 1",
    )?;
    let mb = |name: &'static str, default: u64, least: u64| {
        number(
            get,
            name,
            default >> 20,
            // At most 2^30 MB, so that the byte count cannot overflow.
            |n| (least..=1 << 30).contains(n),
            &format!("a number of MB >= {least}"),
        )
        .map(|n| n << 20)
    };
    Ok(IngestSettings {
        extractor: get("INGEST_EXTRACTOR").map_or(d.extractor, PathBuf::from),
        concurrency,
        tenant_concurrency: if tenants > 1 {
            concurrency.div_ceil(2)
        } else {
            concurrency
        },
        memory_bytes: mb("INGEST_MEMORY_MB", d.memory_bytes, 64)?,
        cpu_seconds: number(
            get,
            "INGEST_CPU_SECONDS",
            d.cpu_seconds,
            |n| *n >= 1,
            "a number of seconds >= 1",
        )?,
        max_text_bytes: mb("INGEST_MAX_TEXT_MB", d.max_text_bytes, 1)?,
        max_tokens: number(
            get,
            "INGEST_MAX_TOKENS",
            d.max_tokens,
            |n| *n >= 1,
            "a count >= 1",
        )?,
        max_stream_bytes: mb("INGEST_MAX_STREAM_MB", d.max_stream_bytes, 1)?,
        search_cache_bytes: mb("SEARCH_CACHE_MB", d.search_cache_bytes, 1)?,
    })
}

/// The tenant of requests made with a key that names none (and of open mode).
pub const DEFAULT_TENANT: &str = "default";

#[derive(Debug, thiserror::Error)]
#[error("setting {name}: {message}")]
pub struct SettingError {
    pub name: &'static str,
    pub message: String,
}

fn err(name: &'static str, message: impl Into<String>) -> SettingError {
    SettingError {
        name,
        message: message.into(),
    }
}

/// The base URL of an HTTP endpoint, without its trailing slashes (the clients append paths):
/// `value` must start with `http://` or `https://`, else the error says it "must be {what}".
fn http_url(name: &'static str, value: &str, what: &str) -> Result<String, SettingError> {
    let url = value.trim_end_matches('/');
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.to_string())
    } else {
        Err(err(name, format!("must be {what}")))
    }
}

/// The entries of a comma-separated `key=value` list, each side trimmed, empty entries
/// skipped; the value is `None` for an entry without `=`.
fn list_entries(raw: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    raw.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| match e.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value.trim())),
            None => (e, None),
        })
}

/// A `key=value` list in which every entry has a value (else the error says entries "must be
/// {shape}"); a later entry for a key replaces an earlier one.
fn key_value_map(
    name: &'static str,
    raw: &str,
    shape: &str,
) -> Result<HashMap<String, String>, SettingError> {
    list_entries(raw)
        .map(|(key, value)| match value {
            Some(value) => Ok((key.to_string(), value.to_string())),
            None => Err(err(name, format!("entries must be {shape}"))),
        })
        .collect()
}

pub fn valid_tenant(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn number<T: std::str::FromStr>(
    get: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    valid: impl Fn(&T) -> bool,
    rule: &str,
) -> Result<T, SettingError> {
    match get(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<T>()
            .ok()
            .filter(|n| valid(n))
            .ok_or_else(|| err(name, format!("{v:?} is not {rule}"))),
    }
}

/// `tenants`: how many tenants the keys name (a lone tenant is not limited to a share).
fn run_settings(
    get: &dyn Fn(&str) -> Option<String>,
    tenants: usize,
) -> Result<RunSettings, SettingError> {
    let d = RunSettings::default();
    let work_concurrency = number(
        get,
        "WORK_CONCURRENCY",
        d.work_concurrency,
        |n| *n >= 1,
        "a count >= 1",
    )?;
    let secs = |name: &'static str, default: Duration| {
        number(
            get,
            name,
            default.as_secs_f64(),
            |n| *n > 0.0,
            "a positive number of seconds",
        )
        .map(Duration::from_secs_f64)
    };
    Ok(RunSettings {
        expiry: secs("RUN_EXPIRY_SECONDS", d.expiry)?,
        llm_max_attempts: number(
            get,
            "LLM_MAX_ATTEMPTS",
            d.llm_max_attempts,
            |n| (1..=crate::model::run::MAX_ATTEMPTS).contains(n),
            "a count from 1 to 8",
        )?,
        llm_max_retry_wait: secs("LLM_MAX_RETRY_WAIT_SECONDS", d.llm_max_retry_wait)?,
        llm_idle_timeout: secs("LLM_TIMEOUT_SECONDS", d.llm_idle_timeout)?,
        work_max_attempts: number(
            get,
            "WORK_MAX_ATTEMPTS",
            d.work_max_attempts,
            |n| *n >= 1,
            "a count >= 1",
        )?,
        work_concurrency,
        work_tenant_concurrency: number(
            get,
            "WORK_TENANT_CONCURRENCY",
            if tenants > 1 {
                (work_concurrency / 4).max(1)
            } else {
                work_concurrency
            },
            |n| *n >= 1,
            "a count >= 1",
        )?,
        queue_poll_max: Duration::from_millis(number(
            get,
            "QUEUE_POLL_MAX_MS",
            d.queue_poll_max.as_millis() as u64,
            |n| *n >= 10,
            "a number of milliseconds >= 10",
        )?),
        work_lease: secs("WORK_LEASE_SECONDS", d.work_lease)?,
        stall_after: secs("RUN_STALL_SECONDS", d.stall_after)?,
        // 0 is allowed: release what is in progress at once.
        shutdown_grace: Duration::from_secs_f64(number(
            get,
            "SHUTDOWN_GRACE_SECONDS",
            d.shutdown_grace.as_secs_f64(),
            |n| (0.0..=3600.0).contains(n),
            "a number of seconds from 0 to 3600",
        )?),
        poll_after_ms: d.poll_after_ms,
        max_file_bytes: number(
            get,
            "FILE_MAX_BYTES",
            d.max_file_bytes,
            |n| *n >= 1,
            "a number of bytes",
        )?,
        max_field_bytes: number(
            get,
            "MULTIPART_FIELD_MAX_BYTES",
            d.max_field_bytes,
            |n| (64..=1 << 20).contains(n),
            "a number of bytes from 64 to 1048576",
        )?,
    })
}

fn http_limits(get: &dyn Fn(&str) -> Option<String>) -> Result<HttpLimits, SettingError> {
    let d = HttpLimits::default();
    let secs = |name: &'static str, default: Duration| {
        number(
            get,
            name,
            default.as_secs_f64(),
            |n| *n > 0.0 && *n <= 86_400.0,
            "a number of seconds from 0 to 86400",
        )
        .map(Duration::from_secs_f64)
    };
    Ok(HttpLimits {
        header_timeout: secs("HTTP_HEADER_TIMEOUT_SECONDS", d.header_timeout)?,
        idle_timeout: secs("HTTP_IDLE_TIMEOUT_SECONDS", d.idle_timeout)?,
        write_timeout: secs("HTTP_WRITE_TIMEOUT_SECONDS", d.write_timeout)?,
        max_connections: match get("HTTP_MAX_CONNECTIONS") {
            None => None,
            Some(_) => Some(number(
                get,
                "HTTP_MAX_CONNECTIONS",
                0,
                |n| *n >= 1,
                "a count >= 1",
            )?),
        },
    })
}

fn llm_backend(get: &dyn Fn(&str) -> Option<String>) -> Result<LlmBackend, SettingError> {
    if let Some(endpoint) = get("AZURE_OPENAI_ENDPOINT") {
        let endpoint = http_url("AZURE_OPENAI_ENDPOINT", &endpoint, "an http(s) URL")?;
        let api_key = get("AZURE_OPENAI_API_KEY").ok_or_else(|| {
            err(
                "AZURE_OPENAI_API_KEY",
                "is required with AZURE_OPENAI_ENDPOINT",
            )
        })?;
        let deployments = key_value_map(
            "AZURE_OPENAI_DEPLOYMENTS",
            &get("AZURE_OPENAI_DEPLOYMENTS").unwrap_or_default(),
            "model=deployment",
        )?;
        return Ok(LlmBackend::Azure {
            endpoint,
            api_key,
            api_version: get("AZURE_OPENAI_API_VERSION").unwrap_or_else(|| "2024-10-21".into()),
            deployments,
        });
    }
    let base_url = http_url(
        "OPENAI_BASE_URL",
        &get("OPENAI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into()),
        "an http(s) URL",
    )?;
    Ok(LlmBackend::OpenAi {
        base_url,
        api_key: get("OPENAI_API_KEY"),
    })
}

fn parse_api_keys(raw: &str) -> Result<Vec<ApiKey>, SettingError> {
    let mut keys = Vec::new();
    for (key, tenant) in list_entries(raw) {
        let tenant = tenant.unwrap_or(DEFAULT_TENANT);
        if key.is_empty() {
            return Err(err("ASSISTANTS_API_KEYS", "an entry has an empty key"));
        }
        if !valid_tenant(tenant) {
            return Err(err(
                "ASSISTANTS_API_KEYS",
                format!("tenant {tenant:?} must be 1-64 letters, digits, '-' or '_'"),
            ));
        }
        keys.push(ApiKey {
            key: key.to_string(),
            tenant: tenant.to_string(),
        });
    }
    Ok(keys)
}

/// Azure container names: 3-63 lowercase letters, digits and single hyphens.
fn valid_container(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// Which executor runs code_interpreter cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeInterpreterMode {
    /// Azure when a pool endpoint is set; otherwise the local sandbox when its self-test
    /// passes (never under the Functions host); otherwise off.
    Auto,
    Local,
    Azure,
    Off,
}

/// `CODE_INTERPRETER_*` settings. Secrets (the session key, the identity header) are not
/// shown by `Debug`.
#[derive(Clone)]
pub struct CodeInterpreterSettings {
    pub mode: CodeInterpreterMode,
    /// Wall-clock limit of one cell (at most 220 s, ACA's limit).
    pub cell_timeout: Duration,
    /// A local session idle this long is ended (ACA pools have their own cooldown).
    pub idle_timeout: Duration,
    /// Secret from which session ids are derived (`CODE_INTERPRETER_SESSION_KEY`); required
    /// with Azure, where sessions outlive the process and are shared by instances.
    pub session_key: Option<String>,
    /// DATA_DIR, which the sandbox must not see.
    pub data_dir: PathBuf,
    pub bwrap: PathBuf,
    pub python: PathBuf,
    pub memory_bytes: u64,
    pub cpu_seconds: u64,
    pub max_processes: u32,
    pub max_file_bytes: u64,
    /// Size of a local session's `/mnt/data` (all its files).
    pub disk_bytes: u64,
    pub max_sessions: usize,
    /// Local sessions one tenant may hold at once.
    pub tenant_sessions: usize,
    /// What one cell may export into the store: files, and bytes of files and figures.
    pub max_export_files: usize,
    pub max_export_bytes: u64,
    pub sandbox_uid: u32,
    /// The pool management endpoint of an ACA code-interpreter session pool.
    pub pool_endpoint: Option<String>,
    /// App Service / Functions managed identity endpoint (set by the platform).
    pub identity_endpoint: Option<String>,
    pub identity_header: Option<String>,
    /// Client id of a user-assigned identity (none: the system-assigned one).
    pub identity_client_id: Option<String>,
}

impl std::fmt::Debug for CodeInterpreterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeInterpreterSettings")
            .field("mode", &self.mode)
            .field("cell_timeout", &self.cell_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field(
                "session_key",
                &self.session_key.as_ref().map(|_| "<hidden>"),
            )
            .field("memory_bytes", &self.memory_bytes)
            .field("disk_bytes", &self.disk_bytes)
            .field("max_sessions", &self.max_sessions)
            .field("tenant_sessions", &self.tenant_sessions)
            .field("pool_endpoint", &self.pool_endpoint)
            .field("identity_endpoint", &self.identity_endpoint)
            .field(
                "identity_header",
                &self.identity_header.as_ref().map(|_| "<hidden>"),
            )
            .finish_non_exhaustive()
    }
}

/// `tenants`: how many tenants the API keys name (0 when the API is open), which shares
/// the local sessions out by default.
fn code_interpreter_settings(
    get: &dyn Fn(&str) -> Option<String>,
    tenants: usize,
) -> Result<CodeInterpreterSettings, SettingError> {
    let mode = match get("CODE_INTERPRETER")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("auto") => CodeInterpreterMode::Auto,
        Some("local") => CodeInterpreterMode::Local,
        Some("azure") => CodeInterpreterMode::Azure,
        Some("off") => CodeInterpreterMode::Off,
        Some(other) => {
            return Err(err(
                "CODE_INTERPRETER",
                format!("{other:?} is not one of auto, local, azure, off"),
            ))
        }
    };
    let secs = |name: &'static str, default: f64, max: f64| {
        number(
            get,
            name,
            default,
            |n| *n > 0.0 && *n <= max,
            &format!("a number of seconds from 0 to {max}"),
        )
        .map(Duration::from_secs_f64)
    };
    let megabytes = |name: &'static str, default: u64| {
        number(
            get,
            name,
            default,
            // At most 2^30 MB, so that the byte count cannot overflow.
            |n| (16..=1 << 30).contains(n),
            "a number of megabytes >= 16",
        )
        .map(|n| n << 20)
    };
    let pool_endpoint = match get("CODE_INTERPRETER_POOL_ENDPOINT") {
        Some(url) => Some(http_url(
            "CODE_INTERPRETER_POOL_ENDPOINT",
            url.trim(),
            "the pool management endpoint, https://<region>.dynamicsessions.io/subscriptions/.../sessionPools/<pool>",
        )?),
        None => None,
    };
    let session_key = get("CODE_INTERPRETER_SESSION_KEY");
    if let Some(key) = &session_key {
        if key.len() < 16 {
            return Err(err(
                "CODE_INTERPRETER_SESSION_KEY",
                "must be at least 16 characters of a random secret",
            ));
        }
    }
    let uses_azure = mode == CodeInterpreterMode::Azure
        || (mode == CodeInterpreterMode::Auto && pool_endpoint.is_some());
    if uses_azure && pool_endpoint.is_none() {
        return Err(err(
            "CODE_INTERPRETER_POOL_ENDPOINT",
            "is required with CODE_INTERPRETER=azure",
        ));
    }
    if uses_azure && session_key.is_none() {
        return Err(err(
            "CODE_INTERPRETER_SESSION_KEY",
            "is required with an Azure session pool (sessions outlive the process and are shared by instances)",
        ));
    }
    let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "./data".into()));
    let max_sessions: usize = number(
        get,
        "CODE_INTERPRETER_MAX_SESSIONS",
        8,
        |n| *n >= 1,
        "a count >= 1",
    )?;
    // An equal share of all by default: no tenant can then keep another from its sessions
    // (with the default 8 and two tenants, 4 each), and a single tenant has them all.
    let tenant_sessions: usize = number(
        get,
        "CODE_INTERPRETER_TENANT_SESSIONS",
        (max_sessions / tenants.max(1)).max(1),
        |n| *n >= 1 && *n <= max_sessions,
        &format!("a count from 1 to CODE_INTERPRETER_MAX_SESSIONS ({max_sessions})"),
    )?;
    Ok(CodeInterpreterSettings {
        mode,
        cell_timeout: secs("CODE_INTERPRETER_TIMEOUT_SECONDS", 60.0, 220.0)?,
        idle_timeout: secs("CODE_INTERPRETER_IDLE_SECONDS", 3600.0, 86400.0)?,
        session_key,
        data_dir,
        bwrap: PathBuf::from(
            get("CODE_INTERPRETER_BWRAP").unwrap_or_else(|| "/usr/bin/bwrap".into()),
        ),
        python: PathBuf::from(
            get("CODE_INTERPRETER_PYTHON").unwrap_or_else(|| "/usr/bin/python3".into()),
        ),
        memory_bytes: megabytes("CODE_INTERPRETER_MEMORY_MB", 2048)?,
        cpu_seconds: number(
            get,
            "CODE_INTERPRETER_CPU_SECONDS",
            3600,
            |n| *n >= 1,
            "a number of seconds >= 1",
        )?,
        max_processes: number(
            get,
            "CODE_INTERPRETER_MAX_PROCESSES",
            64,
            |n| *n >= 8,
            "a count >= 8",
        )?,
        max_file_bytes: megabytes("CODE_INTERPRETER_MAX_FILE_MB", 512)?,
        disk_bytes: megabytes("CODE_INTERPRETER_DISK_MB", 1024)?,
        max_sessions,
        tenant_sessions,
        max_export_files: number(
            get,
            "CODE_INTERPRETER_MAX_EXPORT_FILES",
            32,
            |_| true,
            "a count",
        )?,
        max_export_bytes: number(
            get,
            "CODE_INTERPRETER_MAX_EXPORT_MB",
            100u64,
            |n| (1..=1 << 20).contains(n),
            "a number of megabytes >= 1",
        )? << 20,
        sandbox_uid: number(
            get,
            "CODE_INTERPRETER_SANDBOX_UID",
            65534,
            |n| *n != 0,
            "a uid other than 0",
        )?,
        pool_endpoint,
        identity_endpoint: get("IDENTITY_ENDPOINT"),
        identity_header: get("IDENTITY_HEADER"),
        identity_client_id: get("CODE_INTERPRETER_AZURE_CLIENT_ID"),
    })
}

impl Settings {
    /// Reads the settings through `get` (the process environment in `from_env`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let custom_handler_port = match get("FUNCTIONS_CUSTOMHANDLER_PORT") {
            Some(v) => Some(
                v.parse::<u16>()
                    .map_err(|_| err("FUNCTIONS_CUSTOMHANDLER_PORT", "must be a port number"))?,
            ),
            None => None,
        };
        let port = match get("PORT") {
            Some(v) => v
                .parse::<u16>()
                .map_err(|_| err("PORT", format!("{v:?} is not a port number")))?,
            None => 8080,
        };
        let bind: IpAddr = match get("BIND") {
            Some(v) => v
                .parse()
                .map_err(|_| err("BIND", format!("{v:?} is not an IP address")))?,
            None => IpAddr::from([127, 0, 0, 1]),
        };
        let connection_string =
            get("STORAGE_CONNECTION_STRING").or_else(|| get("AzureWebJobsStorage"));
        let storage_kind = match get("STORAGE") {
            Some(v) => v.to_ascii_lowercase(),
            None if connection_string.is_some() => "azure".into(),
            None => "local".into(),
        };
        let storage = match storage_kind.as_str() {
            "local" => StorageSetting::Local {
                data_dir: PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "./data".into())),
            },
            "azure" => {
                let cs = connection_string.ok_or_else(|| {
                    err(
                        "STORAGE_CONNECTION_STRING",
                        "STORAGE=azure needs STORAGE_CONNECTION_STRING or AzureWebJobsStorage",
                    )
                })?;
                let account = StorageAccount::parse(&cs).map_err(|m| {
                    err("STORAGE_CONNECTION_STRING", format!("cannot be used: {m}"))
                })?;
                StorageSetting::Azure { account }
            }
            other => {
                return Err(err(
                    "STORAGE",
                    format!("{other:?} is neither \"local\" nor \"azure\""),
                ))
            }
        };
        let container = get("STORAGE_CONTAINER").unwrap_or_else(|| "assistants".into());
        if !valid_container(&container) {
            return Err(err(
                "STORAGE_CONTAINER",
                "must be 3-63 lowercase letters, digits or single hyphens",
            ));
        }
        let queue_name = get("QUEUE_NAME").unwrap_or_else(|| "work".into());
        if !valid_container(&queue_name) {
            return Err(err(
                "QUEUE_NAME",
                "must be 3-63 lowercase letters, digits or single hyphens",
            ));
        }
        let queue = match get("QUEUE").map(|q| q.to_ascii_lowercase()).as_deref() {
            Some("local") => QueueSetting::Local,
            Some("azure") => QueueSetting::Azure,
            None => match storage {
                StorageSetting::Local { .. } => QueueSetting::Local,
                StorageSetting::Azure { .. } => QueueSetting::Azure,
            },
            Some(other) => {
                return Err(err(
                    "QUEUE",
                    format!("{other:?} is neither \"local\" nor \"azure\""),
                ))
            }
        };
        if queue == QueueSetting::Azure && matches!(storage, StorageSetting::Local { .. }) {
            return Err(err(
                "QUEUE",
                "the Azure queue needs Azure storage (STORAGE=azure)",
            ));
        }
        if queue == QueueSetting::Local && matches!(storage, StorageSetting::Azure { .. }) {
            return Err(err(
                "QUEUE",
                "the in-process queue keeps its items in DATA_DIR, so it needs the local store",
            ));
        }
        let lookup = |name: &str| get(name);
        let llm = llm_backend(&lookup)?;
        let embedding_backend = match get("EMBEDDING_BASE_URL") {
            Some(url) => LlmBackend::OpenAi {
                base_url: http_url("EMBEDDING_BASE_URL", &url, "an http(s) URL")?,
                api_key: get("EMBEDDING_API_KEY").or_else(|| get("OPENAI_API_KEY")),
            },
            None => llm.clone(),
        };
        let embedding = (
            embedding_backend,
            get("EMBEDDING_MODEL").unwrap_or_else(|| "text-embedding-3-small".into()),
        );
        let api_keys = parse_api_keys(&get("ASSISTANTS_API_KEYS").unwrap_or_default())?;
        let tenants = api_keys
            .iter()
            .map(|k| k.tenant.as_str())
            .collect::<std::collections::HashSet<_>>()
            .len();
        let runs = run_settings(&lookup, tenants)?;
        let ingest = ingest_settings(&lookup, tenants)?;
        let max_body_bytes = match get("MAX_REQUEST_BYTES") {
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1024)
                .ok_or_else(|| err("MAX_REQUEST_BYTES", "must be a number of bytes >= 1024"))?,
            None => 8 * 1024 * 1024,
        };
        let sse_keep_alive = Duration::from_secs_f64(number(
            &|n: &str| get(n),
            "SSE_KEEPALIVE_SECONDS",
            15.0,
            |n| *n > 0.0,
            "a positive number of seconds",
        )?);
        let sse_buffer_bytes = number(
            &|n: &str| get(n),
            "SSE_BUFFER_BYTES",
            1 << 20,
            |n| *n >= 4096,
            "a number of bytes >= 4096",
        )?;
        let http = http_limits(&lookup)?;
        let backend = match get("BACKEND").map(|b| b.to_ascii_lowercase()).as_deref() {
            None | Some("stored") => BackendSetting::Stored,
            Some("proxy") => {
                let base_url = http_url(
                    "UPSTREAM_BASE_URL",
                    &get("UPSTREAM_BASE_URL").ok_or_else(|| {
                        err("UPSTREAM_BASE_URL", "is required with BACKEND=proxy")
                    })?,
                    "an http(s) URL ending in /v1",
                )?;
                let tenant_keys = key_value_map(
                    "UPSTREAM_TENANT_KEYS",
                    &get("UPSTREAM_TENANT_KEYS").unwrap_or_default(),
                    "tenant=key",
                )?;
                BackendSetting::Proxy {
                    base_url,
                    tenant_keys,
                    api_key: get("UPSTREAM_API_KEY"),
                    timeout: Duration::from_secs_f64(number(
                        &|n: &str| get(n),
                        "UPSTREAM_TIMEOUT_SECONDS",
                        300.0,
                        |n| *n > 0.0,
                        "a positive number of seconds",
                    )?),
                }
            }
            Some(other) => {
                return Err(err(
                    "BACKEND",
                    format!("{other:?} is neither \"stored\" nor \"proxy\""),
                ))
            }
        };
        let tenants: std::collections::HashSet<&str> =
            api_keys.iter().map(|k| k.tenant.as_str()).collect();
        let code_interpreter = code_interpreter_settings(&lookup, tenants.len())?;
        let webhooks = webhook_settings(&lookup)?;
        let settings = Settings {
            webhooks,
            ingest,
            port,
            bind,
            storage,
            container,
            queue_name,
            api_keys,
            max_body_bytes,
            sse_keep_alive,
            sse_buffer_bytes,
            http,
            custom_handler_port,
            queue,
            llm,
            embedding,
            runs,
            backend,
            code_interpreter,
        };
        if settings.api_keys.is_empty()
            && settings.custom_handler_port.is_some()
            && !get("ASSISTANTS_ALLOW_OPEN").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            // Under the Functions host the loopback port is reachable from the internet
            // through the host's proxy: no keys would mean an open API.
            return Err(err(
                "ASSISTANTS_API_KEYS",
                "is required under the Azure Functions host (set ASSISTANTS_ALLOW_OPEN=true \
                 to run without keys, e.g. locally)",
            ));
        }
        if settings.api_keys.is_empty() && !settings.bind.is_loopback() {
            return Err(err(
                "ASSISTANTS_API_KEYS",
                format!(
                    "no API keys are configured, so the service is open to anyone; it will only \
                     bind a loopback address, not BIND={}",
                    settings.bind
                ),
            ));
        }
        Ok(settings)
    }

    pub fn from_env() -> Result<Self, SettingError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_local_on_loopback_8080() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.port, 8080);
        assert!(s.bind.is_loopback());
        assert!(matches!(s.storage, StorageSetting::Local { .. }));
        assert!(
            matches!(s.llm, LlmBackend::OpenAi { ref base_url, .. } if base_url == "https://api.openai.com/v1")
        );
        assert_eq!(s.queue, QueueSetting::Local);
        assert_eq!(s.runs.expiry, Duration::from_secs(600));
    }

    #[test]
    fn a_connection_string_selects_azure() {
        let s = settings(&[("AzureWebJobsStorage", "UseDevelopmentStorage=true")]).unwrap();
        assert!(matches!(s.storage, StorageSetting::Azure { .. }));
    }

    #[test]
    fn bad_settings_name_the_setting() {
        assert_eq!(settings(&[("PORT", "x")]).unwrap_err().name, "PORT");
        assert_eq!(settings(&[("STORAGE", "s3")]).unwrap_err().name, "STORAGE");
        assert_eq!(
            settings(&[("STORAGE", "azure")]).unwrap_err().name,
            "STORAGE_CONNECTION_STRING"
        );
        assert_eq!(
            settings(&[("ASSISTANTS_API_KEYS", "k=bad tenant")])
                .unwrap_err()
                .name,
            "ASSISTANTS_API_KEYS"
        );
    }

    #[test]
    fn hostile_input_bounds_have_defaults_and_name_their_setting() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.runs.max_field_bytes, 4096);
        assert_eq!(s.sse_buffer_bytes, 1 << 20);
        assert_eq!(s.http.header_timeout, Duration::from_secs(10));
        assert_eq!(s.http.idle_timeout, Duration::from_secs(75));
        assert_eq!(s.http.write_timeout, Duration::from_secs(60));
        assert_eq!(s.http.max_connections, None);
        let s = settings(&[
            ("MULTIPART_FIELD_MAX_BYTES", "1024"),
            ("SSE_BUFFER_BYTES", "65536"),
            ("HTTP_HEADER_TIMEOUT_SECONDS", "2.5"),
            ("HTTP_MAX_CONNECTIONS", "100"),
        ])
        .unwrap();
        assert_eq!(s.runs.max_field_bytes, 1024);
        assert_eq!(s.sse_buffer_bytes, 65536);
        assert_eq!(s.http.header_timeout, Duration::from_millis(2500));
        assert_eq!(s.http.max_connections, Some(100));
        for (name, bad) in [
            ("MULTIPART_FIELD_MAX_BYTES", "10"),
            ("MULTIPART_FIELD_MAX_BYTES", "4kB"),
            ("SSE_BUFFER_BYTES", "100"),
            ("HTTP_HEADER_TIMEOUT_SECONDS", "0"),
            ("HTTP_IDLE_TIMEOUT_SECONDS", "-1"),
            ("HTTP_WRITE_TIMEOUT_SECONDS", "soon"),
            ("HTTP_MAX_CONNECTIONS", "0"),
        ] {
            assert_eq!(
                settings(&[(name, bad)]).unwrap_err().name,
                name,
                "{name}={bad}"
            );
        }
    }

    #[test]
    fn azure_openai_and_run_settings() {
        let s = settings(&[
            ("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com/"),
            ("AZURE_OPENAI_API_KEY", "k"),
            ("AZURE_OPENAI_DEPLOYMENTS", "gpt-4o=prod-4o"),
            ("RUN_EXPIRY_SECONDS", "2"),
        ])
        .unwrap();
        match s.llm {
            LlmBackend::Azure {
                endpoint,
                deployments,
                ..
            } => {
                assert_eq!(endpoint, "https://x.openai.azure.com");
                assert_eq!(deployments["gpt-4o"], "prod-4o");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.runs.expiry, Duration::from_secs(2));
        assert_eq!(
            settings(&[("AZURE_OPENAI_ENDPOINT", "https://x")])
                .unwrap_err()
                .name,
            "AZURE_OPENAI_API_KEY"
        );
        assert_eq!(
            settings(&[("LLM_MAX_ATTEMPTS", "0")]).unwrap_err().name,
            "LLM_MAX_ATTEMPTS"
        );
        assert_eq!(settings(&[("QUEUE", "azure")]).unwrap_err().name, "QUEUE");
    }

    #[test]
    fn the_shutdown_grace_is_short_by_default_and_may_be_zero() {
        assert_eq!(
            settings(&[]).unwrap().runs.shutdown_grace,
            Duration::from_secs(4)
        );
        let s = settings(&[("SHUTDOWN_GRACE_SECONDS", "0")]).unwrap();
        assert_eq!(s.runs.shutdown_grace, Duration::ZERO);
        let s = settings(&[("SHUTDOWN_GRACE_SECONDS", "25.5")]).unwrap();
        assert_eq!(s.runs.shutdown_grace, Duration::from_millis(25_500));
        for bad in ["-1", "3601", "soon"] {
            assert_eq!(
                settings(&[("SHUTDOWN_GRACE_SECONDS", bad)])
                    .unwrap_err()
                    .name,
                "SHUTDOWN_GRACE_SECONDS"
            );
        }
    }

    #[test]
    fn open_mode_refuses_a_public_bind() {
        assert_eq!(
            settings(&[("BIND", "0.0.0.0")]).unwrap_err().name,
            "ASSISTANTS_API_KEYS"
        );
        assert!(settings(&[("BIND", "0.0.0.0"), ("ASSISTANTS_API_KEYS", "k")]).is_ok());
    }

    #[test]
    fn the_functions_host_needs_keys() {
        assert_eq!(
            settings(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "7071")])
                .unwrap_err()
                .name,
            "ASSISTANTS_API_KEYS"
        );
        assert!(settings(&[
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "7071"),
            ("ASSISTANTS_ALLOW_OPEN", "true")
        ])
        .is_ok());
        assert!(settings(&[
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "7071"),
            ("ASSISTANTS_API_KEYS", "k")
        ])
        .is_ok());
    }

    #[test]
    fn the_proxy_needs_an_upstream() {
        assert_eq!(
            settings(&[("BACKEND", "proxy")]).unwrap_err().name,
            "UPSTREAM_BASE_URL"
        );
        assert_eq!(
            settings(&[("BACKEND", "mirror")]).unwrap_err().name,
            "BACKEND"
        );
        let s = settings(&[("BACKEND", "proxy"), ("UPSTREAM_BASE_URL", "http://up/v1/")]).unwrap();
        assert!(
            matches!(s.backend, BackendSetting::Proxy { ref base_url, .. } if base_url == "http://up/v1")
        );
    }

    #[test]
    fn code_interpreter_settings_default_to_auto_and_name_bad_values() {
        let s = settings(&[]).unwrap().code_interpreter;
        assert_eq!(s.mode, CodeInterpreterMode::Auto);
        assert_eq!(s.cell_timeout, Duration::from_secs(60));
        assert_eq!(s.idle_timeout, Duration::from_secs(3600));
        assert_eq!(s.memory_bytes, 2048 << 20);
        assert_eq!(s.disk_bytes, 1024 << 20);
        assert_eq!((s.max_export_files, s.max_export_bytes), (32, 100 << 20));
        // Shared out equally between the tenants the keys name; one tenant has them all.
        assert_eq!((s.max_sessions, s.tenant_sessions), (8, 8));
        let share =
            |pairs: &[(&str, &str)]| settings(pairs).unwrap().code_interpreter.tenant_sessions;
        assert_eq!(share(&[("ASSISTANTS_API_KEYS", "a=x,b=y")]), 4);
        assert_eq!(share(&[("ASSISTANTS_API_KEYS", "a=x,b=x")]), 8);
        assert_eq!(share(&[("ASSISTANTS_API_KEYS", "a=x,b=y,c=z")]), 2);
        assert_eq!(
            share(&[
                ("ASSISTANTS_API_KEYS", "a=x,b=y"),
                ("CODE_INTERPRETER_MAX_SESSIONS", "20")
            ]),
            10
        );
        assert!(s.pool_endpoint.is_none());
        for (pairs, name) in [
            (vec![("CODE_INTERPRETER", "maybe")], "CODE_INTERPRETER"),
            (
                vec![("CODE_INTERPRETER_TIMEOUT_SECONDS", "300")],
                "CODE_INTERPRETER_TIMEOUT_SECONDS",
            ),
            (
                vec![("CODE_INTERPRETER", "azure")],
                "CODE_INTERPRETER_POOL_ENDPOINT",
            ),
            (
                vec![(
                    "CODE_INTERPRETER_POOL_ENDPOINT",
                    "https://r.dynamicsessions.io/p",
                )],
                "CODE_INTERPRETER_SESSION_KEY",
            ),
            (
                vec![("CODE_INTERPRETER_SESSION_KEY", "short")],
                "CODE_INTERPRETER_SESSION_KEY",
            ),
            (
                vec![("CODE_INTERPRETER_POOL_ENDPOINT", "ftp://x")],
                "CODE_INTERPRETER_POOL_ENDPOINT",
            ),
            (
                vec![("CODE_INTERPRETER_SANDBOX_UID", "0")],
                "CODE_INTERPRETER_SANDBOX_UID",
            ),
            (
                vec![("CODE_INTERPRETER_TENANT_SESSIONS", "9")],
                "CODE_INTERPRETER_TENANT_SESSIONS",
            ),
            (
                vec![("CODE_INTERPRETER_TENANT_SESSIONS", "0")],
                "CODE_INTERPRETER_TENANT_SESSIONS",
            ),
            (
                vec![("CODE_INTERPRETER_DISK_MB", "8")],
                "CODE_INTERPRETER_DISK_MB",
            ),
            (
                vec![("CODE_INTERPRETER_MAX_EXPORT_MB", "0")],
                "CODE_INTERPRETER_MAX_EXPORT_MB",
            ),
            (
                vec![("CODE_INTERPRETER_MAX_EXPORT_FILES", "-1")],
                "CODE_INTERPRETER_MAX_EXPORT_FILES",
            ),
        ] {
            assert_eq!(settings(&pairs).unwrap_err().name, name, "{pairs:?}");
        }
        let azure = settings(&[
            (
                "CODE_INTERPRETER_POOL_ENDPOINT",
                "https://r.dynamicsessions.io/p/",
            ),
            ("CODE_INTERPRETER_SESSION_KEY", "0123456789abcdef-secret"),
            ("IDENTITY_HEADER", "header-secret"),
            ("DATA_DIR", "/srv/data"),
        ])
        .unwrap()
        .code_interpreter;
        assert_eq!(
            azure.pool_endpoint.as_deref(),
            Some("https://r.dynamicsessions.io/p")
        );
        assert_eq!(azure.data_dir, PathBuf::from("/srv/data"));
        let shown = format!("{azure:?}");
        assert!(!shown.contains("0123456789abcdef-secret") && !shown.contains("header-secret"));
    }

    #[test]
    fn keys_may_name_tenants() {
        let s = settings(&[("ASSISTANTS_API_KEYS", "a, b=team-b")]).unwrap();
        assert_eq!(s.api_keys[0].tenant, DEFAULT_TENANT);
        assert_eq!(s.api_keys[1].tenant, "team-b");
        assert!(!format!("{:?}", s.api_keys).contains("team-b\", key: \"b"));
    }

    /// Each URL setting with what else it needs to be read at all.
    const URL_SETTINGS: [(&str, &[(&str, &str)]); 5] = [
        ("AZURE_OPENAI_ENDPOINT", &[("AZURE_OPENAI_API_KEY", "k")]),
        ("OPENAI_BASE_URL", &[]),
        ("EMBEDDING_BASE_URL", &[]),
        ("UPSTREAM_BASE_URL", &[("BACKEND", "proxy")]),
        (
            "CODE_INTERPRETER_POOL_ENDPOINT",
            &[("CODE_INTERPRETER_SESSION_KEY", "0123456789abcdef-secret")],
        ),
    ];

    #[test]
    fn url_settings_must_be_http_and_lose_their_trailing_slashes() {
        for (name, needs) in URL_SETTINGS {
            for bad in ["ftp://x", "x.example.com"] {
                let mut pairs = needs.to_vec();
                pairs.push((name, bad));
                let e = settings(&pairs).unwrap_err();
                assert_eq!(e.name, name, "{name}={bad:?}");
                assert!(e.message.starts_with("must be "), "{e:?}");
            }
            let mut pairs = needs.to_vec();
            pairs.push((name, "http://h:1/v1//"));
            let s = settings(&pairs).unwrap();
            let read = match name {
                "AZURE_OPENAI_ENDPOINT" => match &s.llm {
                    LlmBackend::Azure { endpoint, .. } => endpoint.clone(),
                    other => panic!("{other:?}"),
                },
                "OPENAI_BASE_URL" | "EMBEDDING_BASE_URL" => {
                    let backend = if name == "OPENAI_BASE_URL" {
                        &s.llm
                    } else {
                        &s.embedding.0
                    };
                    match backend {
                        LlmBackend::OpenAi { base_url, .. } => base_url.clone(),
                        other => panic!("{other:?}"),
                    }
                }
                "UPSTREAM_BASE_URL" => match &s.backend {
                    BackendSetting::Proxy { base_url, .. } => base_url.clone(),
                    other => panic!("{other:?}"),
                },
                _ => s.code_interpreter.pool_endpoint.clone().unwrap_or_default(),
            };
            assert_eq!(read, "http://h:1/v1", "{name}");
        }
        // The pool endpoint alone is read with surrounding blanks trimmed.
        let s = settings(&[
            ("CODE_INTERPRETER_POOL_ENDPOINT", " https://r/p/ "),
            ("CODE_INTERPRETER_SESSION_KEY", "0123456789abcdef-secret"),
        ])
        .unwrap();
        assert_eq!(
            s.code_interpreter.pool_endpoint.as_deref(),
            Some("https://r/p")
        );
        assert_eq!(
            settings(&[("BACKEND", "proxy"), ("UPSTREAM_BASE_URL", "up/v1")])
                .unwrap_err()
                .message,
            "must be an http(s) URL ending in /v1"
        );
    }

    #[test]
    fn key_value_lists_are_trimmed_skip_empty_entries_and_name_their_setting() {
        let s = settings(&[
            ("AZURE_OPENAI_ENDPOINT", "https://x"),
            ("AZURE_OPENAI_API_KEY", "k"),
            (
                "AZURE_OPENAI_DEPLOYMENTS",
                " gpt = one ,, o1=a=b, gpt=two ,",
            ),
        ])
        .unwrap();
        match s.llm {
            LlmBackend::Azure { deployments, .. } => assert_eq!(
                deployments,
                HashMap::from([
                    ("gpt".to_string(), "two".to_string()),
                    ("o1".to_string(), "a=b".to_string())
                ])
            ),
            other => panic!("{other:?}"),
        }
        let s = settings(&[
            ("BACKEND", "proxy"),
            ("UPSTREAM_BASE_URL", "http://up/v1"),
            ("UPSTREAM_TENANT_KEYS", "team-a = sk-a , ,team-b=sk-b"),
        ])
        .unwrap();
        match s.backend {
            BackendSetting::Proxy { tenant_keys, .. } => {
                assert_eq!(tenant_keys.len(), 2);
                assert_eq!(tenant_keys["team-a"], "sk-a");
                assert_eq!(tenant_keys["team-b"], "sk-b");
            }
            other => panic!("{other:?}"),
        }
        let s = settings(&[("ASSISTANTS_API_KEYS", " , k1 ,k2 = t2 ,")]).unwrap();
        let keys: Vec<_> = s
            .api_keys
            .iter()
            .map(|k| (k.key.as_str(), k.tenant.as_str()))
            .collect();
        assert_eq!(keys, [("k1", DEFAULT_TENANT), ("k2", "t2")]);

        let e = settings(&[
            ("AZURE_OPENAI_ENDPOINT", "https://x"),
            ("AZURE_OPENAI_API_KEY", "k"),
            ("AZURE_OPENAI_DEPLOYMENTS", "gpt=one,lonely"),
        ])
        .unwrap_err();
        assert_eq!(
            (e.name, e.message.as_str()),
            (
                "AZURE_OPENAI_DEPLOYMENTS",
                "entries must be model=deployment"
            )
        );
        let e = settings(&[
            ("BACKEND", "proxy"),
            ("UPSTREAM_BASE_URL", "http://up/v1"),
            ("UPSTREAM_TENANT_KEYS", "sk-a"),
        ])
        .unwrap_err();
        assert_eq!(
            (e.name, e.message.as_str()),
            ("UPSTREAM_TENANT_KEYS", "entries must be tenant=key")
        );
        assert_eq!(
            settings(&[("ASSISTANTS_API_KEYS", "=t")]).unwrap_err().name,
            "ASSISTANTS_API_KEYS"
        );
    }

    #[test]
    fn webhook_settings_are_read_and_bad_ones_named() {
        const SECRET: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        let s = settings(&[]).unwrap();
        assert!(s.webhooks.endpoint("default").is_none());
        let s = settings(&[
            ("WEBHOOK_URL", "https://hooks.example/in/"),
            ("WEBHOOK_SECRET", SECRET),
            ("WEBHOOK_TENANT_URLS", "b=http://b.example/hook"),
            ("WEBHOOK_TENANT_SECRETS", "b=plain-secret"),
            (
                "WEBHOOK_TENANT_EVENTS",
                "b=thread.run.completed|thread.run.failed",
            ),
            ("WEBHOOK_RETRY_HOURS", "0.5"),
        ])
        .unwrap();
        let a = s.webhooks.endpoint("a").unwrap();
        assert_eq!(a.url, "https://hooks.example/in");
        assert_eq!(a.secret.0, b"0123456789abcdef0123456789abcdef");
        assert!(a.wants("thread.run.expired"));
        let b = s.webhooks.endpoint("b").unwrap();
        assert_eq!(b.secret.0, b"plain-secret");
        assert!(b.wants("thread.run.failed") && !b.wants("thread.run.expired"));
        assert_eq!(s.webhooks.retry_for, Duration::from_secs(1800));
        // The secret never shows in the settings' Debug.
        assert!(!format!("{s:?}").contains("MDEy"));
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("WEBHOOK_URL", "hooks.example")], "WEBHOOK_URL"),
            (&[("WEBHOOK_URL", "https://h.example")], "WEBHOOK_SECRET"),
            (
                &[
                    ("WEBHOOK_URL", "https://h.example"),
                    ("WEBHOOK_SECRET", "whsec_!!"),
                ],
                "WEBHOOK_SECRET",
            ),
            (
                &[("WEBHOOK_TENANT_URLS", "a=https://h.example")],
                "WEBHOOK_TENANT_SECRETS",
            ),
            (
                &[("WEBHOOK_TENANT_SECRETS", "a=x")],
                "WEBHOOK_TENANT_SECRETS",
            ),
            (
                &[
                    ("WEBHOOK_SECRET", "x"),
                    ("WEBHOOK_TENANT_URLS", "a b=https://h.example"),
                ],
                "WEBHOOK_TENANT_URLS",
            ),
            (&[("WEBHOOK_EVENTS", "thread.run.done")], "WEBHOOK_EVENTS"),
            (&[("WEBHOOK_RETRY_HOURS", "0")], "WEBHOOK_RETRY_HOURS"),
            (
                &[("WEBHOOK_TIMEOUT_SECONDS", "x")],
                "WEBHOOK_TIMEOUT_SECONDS",
            ),
            (&[("WEBHOOK_RETRY_BASE_MS", "0")], "WEBHOOK_RETRY_BASE_MS"),
            (&[("WEBHOOK_CONCURRENCY", "0")], "WEBHOOK_CONCURRENCY"),
        ];
        for (pairs, name) in cases {
            let e = settings(pairs).unwrap_err();
            assert_eq!(e.name, *name, "{pairs:?}: {e}");
            assert!(!e.message.contains("MDEy"));
        }
    }
}
