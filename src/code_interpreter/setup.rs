//! The code interpreter a server starts with: an executor chosen from the settings, enabled
//! only when its self-test passes, or the reason it is not available (for the run's
//! `last_error` and the start-up log).

use super::azure::identity::{Identity, IMDS_ENDPOINT};
use super::azure::{AzureConfig, AzureExecutor};
use super::local::{LocalConfig, LocalExecutor};
use super::{CodeExecutor, SessionId, SessionKey};
use crate::config::{CodeInterpreterMode, CodeInterpreterSettings, Settings};
use std::sync::Arc;
use std::time::Duration;

/// The tool's executor (or why there is none), the session key and the cell limits.
#[derive(Clone)]
pub struct CodeInterpreter {
    executor: Option<Arc<dyn CodeExecutor>>,
    unavailable: Option<String>,
    key: SessionKey,
    cell_timeout: Duration,
    export: ExportLimits,
    /// MiB of files held in memory on their way into or out of sessions, over all turns.
    transfers: Arc<tokio::sync::Semaphore>,
}

/// Files are read whole on their way into a session (the pool's upload is retried, so it
/// needs the bytes) and out of it: at most this many MiB of them are held at once by all
/// turns together (plus one larger file, alone), so that many turns of a tenant with large
/// files cannot together hold gigabytes.
pub const TRANSFER_BUDGET_MIB: u32 = 512;

/// What one cell may export into the store (`CODE_INTERPRETER_MAX_EXPORT_*`): a cell can
/// write far more than anyone should keep, and each exported file is read into memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportLimits {
    /// Written files (figures are capped by the executor).
    pub files: usize,
    /// Bytes of written files and figures together.
    pub bytes: u64,
}

impl Default for ExportLimits {
    fn default() -> ExportLimits {
        ExportLimits {
            files: 32,
            bytes: 100 << 20,
        }
    }
}

impl std::fmt::Debug for CodeInterpreter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeInterpreter")
            .field("executor", &self.executor.as_ref().map(|e| e.kind()))
            .field("unavailable", &self.unavailable)
            .field("cell_timeout", &self.cell_timeout)
            .finish()
    }
}

impl CodeInterpreter {
    /// Builds the executor the settings ask for and runs its self-test; logs the outcome.
    /// Never fails: a backend that cannot be used leaves the tool off, with the reason.
    pub async fn start(settings: &Settings) -> CodeInterpreter {
        let ci = &settings.code_interpreter;
        let key = match &ci.session_key {
            Some(k) => SessionKey::new(k.as_bytes()),
            // Local sessions die with the process, so a per-process key loses nothing.
            None => SessionKey::random(),
        };
        let under_functions = settings.custom_handler_port.is_some();
        let built: Result<Arc<dyn CodeExecutor>, String> = match (ci.mode, &ci.pool_endpoint) {
            (CodeInterpreterMode::Off, _) => Err("it is turned off (CODE_INTERPRETER=off)".into()),
            (CodeInterpreterMode::Azure, Some(endpoint))
            | (CodeInterpreterMode::Auto, Some(endpoint)) => {
                // No tenant is empty, so this id is nobody's thread's.
                azure_executor(ci, endpoint, key.session_id("", "self-test"))
            }
            (CodeInterpreterMode::Azure, None) => {
                Err("CODE_INTERPRETER=azure needs CODE_INTERPRETER_POOL_ENDPOINT".into())
            }
            (CodeInterpreterMode::Auto, None) if under_functions => Err(
                "no session pool is configured (CODE_INTERPRETER_POOL_ENDPOINT); the local \
                 sandbox is not used under the Azure Functions host"
                    .into(),
            ),
            (CodeInterpreterMode::Auto, None) | (CodeInterpreterMode::Local, _) => {
                local_executor(ci)
            }
        };
        let explicit = ci.mode != CodeInterpreterMode::Auto;
        let executor = match built {
            Ok(executor) => executor,
            Err(reason) => {
                if explicit && ci.mode != CodeInterpreterMode::Off {
                    log::error!("code_interpreter is unavailable: {reason}");
                } else {
                    log::info!("code_interpreter is unavailable: {reason}");
                }
                return CodeInterpreter::disabled(reason);
            }
        };
        match executor.self_test().await {
            Ok(report) => {
                log::info!(
                    "code_interpreter enabled ({} executor; {}); self-test: {}",
                    executor.kind(),
                    report.versions,
                    report.checks.join("; ")
                );
                CodeInterpreter::enabled(executor, key, ci.cell_timeout).with_export_limits(
                    ExportLimits {
                        files: ci.max_export_files,
                        bytes: ci.max_export_bytes,
                    },
                )
            }
            Err(e) => {
                let detail = match e {
                    super::ExecError::Unavailable(detail) => detail,
                    other => other.to_string(),
                };
                let reason = format!(
                    "the {} executor's self-test failed: {detail}",
                    executor.kind()
                );
                if explicit {
                    log::error!("code_interpreter is unavailable: {reason}");
                } else {
                    log::warn!("code_interpreter is unavailable: {reason}");
                }
                CodeInterpreter::disabled(reason)
            }
        }
    }

