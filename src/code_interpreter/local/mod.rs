//! The local executor: each session is one long-lived Python process (`driver.py`) inside
//! bubblewrap, with a size-limited tmpfs of its own as `/mnt/data`.
//!
//! Why a process per session: variables persist between cells as in a notebook, and a
//! session's faults (a crash, a kill after a timeout) stay in it. Sessions live in this
//! process's memory; an idle one is reaped after `idle_timeout`. Sessions are shared by
//! tenants under quotas: at most `max_sessions` in all and `tenant_sessions` per tenant, and
//! a tenant that needs room ends its own least recently used idle session, never another
//! tenant's. After a restart every session is gone (`open_session` says `Created`).
//!
//! Nothing of a session is on the host's disk: the runtime files are handed to bubblewrap
//! as descriptors, `/mnt/data` is memory inside the sandbox (what code writes there counts
//! against the session's memory cgroup, where there is one) and is reached from the host
//! through a directory fd taken before any code ran.
//!
//! Children:
//! - `sandbox`: the bubblewrap command line and the pre-exec limits;
//! - `cgroup`: per-session memory and process groups, where the machine allows;
//! - `seccomp`: the BPF filters given to bubblewrap;
//! - `files`: host-side file access that never follows what the sandbox planted;
//! - `procs`: the sandbox's processes from the host (pidfds, its PID namespace);
//! - `kernel`: one running driver process and the protocol with it;
//! - `selftest`: the start-up probe (no network, no host files, no secrets inside).

mod cgroup;
mod files;
mod kernel;
mod procs;
mod sandbox;
mod seccomp;
mod selftest;

use super::{
    check_upload_name, CellOutput, CodeExecutor, ExecError, FileInfo, SelfTestReport, SessionId,
    SessionOpen,
};
use async_trait::async_trait;
use bytes::Bytes;
use kernel::{CellFailure, Kernel};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Mutex as AsyncMutex;

/// The driver, embedded so the binary is all there is to deploy.
const DRIVER: &str = include_str!("driver.py");

/// The local executor's settings (from `CODE_INTERPRETER_*`; see config.rs).
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub bwrap: PathBuf,
    /// The Debian Python with numpy, pandas and matplotlib.
    pub python: PathBuf,
    /// RLIMIT_AS of every process in a session.
    pub memory_bytes: u64,
    /// RLIMIT_CPU of every process in a session (a lifetime total per process: the driver is
    /// killed, and its session lost, when it has used this much).
    pub cpu_seconds: u64,
    /// RLIMIT_NPROC inside the session (processes and threads).
    pub max_processes: u32,
    /// RLIMIT_FSIZE, and the largest upload.
    pub max_file_bytes: u64,
    /// Size of the session's `/mnt/data` (a tmpfs): all its files together.
    pub disk_bytes: u64,
    /// Size of the session's private `/tmp` (memory-backed).
    pub tmp_bytes: u64,
    pub max_sessions: usize,
    /// Sessions one tenant may hold at once (settings share `max_sessions` out between the
    /// tenants; here the default is no share).
    pub tenant_sessions: usize,
    pub idle_timeout: Duration,
    /// Output of one cell kept beyond this is dropped (and `logs_truncated` set).
    pub max_log_bytes: usize,
    /// When the service runs as root, sessions run as this host uid and gid instead:
    /// RLIMIT_NPROC does not bind root, and a sandbox escape should not land as root.
    pub sandbox_uid: u32,
    pub sandbox_gid: u32,
    /// Host paths the self-test must find invisible inside, and named nowhere inside
    /// (DATA_DIR...).
    pub protected_paths: Vec<PathBuf>,
}

impl Default for LocalConfig {
    fn default() -> LocalConfig {
        LocalConfig {
            bwrap: PathBuf::from("/usr/bin/bwrap"),
            python: PathBuf::from("/usr/bin/python3"),
            memory_bytes: 2 << 30,
            cpu_seconds: 3600,
            max_processes: 64,
            max_file_bytes: 512 << 20,
            disk_bytes: 1 << 30,
            tmp_bytes: 256 << 20,
            max_sessions: 8,
            tenant_sessions: 8,
            idle_timeout: Duration::from_secs(3600),
            max_log_bytes: 1 << 20,
            sandbox_uid: 65534,
            sandbox_gid: 65534,
            protected_paths: Vec::new(),
        }
    }
}

