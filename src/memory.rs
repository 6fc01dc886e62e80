//! Gives the system back heap memory that a burst of load freed.
//!
//! glibc's allocator keeps freed memory inside its heaps when live objects sit above it
//! (fragmentation), so after a burst the resident size stays near the burst's peak: on the
//! Azure store 34 MB after 64 concurrent lists, of which `malloc_trim` returned 19 MB
//! (BENCHMARKS.md). The trimmer looks every few seconds at the CPU the process used: once
//! it has gone quiet after being busy, and the resident size is more than
//! `TRIM_ABOVE_START` above what it was at start, it calls `malloc_trim` once, and once more
//! `RETRIM_AFTER` later if the process stayed quiet and is still that large: what the burst
//! left behind is freed late too (pooled connections and idle blocking-pool threads go
//! after their idle timeouts), after the first trim. Only on glibc on Linux; elsewhere it does
//! nothing. It stops when the process begins to stop.

use crate::shutdown::Shutdown;
use std::time::Duration;

/// How often the process's CPU time and resident size are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// CPU time within one `CHECK_EVERY` below which the process counts as quiet (2 %).
const QUIET_CPU: Duration = Duration::from_millis(100);
/// Growth of the resident size since start that is worth a trim.
const TRIM_ABOVE_START: u64 = 4 * 1024 * 1024;
/// Quiet checks after a trim before the second one (35 s: what a burst leaves is freed
/// late too, e.g. connections of the storage pool and the blocking pool's threads, which
/// exit after 10 s idle).
const RETRIM_AFTER: u32 = 7;

/// Starts the trimmer, owned by `shutdown`: it runs until the shutdown begins.
pub fn spawn_trimmer(shutdown: &Shutdown) {
    let stop = shutdown.clone();
    shutdown.spawn(async move {
        let (Some(start_rss), Some(mut last_cpu)) = (resident_bytes(), cpu_time()) else {
            return;
        };
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut busy_since_trim = false;
        // Quiet checks left before the second trim, after a first one.
        let mut retrim_in: Option<u32> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.stopping() => return,
            }
            let (Some(rss), Some(cpu)) = (resident_bytes(), cpu_time()) else {
                return;
            };
            let quiet = cpu.saturating_sub(last_cpu) < QUIET_CPU;
            last_cpu = cpu;
            let large = rss > start_rss + TRIM_ABOVE_START;
            if !quiet {
                busy_since_trim = true;
                retrim_in = None;
            } else if busy_since_trim {
                busy_since_trim = false;
                if large {
                    trim();
                    retrim_in = Some(RETRIM_AFTER);
                }
            } else if let Some(n) = retrim_in {
                retrim_in = n.checked_sub(1).filter(|left| *left > 0);
                if retrim_in.is_none() && large {
                    trim();
                }
            }
        }
    });
}

/// The process's resident size (`/proc/self/statm`; Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The CPU time the process used so far, user and system (`/proc/self/stat`; Linux).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces), from field 3 on.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (user + system) as f64 / clock_ticks(),
    ))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn page_size() -> u64 {
    // SAFETY: sysconf reads a constant of the system and takes no pointer.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn clock_ticks() -> f64 {
    // SAFETY: as above.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only adjusts glibc's own allocator state, under its locks, and
    // takes no pointer from us.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn page_size() -> u64 {
    4096
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn clock_ticks() -> f64 {
    100.0
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_size_and_cpu_time() {
        let rss = resident_bytes().unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
        let before = cpu_time().unwrap();
        let mut x = 0u64;
        let until = std::time::Instant::now() + Duration::from_millis(50);
        while std::time::Instant::now() < until {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        assert!(cpu_time().unwrap() >= before);
    }
}