    /// An enabled tool around an executor whose self-test the caller has run (tests).
    pub fn enabled(
        executor: Arc<dyn CodeExecutor>,
        key: SessionKey,
        cell_timeout: Duration,
    ) -> CodeInterpreter {
        CodeInterpreter {
            executor: Some(executor),
            unavailable: None,
            key,
            cell_timeout,
            export: ExportLimits::default(),
            transfers: Arc::new(tokio::sync::Semaphore::new(TRANSFER_BUDGET_MIB as usize)),
        }
    }

    pub fn with_export_limits(mut self, export: ExportLimits) -> CodeInterpreter {
        self.export = export;
        self
    }

    pub fn disabled(reason: impl Into<String>) -> CodeInterpreter {
        CodeInterpreter {
            executor: None,
            unavailable: Some(reason.into()),
            key: SessionKey::random(),
            cell_timeout: Duration::from_secs(60),
            export: ExportLimits::default(),
            transfers: Arc::new(tokio::sync::Semaphore::new(TRANSFER_BUDGET_MIB as usize)),
        }
    }

    /// The executor, when the tool is available.
    pub fn executor(&self) -> Option<&Arc<dyn CodeExecutor>> {
        self.executor.as_ref()
    }

    /// Why the tool is not available (for a run's `last_error`), when it is not.
    pub fn unavailable_reason(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    /// The session of a thread.
    pub fn session_id(&self, tenant: &str, thread_id: &str) -> SessionId {
        self.key.session_id(tenant, thread_id)
    }

    /// The wall-clock limit of one cell.
    pub fn cell_timeout(&self) -> Duration {
        self.cell_timeout
    }

    /// What one cell may export into the store.
    pub fn export_limits(&self) -> ExportLimits {
        self.export
    }

    /// Waits until `bytes` of a file may be held in memory (see `TRANSFER_BUDGET_MIB`); the
    /// permit gives them back when dropped.
    pub async fn hold_transfer(&self, bytes: u64) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let mib = (bytes >> 20).clamp(1, u64::from(TRANSFER_BUDGET_MIB)) as u32;
        self.transfers.clone().acquire_many_owned(mib).await.ok()
    }
}

fn local_executor(ci: &CodeInterpreterSettings) -> Result<Arc<dyn CodeExecutor>, String> {
    if !ci.bwrap.exists() {
        return Err(format!(
            "bubblewrap is not installed ({} is missing; run scripts/code-interpreter-deps.sh \
             or apt-get install bubblewrap)",
            ci.bwrap.display()
        ));
    }
    if !ci.python.exists() {
        return Err(format!(
            "{} is missing (run scripts/code-interpreter-deps.sh, or set CODE_INTERPRETER_PYTHON)",
            ci.python.display()
        ));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Sessions run as the sandbox uid, which must be able to run both programs.
        for (setting, path) in [
            ("CODE_INTERPRETER_BWRAP", &ci.bwrap),
            ("CODE_INTERPRETER_PYTHON", &ci.python),
        ] {
            if let Err(why) = executable_by(path, ci.sandbox_uid, ci.sandbox_uid) {
                return Err(format!(
                    "{setting}={} cannot be run by the sandbox uid {} ({why}): install it \
                     where every user can run it (the Debian packages do), or set \
                     CODE_INTERPRETER_SANDBOX_UID to a uid that can",
                    path.display(),
                    ci.sandbox_uid
                ));
            }
        }
    }
    let data_dir = std::path::absolute(&ci.data_dir).unwrap_or_else(|_| ci.data_dir.clone());
    let cfg = LocalConfig {
        bwrap: ci.bwrap.clone(),
        python: ci.python.clone(),
        memory_bytes: ci.memory_bytes,
        cpu_seconds: ci.cpu_seconds,
        max_processes: ci.max_processes,
        max_file_bytes: ci.max_file_bytes,
        max_sessions: ci.max_sessions,
        tenant_sessions: ci.tenant_sessions,
        disk_bytes: ci.disk_bytes,
        idle_timeout: ci.idle_timeout,
        sandbox_uid: ci.sandbox_uid,
        sandbox_gid: ci.sandbox_uid,
        protected_paths: vec![data_dir.join("objects"), data_dir],
        ..LocalConfig::default()
    };
    LocalExecutor::new(cfg)
        .map(|e| Arc::new(e) as Arc<dyn CodeExecutor>)
        .map_err(|e| e.to_string())
}