pub struct LocalExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: LocalConfig,
    runtime: Runtime,
    /// `Some` when we are root: the uid/gid sessions drop to.
    drop_to: Option<(u32, u32)>,
    sessions: Mutex<HashMap<SessionId, Arc<Session>>>,
    started: Instant,
    cgroups: cgroup::Cgroups,
}

/// What every session is built from, kept in memory and handed to each sandbox as a file
/// descriptor.
pub(crate) struct Runtime {
    driver: &'static str,
    seccomp: [Vec<u8>; 3],
    /// matplotlib's font list (file name, bytes), made by the self-test: without it the
    /// first plot of every session spends seconds scanning fonts.
    font_cache: Mutex<Option<(String, Vec<u8>)>>,
}

impl Runtime {
    fn font_cache(&self) -> Option<(String, Vec<u8>)> {
        self.font_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

struct Session {
    /// The running driver, `None` once it is gone. Held across a cell, so cells of one
    /// session run one at a time.
    kernel: Arc<AsyncMutex<Option<Kernel>>>,
    /// Milliseconds since `Inner::started`, for the reaper and eviction.
    last_used: AtomicU64,
    cells: AtomicU64,
}

impl LocalExecutor {
    /// Prepares the sandbox's runtime (in memory) and starts the idle reaper on the current
    /// tokio runtime. Does not check that the sandbox works: that is `self_test`.
    pub fn new(cfg: LocalConfig) -> Result<LocalExecutor, ExecError> {
        let seccomp = seccomp::filters().map_err(ExecError::Unavailable)?;
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let drop_to = root.then_some((cfg.sandbox_uid, cfg.sandbox_gid));
        let inner = Arc::new(Inner {
            runtime: Runtime {
                driver: DRIVER,
                seccomp,
                font_cache: Mutex::new(None),
            },
            drop_to,
            sessions: Mutex::new(HashMap::new()),
            started: Instant::now(),
            cgroups: cgroup::Cgroups::detect(),
            cfg,
        });
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(reap_idle(Arc::downgrade(&inner)));
        }
        Ok(LocalExecutor { inner })
    }

    pub fn config(&self) -> &LocalConfig {
        &self.inner.cfg
    }

    /// Whether each session's total memory is bounded by a control group (not only each of
    /// its processes by RLIMIT_AS).
    pub fn session_memory_bounded(&self) -> bool {
        self.inner.cgroups.bounds_memory()
    }

    /// Sessions currently open (for tests and metrics).
    pub fn open_sessions(&self) -> usize {
        self.inner.lock_sessions().len()
    }

    /// The host pid of a session's sandbox (its outer bwrap), for tests that kill it.
    pub async fn sandbox_pid(&self, session: &SessionId) -> Option<u32> {
        let s = self.inner.lock_sessions().get(session).cloned()?;
        let guard = s.kernel.lock().await;
        guard.as_ref().and_then(Kernel::pid)
    }

    /// The host pid of a session's Python driver (tests).
    pub async fn driver_pid(&self, session: &SessionId) -> Option<u32> {
        let s = self.inner.lock_sessions().get(session).cloned()?;
        let guard = s.kernel.lock().await;
        guard.as_ref().and_then(Kernel::driver_pid)
    }
}

impl Inner {
    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<Session>>> {
        // A panic while holding this lock leaves a consistent map (every change is one
        // insert or remove), so a poisoned lock is still usable.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn get(&self, id: &SessionId) -> Result<Arc<Session>, ExecError> {
        self.lock_sessions().get(id).cloned().ok_or_else(lost)
    }

    /// The session's `/mnt/data`, while its sandbox runs.
    async fn data(&self, id: &SessionId) -> Result<Arc<OwnedFd>, ExecError> {
        let session = self.get(id)?;
        session.last_used.store(self.now_ms(), Ordering::Relaxed);
        let guard = session.kernel.lock().await;
        guard.as_ref().and_then(Kernel::data).ok_or_else(lost)
    }

    /// Removes `session` from the map if it is still the one under `id`.
    fn forget(&self, id: &SessionId, session: &Arc<Session>) {
        let mut map = self.lock_sessions();
        if map.get(id).is_some_and(|s| Arc::ptr_eq(s, session)) {
            map.remove(id);
        }
    }

