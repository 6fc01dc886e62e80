//! Hostile input against the local code-interpreter sandbox (issue 17, items 11 and 14): a
//! tenant whose cells try to fill the disk, or read where the service keeps its data.
//! Each test runs the real server as a child process, with DATA_DIR in a private (0700)
//! directory and the sandbox's defaults otherwise, and checks while the attack runs that
//! another tenant's requests are answered, and afterwards that the attacked object (run,
//! session, store) ends in a defined state.

mod support;

use assistants::standin::StandIn;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use support::hostile::Probe;
use support::remote::{check_run, Api, ServerProcess};
use support::{call, say, KEY_A, KEY_B};

/// Longest a probe GET may take while an attack runs (a loaded 2-core CI machine).
const PROBE_BOUND: Duration = Duration::from_secs(2);
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

/// Item 11: a cell that writes far more than the session's disk quota gets "no space left"
/// at the quota, and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cell_cannot_fill_its_disk() {
    let lab = start(&[("CODE_INTERPRETER_DISK_MB", "128")]).await;
    let (api, other) = (lab.server.api(KEY_A), lab.server.api(KEY_B));
    let asst = code_assistant(&api).await;
    let thread = new_thread(&api).await;
    let probe = Probe::start(other, "/assistants?limit=1", PROBE_EVERY);
    // 16 files of 32 MB: 512 MB, each file well under the per-file limit.
    let fill = "import errno\nwritten, error = 0, None\nchunk = b'x' * (1 << 20)\n\
                try:\n    for i in range(16):\n        with open(f'/mnt/data/big-{i}.bin', 'wb') as f:\n\
                \x20           for _ in range(32):\n                f.write(chunk)\n\
                \x20               written += 1\nexcept OSError as e:\n    error = errno.errorcode[e.errno]\n\
                print(written, error)";
    let logs = run_cells(
        &api,
        &lab.llm,
        &asst,
        &thread,
        "fill",
        &[fill, "'still here'"],
    )
    .await;
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
    assert_eq!(logs[1], "'still here'");
    probe
        .finish()
        .await
        .assert_healthy(PROBE_BOUND, "while a cell filled its disk");
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
