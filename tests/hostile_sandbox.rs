//! Hostile input against the local code-interpreter sandbox (issue 17, items 10, 11, 12 and
//! 14): a tenant whose cells try to starve another tenant of sessions, fill the disk and the
//! store, keep processes running between cells, or read where the service keeps its data.
//! Each test runs the real server as a child process, with DATA_DIR in a private (0700)
//! directory and the sandbox's defaults otherwise, and checks while the attack runs that
//! another tenant's requests are answered, and afterwards that the attacked object (run,
//! session, store) ends in a defined state.

mod support;

use llm_standin::StandIn;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use support::hostile::{assert_peak_within, peak_rss_mib, Probe, PROBE_BOUND};
use support::remote::{check_run, Api, ServerProcess};
use support::{call, say, KEY_A, KEY_B};

const PROBE_EVERY: Duration = Duration::from_millis(200);
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// The server with its LLM stand-in, in a private directory (removed at the end).
struct Lab {
    server: ServerProcess,
    llm: StandIn,
    data_dir: std::path::PathBuf,
    dir: tempfile::TempDir,
}

async fn start(env: &[(&str, &str)]) -> Lab {
    let llm = StandIn::new();
    let llm_addr = llm.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let base_url = format!("http://{llm_addr}/v1");
    // As `mktemp -d` makes it: only the service's user can enter it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let data_dir = dir.path().join("data");
    let data = data_dir.display().to_string();
    let mut all: Vec<(&str, &str)> = vec![("DATA_DIR", &data), ("OPENAI_BASE_URL", &base_url)];
    all.extend_from_slice(env);
    let server = ServerProcess::start(&all, &dir.path().join("server.log")).await;
    Lab {
        server,
        llm,
        data_dir,
        dir,
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

fn code_args(code: &str) -> String {
    json!({ "code": code }).to_string()
}

async fn code_assistant(api: &Api) -> String {
    id(&api
        .post(
            "/assistants",
            json!({"model": "m", "tools": [{"type": "code_interpreter"}]}),
        )
        .await
        .ok())
}

async fn new_thread(api: &Api) -> String {
    id(&api.post("/threads", json!({})).await.ok())
}

/// Starts a run on `thread` whose model (a script of its own, `model`) calls the tool once
/// per cell, then answers; returns the run id.
async fn start_cells(
    api: &Api,
    llm: &StandIn,
    asst: &str,
    thread: &str,
    model: &str,
    cells: &[&str],
) -> String {
    let mut script: Vec<_> = cells
        .iter()
        .map(|c| call(&[("python", &code_args(c))]))
        .collect();
    script.push(say("done"));
    llm.script(Some(model), script);
    id(&api
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": asst, "model": model}),
        )
        .await
        .ok())
}

/// The `logs` of each code_interpreter call of a run that completed, in order.
async fn finish_cells(api: &Api, thread: &str, run: &str) -> Vec<String> {
    let done = api
        .wait_run(
            thread,
            run,
            &["completed", "failed", "cancelled", "expired", "incomplete"],
            RUN_TIMEOUT,
        )
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    let state = check_run(api, thread, run).await;
    state
        .steps
        .iter()
        .filter(|s| s["type"] == "tool_calls")
        .flat_map(|s| {
            s["step_details"]["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| {
            c["code_interpreter"]["outputs"]
                .as_array()
                .and_then(|o| o.iter().find(|o| o["type"] == "logs"))
                .and_then(|o| o["logs"].as_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

async fn run_cells(
    api: &Api,
    llm: &StandIn,
    asst: &str,
    thread: &str,
    model: &str,
    cells: &[&str],
) -> Vec<String> {
    let run = start_cells(api, llm, asst, thread, model, cells).await;
    finish_cells(api, thread, &run).await
}

/// A process of the host: parent, state and CPU time, from `/proc/<pid>/stat`.
#[derive(Clone, Copy)]
struct Proc {
    pid: u32,
    ppid: u32,
    state: char,
    cpu_ticks: u64,
}

fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name may hold spaces and parentheses: fields start after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        out.push(Proc {
            pid,
            ppid: num(1) as u32,
            state: fields.first().and_then(|s| s.chars().next()).unwrap_or('?'),
            // utime + stime (fields 14 and 15 of stat, 11 and 12 after the name).
            cpu_ticks: num(11) + num(12),
        });
    }
    out
}

/// The live (not zombie) processes descending from `root`.
fn live_descendants(root: u32) -> Vec<Proc> {
    let all = processes();
    let mut found: Vec<u32> = vec![root];
    let mut out = Vec::new();
    while let Some(parent) = found.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            found.push(p.pid);
            if p.state != 'Z' && p.state != 'X' {
                out.push(*p);
            }
        }
    }
    out
}

/// Item 12: a cell that disables the driver's clean-up (through `sys._getframe(1).f_globals`,
/// as in the issue) and leaves a CPU burner process and a spinning thread behind. Between
/// cells nothing of the session may run: the burner is gone, the driver uses no CPU; the
/// session itself lives on with its variables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_a_session_runs_between_its_cells() {
    let lab = start(&[]).await;
    let (api, other) = (lab.server.api(KEY_A), lab.server.api(KEY_B));
    let asst = code_assistant(&api).await;
    let thread = new_thread(&api).await;
    let probe = Probe::start(other, "/assistants?limit=1", PROBE_EVERY);
    let sabotage = "import subprocess, sys, threading\n\
                    sys._getframe(1).f_globals['_end_strays'] = lambda: None\n\
                    burner = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n\
                    def spin():\n    while True:\n        pass\n\
                    threading.Thread(target=spin, daemon=True).start()\n\
                    kept = 'still here'\n\
                    'burner started'";
    let logs = run_cells(&api, &lab.llm, &asst, &thread, "sabotage", &[sabotage]).await;
    assert_eq!(logs, ["'burner started'"]);

    // What is left of the session: its sandbox (bwrap, its namespace's init, the driver).
    let server = lab.server.pid();
    let deadline = Instant::now() + Duration::from_secs(5);
    let left = loop {
        let left = live_descendants(server);
        if left.len() <= 3 || Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        left.len(),
        3,
        "the burner outlived its cell: {:?}",
        left.iter().map(|p| (p.pid, p.state)).collect::<Vec<_>>()
    );
    let ticks = |procs: &[Proc]| -> u64 {
        let now = processes();
        procs
            .iter()
            .filter_map(|p| now.iter().find(|q| q.pid == p.pid))
            .map(|p| p.cpu_ticks)
            .sum()
    };
    let before = ticks(&left);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let used = ticks(&left) - before;
    // Clock ticks are 1/100 s: a spinning thread would use about 150 of them.
    assert!(
        used <= 10,
        "the session used {used} ticks of CPU while no cell ran"
    );
    probe
        .finish()
        .await
        .assert_healthy(PROBE_BOUND, "while a cell left processes behind");

    // The session goes on, with its variables, and still leaves nothing behind.
    let logs = run_cells(&api, &lab.llm, &asst, &thread, "after", &["kept"]).await;
    assert_eq!(logs, ["'still here'"]);
    assert_eq!(live_descendants(server).len(), 3);
}

/// Item 11: a cell that writes far more than the session's disk quota gets "no space left"
/// at the quota; a cell's files are exported into the store only up to the per-cell count
/// and bytes, and the model is told which were left out. The server's memory stays bounded
/// while it exports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cell_cannot_fill_the_disk_or_flood_the_store() {
    let lab = start(&[
        ("CODE_INTERPRETER_DISK_MB", "128"),
        ("CODE_INTERPRETER_MAX_EXPORT_MB", "24"),
        ("CODE_INTERPRETER_MAX_EXPORT_FILES", "3"),
    ])
    .await;
    let (api, other) = (lab.server.api(KEY_A), lab.server.api(KEY_B));
    let asst = code_assistant(&api).await;
    let thread = new_thread(&api).await;
    let baseline = peak_rss_mib(lab.server.pid());
    let probe = Probe::start(other, "/assistants?limit=1", PROBE_EVERY);
    // 16 files of 32 MB: 512 MB, each file well under the per-file limit.
    let fill = "import errno\nwritten, error = 0, None\nchunk = b'x' * (1 << 20)\n\
                try:\n    for i in range(16):\n        with open(f'/mnt/data/big-{i}.bin', 'wb') as f:\n\
                \x20           for _ in range(32):\n                f.write(chunk)\n\
                \x20               written += 1\nexcept OSError as e:\n    error = errno.errorcode[e.errno]\n\
                print(written, error)";
    // Then six files of 8 MB (48 MB) after removing the big ones.
    let many = "import glob, os\nfor p in glob.glob('/mnt/data/big-*'):\n    os.remove(p)\n\
                for i in range(6):\n    with open(f'/mnt/data/part-{i}.bin', 'wb') as f:\n\
                \x20       f.write(bytes([65 + i]) * (8 << 20))\n'six written'";
    let run = start_cells(&api, &lab.llm, &asst, &thread, "fill", &[fill, many]).await;
    let logs = finish_cells(&api, &thread, &run).await;
    let probe = probe.finish().await;

    let (written, error) = logs[0]
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("{}", logs[0]));
    let written: u64 = written.parse().unwrap();
    assert_eq!(
        error, "ENOSPC",
        "the disk quota stops the cell: {}",
        logs[0]
    );
    assert!(written <= 128, "{written} MB written past a 128 MB quota");
    assert_eq!(logs[1], "'six written'");

    // Per cell, at most 3 files and 24 MB reached the store: none of the 32 MB files of the
    // first (only the empty one it began when the disk was full), three 8 MB files of the
    // second; the model heard of the others.
    let outputs = api.list_all("/files?purpose=assistants_output").await;
    let exported = |prefix: &str| -> Vec<u64> {
        outputs
            .iter()
            .filter(|f| f["filename"].as_str().unwrap_or("").starts_with(prefix))
            .map(|f| f["bytes"].as_u64().unwrap())
            .collect()
    };
    let (big, parts) = (exported("big-"), exported("part-"));
    assert!(
        big.len() <= 3 && big.iter().sum::<u64>() <= 24 << 20,
        "first cell exported {big:?}"
    );
    assert_eq!(parts, [8 << 20; 3], "second cell exported {parts:?}");
    let told: Vec<String> = lab.llm.requests().last().unwrap()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        told[1].contains("not saved") && told[1].matches("not saved").count() == 3,
        "{}",
        told[1]
    );
    probe.assert_healthy(PROBE_BOUND, "while a cell filled its disk");
    let peak = peak_rss_mib(lab.server.pid());
    eprintln!("server peak memory: {baseline} MiB before, {peak} MiB after the export");
    assert_peak_within(lab.server.pid(), baseline + 64, "exporting a cell's files");
}

