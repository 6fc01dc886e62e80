//! Latency distributions and the closed-loop load generator.

use serde::Serialize;
use std::time::{Duration, Instant};

/// Latencies in nanoseconds, sorted.
#[derive(Debug, Clone, Default)]
pub struct Lat(pub Vec<u64>);

impl Lat {
    pub fn from(mut v: Vec<u64>) -> Lat {
        v.sort_unstable();
        Lat(v)
    }
    /// The `q` quantile (0..=1) in milliseconds (nearest rank); NaN when empty.
    pub fn ms(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
        self.0[rank - 1] as f64 / 1e6
    }
    pub fn p50(&self) -> f64 {
        self.ms(0.5)
    }
    pub fn p99(&self) -> f64 {
        self.ms(0.99)
    }
    pub fn max(&self) -> f64 {
        self.ms(1.0)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn summary(&self) -> Summary {
        Summary {
            n: self.len(),
            p50_ms: round3(self.p50()),
            p90_ms: round3(self.ms(0.9)),
            p99_ms: round3(self.p99()),
            max_ms: round3(self.max()),
        }
    }
}

pub fn round3(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1000.0).round() / 1000.0
    } else {
        x
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub n: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The result of a closed-loop load: latencies of the measured requests (every
/// repetition pooled), throughput per repetition, errors.
#[derive(Debug, Clone)]
pub struct Load {
    pub lat: Lat,
    pub rps: Vec<f64>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Load {
    pub fn rps_median(&self) -> f64 {
        let mut v = self.rps.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() {
            f64::NAN
        } else {
            v[v.len() / 2]
        }
    }
    pub fn rps_range(&self) -> (f64, f64) {
        let min = self.rps.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.rps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "latency": self.lat.summary(),
            "rps_median": self.rps_median().round(),
            "rps_per_rep": self.rps.iter().map(|r| r.round()).collect::<Vec<_>>(),
            "errors": self.errors,
            "first_error": self.first_error,
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub warmup: Duration,
    pub rep: Duration,
    pub reps: usize,
    /// Upper bound on requests per client (loops are bounded in count as well as time).
    pub max_per_client: u64,
}

/// Runs `clients` loops at once, each with its own state from `make` and calling `op`
/// back to back: a warm-up, then `reps` measured windows. A request is measured in the
/// window in which it completes (so throughput stays right for requests slower than a
/// window); those completing during the warm-up are not measured.
pub async fn closed_loop<S, M, F>(clients: usize, plan: Plan, mut make: M, op: F) -> Load
where
    S: 'static,
    M: FnMut(usize) -> S,
    F: AsyncFn(&mut S, u64) -> Result<(), String> + Clone + 'static,
{
    let start = Instant::now() + Duration::from_millis(5);
    let windows: Vec<(Instant, Instant)> = (0..plan.reps)
        .map(|r| {
            let from = start + plan.warmup + plan.rep * r as u32;
            (from, from + plan.rep)
        })
        .collect();
    let end = windows.last().map(|w| w.1).unwrap_or(start);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut state = make(c);
        let op = op.clone();
        let windows = windows.clone();
        tasks.push(tokio::task::spawn_local(async move {
            tokio::time::sleep_until(start.into()).await;
            let mut lat: Vec<u64> = Vec::new();
            let mut per_rep = vec![0u64; windows.len()];
            let mut errors = 0u64;
            let mut first_error = None;
            let mut i = 0u64;
            while i < plan.max_per_client {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let r = op(&mut state, i).await;
                let t1 = Instant::now();
                i += 1;
                match r {
                    Ok(()) => {
                        // Counted by completion, so slow requests still count.
                        if let Some(w) = windows.iter().position(|w| t1 > w.0 && t1 <= w.1) {
                            lat.push((t1 - t0).as_nanos() as u64);
                            per_rep[w] += 1;
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        if first_error.is_none() {
                            first_error = Some(e);
                        }
                        // Do not spin on a broken server.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            (lat, per_rep, errors, first_error)
        }));
    }
    let mut all = Vec::new();
    let mut per_rep = vec![0u64; plan.reps];
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        if let Ok((lat, reps, e, fe)) = t.await {
            all.extend(lat);
            for (a, b) in per_rep.iter_mut().zip(reps) {
                *a += b;
            }
            errors += e;
            if first_error.is_none() {
                first_error = fe;
            }
        }
    }
    Load {
        lat: Lat::from(all),
        rps: per_rep
            .iter()
            .map(|n| *n as f64 / plan.rep.as_secs_f64())
            .collect(),
        errors,
        first_error,
    }
}