    async fn spawn(&self) -> Result<Kernel, ExecError> {
        // A random name: the group's path says nothing of the session.
        let name = super::session::hex(&rand::random::<[u8; 8]>());
        let group = self
            .cgroups
            .create(&name, self.cfg.memory_bytes, self.cfg.max_processes);
        Kernel::start(&self.cfg, &self.runtime, self.drop_to, group).await
    }

    /// Makes room for one more session of `tenant`: nothing to do while the tenant is under
    /// its quota and the executor under its total; otherwise the tenant's own least recently
    /// used idle session ends (never another tenant's: what one tenant does cannot end
    /// another's variables, nor keep it from its share). `Busy`, at once, when the tenant
    /// has no idle session to give up.
    fn evict_for_new(
        &self,
        map: &mut HashMap<SessionId, Arc<Session>>,
        tenant: &str,
    ) -> Result<Option<Arc<Session>>, ExecError> {
        let own = map.keys().filter(|id| id.tenant() == tenant).count();
        let tenant_full = own >= self.cfg.tenant_sessions;
        if !tenant_full && map.len() < self.cfg.max_sessions {
            return Ok(None);
        }
        let victim = map
            .iter()
            .filter(|(id, s)| id.tenant() == tenant && s.kernel.try_lock().is_ok())
            .min_by_key(|(_, s)| s.last_used.load(Ordering::Relaxed))
            .map(|(id, _)| id.clone());
        match victim {
            Some(id) => Ok(map.remove(&id)),
            None if tenant_full => Err(ExecError::Busy(format!(
                "all {own} of this account's Python sessions are running code; try again \
                 when one of them has finished"
            ))),
            None => Err(ExecError::Busy(format!(
                "all {} of the server's Python sessions are in use; try again later",
                self.cfg.max_sessions
            ))),
        }
    }
}

fn lost() -> ExecError {
    ExecError::SessionLost("no open session (it expired, was ended, or was never opened)".into())
}

enum Found {
    Existing(Arc<Session>),
    New(
        Arc<Session>,
        tokio::sync::OwnedMutexGuard<Option<Kernel>>,
        Option<Arc<Session>>,
    ),
}

/// Kills a session's sandbox (if running); its files go with its tmpfs.
async fn destroy(session: &Session) {
    let mut guard = session.kernel.lock().await;
    if let Some(mut kernel) = guard.take() {
        kernel.kill().await;
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ExecError> + Send + 'static,
) -> Result<T, ExecError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ExecError::Transient(format!("file task failed: {e}")))?
}

/// Ends sessions idle longer than `idle_timeout` (a session running a cell is not idle).
async fn reap_idle(inner: Weak<Inner>) {
    loop {
        let period = match inner.upgrade() {
            Some(i) => {
                (i.cfg.idle_timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(60))
            }
            None => return,
        };
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else { return };
        let limit = inner.cfg.idle_timeout.as_millis() as u64;
        let now = inner.now_ms();
        let expired: Vec<Arc<Session>> = {
            let mut map = inner.lock_sessions();
            let ids: Vec<SessionId> = map
                .iter()
                .filter(|(_, s)| {
                    now.saturating_sub(s.last_used.load(Ordering::Relaxed)) > limit
                        && s.kernel.try_lock().is_ok()
                })
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| map.remove(id)).collect()
        };
        for session in expired {
            log::info!(
                "code interpreter: ending a session idle for over {:?}",
                inner.cfg.idle_timeout
            );
            destroy(&session).await;
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The sandboxes die with their Child handles (kill_on_drop); their files go too.
        self.cgroups.remove_all();
    }
}