/// Item 10: tenant B keeps more sessions busy than its share; tenant A still gets a session
/// for a new thread, and A's idle session (with its variables) survives B's activity. B's
/// calls beyond its quota get a clear error at once instead of waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_cannot_take_another_tenants_sessions() {
    // Four sessions in all, so (by default) two per tenant.
    let lab = start(&[("CODE_INTERPRETER_MAX_SESSIONS", "4")]).await;
    let (a, b) = (lab.server.api(KEY_A), lab.server.api(KEY_B));
    let (asst_a, asst_b) = (code_assistant(&a).await, code_assistant(&b).await);
    let kept = new_thread(&a).await;
    let logs = run_cells(&a, &lab.llm, &asst_a, &kept, "a-0", &["x = 42\n'set'"]).await;
    assert_eq!(logs, ["'set'"]);

    let probe = Probe::start(a.clone(), "/assistants?limit=1", PROBE_EVERY);
    // B: four threads, each running a cell that holds its session for 12 s.
    let mut b_runs = Vec::new();
    for i in 0..4 {
        let thread = new_thread(&b).await;
        let model = format!("b-{i}");
        let run = start_cells(
            &b,
            &lab.llm,
            &asst_b,
            &thread,
            &model,
            &["import time\ntime.sleep(12)\n'slept'"],
        )
        .await;
        b_runs.push((thread, run));
    }
    // Once every B run has asked the model for its call, give the sessions time to start.
    let deadline = Instant::now() + Duration::from_secs(30);
    while lab
        .llm
        .requests()
        .iter()
        .filter(|r| r["model"].as_str().unwrap_or("").starts_with("b-"))
        .count()
        < 4
    {
        assert!(Instant::now() < deadline, "B's runs did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    // A gets a session for a new thread while B's cells still run.
    let started = Instant::now();
    let fresh = new_thread(&a).await;
    let logs = run_cells(&a, &lab.llm, &asst_a, &fresh, "a-1", &["'a has a session'"]).await;
    assert_eq!(logs, ["'a has a session'"]);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "A waited for B's cells: {:?}",
        started.elapsed()
    );
    // A's first session kept its variables.
    let logs = run_cells(&a, &lab.llm, &asst_a, &kept, "a-2", &["x"]).await;
    assert_eq!(logs, ["42"]);

    // B's runs ended: two with their cell's result, two told at once that B's sessions are
    // all busy.
    let mut slept = 0;
    let mut refused = 0;
    for (thread, run) in &b_runs {
        let logs = finish_cells(&b, thread, run).await;
        match logs[0].as_str() {
            "'slept'" => slept += 1,
            other if other.contains("Python sessions are running code") => refused += 1,
            other => panic!("unexpected output of B's cell: {other}"),
        }
    }
    assert_eq!((slept, refused), (2, 2));
    probe
        .finish()
        .await
        .assert_healthy(PROBE_BOUND, "while B held its sessions");
}

