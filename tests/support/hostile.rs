//! Helpers for the hostile-input tests: while an attack runs, another tenant's latency probe
//! must keep being answered, and the server's peak memory (VmHWM) must stay within a bound.
#![allow(dead_code)]

use super::remote::Api;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one probe request may take while an attack runs. The freezes this guards
/// against lasted 6.7 s and 16.8 s (the tokenizer on the async workers); a busy 2-core
/// machine (the suite beside a compiler) answers a probe in up to ~3.3 s with no attack
/// at all, so the bound sits between the two. Memory, each test's main check, has bounds
/// of its own.
pub const PROBE_BOUND: Duration = Duration::from_secs(4);

/// What the probe saw.
#[derive(Debug, Clone, Default)]
pub struct ProbeReport {
    pub requests: u32,
    /// Requests that got no 2xx answer (or none at all).
    pub failures: u32,
    /// The slowest answer.
    pub worst: Duration,
    pub first_failure: Option<String>,
}

impl ProbeReport {
    /// The server answered every probe, each within `bound`.
    pub fn assert_healthy(&self, bound: Duration, what: &str) {
        assert!(self.requests > 0, "{what}: the probe made no request");
        assert_eq!(
            self.failures, 0,
            "{what}: {} of {} probe requests failed (first: {:?})",
            self.failures, self.requests, self.first_failure
        );
        assert!(
            self.worst <= bound,
            "{what}: a probe request took {:?} (bound {bound:?})",
            self.worst
        );
    }
}

/// A GET of `path` every `interval` by `api` (another tenant), until `finish`.
pub struct Probe {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<ProbeReport>,
}

impl Probe {
    pub fn start(api: Api, path: &str, interval: Duration) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let path = path.to_string();
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut report = ProbeReport::default();
            while !flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                let answer = tokio::time::timeout(
                    Duration::from_secs(30),
                    api.try_call(reqwest::Method::GET, &path, None),
                )
                .await;
                let took = started.elapsed();
                report.requests += 1;
                report.worst = report.worst.max(took);
                let failure = match answer {
                    Ok(Ok(a)) if a.status.is_success() => None,
                    Ok(Ok(a)) => Some(format!("status {}: {}", a.status, a.body)),
                    Ok(Err(e)) => Some(format!("no answer: {e}")),
                    Err(_) => Some("no answer within 30 s".to_string()),
                };
                if let Some(f) = failure {
                    report.failures += 1;
                    report.first_failure.get_or_insert(f);
                }
                tokio::time::sleep(interval.saturating_sub(took)).await;
            }
            report
        });
        Probe { stop, task }
    }

    pub async fn finish(self) -> ProbeReport {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("probe task")
    }
}

/// A field of `/proc/<pid>/status` in kB (`VmHWM`, `VmRSS`).
pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The peak resident memory of process `pid`, in MiB.
pub fn peak_rss_mib(pid: u32) -> u64 {
    proc_status_kb(pid, "VmHWM") / 1024
}

/// Asserts the server's peak memory stayed within `bound_mib`.
pub fn assert_peak_within(pid: u32, bound_mib: u64, what: &str) {
    let peak = peak_rss_mib(pid);
    assert!(peak > 0, "{what}: cannot read VmHWM of {pid}");
    assert!(
        peak <= bound_mib,
        "{what}: the server's peak memory was {peak} MiB (bound {bound_mib} MiB)"
    );
}