#[async_trait]
impl CodeExecutor for LocalExecutor {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn open_session(&self, id: &SessionId) -> Result<SessionOpen, ExecError> {
        let inner = &self.inner;
        let found = {
            let mut map = inner.lock_sessions();
            match map.get(id).cloned() {
                Some(existing) => Found::Existing(existing),
                None => {
                    let evicted = inner.evict_for_new(&mut map, id.tenant())?;
                    let session = Arc::new(Session {
                        kernel: Arc::new(AsyncMutex::new(None)),
                        last_used: AtomicU64::new(inner.now_ms()),
                        cells: AtomicU64::new(0),
                    });
                    // Locked before it is visible, so a concurrent open waits for the start.
                    let guard = session.kernel.clone().try_lock_owned().map_err(|_| {
                        ExecError::Transient("a new session's lock was taken".into())
                    })?;
                    map.insert(id.clone(), session.clone());
                    Found::New(session, guard, evicted)
                }
            }
        };
        let (session, mut guard) = match found {
            Found::Existing(session) => {
                let mut guard = session.kernel.clone().lock_owned().await;
                session.last_used.store(inner.now_ms(), Ordering::Relaxed);
                if let Some(kernel) = guard.as_mut() {
                    if kernel.is_alive() {
                        return Ok(SessionOpen::Existing);
                    }
                    kernel.kill().await;
                }
                // It died between cells: start it again from nothing.
                *guard = None;
                (session, guard)
            }
            Found::New(session, guard, evicted) => {
                if let Some(old) = evicted {
                    log::info!(
                        "code interpreter: ending the tenant's least recently used session to make room"
                    );
                    destroy(&old).await;
                }
                (session, guard)
            }
        };
        match inner.spawn().await {
            Ok(kernel) => {
                *guard = Some(kernel);
                session.cells.store(0, Ordering::Relaxed);
                Ok(SessionOpen::Created)
            }
            Err(e) => {
                drop(guard);
                inner.forget(id, &session);
                Err(e)
            }
        }
    }

    async fn execute(
        &self,
        id: &SessionId,
        code: &str,
        timeout: Duration,
    ) -> Result<CellOutput, ExecError> {
        let inner = &self.inner;
        let session = inner.get(id)?;
        let mut guard = session.kernel.lock().await;
        let Some(kernel) = guard.as_mut() else {
            drop(guard);
            inner.forget(id, &session);
            return Err(ExecError::SessionLost(
                "the session's process is gone".into(),
            ));
        };
        session.last_used.store(inner.now_ms(), Ordering::Relaxed);
        let data = kernel.data().ok_or_else(lost)?;
        let root = data.clone();
        let before = blocking(move || files::list(&root)).await?;
        let cell = session.cells.fetch_add(1, Ordering::Relaxed) + 1;
        let started = Instant::now();
        let outcome = kernel
            .run_cell(code, cell, timeout, inner.cfg.max_log_bytes)
            .await;
        session.last_used.store(inner.now_ms(), Ordering::Relaxed);
        match outcome {
            Ok(mut output) => {
                let after = blocking(move || files::list(&data)).await?;
                output.files = files::changed(&before, &after);
                output.duration = started.elapsed();
                Ok(output)
            }
            Err(failure) => {
                if let Some(mut kernel) = guard.take() {
                    kernel.kill().await;
                }
                drop(guard);
                inner.forget(id, &session);
                Err(match failure {
                    CellFailure::Timeout => ExecError::Timeout(timeout),
                    CellFailure::Lost(reason) => ExecError::SessionLost(reason),
                })
            }
        }
    }

    async fn upload(
        &self,
        id: &SessionId,
        name: &str,
        content: Bytes,
    ) -> Result<FileInfo, ExecError> {
        check_upload_name(name)?;
        let cfg = &self.inner.cfg;
        if content.len() as u64 > cfg.max_file_bytes {
            return Err(ExecError::FileTooLarge(cfg.max_file_bytes));
        }
        let data = self.inner.data(id).await?;
        let (name, owner, disk) = (name.to_string(), self.inner.drop_to, cfg.disk_bytes);
        blocking(move || files::write(&data, &name, &content, owner, disk)).await
    }

    async fn list_files(&self, id: &SessionId) -> Result<Vec<FileInfo>, ExecError> {
        let data = self.inner.data(id).await?;
        blocking(move || files::list(&data)).await
    }

    async fn download(
        &self,
        id: &SessionId,
        path: &str,
        max_bytes: u64,
    ) -> Result<Bytes, ExecError> {
        let data = self.inner.data(id).await?;
        let path = path.to_string();
        blocking(move || files::read(&data, &path, max_bytes))
            .await
            .map(Bytes::from)
    }

    async fn end_session(&self, id: &SessionId) -> Result<(), ExecError> {
        let removed = self.inner.lock_sessions().remove(id);
        if let Some(session) = removed {
            destroy(&session).await;
        }
        Ok(())
    }

    async fn self_test(&self) -> Result<SelfTestReport, ExecError> {
        selftest::run(&self.inner).await
    }

    fn sessions_open(&self) -> Option<usize> {
        Some(self.open_sessions())
    }
}