/// Whether `uid`/`gid` may run `path`: search permission on every directory above it and
/// execute permission on the file, by its mode bits (what a root service cannot learn from
/// `access`, which answers for root).
fn executable_by(path: &std::path::Path, uid: u32, gid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let path = std::path::absolute(path).map_err(|e| e.to_string())?;
    let allowed = |meta: &std::fs::Metadata, bit: u32| {
        let mode = meta.mode();
        if meta.uid() == uid {
            mode & (bit << 6) != 0
        } else if meta.gid() == gid {
            mode & (bit << 3) != 0
        } else {
            mode & bit != 0
        }
    };
    for dir in path.ancestors().skip(1) {
        let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !allowed(&meta, 0o1) {
            return Err(format!(
                "{} is mode {:o}",
                dir.display(),
                meta.mode() & 0o7777
            ));
        }
    }
    let meta = std::fs::metadata(&path).map_err(|e| e.to_string())?;
    if !allowed(&meta, 0o1) {
        return Err(format!("it is mode {:o}", meta.mode() & 0o7777));
    }
    Ok(())
}

fn azure_executor(
    ci: &CodeInterpreterSettings,
    endpoint: &str,
    self_test_session: SessionId,
) -> Result<Arc<dyn CodeExecutor>, String> {
    let identity = match (&ci.identity_endpoint, &ci.identity_header) {
        (Some(endpoint), Some(header)) => Identity::AppService {
            endpoint: endpoint.clone(),
            header: header.clone(),
            client_id: ci.identity_client_id.clone(),
        },
        _ => Identity::Imds {
            endpoint: IMDS_ENDPOINT.to_string(),
            client_id: ci.identity_client_id.clone(),
        },
    };
    let mut cfg = AzureConfig::new(endpoint.to_string(), identity);
    cfg.self_test_session = Some(self_test_session);
    AzureExecutor::new(cfg)
        .map(|e| Arc::new(e) as Arc<dyn CodeExecutor>)
        .map_err(|e| e.to_string())
}

/// The server's code interpreter, started once on first use (or at start-up, by `main`):
/// the self-test spawns sandboxes, which a process that never runs code should not pay
/// for, and starting is async while building the app is not. Shared by the API (thread
/// deletion ends sessions) and the engine.
pub struct SharedCodeInterpreter {
    settings: Option<Box<Settings>>,
    cell: tokio::sync::OnceCell<CodeInterpreter>,
}

impl SharedCodeInterpreter {
    /// Started from `settings` on first use.
    pub fn from_settings(settings: &Settings) -> SharedCodeInterpreter {
        SharedCodeInterpreter {
            settings: Some(Box::new(settings.clone())),
            cell: tokio::sync::OnceCell::new(),
        }
    }

    /// One that is already started (tests).
    pub fn ready(ci: CodeInterpreter) -> SharedCodeInterpreter {
        SharedCodeInterpreter {
            settings: None,
            cell: tokio::sync::OnceCell::new_with(Some(ci)),
        }
    }

    /// The started code interpreter (starting it, with its self-test, the first time).
    pub async fn get(&self) -> &CodeInterpreter {
        self.cell
            .get_or_init(|| async {
                match &self.settings {
                    Some(settings) => CodeInterpreter::start(settings).await,
                    None => CodeInterpreter::disabled("it was not configured"),
                }
            })
            .await
    }

    /// The code interpreter if it has been started (no start for a caller that only needs
    /// a session that exists already).
    pub fn started(&self) -> Option<&CodeInterpreter> {
        self.cell.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn transfers_share_one_memory_budget() {
        let ci = CodeInterpreter::disabled("test");
        let first = ci.hold_transfer(300 << 20).await;
        assert!(first.is_some());
        // 300 + 300 MiB is more than the budget: the second waits for the first.
        let second =
            tokio::time::timeout(Duration::from_millis(100), ci.hold_transfer(300 << 20)).await;
        assert!(second.is_err(), "the budget was exceeded");
        // A file larger than the whole budget takes all of it, alone.
        drop(first);
        let huge = ci.hold_transfer(4 << 30).await;
        assert!(huge.is_some());
        assert_eq!(ci.transfers.available_permits(), 0);
        drop(huge);
        assert_eq!(
            ci.transfers.available_permits(),
            TRANSFER_BUDGET_MIB as usize
        );
    }
}