/// Item 14: nothing inside the sandbox names where the service keeps its data or which
/// session this is: not the mount table, not the sandbox's own command lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_shows_no_host_path_or_session_name() {
    let lab = start(&[]).await;
    let api = lab.server.api(KEY_A);
    let asst = code_assistant(&api).await;
    let thread = new_thread(&api).await;
    let look = "import glob\nseen = []\n\
                for p in ['/proc/self/mountinfo', '/proc/self/mounts', '/proc/self/cgroup'] + \
                sorted(glob.glob('/proc/[0-9]*/cmdline')):\n\
                \x20   try:\n        seen.append(p + ': ' + open(p, 'rb').read().replace(b'\\0', b' ').decode())\n\
                \x20   except OSError as e:\n        seen.append(p + ': ' + type(e).__name__)\n\
                print('\\n'.join(seen))";
    let logs = run_cells(&api, &lab.llm, &asst, &thread, "look", &[look]).await;
    let seen = &logs[0];
    assert!(seen.contains("/mnt/data"), "{seen}");
    let private = lab.dir.path().display().to_string();
    for host in [
        private.as_str(),
        lab.data_dir.to_str().unwrap(),
        "code-interpreter",
        "sessions",
    ] {
        assert!(!seen.contains(host), "{host:?} is visible inside:\n{seen}");
    }
    // A session id is 64 hex digits; nothing that long is there.
    let longest_hex = seen
        .split(|c: char| !c.is_ascii_hexdigit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(longest_hex < 32, "a session-like name is visible:\n{seen}");
}
