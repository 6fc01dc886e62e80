//! The service benchmark of issue 8: one command starts the release service and the
//! stand-in LLM (and Azurite), measures every figure with warm-up and repetitions, each
//! beside a baseline measured in the same run, and prints the table (and writes JSON).
//!
//! ```sh
//! cargo bench --bench service -- --storage local
//! cargo bench --bench service -- --storage azurite     # needs `npm ci` (Azurite) first
//! ```
//! Options: `--quick` (short windows, for a smoke test), `--streams N` (default 1000),
//! `--only a,b` (sections: cold, crud, stream, queued, webhooks, responses, concurrency, ops),
//! `--out FILE` (JSON; default `target/bench/service-<storage>.json`), `--crud-ops
//! create,get,list` (a subset of the CRUD loads), `--service-bin PATH` (measure another
//! build of the service, e.g. one with symbols for `perf`), `--child-env K=V` (extra
//! environment for the service and the stand-in, for experiments such as an `LD_PRELOAD`).
//!
//! Everything is on loopback. The load generator is single-threaded (one core at most), so
//! on a 2-core machine the service has the other core; its own costs are not counted in
//! server-side figures but are part of every client-side latency, as they would be for any
//! client.

mod azure;
mod http;
mod procs;
mod stats;

use http::Conn;
use procs::{Azurite, Proc};
use serde_json::{json, Value};
use stats::{closed_loop, round3, Lat, Load, Plan};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    Local,
    Azurite,
}

impl Storage {
    fn name(self) -> &'static str {
        match self {
            Storage::Local => "local",
            Storage::Azurite => "azurite",
        }
    }
}

struct Args {
    storage: Storage,
    quick: bool,
    streams: usize,
    only: Option<Vec<String>>,
    out: Option<PathBuf>,
    /// Another build of the service to measure (e.g. one with symbols, for profiling).
    service_bin: Option<PathBuf>,
    /// Which CRUD operations to run (`create`, `get`, `list`); all by default.
    crud_ops: Option<Vec<String>>,
    /// Extra environment for the service and the stand-in (experiments, e.g. LD_PRELOAD).
    child_env: Vec<(String, String)>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        storage: Storage::Local,
        quick: false,
        streams: 1000,
        only: None,
        out: None,
        service_bin: None,
        crud_ops: None,
        child_env: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--storage" => {
                args.storage = match it.next().as_deref() {
                    Some("local") => Storage::Local,
                    Some("azurite") | Some("azure") => Storage::Azurite,
                    other => return Err(format!("--storage local|azurite, not {other:?}")),
                }
            }
            "--quick" => args.quick = true,
            "--streams" => {
                args.streams = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| (1..=20000).contains(n))
                    .ok_or("--streams N (1..=20000)")?
            }
            "--only" => {
                args.only = Some(
                    it.next()
                        .ok_or("--only a,b")?
                        .split(',')
                        .map(str::to_string)
                        .collect(),
                )
            }
            "--out" => args.out = Some(PathBuf::from(it.next().ok_or("--out FILE")?)),
            "--service-bin" => {
                args.service_bin = Some(PathBuf::from(it.next().ok_or("--service-bin PATH")?))
            }
            "--child-env" => {
                let kv = it.next().ok_or("--child-env KEY=VALUE")?;
                let (k, v) = kv.split_once('=').ok_or("--child-env KEY=VALUE")?;
                args.child_env.push((k.to_string(), v.to_string()));
            }
            "--crud-ops" => {
                args.crud_ops = Some(
                    it.next()
                        .ok_or("--crud-ops create,get,list")?
                        .split(',')
                        .map(str::to_string)
                        .collect(),
                )
            }
            // `cargo bench` passes `--bench`; filters and other libtest flags are ignored.
            "--bench" | "--nocapture" => {}
            "-h" | "--help" => {
                return Err(
                    "usage: cargo bench --bench service -- [--storage local|azurite] \
                     [--quick] [--streams N] [--only cold,crud,stream,queued,webhooks,responses,concurrency,ops] \
                     [--crud-ops create,get,list] [--service-bin PATH] [--child-env K=V] \
                     [--out FILE]"
                        .into(),
                )
            }
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            _ => {}
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--baseline-server") {
        return baseline_server();
    }
    if std::env::args().any(|a| a == "--standin") {
        return standin_server();
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it:
    // then do nothing (the benchmark takes minutes and starts processes).
    if !std::env::args().any(|a| a == "--bench" || a == "--storage" || a == "--only") {
        println!(
            "service benchmark: run it with `cargo bench --bench service -- --storage local` \
             (or `--storage azurite`); nothing to do here"
        );
        return ExitCode::SUCCESS;
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let nofile = procs::raise_nofile();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    match local.block_on(&rt, run(args, nofile)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The stand-in LLM as the `llm-standin` binary runs it (the same library function on the same
/// runtime). The harness runs it as a child of its own executable because a benchmark cannot
/// ask cargo for another package's binary.
fn standin_server() -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(llm_standin::run(0)),
        Err(e) => {
            eprintln!("stand-in: no runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The baseline HTTP server: warp on the same runtime shape as the service (multi-thread,
/// one worker per core), answering a canned JSON object of the size of a message, without
/// storage: the floor any Rust HTTP API server pays on this machine with this client.
fn baseline_server() -> ExitCode {
    use warp::Filter;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let canned = bytes::Bytes::from(canned_message().to_string());
        let c1 = canned.clone();
        let get = warp::get().map(move || {
            let mut r = warp::http::Response::new(c1.clone());
            r.headers_mut().insert(
                "content-type",
                warp::http::HeaderValue::from_static("application/json"),
            );
            r
        });
        let post = warp::post()
            .and(warp::body::bytes())
            .map(move |_b: bytes::Bytes| {
                let mut r = warp::http::Response::new(canned.clone());
                r.headers_mut().insert(
                    "content-type",
                    warp::http::HeaderValue::from_static("application/json"),
                );
                r
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        eprintln!(
            "baseline listening on http://{}/",
            listener.local_addr().expect("addr")
        );
        warp::serve(get.or(post)).incoming(listener).run().await;
    });
    ExitCode::SUCCESS
}

fn canned_message() -> Value {
    json!({"id": "msg_0000000000000000000000000", "object": "thread.message", "created_at": 1700000000,
           "thread_id": "thread_000000000000000000000000", "status": "completed", "incomplete_details": null,
           "completed_at": 1700000000, "incomplete_at": null, "role": "user",
           "content": [{"type": "text", "text": {"value": "What is the weather like in Oslo today?", "annotations": []}}],
           "assistant_id": null, "run_id": null, "attachments": [], "metadata": {}})
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// One line of the final table.
struct Row {
    section: &'static str,
    figure: String,
    measured: String,
    baseline: String,
    target: String,
    verdict: &'static str,
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

struct Bench {
    args: Args,
    repo: PathBuf,
    service_bin: PathBuf,
    work: tempfile::TempDir,
    standin: SocketAddr,
    azurite: Option<Azurite>,
    rows: Vec<Row>,
    results: serde_json::Map<String, Value>,
    plan: Plan,
    http: reqwest::Client,
}

/// Requests against the service's API over the raw client.
#[derive(Clone)]
struct Api {
    host: String,
}

impl Api {
    fn new(addr: SocketAddr) -> Api {
        Api {
            host: addr.to_string(),
        }
    }
    fn req(&self, method: &str, path: &str, body: Option<&Value>) -> Vec<u8> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = vec![
            ("openai-beta", "assistants=v2"),
            ("authorization", "Bearer sk-bench"),
        ];
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        http::request(
            method,
            &self.host,
            &format!("/v1{path}"),
            &headers,
            body.as_bytes(),
        )
    }
    async fn call(
        &self,
        conn: &mut Conn,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let r = conn.send(&self.req(method, path, body.as_ref())).await?;
        if r.status != 200 {
            return Err(format!("{method} {path}: {} {}", r.status, r.text()));
        }
        Ok(r.json())
    }
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

const USER_TEXT: &str = "What is the weather like in Oslo today?";

impl Bench {
    fn wants(&self, section: &str) -> bool {
        self.args
            .only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == section))
    }

    fn wants_crud(&self, name: &str) -> bool {
        let short = match name {
            "create message" => "create",
            "get run" => "get",
            "list 20 messages" => "list",
            _ => return true,
        };
        self.args
            .crud_ops
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == short))
    }

    fn row(
        &mut self,
        section: &'static str,
        figure: impl Into<String>,
        measured: impl Into<String>,
        baseline: impl Into<String>,
        target: impl Into<String>,
        verdict: &'static str,
    ) {
        let row = Row {
            section,
            figure: figure.into(),
            measured: measured.into(),
            baseline: baseline.into(),
            target: target.into(),
            verdict,
        };
        eprintln!(
            "  {} | {} | baseline {} | target {} | {}",
            row.figure, row.measured, row.baseline, row.target, row.verdict
        );
        self.rows.push(row);
    }

    fn storage_container() -> String {
        format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..20])
    }

    fn connection_string(blob: SocketAddr, queue: SocketAddr) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint=http://{blob}/{};QueueEndpoint=http://{queue}/{};",
            azure::ACCOUNT,
            azure::KEY,
            azure::ACCOUNT,
            azure::ACCOUNT
        )
    }

    /// The service's settings: loopback, a fresh data directory or container, the stand-in.
    fn service_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            ("PORT".into(), "0".into()),
            ("BIND".into(), "127.0.0.1".into()),
            (
                "OPENAI_BASE_URL".into(),
                format!("http://{}/v1", self.standin),
            ),
            ("OPENAI_API_KEY".into(), "sk-bench".into()),
        ];
        match &self.azurite {
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("data-")
                    .tempdir_in(self.work.path())
                    .expect("data dir")
                    .keep();
                env.push(("STORAGE".into(), "local".into()));
                env.push(("DATA_DIR".into(), dir.display().to_string()));
            }
            Some(az) => {
                env.push(("STORAGE".into(), "azure".into()));
                env.push((
                    "STORAGE_CONNECTION_STRING".into(),
                    Self::connection_string(az.blob, az.queue),
                ));
                env.push(("STORAGE_CONTAINER".into(), Self::storage_container()));
                env.push(("QUEUE_NAME".into(), Self::storage_container()));
            }
        }
        env.extend(self.args.child_env.iter().cloned());
        env
    }

    fn start_service(&self, tag: &str) -> Result<(Proc, SocketAddr, Instant), String> {
        procs::start_service(
            &self.service_bin,
            &self.service_env(),
            Some(self.work.path().join(format!("service-{tag}.log"))),
        )
    }

    async fn script(&self, model: &str, responses: Vec<Value>) -> Result<(), String> {
        let r = self
            .http
            .post(format!("http://{}/_script", self.standin))
            .json(&json!({"model": model, "responses": responses}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("script: {}", r.status()));
        }
        Ok(())
    }

    async fn standin_requests(&self, model: &str) -> Result<Vec<Value>, String> {
        self.http
            .get(format!("http://{}/_requests?model={model}", self.standin))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())
    }
}

async fn run(args: Args, nofile: u64) -> Result<(), String> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let service_bin = args
        .service_bin
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_assistants-service")));
    let plan = if args.quick {
        Plan {
            warmup: Duration::from_millis(300),
            rep: Duration::from_millis(500),
            reps: 2,
            max_per_client: 1_000_000,
        }
    } else {
        Plan {
            warmup: Duration::from_secs(1),
            rep: Duration::from_secs(2),
            reps: 3,
            max_per_client: 5_000_000,
        }
    };
    let load_start = procs::loadavg();
    eprintln!(
        "bench: storage {}, service {}, load average {load_start}, fd limit {nofile}",
        args.storage.name(),
        service_bin.display()
    );
    let work = tempfile::Builder::new()
        .prefix("assistants-bench-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let (standin_proc, standin) = procs::start_standin(&args.child_env)?;
    let azurite = match args.storage {
        Storage::Local => None,
        Storage::Azurite => {
            let az = procs::start_azurite(&repo)?;
            eprintln!("bench: azurite blob {} queue {}", az.blob, az.queue);
            Some(az)
        }
    };
    let mut b = Bench {
        args,
        repo,
        service_bin,
        work,
        standin,
        azurite,
        rows: Vec::new(),
        results: serde_json::Map::new(),
        plan,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(2048)
            .build()
            .map_err(|e| e.to_string())?,
    };
    let started = Instant::now();
    if b.wants("cold") {
        cold_start(&mut b).await?;
    }
    // The service every other section uses.
    let (service, addr, _) = b.start_service("main")?;
    eprintln!("bench: service pid {} at {addr}", service.pid());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_fresh = service.mem();
    let fx = fixtures(&b, addr).await?;
    if b.wants("crud") {
        crud(&mut b, addr, &fx).await?;
    }
    if b.wants("stream") {
        streamed_overhead(&mut b, addr, &fx).await?;
    }
    if b.wants("queued") {
        queued_run(&mut b, addr, &fx).await?;
    }
    if b.wants("webhooks") {
        webhooks_dead_receiver(&mut b, addr, &fx).await?;
    }
    if b.wants("responses") {
        responses(&mut b, addr).await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_after = service.mem();
    b.results.insert(
        "memory_idle".into(),
        json!({"fresh": idle_fresh, "after_load": idle_after}),
    );
    if b.wants("concurrency") {
        concurrency(&mut b, addr, &fx, &service, idle_fresh, idle_after).await?;
    }
    let warnings = service.warnings.load(std::sync::atomic::Ordering::Relaxed);
    let warning_lines = service
        .warning_lines
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    drop(service);
    if b.wants("ops") {
        ops(&mut b).await?;
    }
    drop(standin_proc);
    let load_end = procs::loadavg();
    b.results.insert(
        "run".into(),
        json!({
            "storage": b.args.storage.name(),
            "quick": b.args.quick,
            "machine": procs::machine(),
            "load_average_start": load_start,
            "load_average_end": load_end,
            "seconds": started.elapsed().as_secs(),
            "service_log_warnings": warnings,
            "service_log_warning_lines": warning_lines,
            "git": git_rev(&b.repo),
        }),
    );
    print_table(&b, &load_start, &load_end, warnings);
    let out = b.args.out.clone().unwrap_or_else(|| {
        b.repo
            .join("target/bench")
            .join(format!("service-{}.json", b.args.storage.name()))
    });
    if let Some(dir) = out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut rows = Vec::new();
    for r in &b.rows {
        rows.push(
            json!({"section": r.section, "figure": r.figure, "measured": r.measured,
                         "baseline": r.baseline, "target": r.target, "verdict": r.verdict}),
        );
    }
    b.results.insert("table".into(), Value::Array(rows));
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&Value::Object(b.results.clone())).unwrap_or_default(),
    )
    .map_err(|e| format!("{}: {e}", out.display()))?;
    println!("\nraw results: {}", out.display());
    Ok(())
}

fn git_rev(repo: &Path) -> String {
    let out = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(repo)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let rev = out(&["rev-parse", "--short", "HEAD"]);
    let dirty = !out(&["status", "--porcelain", "--", "src", "Cargo.toml"]).is_empty();
    if dirty {
        format!("{rev} (+ uncommitted changes in src/ or Cargo.toml)")
    } else {
        rev
    }
}

fn print_table(b: &Bench, load_start: &str, load_end: &str, warnings: u64) {
    let m = procs::machine();
    println!();
    println!(
        "## assistants-service benchmark: storage {}{}",
        b.args.storage.name(),
        if b.args.quick { " (quick)" } else { "" }
    );
    println!();
    println!(
        "machine: {} cores, {}, {} GiB RAM; load average {} at start, {} at end; git {}",
        m["cores"],
        m["cpu"].as_str().unwrap_or(""),
        m["mem_total_gib"],
        load_start,
        load_end,
        git_rev(&b.repo)
    );
    println!("service log: {warnings} warning/error lines");
    println!();
    println!("| section | figure | measured | baseline (same run) | target | verdict |");
    println!("|---|---|---|---|---|---|");
    for r in &b.rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.section, r.figure, r.measured, r.baseline, r.target, r.verdict
        );
    }
}

// ---------------------------------------------------------------------------------------
// Cold start

async fn first_200(addr: SocketAddr, path: &str, deadline: Instant) -> Result<(), String> {
    let req = http::request(
        "GET",
        &addr.to_string(),
        path,
        &[("openai-beta", "assistants=v2")],
        b"",
    );
    let mut conn = Conn::new(addr);
    loop {
        match conn.send(&req).await {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) if r.status != 503 => {
                return Err(format!("GET {path}: {} {}", r.status, r.text()))
            }
            _ => {}
        }
        if Instant::now() > deadline {
            return Err(format!("no 200 on {path} in time"));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

async fn cold_start(b: &mut Bench) -> Result<(), String> {
    eprintln!("bench: cold start");
    let (warm, reps) = if b.args.quick { (1, 4) } else { (2, 15) };
    let mut service = Vec::new();
    let mut base = Vec::new();
    let mut rss_service = Vec::new();
    let mut rss_base = Vec::new();
    for i in 0..warm + reps {
        let (p, addr, t0) = b.start_service("cold")?;
        first_200(addr, "/v1/assistants", t0 + Duration::from_secs(20)).await?;
        let t = t0.elapsed();
        let m = p.mem();
        drop(p);
        let (q, qaddr, q0) = procs::start_baseline(None)?;
        first_200(qaddr, "/", q0 + Duration::from_secs(20)).await?;
        let tq = q0.elapsed();
        let mq = q.mem();
        drop(q);
        if i >= warm {
            service.push(t.as_nanos() as u64);
            base.push(tq.as_nanos() as u64);
            rss_service.push(m.rss_kb * 1_000_000 / 1024);
            rss_base.push(mq.rss_kb * 1_000_000 / 1024);
        }
    }
    let (s, q) = (Lat::from(service), Lat::from(base));
    let (rs, rq) = (Lat::from(rss_service), Lat::from(rss_base));
    b.results.insert(
        "cold_start".into(),
        json!({"service": s.summary(), "baseline_warp_server": q.summary(),
               "rss_at_first_200_mb": {"service_p50": round3(rs.p50()), "service_max": round3(rs.max()),
                                       "baseline_p50": round3(rq.p50())}}),
    );
    let target_ok = s.p50() <= 50.0;
    b.row(
        "start",
        format!(
            "cold start: exec → first 200 on /v1/assistants ({} starts)",
            s.len()
        ),
        format!("p50 {:.1} ms, max {:.1} ms", s.p50(), s.max()),
        format!("minimal warp server: p50 {:.1} ms", q.p50()),
        "≤ 50 ms",
        verdict(target_ok),
    );
    b.row(
        "memory",
        "RSS idle, fresh process (at its first 200)",
        format!("p50 {:.1} MB, max {:.1} MB", rs.p50(), rs.max()),
        format!("minimal warp server: {:.1} MB", rq.p50()),
        "≤ 20 MB",
        verdict(rs.max() <= 20.0),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Fixtures on the main service

struct Fixtures {
    assistant: String,
    /// One per client of the create-message load (messages go there).
    create_threads: Vec<String>,
    /// A thread with exactly 20 messages.
    list_thread: String,
    /// A completed run (and its thread).
    run_thread: String,
    run: String,
    /// Stored sizes of a thread, a message and a run, for the bare-storage baseline.
    thread_json: Value,
    message_json: Value,
    run_json: Value,
}

async fn wait_run(
    api: &Api,
    conn: &mut Conn,
    thread: &str,
    run: &str,
    timeout: Duration,
) -> Result<Value, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let r = api
            .call(conn, "GET", &format!("/threads/{thread}/runs/{run}"), None)
            .await?;
        let status = r["status"].as_str().unwrap_or_default();
        if !matches!(status, "queued" | "in_progress" | "cancelling") {
            return Ok(r);
        }
        if Instant::now() > deadline {
            return Err(format!("run {run} still {status} after {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn fixtures(b: &Bench, addr: SocketAddr) -> Result<Fixtures, String> {
    let api = Api::new(addr);
    let mut c = Conn::new(addr);
    let assistant = id_of(
        &api.call(
            &mut c,
            "POST",
            "/assistants",
            Some(json!({"model": "bench-model", "name": "bench",
                        "instructions": "You are a helpful assistant."})),
        )
        .await?,
    );
    let mut create_threads = Vec::new();
    for _ in 0..64 {
        create_threads.push(id_of(
            &api.call(&mut c, "POST", "/threads", Some(json!({})))
                .await?,
        ));
    }
    let list_thread = id_of(
        &api.call(&mut c, "POST", "/threads", Some(json!({})))
            .await?,
    );
    let mut message_json = Value::Null;
    for i in 0..20 {
        message_json = api
            .call(
                &mut c,
                "POST",
                &format!("/threads/{list_thread}/messages"),
                Some(json!({"role": "user", "content": format!("{USER_TEXT} ({i})")})),
            )
            .await?;
    }
    let run_thread = id_of(
        &api.call(
            &mut c,
            "POST",
            "/threads",
            Some(json!({"messages": [{"role": "user", "content": USER_TEXT}]})),
        )
        .await?,
    );
    let run = id_of(
        &api.call(
            &mut c,
            "POST",
            &format!("/threads/{run_thread}/runs"),
            Some(json!({"assistant_id": assistant})),
        )
        .await?,
    );
    let run_json = wait_run(&api, &mut c, &run_thread, &run, Duration::from_secs(30)).await?;
    if run_json["status"] != "completed" {
        return Err(format!("fixture run ended {}", run_json["status"]));
    }
    let thread_json = api
        .call(&mut c, "GET", &format!("/threads/{list_thread}"), None)
        .await?;
    let _ = b;
    Ok(Fixtures {
        assistant,
        create_threads,
        list_thread,
        run_thread,
        run,
        thread_json,
        message_json,
        run_json,
    })
}

/// Threads with one user message each, made `parallel` at a time.
async fn make_threads(addr: SocketAddr, n: usize, parallel: usize) -> Result<Vec<String>, String> {
    use futures::StreamExt;
    let api = Api::new(addr);
    let conns: Vec<Conn> = (0..parallel).map(|_| Conn::new(addr)).collect();
    let pool = Rc::new(std::cell::RefCell::new(conns));
    let results: Vec<Result<String, String>> = futures::stream::iter(0..n)
        .map(|_| {
            let pool = pool.clone();
            let api = api.clone();
            async move {
                let mut conn = pool.borrow_mut().pop().unwrap_or_else(|| Conn::new(addr));
                let r = api
                    .call(
                        &mut conn,
                        "POST",
                        "/threads",
                        Some(json!({"messages": [{"role": "user", "content": USER_TEXT}]})),
                    )
                    .await
                    .map(|v| id_of(&v));
                pool.borrow_mut().push(conn);
                r
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    results.into_iter().collect()
}

// ---------------------------------------------------------------------------------------
// CRUD

const CLIENTS: [usize; 3] = [1, 16, 64];

/// A closed loop of one prepared request per client, expecting 200.
async fn load_requests(
    addr: SocketAddr,
    clients: usize,
    plan: Plan,
    request_for: impl Fn(usize) -> Vec<u8>,
) -> Load {
    closed_loop(
        clients,
        plan,
        |c| (Conn::new(addr), request_for(c)),
        async |s: &mut (Conn, Vec<u8>), _i| {
            let r = s.0.send(&s.1).await?;
            if r.status == 200 {
                Ok(())
            } else {
                Err(format!("{} {}", r.status, r.text()))
            }
        },
    )
    .await
}

fn fmt_load(l: &Load) -> String {
    let (lo, hi) = l.rps_range();
    let mut s = format!(
        "p50 {:.3} ms, p99 {:.3} ms, {:.0} req/s ({:.0}–{:.0})",
        l.lat.p50(),
        l.lat.p99(),
        l.rps_median(),
        lo,
        hi
    );
    if l.errors > 0 {
        s.push_str(&format!(
            ", {} errors ({})",
            l.errors,
            l.first_error.clone().unwrap_or_default()
        ));
    }
    s
}

/// The request a client of a load sends, by client number.
type RequestFor = Box<dyn Fn(usize) -> Vec<u8>>;

async fn crud(b: &mut Bench, addr: SocketAddr, fx: &Fixtures) -> Result<(), String> {
    eprintln!("bench: CRUD latency and throughput");
    let api = Api::new(addr);
    let plan = b.plan;
    let create_body = json!({"role": "user", "content": USER_TEXT});
    let ops: Vec<(&str, RequestFor)> = vec![
        ("get run", {
            let api = api.clone();
            let path = format!("/threads/{}/runs/{}", fx.run_thread, fx.run);
            Box::new(move |_| api.req("GET", &path, None))
        }),
        ("list 20 messages", {
            let api = api.clone();
            let path = format!("/threads/{}/messages?limit=20", fx.list_thread);
            Box::new(move |_| api.req("GET", &path, None))
        }),
        ("create message", {
            let api = api.clone();
            let threads = fx.create_threads.clone();
            Box::new(move |c| {
                api.req(
                    "POST",
                    &format!("/threads/{}/messages", threads[c % threads.len()]),
                    Some(&create_body),
                )
            })
        }),
    ];
    let mut api_results: BTreeMap<(String, usize), Load> = BTreeMap::new();
    for (name, req) in &ops {
        if !b.wants_crud(name) {
            continue;
        }
        for clients in CLIENTS {
            let l = load_requests(addr, clients, plan, req).await;
            eprintln!("  {name} ×{clients}: {}", fmt_load(&l));
            api_results.insert((name.to_string(), clients), l);
        }
    }
    let mut json_api = serde_json::Map::new();
    for ((name, c), l) in &api_results {
        json_api.insert(format!("{name} x{c}"), l.json());
    }
    b.results.insert("crud".into(), Value::Object(json_api));
    match b.azurite.as_ref().map(|a| a.blob) {
        None => crud_local_rows(b, &api_results).await,
        Some(blob) => crud_azurite_rows(b, &api_results, blob, fx).await,
    }
}

async fn crud_local_rows(
    b: &mut Bench,
    api_results: &BTreeMap<(String, usize), Load>,
) -> Result<(), String> {
    // Baseline: a minimal warp server (no storage, no JSON work) with the same client.
    let (base, baddr, _) = procs::start_baseline(None)?;
    let plan = b.plan;
    let host = baddr.to_string();
    let mut base_results: BTreeMap<(String, usize), Load> = BTreeMap::new();
    for (kind, method) in [("GET", "GET"), ("POST", "POST")] {
        for clients in CLIENTS {
            let body = json!({"role": "user", "content": USER_TEXT}).to_string();
            let req = http::request(
                method,
                &host,
                "/v1/x",
                &[("content-type", "application/json")],
                if method == "POST" {
                    body.as_bytes()
                } else {
                    b""
                },
            );
            let l = load_requests(baddr, clients, plan, |_| req.clone()).await;
            eprintln!("  baseline {kind} ×{clients}: {}", fmt_load(&l));
            base_results.insert((kind.to_string(), clients), l);
        }
    }
    drop(base);
    let mut json_base = serde_json::Map::new();
    for ((name, c), l) in &base_results {
        json_base.insert(format!("{name} x{c}"), l.json());
    }
    b.results
        .insert("crud_baseline_warp".into(), Value::Object(json_base));
    for (name, kind) in [
        ("create message", "POST"),
        ("get run", "GET"),
        ("list 20 messages", "GET"),
    ] {
        for clients in CLIENTS {
            let Some(l) = api_results.get(&(name.to_string(), clients)) else {
                continue;
            };
            let base = &base_results[&(kind.to_string(), clients)];
            let (target, ok) = if clients == 1 {
                ("p50 ≤ 1 ms", l.lat.p50() <= 1.0 && l.errors == 0)
            } else {
                ("≥ 5,000 req/s", l.rps_median() >= 5000.0 && l.errors == 0)
            };
            b.row(
                "CRUD local",
                format!(
                    "{name}, {clients} connection{}",
                    if clients == 1 { "" } else { "s" }
                ),
                fmt_load(l),
                format!(
                    "minimal warp {kind}: p50 {:.3} ms, {:.0} req/s",
                    base.lat.p50(),
                    base.rps_median()
                ),
                target,
                verdict(ok),
            );
        }
    }
    Ok(())
}

/// The bare storage round trips an operation needs, as the service makes them, over the
/// raw client straight to Azurite.
#[derive(Clone)]
struct Bare {
    blob: azure::Blob,
    /// The same container through the service's own store (azure_storage_blobs).
    sdk: assistants::store::DynStore,
    /// Where the write loads go, so that the read fixtures' container stays small (a List
    /// Blobs on Azurite costs more the more blobs the container holds).
    write_container: String,
    sdk_writes: assistants::store::DynStore,
    /// The SDK again, but with a connection-pooling transport (what the store would get
    /// with `ClientBuilder::transport`).
    sdk_pooled: azure_storage_blobs::prelude::ContainerClient,
    container: String,
    thread_key: String,
    run_key: String,
    messages_prefix: String,
    message_body: Vec<u8>,
}

async fn bare_get_many(
    bare: &Bare,
    conns: &mut Vec<Conn>,
    names: Vec<String>,
    parallel: usize,
) -> Result<(), String> {
    use futures::stream::FuturesUnordered;
    use futures::StreamExt;
    let mut pending = names.into_iter();
    let mut running = FuturesUnordered::new();
    let mut free: Vec<Conn> = std::mem::take(conns);
    let mut result = Ok(());
    loop {
        while running.len() < parallel {
            let Some(name) = pending.next() else { break };
            let mut conn = free.pop().unwrap_or_else(|| Conn::new(bare.blob.addr));
            let bare = bare.clone();
            running.push(async move {
                let r = bare
                    .blob
                    .get(&mut conn, &bare.container, &name)
                    .await
                    .map(|_| ());
                (conn, r)
            });
        }
        match running.next().await {
            Some((conn, r)) => {
                free.push(conn);
                if r.is_err() && result.is_ok() {
                    result = r;
                }
            }
            None => break,
        }
    }
    *conns = free;
    result
}

async fn crud_azurite_rows(
    b: &mut Bench,
    api_results: &BTreeMap<(String, usize), Load>,
    blob_addr: SocketAddr,
    fx: &Fixtures,
) -> Result<(), String> {
    let blob = azure::Blob::new(blob_addr);
    let container = Bench::storage_container();
    let mut c = Conn::new(blob_addr);
    blob.create_container(&mut c, &container).await?;
    let thread_key = "t/default/threads/thread_bare/thread".to_string();
    let run_key = "t/default/threads/thread_bare/runs/run_bare".to_string();
    let messages_prefix = "t/default/threads/thread_bare/messages/".to_string();
    let message_body = fx.message_json.to_string().into_bytes();
    blob.put(
        &mut c,
        &container,
        &thread_key,
        fx.thread_json.to_string().as_bytes(),
        false,
    )
    .await?;
    blob.put(
        &mut c,
        &container,
        &run_key,
        fx.run_json.to_string().as_bytes(),
        false,
    )
    .await?;
    for i in 0..20 {
        blob.put(
            &mut c,
            &container,
            &format!("{messages_prefix}msg_{i:04}"),
            &message_body,
            false,
        )
        .await?;
    }
    let account = assistants::store::connection_string::StorageAccount::parse(
        &Bench::connection_string(blob_addr, blob_addr),
    )?;
    // The service's own store, with the service's own transport.
    let service_http = assistants::store::azure::http_client()?;
    let sdk: assistants::store::DynStore =
        std::sync::Arc::new(assistants::store::azure::AzureBlobStore::new(
            &account,
            &container,
            assistants::store::azure::request_retry(),
            &service_http,
        )?);
    let sdk_pooled = azure_storage_blobs::prelude::ClientBuilder::with_location(
        account.blob_location(),
        account.credentials()?,
    )
    .transport(azure_core::TransportOptions::new(std::sync::Arc::new(
        reqwest::Client::new(),
    )))
    .container_client(&container);
    let write_container = Bench::storage_container();
    blob.create_container(&mut c, &write_container).await?;
    let sdk_writes: assistants::store::DynStore =
        std::sync::Arc::new(assistants::store::azure::AzureBlobStore::new(
            &account,
            &write_container,
            assistants::store::azure::request_retry(),
            &service_http,
        )?);
    let bare = Bare {
        blob,
        sdk,
        write_container,
        sdk_writes,
        sdk_pooled,
        container,
        thread_key,
        run_key,
        messages_prefix,
        message_body,
    };
    let plan = b.plan;
    let mut bare_results: BTreeMap<(String, usize), Load> = BTreeMap::new();
    for name in [
        "GET blob",
        "GET blob, ranged as the SDK asks",
        "GET blob through the service's store (SDK)",
        "GET blob through the SDK with connection reuse",
        "PUT blob",
        "PUT blob through the service's store (SDK)",
        "create message",
        "get run",
        "list 20 messages",
    ] {
        if !b.wants_crud(name) {
            continue;
        }
        for clients in CLIENTS {
            let bare = bare.clone();
            let l = closed_loop(clients, plan, |c| (c, vec![Conn::new(bare.blob.addr)]), {
                let bare = bare.clone();
                async move |s: &mut (usize, Vec<Conn>), i: u64| {
                    let client = s.0;
                    let conns = &mut s.1;
                    match name {
                        "GET blob" => bare
                            .blob
                            .get(&mut conns[0], &bare.container, &bare.run_key)
                            .await
                            .map(|_| ()),
                        "GET blob, ranged as the SDK asks" => bare
                            .blob
                            .get_ranged(&mut conns[0], &bare.container, &bare.run_key)
                            .await
                            .map(|_| ()),
                        "GET blob through the service's store (SDK)" => {
                            match bare.sdk.get(&bare.run_key).await {
                                Ok(Some(_)) => Ok(()),
                                Ok(None) => Err("missing".to_string()),
                                Err(e) => Err(e.to_string()),
                            }
                        }
                        "GET blob through the SDK with connection reuse" => bare
                            .sdk_pooled
                            .blob_client(&bare.run_key)
                            .get_content()
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                        "PUT blob through the service's store (SDK)" => bare
                            .sdk_writes
                            .put(
                                &format!("sdkput/{clients}/{client}/{i}"),
                                bytes::Bytes::from(bare.message_body.clone()),
                                assistants::store::PutMode::Create,
                            )
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                        "PUT blob" => bare
                            .blob
                            .put(
                                &mut conns[0],
                                &bare.write_container,
                                &format!("put/{clients}/{client}/{i}"),
                                &bare.message_body,
                                true,
                            )
                            .await
                            .map(|_| ()),
                        "create message" => {
                            bare.blob
                                .get(&mut conns[0], &bare.container, &bare.thread_key)
                                .await?;
                            bare.blob
                                .put(
                                    &mut conns[0],
                                    &bare.write_container,
                                    &format!("create/{clients}/{client}/{i}"),
                                    &bare.message_body,
                                    true,
                                )
                                .await
                                .map(|_| ())
                        }
                        "get run" => bare
                            .blob
                            .get(&mut conns[0], &bare.container, &bare.run_key)
                            .await
                            .map(|_| ()),
                        _ => {
                            bare.blob
                                .get(&mut conns[0], &bare.container, &bare.thread_key)
                                .await?;
                            let names = bare
                                .blob
                                .list(&mut conns[0], &bare.container, &bare.messages_prefix)
                                .await?;
                            bare_get_many(&bare, conns, names, 16).await
                        }
                    }
                }
            })
            .await;
            eprintln!("  bare Azurite {name} ×{clients}: {}", fmt_load(&l));
            bare_results.insert((name.to_string(), clients), l);
        }
    }
    let mut json_bare = serde_json::Map::new();
    for ((name, c), l) in &bare_results {
        json_bare.insert(format!("{name} x{c}"), l.json());
    }
    b.results.insert(
        "crud_baseline_bare_azurite".into(),
        Value::Object(json_bare),
    );
    for clients in CLIENTS {
        let g = &bare_results[&("GET blob".to_string(), clients)];
        let gr = &bare_results[&("GET blob, ranged as the SDK asks".to_string(), clients)];
        let p = &bare_results[&("PUT blob".to_string(), clients)];
        let gs = &bare_results[&(
            "GET blob through the service's store (SDK)".to_string(),
            clients,
        )];
        let ps = &bare_results[&(
            "PUT blob through the service's store (SDK)".to_string(),
            clients,
        )];
        let gp = &bare_results[&(
            "GET blob through the SDK with connection reuse".to_string(),
            clients,
        )];
        b.row(
            "CRUD Azurite",
            format!("bare Azurite blob GET / PUT, {clients} connection(s)"),
            format!(
                "GET p50 {:.3} ms {:.0}/s; GET with x-ms-range (as the SDK sends) p50 {:.3} ms {:.0}/s; PUT p50 {:.3} ms {:.0}/s",
                g.lat.p50(),
                g.rps_median(),
                gr.lat.p50(),
                gr.rps_median(),
                p.lat.p50(),
                p.rps_median()
            ),
            format!(
                "the same through the service's own store (azure_storage_blobs, in the harness): GET p50 {:.3} ms {:.0}/s; PUT p50 {:.3} ms {:.0}/s; SDK GET with a pooled transport: p50 {:.3} ms {:.0}/s",
                gs.lat.p50(),
                gs.rps_median(),
                ps.lat.p50(),
                ps.rps_median(),
                gp.lat.p50(),
                gp.rps_median()
            ),
            "",
            "",
        );
    }
    let needs = [
        ("create message", "1 GET (thread) + 1 PUT (If-None-Match)"),
        ("get run", "1 GET"),
        (
            "list 20 messages",
            "1 GET (thread) + 1 LIST + 20 GET (16 at a time)",
        ),
    ];
    for (name, rounds) in needs {
        for clients in CLIENTS {
            let (Some(l), Some(base)) = (
                api_results.get(&(name.to_string(), clients)),
                bare_results.get(&(name.to_string(), clients)),
            ) else {
                continue;
            };
            let ratio = l.lat.p50() / base.lat.p50();
            let ratio_rps = base.rps_median() / l.rps_median();
            b.row(
                "CRUD Azurite",
                format!("{name}, {clients} connection(s)"),
                format!(
                    "{}; ratio p50 {:.2}×, throughput {:.2}× lower",
                    fmt_load(l),
                    ratio,
                    ratio_rps
                ),
                format!(
                    "bare {rounds}: p50 {:.3} ms, {:.0} /s",
                    base.lat.p50(),
                    base.rps_median()
                ),
                // Unloaded, latency is what the ratio means; with Azurite (one Node.js
                // thread) saturated, queueing makes p50 meaningless and throughput is.
                if clients == 1 {
                    "p50 ≤ 1.3× the bare round trips"
                } else {
                    "throughput ≥ 1/1.3 of the bare round trips'"
                },
                verdict(
                    l.errors == 0
                        && if clients == 1 {
                            ratio <= 1.3
                        } else {
                            ratio_rps <= 1.3
                        },
                ),
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Streamed run overhead

/// Reads an SSE response to its end; returns the wall-clock time (µs) at which the first
/// chunk matching `first` arrived, and the whole text.
async fn read_sse(
    resp: reqwest::Response,
    first: impl Fn(&str) -> bool,
    timeout: Duration,
) -> Result<(Option<u64>, Option<Instant>, String), String> {
    use futures::StreamExt;
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    let mut seen: Option<u64> = None;
    let mut seen_at: Option<Instant> = None;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| "stream timed out".to_string())?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| e.to_string())?;
        // Look at the new bytes together with the line they continue.
        let from = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
        text.push_str(&String::from_utf8_lossy(&chunk));
        if seen.is_none() && first(&text[from..]) {
            seen = Some(now_us());
            seen_at = Some(Instant::now());
        }
    }
    Ok((seen, seen_at, text))
}

/// Whether the SSE text holds an event named `name` (`event:name` or `event: name`).
fn has_event(s: &str, name: &str) -> bool {
    s.lines()
        .any(|l| l.strip_prefix("event:").map(str::trim) == Some(name))
}

fn has_text_delta(s: &str) -> bool {
    // A Chat Completions chunk with non-empty content.
    s.lines().filter_map(|l| l.strip_prefix("data:")).any(|d| {
        serde_json::from_str::<Value>(d.trim())
            .ok()
            .and_then(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(|c| !c.is_empty())
            })
            .unwrap_or(false)
    })
}

const FIRST_DELAY_MS: u64 = 20;

/// Sends `req` on `conn` and reads the event stream; returns when the first chunk for which
/// `first` holds arrived (wall clock µs and instant) and the whole text.
async fn raw_sse(
    conn: &mut Conn,
    req: &[u8],
    first: impl Fn(&str) -> bool,
) -> Result<(u16, Option<u64>, Option<Instant>, String), String> {
    let mut text = String::new();
    let mut seen = None;
    let mut seen_at = None;
    let (status, _) = conn
        .send_streaming(
            req,
            |d| {
                let from = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
                text.push_str(&String::from_utf8_lossy(d));
                if seen.is_none() && first(&text[from..]) {
                    seen = Some(now_us());
                    seen_at = Some(Instant::now());
                }
            },
            Duration::from_secs(30),
        )
        .await?;
    Ok((status, seen, seen_at, text))
}

async fn streamed_overhead(b: &mut Bench, addr: SocketAddr, fx: &Fixtures) -> Result<(), String> {
    eprintln!("bench: streamed run overhead");
    let (warm, reps) = if b.args.quick { (2, 10) } else { (5, 60) };
    let idle_threads = make_threads(addr, warm + reps, 4).await?;
    let api = Api::new(addr);
    let model = "bench-stream";
    let response = json!({"text": "Hello there, this is the stand-in speaking.",
                          "first_chunk_delay_ms": FIRST_DELAY_MS});
    let direct_req = http::request(
        "POST",
        &b.standin.to_string(),
        "/v1/chat/completions",
        &[("content-type", "application/json")],
        json!({"model": "bench-stream-direct", "stream": true,
               "messages": [{"role": "user", "content": USER_TEXT}]})
        .to_string()
        .as_bytes(),
    );
    let mut sdk_conn = Conn::new(addr);
    let (mut sdk, mut idle, mut direct, mut ttfd_sdk, mut ttfd_idle) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut failures = 0;
    let last_received = |reqs: Vec<Value>| -> Result<u64, String> {
        reqs.last()
            .and_then(|r| r["received_us"].as_u64())
            .ok_or_else(|| "no stand-in request".to_string())
    };
    for (i, idle_thread) in idle_threads.iter().enumerate() {
        // (a) As the SDKs do: create the thread, then at once stream a run on the same
        // kept-alive connection.
        b.script(model, vec![response.clone()]).await?;
        let thread = id_of(
            &api.call(
                &mut sdk_conn,
                "POST",
                "/threads",
                Some(json!({"messages": [{"role": "user", "content": USER_TEXT}]})),
            )
            .await?,
        );
        let req = api.req(
            "POST",
            &format!("/threads/{thread}/runs"),
            Some(&json!({"assistant_id": fx.assistant, "model": model, "stream": true})),
        );
        let sent = Instant::now();
        let (status, seen_a, at_a, text_a) = raw_sse(&mut sdk_conn, &req, |s| {
            has_event(s, "thread.message.delta")
        })
        .await?;
        let received_a = last_received(b.standin_requests(model).await?)?;
        let ok_a = status == 200 && has_event(&text_a, "thread.run.completed");
        let ttfd_a = at_a.map(|a| a - sent);
        // (b) An idle keep-alive connection (reqwest, after a 100 ms pause).
        b.script(model, vec![response.clone()]).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sent = Instant::now();
        let resp = b
            .http
            .post(format!("http://{addr}/v1/threads/{idle_thread}/runs"))
            .header("openai-beta", "assistants=v2")
            .json(&json!({"assistant_id": fx.assistant, "model": model, "stream": true}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let (seen_b, at_b, text_b) = read_sse(
            resp,
            |s| has_event(s, "thread.message.delta"),
            Duration::from_secs(30),
        )
        .await?;
        let received_b = last_received(b.standin_requests(model).await?)?;
        let ok_b = has_event(&text_b, "thread.run.completed");
        let ttfd_b = at_b.map(|a| a - sent);
        // (c) The floor: the same chunk read from the stand-in directly, fresh connection.
        b.script("bench-stream-direct", vec![response.clone()])
            .await?;
        let mut dconn = Conn::new(b.standin);
        let (_, seen_c, _, _) = raw_sse(&mut dconn, &direct_req, has_text_delta).await?;
        let received_c = last_received(b.standin_requests("bench-stream-direct").await?)?;
        if i < warm {
            continue;
        }
        let late =
            |seen: u64, received: u64| seen.saturating_sub(received + FIRST_DELAY_MS * 1000) * 1000;
        match (ok_a, seen_a, ttfd_a, ok_b, seen_b, ttfd_b, seen_c) {
            (true, Some(a), Some(ta), true, Some(bb), Some(tb), Some(c)) => {
                sdk.push(late(a, received_a));
                idle.push(late(bb, received_b));
                direct.push(late(c, received_c));
                ttfd_sdk.push(ta.as_nanos() as u64);
                ttfd_idle.push(tb.as_nanos() as u64);
            }
            _ => failures += 1,
        }
    }
    let (sdk, idle, direct) = (Lat::from(sdk), Lat::from(idle), Lat::from(direct));
    let (ttfd_sdk, ttfd_idle) = (Lat::from(ttfd_sdk), Lat::from(ttfd_idle));
    b.results.insert(
        "stream_overhead".into(),
        json!({"sdk_pattern": sdk.summary(), "idle_connection": idle.summary(),
               "direct_standin_floor": direct.summary(),
               "request_to_first_delta_sdk_pattern": ttfd_sdk.summary(),
               "request_to_first_delta_idle_connection": ttfd_idle.summary(),
               "first_chunk_delay_ms": FIRST_DELAY_MS, "failures": failures}),
    );
    let failed = if failures > 0 {
        format!(", {failures} failed")
    } else {
        String::new()
    };
    let floor = format!(
        "the same chunk read from the stand-in directly (fresh connection): p50 {:.2} ms, p99 {:.2} ms",
        direct.p50(),
        direct.p99()
    );
    b.row(
        "runs",
        format!(
            "streamed run overhead (first thread.message.delta at client − stand-in's first chunk), SDK pattern: run streamed right after creating its thread on the same keep-alive connection ({} runs)",
            sdk.len()
        ),
        format!("p50 {:.2} ms, p99 {:.2} ms{failed}", sdk.p50(), sdk.p99()),
        floor.clone(),
        "≤ 2 ms p50",
        verdict(sdk.p50() <= 2.0 && failures == 0),
    );
    b.row(
        "runs",
        format!(
            "streamed run overhead, idle keep-alive connection (100 ms quiet before the request) ({} runs)",
            idle.len()
        ),
        format!("p50 {:.2} ms, p99 {:.2} ms{failed}", idle.p50(), idle.p99()),
        floor,
        "≤ 2 ms p50",
        verdict(idle.p50() <= 2.0 && failures == 0),
    );
    let llm = FIRST_DELAY_MS as f64;
    b.row(
        "runs",
        "streamed run: request sent → first delta, minus the LLM's 20 ms first-chunk delay",
        format!(
            "SDK pattern p50 {:.2} ms, p99 {:.2} ms; idle connection p50 {:.2} ms, p99 {:.2} ms",
            ttfd_sdk.p50() - llm,
            ttfd_sdk.p99() - llm,
            ttfd_idle.p50() - llm,
            ttfd_idle.p99() - llm
        ),
        "peer (open-assistant-api): 87 ms to the first delta",
        "(information)",
        "",
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Queued run

async fn queued_run(b: &mut Bench, addr: SocketAddr, fx: &Fixtures) -> Result<(), String> {
    eprintln!("bench: queued run latency");
    let (warm, reps) = if b.args.quick { (2, 10) } else { (5, 60) };
    let threads = make_threads(addr, warm + reps, 4).await?;
    let api = Api::new(addr);
    let mut conn = Conn::new(addr);
    let mut totals = Vec::new();
    let mut llm = Vec::new();
    let mut failures = 0;
    for (i, thread) in threads.iter().enumerate() {
        let t0 = Instant::now();
        let run = api
            .call(
                &mut conn,
                "POST",
                &format!("/threads/{thread}/runs"),
                Some(json!({"assistant_id": fx.assistant, "model": "bench-queued"})),
            )
            .await?;
        let done = wait_run(
            &api,
            &mut conn,
            thread,
            &id_of(&run),
            Duration::from_secs(30),
        )
        .await?;
        let total = t0.elapsed();
        // The same answer straight from the stand-in: what the model part takes.
        let d0 = Instant::now();
        let resp = b
            .http
            .post(format!("http://{}/v1/chat/completions", b.standin))
            .json(&json!({"model": "bench-queued-direct", "stream": true,
                          "messages": [{"role": "user", "content": USER_TEXT}]}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        read_sse(resp, |_| false, Duration::from_secs(30)).await?;
        let direct = d0.elapsed();
        if i < warm {
            continue;
        }
        if done["status"] == "completed" {
            totals.push(total.as_nanos() as u64);
            llm.push(direct.as_nanos() as u64);
        } else {
            failures += 1;
        }
    }
    let (t, l) = (Lat::from(totals), Lat::from(llm));
    let overhead = t.p50() - l.p50();
    b.results.insert(
        "queued_run".into(),
        json!({"create_to_completed": t.summary(), "llm_direct": l.summary(),
               "overhead_p50_ms": round3(overhead), "poll_interval_ms": 1, "failures": failures,
               "queue": if b.azurite.is_some() { "azure (QUEUE_POLL_MAX_MS default 1000)" } else { "in-process" }}),
    );
    let queue = if b.azurite.is_some() {
        "Azure Storage Queue (poller)"
    } else {
        "in-process queue"
    };
    b.row(
        "runs",
        format!(
            "queued run: create → completed (polled every 1 ms), {queue}, {} runs",
            t.len()
        ),
        format!(
            "p50 {:.2} ms, p99 {:.2} ms → minus LLM time: p50 {:.2} ms{}",
            t.p50(),
            t.p99(),
            overhead,
            if failures > 0 {
                format!(", {failures} failed")
            } else {
                String::new()
            }
        ),
        format!(
            "the same completion straight from the stand-in: p50 {:.2} ms",
            l.p50()
        ),
        if b.azurite.is_some() {
            "(target is for the in-process queue)"
        } else {
            "≤ 20 ms p50"
        },
        if b.azurite.is_some() {
            ""
        } else {
            verdict(overhead <= 20.0 && failures == 0)
        },
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Responses: the first streamed delta's overhead, and a background response's

/// Streamed responses (SDK pattern: one keep-alive connection), first
/// `response.output_text.delta` at the client − the stand-in's first chunk; and background
/// responses, create → `completed` (polled every 1 ms) − the same completion straight from
/// the stand-in.
async fn responses(b: &mut Bench, addr: SocketAddr) -> Result<(), String> {
    eprintln!("bench: responses");
    let (warm, reps) = if b.args.quick { (2, 10) } else { (5, 60) };
    let api = Api::new(addr);
    let mut conn = Conn::new(addr);
    let model = "bench-responses";
    let answer = json!({"text": "Hello there, this is the stand-in speaking.",
                        "first_chunk_delay_ms": FIRST_DELAY_MS});
    let (mut late, mut totals, mut llm) = (Vec::new(), Vec::new(), Vec::new());
    let mut failures = 0;
    for i in 0..warm + reps {
        b.script(model, vec![answer.clone()]).await?;
        let req = api.req(
            "POST",
            "/responses",
            Some(&json!({"model": model, "input": USER_TEXT, "stream": true})),
        );
        let (status, seen, _, text) = raw_sse(&mut conn, &req, |s| {
            has_event(s, "response.output_text.delta")
        })
        .await?;
        let received = b
            .standin_requests(model)
            .await?
            .last()
            .and_then(|r| r["received_us"].as_u64())
            .ok_or("no stand-in request")?;
        let streamed_ok = status == 200 && has_event(&text, "response.completed");
        // Background: through the in-process queue, polled.
        b.script("bench-responses-bg", vec![json!({"text": "Hello there."})])
            .await?;
        let t0 = Instant::now();
        let created = api
            .call(
                &mut conn,
                "POST",
                "/responses",
                Some(json!({"model": "bench-responses-bg", "input": USER_TEXT, "background": true})),
            )
            .await?;
        let id = id_of(&created);
        let done = loop {
            let r = api
                .call(&mut conn, "GET", &format!("/responses/{id}"), None)
                .await?;
            if !matches!(r["status"].as_str(), Some("queued" | "in_progress")) {
                break r;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                return Err(format!("response {id} did not end"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let total = t0.elapsed();
        let d0 = Instant::now();
        let resp = b
            .http
            .post(format!("http://{}/v1/chat/completions", b.standin))
            .json(&json!({"model": "bench-responses-direct", "stream": true,
                          "messages": [{"role": "user", "content": USER_TEXT}]}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        read_sse(resp, |_| false, Duration::from_secs(30)).await?;
        let direct = d0.elapsed();
        if i < warm {
            continue;
        }
        match (streamed_ok, seen, done["status"] == "completed") {
            (true, Some(seen), true) => {
                late.push(seen.saturating_sub(received + FIRST_DELAY_MS * 1000) * 1000);
                totals.push(total.as_nanos() as u64);
                llm.push(direct.as_nanos() as u64);
            }
            _ => failures += 1,
        }
    }
    let (late, t, l) = (Lat::from(late), Lat::from(totals), Lat::from(llm));
    let overhead = t.p50() - l.p50();
    b.results.insert(
        "responses".into(),
        json!({"stream_overhead": late.summary(), "background_create_to_completed": t.summary(),
               "llm_direct": l.summary(), "background_overhead_p50_ms": round3(overhead),
               "failures": failures}),
    );
    let failed = if failures > 0 {
        format!(", {failures} failed")
    } else {
        String::new()
    };
    b.row(
        "responses",
        format!(
            "streamed response overhead (first response.output_text.delta at client − stand-in's first chunk), one keep-alive connection ({} responses)",
            late.len()
        ),
        format!("p50 {:.2} ms, p99 {:.2} ms{failed}", late.p50(), late.p99()),
        "as for streamed runs",
        "≤ 2 ms p50",
        verdict(late.p50() <= 2.0 && failures == 0),
    );
    let queue = if b.azurite.is_some() {
        "Azure Storage Queue (poller)"
    } else {
        "in-process queue"
    };
    b.row(
        "responses",
        format!(
            "background response: create → completed (polled every 1 ms), {queue}, {} responses",
            t.len()
        ),
        format!(
            "p50 {:.2} ms, p99 {:.2} ms → minus LLM time: p50 {:.2} ms{failed}",
            t.p50(),
            t.p99(),
            overhead
        ),
        format!(
            "the same completion straight from the stand-in: p50 {:.2} ms",
            l.p50()
        ),
        if b.azurite.is_some() {
            "(target is for the in-process queue)"
        } else {
            "≤ 20 ms p50 (as a queued run)"
        },
        if b.azurite.is_some() {
            ""
        } else {
            verdict(overhead <= 20.0 && failures == 0)
        },
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Webhooks to a receiver that never answers: time to `completed` beside the same service
// without webhooks

/// Queued runs on a service whose webhook receiver accepts connections and never answers
/// (every delivery attempt hangs until `WEBHOOK_TIMEOUT_SECONDS`, 30 s), interleaved with
/// runs on the main service (no webhooks): create → completed for both.
async fn webhooks_dead_receiver(
    b: &mut Bench,
    main: SocketAddr,
    fx: &Fixtures,
) -> Result<(), String> {
    eprintln!("bench: queued runs with a webhook receiver that never answers");
    // Accepts and holds every connection, never reads or answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let receiver = listener.local_addr().map_err(|e| e.to_string())?;
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            held.push(conn);
        }
    });
    let mut env = b.service_env();
    env.extend([
        ("WEBHOOK_URL".into(), format!("http://{receiver}/hooks")),
        (
            "WEBHOOK_SECRET".into(),
            "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into(),
        ),
        ("WEBHOOK_TIMEOUT_SECONDS".into(), "30".into()),
    ]);
    let (service, hooked, _) = procs::start_service(
        &b.service_bin,
        &env,
        Some(b.work.path().join("service-webhooks.log")),
    )?;
    let hooked_fx = fixtures(b, hooked).await?;
    let (warm, reps) = if b.args.quick { (2, 10) } else { (5, 60) };
    let mut lanes = Vec::new();
    for (addr, assistant) in [(main, &fx.assistant), (hooked, &hooked_fx.assistant)] {
        lanes.push((
            addr,
            assistant.clone(),
            make_threads(addr, warm + reps, 4).await?,
            Vec::new(),
        ));
    }
    let mut failures = 0;
    for i in 0..warm + reps {
        for (addr, assistant, threads, totals) in lanes.iter_mut() {
            let api = Api::new(*addr);
            let mut conn = Conn::new(*addr);
            let t0 = Instant::now();
            let run = api
                .call(
                    &mut conn,
                    "POST",
                    &format!("/threads/{}/runs", threads[i]),
                    Some(json!({"assistant_id": assistant, "model": "bench-queued"})),
                )
                .await?;
            let done = wait_run(
                &api,
                &mut conn,
                &threads[i],
                &id_of(&run),
                Duration::from_secs(30),
            )
            .await?;
            if i < warm {
                continue;
            }
            if done["status"] == "completed" {
                totals.push(t0.elapsed().as_nanos() as u64);
            } else {
                failures += 1;
            }
        }
    }
    // Attempts the receiver holds open (at most WEBHOOK_CONCURRENCY at once, 30 s each).
    let held = accepted.load(std::sync::atomic::Ordering::Relaxed);
    drop(service);
    let without = Lat::from(std::mem::take(&mut lanes[0].3));
    let with = Lat::from(std::mem::take(&mut lanes[1].3));
    b.results.insert(
        "webhooks_dead_receiver".into(),
        json!({"create_to_completed": with.summary(), "without_webhooks": without.summary(),
               "failures": failures, "webhook_timeout_s": 30, "attempts_held_open": held}),
    );
    b.row(
        "runs",
        format!(
            "queued run: create → completed, webhook receiver never answers (30 s attempts), {} runs",
            with.len()
        ),
        format!(
            "p50 {:.2} ms, p99 {:.2} ms ({held} attempts held open by the receiver)",
            with.p50(),
            with.p99()
        ),
        format!(
            "the same runs without webhooks (interleaved): p50 {:.2} ms, p99 {:.2} ms",
            without.p50(),
            without.p99()
        ),
        "unchanged",
        verdict(with.p50() <= without.p50() * 1.5 + 2.0 && failures == 0 && held > 0),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 1,000 concurrent streamed runs; memory while they are in flight

struct StreamOutcome {
    ok: bool,
    error: Option<String>,
    first_delta_ms: Option<f64>,
    total_ms: f64,
}

async fn one_stream(
    client: reqwest::Client,
    url: String,
    body: Value,
    is_delta: fn(&str) -> bool,
    done: fn(&str) -> bool,
) -> StreamOutcome {
    let t0 = Instant::now();
    let resp = match client
        .post(&url)
        .header("openai-beta", "assistants=v2")
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return StreamOutcome {
                ok: false,
                error: Some(e.to_string()),
                first_delta_ms: None,
                total_ms: 0.0,
            }
        }
    };
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return StreamOutcome {
            ok: false,
            error: Some(format!("{status} {text}")),
            first_delta_ms: None,
            total_ms: 0.0,
        };
    }
    match read_sse(resp, is_delta, Duration::from_secs(120)).await {
        Ok((_, at, text)) => {
            let ok = done(&text);
            StreamOutcome {
                ok,
                error: if ok {
                    None
                } else {
                    let tail: String = text
                        .chars()
                        .rev()
                        .take(300)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    Some(format!("stream ended without completing: …{tail}"))
                },
                first_delta_ms: at.map(|a| (a - t0).as_secs_f64() * 1000.0),
                total_ms: t0.elapsed().as_secs_f64() * 1000.0,
            }
        }
        Err(e) => StreamOutcome {
            ok: false,
            error: Some(e),
            first_delta_ms: None,
            total_ms: t0.elapsed().as_secs_f64() * 1000.0,
        },
    }
}

struct Wave {
    outcomes: Vec<StreamOutcome>,
    wall_ms: f64,
}

async fn wave(n: usize, make: impl Fn(usize) -> tokio::task::JoinHandle<StreamOutcome>) -> Wave {
    let t0 = Instant::now();
    let handles: Vec<_> = (0..n).map(make).collect();
    let mut outcomes = Vec::new();
    for h in handles {
        outcomes.push(h.await.unwrap_or(StreamOutcome {
            ok: false,
            error: Some("task failed".into()),
            first_delta_ms: None,
            total_ms: 0.0,
        }));
    }
    Wave {
        outcomes,
        wall_ms: t0.elapsed().as_secs_f64() * 1000.0,
    }
}

fn wave_stats(w: &Wave) -> (usize, usize, Lat, Lat, Option<String>) {
    let ok = w.outcomes.iter().filter(|o| o.ok).count();
    let errors = w.outcomes.len() - ok;
    let totals = Lat::from(
        w.outcomes
            .iter()
            .filter(|o| o.ok)
            .map(|o| (o.total_ms * 1e6) as u64)
            .collect(),
    );
    let firsts = Lat::from(
        w.outcomes
            .iter()
            .filter_map(|o| o.first_delta_ms)
            .map(|m| (m * 1e6) as u64)
            .collect(),
    );
    let first_error = w.outcomes.iter().find_map(|o| o.error.clone());
    (ok, errors, totals, firsts, first_error)
}

async fn concurrency(
    b: &mut Bench,
    addr: SocketAddr,
    fx: &Fixtures,
    service: &Proc,
    idle_fresh: procs::Mem,
    idle_after: procs::Mem,
) -> Result<(), String> {
    let n = b.args.streams;
    eprintln!("bench: {n} concurrent streamed runs");
    let threads = make_threads(addr, n, 16).await?;
    // 6 words: role chunk after 100 ms, then 9 chunks 100 ms apart: 1.0 s per response.
    let response = json!({"text": "one two three four five six", "first_chunk_delay_ms": 100, "chunk_delay_ms": 100});
    let model = "bench-conc";
    let direct_model = "bench-conc-direct";
    b.script(model, vec![response.clone(); n]).await?;
    b.script(direct_model, vec![response.clone(); n]).await?;
    // Baseline: the same number of streams straight from the stand-in.
    let client = b.http.clone();
    let standin = b.standin;
    let base = wave(n, |_| {
        tokio::task::spawn_local(one_stream(
            client.clone(),
            format!("http://{standin}/v1/chat/completions"),
            json!({"model": direct_model, "stream": true, "messages": [{"role": "user", "content": USER_TEXT}]}),
            has_text_delta,
            |t| t.contains("data: [DONE]") || t.contains("data:[DONE]"),
        ))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Through the service, with memory sampled and a probe reading a run meanwhile.
    let pid = service.pid();
    let before = procs::mem_of(pid);
    let hwm_reset = procs::reset_hwm(pid);
    let running = Rc::new(std::cell::Cell::new(true));
    let sampler = {
        let running = running.clone();
        tokio::task::spawn_local(async move {
            let mut peak = procs::Mem::default();
            let deadline = Instant::now() + Duration::from_secs(300);
            while running.get() && Instant::now() < deadline {
                let m = procs::mem_of(pid);
                peak.rss_kb = peak.rss_kb.max(m.rss_kb);
                peak.threads = peak.threads.max(m.threads);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    // The probe runs on its own thread and runtime, so that the harness's own work on the
    // streams does not delay it.
    let probe_running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probe = {
        let running = probe_running.clone();
        let api = Api::new(addr);
        let req = api.req(
            "GET",
            &format!("/threads/{}/runs/{}", fx.run_thread, fx.run),
            None,
        );
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut conn = Conn::new(addr);
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let deadline = Instant::now() + Duration::from_secs(300);
                while running.load(std::sync::atomic::Ordering::Relaxed)
                    && Instant::now() < deadline
                {
                    let t0 = Instant::now();
                    match conn.send(&req).await {
                        Ok(r) if r.status == 200 => lat.push(t0.elapsed().as_nanos() as u64),
                        _ => errors += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (Lat::from(lat), errors)
            })
        })
    };
    let client = b.http.clone();
    let assistant = fx.assistant.clone();
    let threads = Rc::new(threads);
    let through = {
        let threads = threads.clone();
        wave(n, move |i| {
            tokio::task::spawn_local(one_stream(
                client.clone(),
                format!("http://{addr}/v1/threads/{}/runs", threads[i]),
                json!({"assistant_id": assistant, "model": model, "stream": true}),
                |s| has_event(s, "thread.message.delta"),
                |t| has_event(t, "thread.run.completed"),
            ))
        })
        .await
    };
    running.set(false);
    let peak = sampler.await.unwrap_or_default();
    probe_running.store(false, std::sync::atomic::Ordering::Relaxed);
    let (probe_lat, probe_errors) = probe.join().unwrap_or_default();
    let end = procs::mem_of(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled = procs::mem_of(pid);
    // Every run stored as completed?
    let api = Api::new(addr);
    let mut conn = Conn::new(addr);
    let runs_listed = {
        let mut completed = 0;
        for t in threads.iter() {
            if let Ok(v) = api
                .call(
                    &mut conn,
                    "GET",
                    &format!("/threads/{t}/runs?limit=1"),
                    None,
                )
                .await
            {
                if v["data"][0]["status"] == "completed" {
                    completed += 1;
                }
            }
        }
        completed
    };
    let stand_in_requests = b.standin_requests(model).await?.len();
    let (ok, errors, totals, firsts, first_error) = wave_stats(&through);
    let (bok, berrors, btotals, _, bfirst_error) = wave_stats(&base);
    b.results.insert(
        "concurrency".into(),
        json!({
            "streams": n, "completed": ok, "errors": errors, "first_error": first_error,
            "wall_ms": round3(through.wall_ms), "stream_total": totals.summary(),
            "request_to_first_delta": firsts.summary(),
            "runs_stored_completed": runs_listed, "standin_requests": stand_in_requests,
            "baseline_direct": {"completed": bok, "errors": berrors, "wall_ms": round3(base.wall_ms),
                                 "stream_total": btotals.summary(), "first_error": bfirst_error},
            "probe_get_run_during_streams": {"latency": probe_lat.summary(), "errors": probe_errors},
            "memory": {"before": before, "peak_sampled": peak, "hwm_after": end, "settled_1s_after": settled,
                       "hwm_reset": hwm_reset},
        }),
    );
    b.row(
        "concurrency",
        format!("{n} simultaneous streamed runs, 1 s responses"),
        format!(
            "{ok}/{n} completed, {errors} errors{}; all done in {:.2} s; stream p50 {:.0} ms, p99 {:.0} ms; first delta p50 {:.0} ms, p99 {:.0} ms; {runs_listed} runs stored completed",
            first_error.as_ref().map(|e| format!(" (first: {e})")).unwrap_or_default(),
            through.wall_ms / 1000.0,
            totals.p50(),
            totals.p99(),
            firsts.p50(),
            firsts.p99()
        ),
        format!(
            "stand-in direct: {bok}/{n} in {:.2} s, stream p50 {:.0} ms, p99 {:.0} ms",
            base.wall_ms / 1000.0,
            btotals.p50(),
            btotals.p99()
        ),
        "all complete, 0 errors",
        verdict(ok == n && errors == 0 && runs_listed == n),
    );
    b.row(
        "concurrency",
        format!(
            "another client's GET run every 10 ms while the {n} streams run ({} GETs)",
            probe_lat.len()
        ),
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {probe_errors} errors",
            probe_lat.p50(),
            probe_lat.p99(),
            probe_lat.max()
        ),
        "peer: a 6 ms GET took up to 488 ms beside one slow stream",
        "(information)",
        "",
    );
    let peak_mb = (peak.rss_kb.max(end.hwm_kb)) as f64 / 1024.0;
    b.row(
        "memory",
        format!("RSS with {n} streamed runs in flight (peak: VmHWM after reset, and 20 ms samples)"),
        format!(
            "peak {:.1} MB (VmHWM {:.1} MB, sampled max {:.1} MB, {} threads max); {:.1} MB 1 s after",
            peak_mb,
            end.hwm_mb(),
            peak.rss_mb(),
            peak.threads,
            settled.rss_mb()
        ),
        format!(
            "same process idle: {:.1} MB fresh, {:.1} MB after the CRUD load",
            idle_fresh.rss_mb(),
            idle_after.rss_mb()
        ),
        "≤ 200 MB at 1,000",
        verdict(peak_mb <= 200.0),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Storage operations per API call and per run (in-process, from the stores' counters; on
// Azurite also every Azure transaction, blob and queue, through a counting proxy)

struct OpsApp {
    addr: SocketAddr,
    store: assistants::store::DynStore,
    tally: Option<azure::Tally>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _dir: Option<tempfile::TempDir>,
}

#[derive(Clone)]
struct Snap {
    counts: assistants::store::OpCounts,
    tally: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default)]
struct Delta {
    reads: u64,
    writes: u64,
    lists: u64,
    deletes: u64,
    azure: BTreeMap<String, u64>,
}

impl Delta {
    fn total(&self) -> u64 {
        self.reads + self.writes + self.lists + self.deletes
    }
    fn describe(&self) -> String {
        let mut s = format!(
            "{} (reads {}, writes {}, lists {}, deletes {})",
            self.total(),
            self.reads,
            self.writes,
            self.lists,
            self.deletes
        );
        if !self.azure.is_empty() {
            s.push_str("; Azure: ");
            s.push_str(
                &self
                    .azure
                    .iter()
                    .map(|(k, v)| format!("{v}× {k}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        s
    }
    fn json(&self) -> Value {
        json!({"reads": self.reads, "writes": self.writes, "lists": self.lists, "deletes": self.deletes,
               "total": self.total(), "azure_transactions": self.azure})
    }
}

impl OpsApp {
    fn snap(&self) -> Snap {
        Snap {
            counts: self.store.counts(),
            tally: self
                .tally
                .as_ref()
                .map(|t| t.snapshot())
                .unwrap_or_default(),
        }
    }
    fn delta(&self, before: &Snap) -> Delta {
        let after = self.snap();
        Delta {
            reads: after.counts.reads - before.counts.reads,
            writes: after.counts.writes - before.counts.writes,
            lists: after.counts.lists - before.counts.lists,
            deletes: after.counts.deletes - before.counts.deletes,
            azure: azure::diff(&before.tally, &after.tally),
        }
    }
}

async fn ops_app(b: &Bench) -> Result<OpsApp, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("OPENAI_BASE_URL".into(), format!("http://{}/v1", b.standin));
    env.insert("OPENAI_API_KEY".into(), "sk-bench".into());
    // Documents are extracted by the service binary, not by this one.
    env.insert(
        "INGEST_EXTRACTOR".into(),
        env!("CARGO_BIN_EXE_assistants-service").into(),
    );
    let mut dir = None;
    let mut tally = None;
    match &b.azurite {
        None => {
            let d = tempfile::tempdir_in(b.work.path()).map_err(|e| e.to_string())?;
            env.insert("STORAGE".into(), "local".into());
            env.insert("DATA_DIR".into(), d.path().display().to_string());
            dir = Some(d);
        }
        Some(az) => {
            let t = azure::Tally::default();
            let blob = azure::start_counting_proxy("blob", az.blob, t.clone()).await;
            let queue = azure::start_counting_proxy("queue", az.queue, t.clone()).await;
            env.insert("STORAGE".into(), "azure".into());
            env.insert(
                "STORAGE_CONNECTION_STRING".into(),
                Bench::connection_string(blob, queue),
            );
            env.insert("STORAGE_CONTAINER".into(), Bench::storage_container());
            env.insert("QUEUE_NAME".into(), Bench::storage_container());
            tally = Some(t);
        }
    }
    let settings = assistants::config::Settings::from_lookup(|k| env.get(k).cloned())
        .map_err(|e| e.to_string())?;
    let app = assistants::app::App::new(&settings)?;
    let store = app
        .stored
        .as_ref()
        .ok_or("no stored backend")?
        .store
        .clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // Serves, and runs the work-queue consumer, until `_shutdown` is dropped.
    tokio::spawn(app.run(listener, async {
        let _ = rx.await;
    }));
    Ok(OpsApp {
        addr,
        store,
        tally,
        _shutdown: tx,
        _dir: dir,
    })
}

/// Waits until the counters (queue polls aside) have not moved for 300 ms.
async fn settle(app: &OpsApp) {
    let key = |s: &Snap| {
        let t: BTreeMap<String, u64> = s
            .tally
            .iter()
            .filter(|(k, _)| !k.contains("Get Messages"))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        (s.counts, t)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = key(&app.snap());
    let mut stable_since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = key(&app.snap());
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= Duration::from_millis(300) {
            return;
        }
    }
}

async fn ops(b: &mut Bench) -> Result<(), String> {
    eprintln!("bench: storage operations per call and per run (in-process counters)");
    let app = ops_app(b).await?;
    let api = Api::new(app.addr);
    let mut c = Conn::new(app.addr);
    // Warm up: the container, the queue, the first listing.
    let assistant = id_of(
        &api.call(
            &mut c,
            "POST",
            "/assistants",
            Some(json!({"model": "bench-ops", "name": "ops"})),
        )
        .await?,
    );
    api.call(&mut c, "GET", "/assistants", None).await?;
    settle(&app).await;

    let mut results: Vec<(String, Delta)> = Vec::new();
    // One call, measured three times; the last is reported (they should agree).
    async fn measure(
        app: &OpsApp,
        api: &Api,
        c: &mut Conn,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(Delta, Value), String> {
        settle(app).await;
        let before = app.snap();
        let v = api.call(c, method, path, body).await?;
        let d = app.delta(&before);
        Ok((d, v))
    }
    let mut last = Delta::default();
    for _ in 0..3 {
        last = measure(
            &app,
            &api,
            &mut c,
            "POST",
            "/assistants",
            Some(json!({"model": "bench-ops"})),
        )
        .await?
        .0;
    }
    results.push(("create assistant".into(), last.clone()));
    let mut thread = String::new();
    for _ in 0..3 {
        let (d, v) = measure(&app, &api, &mut c, "POST", "/threads", Some(json!({}))).await?;
        last = d;
        thread = id_of(&v);
    }
    results.push(("create thread (empty)".into(), last.clone()));
    let mut message = String::new();
    for i in 0..20 {
        let (d, v) = measure(
            &app,
            &api,
            &mut c,
            "POST",
            &format!("/threads/{thread}/messages"),
            Some(json!({"role": "user", "content": format!("{USER_TEXT} ({i})")})),
        )
        .await?;
        last = d;
        message = id_of(&v);
    }
    results.push(("create message".into(), last.clone()));
    for (name, path) in [
        ("get thread", format!("/threads/{thread}")),
        (
            "get message",
            format!("/threads/{thread}/messages/{message}"),
        ),
        (
            "list 20 messages",
            format!("/threads/{thread}/messages?limit=20"),
        ),
        (
            "list assistants (default limit 20)",
            "/assistants".to_string(),
        ),
    ] {
        for _ in 0..3 {
            last = measure(&app, &api, &mut c, "GET", &path, None).await?.0;
        }
        results.push((name.into(), last.clone()));
    }
    // A queued text run on the 20-message thread: the create call, then the turn.
    settle(&app).await;
    let before = app.snap();
    let run = api
        .call(
            &mut c,
            "POST",
            &format!("/threads/{thread}/runs"),
            Some(json!({"assistant_id": assistant})),
        )
        .await?;
    let create_call = app.delta(&before);
    let run_id = id_of(&run);
    let key = assistants::store::keys::run("default", &thread, &run_id);
    let mut polls = 0u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        polls += 1;
        let done = match app.store.get(&key).await {
            Ok(Some((bytes, _))) => serde_json::from_slice::<Value>(&bytes)
                .map(|v| v["status"] == "completed" || v["status"] == "failed")
                .unwrap_or(false),
            _ => false,
        };
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    settle(&app).await;
    let mut whole = app.delta(&before);
    // Our own polls of the run are not the run's.
    whole.reads -= polls;
    if let Some(v) = whole.azure.get_mut("blob Get Blob (run)") {
        *v = v.saturating_sub(polls);
    }
    whole.azure.retain(|_, v| *v > 0);
    let run_status = api
        .call(
            &mut c,
            "GET",
            &format!("/threads/{thread}/runs/{run_id}"),
            None,
        )
        .await?["status"]
        .clone();
    results.push((
        "create run (the call only, queued)".into(),
        create_call.clone(),
    ));
    results.push((
        format!("queued text run on a 20-message thread, create → {run_status} (polls excluded)"),
        whole.clone(),
    ));
    // Its messages now number 21: the next run reads 21.
    let msgs_before_streamed = 21;
    settle(&app).await;
    let before = app.snap();
    let resp = b
        .http
        .post(format!("http://{}/v1/threads/{thread}/runs", app.addr))
        .json(&json!({"assistant_id": assistant, "stream": true}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let (_, _, text) = read_sse(resp, |_| false, Duration::from_secs(30)).await?;
    settle(&app).await;
    let streamed = app.delta(&before);
    results.push((
        format!(
            "streamed text run on a {msgs_before_streamed}-message thread ({})",
            if text.contains("thread.run.completed") {
                "completed"
            } else {
                "NOT completed"
            }
        ),
        streamed.clone(),
    ));
    // Idle: the Azure queue poller's own transactions.
    let idle = if app.tally.is_some() {
        let before = app.snap();
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(if b.args.quick { 3 } else { 10 })).await;
        let d = app.delta(&before);
        Some((d, t0.elapsed().as_secs_f64()))
    } else {
        None
    };

    let mut json_ops = serde_json::Map::new();
    for (name, d) in &results {
        json_ops.insert(name.clone(), d.json());
    }
    if let Some((d, secs)) = &idle {
        json_ops.insert(format!("idle {secs:.1} s (queue poller)"), d.json());
    }
    b.results
        .insert("storage_ops".into(), Value::Object(json_ops));
    for (name, d) in &results {
        let (target, ok) = match name.as_str() {
            "create message" => ("1 write (+ reads its rules need)", Some(d.writes == 1)),
            "create assistant" | "create thread (empty)" => {
                ("1 write", Some(d.writes == 1 && d.total() == 1))
            }
            n if n.starts_with("queued text run") => {
                // Reading its messages: one listing and one read per message (20).
                let beyond = d.total().saturating_sub(21);
                return_row_run(b, name, d, beyond, 20);
                let _ = n;
                continue;
            }
            n if n.starts_with("streamed text run") => {
                let beyond = d.total().saturating_sub(1 + msgs_before_streamed);
                return_row_run(b, name, d, beyond, msgs_before_streamed);
                continue;
            }
            _ => ("", None),
        };
        b.row(
            "storage ops",
            name.clone(),
            d.describe(),
            "",
            target,
            ok.map(verdict).unwrap_or(""),
        );
    }
    // What 1,000 such runs cost in storage transactions (the cost table of BENCHMARKS.md
    // prices these).
    let per_run = results
        .iter()
        .find(|(n, _)| n.starts_with("queued text run"))
        .map(|(_, d)| d.clone());
    if let Some(d) = per_run {
        let mut classes: BTreeMap<&str, u64> = BTreeMap::new();
        if d.azure.is_empty() {
            classes.insert("reads", d.reads);
            classes.insert("writes", d.writes);
            classes.insert("lists", d.lists);
            classes.insert("deletes", d.deletes);
        } else {
            for (k, v) in &d.azure {
                let class = if k.contains("List Blobs") {
                    "blob list"
                } else if k.starts_with("blob Put") || k.contains("container PUT") {
                    "blob write"
                } else if k.starts_with("blob Get") {
                    "blob read"
                } else if k.starts_with("blob Delete") {
                    "blob delete"
                } else if k.starts_with("queue") {
                    "queue"
                } else {
                    "other"
                };
                *classes.entry(class).or_default() += v;
            }
        }
        let text = classes
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{} {k}", v * 1000))
            .collect::<Vec<_>>()
            .join(", ");
        b.results.insert(
            "transactions_per_1000_queued_runs".into(),
            json!(classes
                .iter()
                .map(|(k, v)| (k.to_string(), v * 1000))
                .collect::<BTreeMap<_, _>>()),
        );
        b.row(
            "storage ops",
            "per 1,000 queued text runs on 20-message threads (from the run above)",
            text,
            "",
            "(priced in BENCHMARKS.md)",
            "",
        );
    }
    if let Some((d, secs)) = idle {
        let per_hour = d.azure.values().sum::<u64>() as f64 / secs * 3600.0;
        b.row(
            "storage ops",
            format!("idle instance, {secs:.0} s (Azure queue poller)"),
            format!("{}; ≈ {per_hour:.0} transactions/hour", d.describe()),
            "",
            "",
            "",
        );
    }
    Ok(())
}

fn return_row_run(b: &mut Bench, name: &str, d: &Delta, beyond: u64, messages: u64) {
    b.row(
        "storage ops",
        name.to_string(),
        format!(
            "{}; beyond reading its {messages} messages (1 list + {messages} reads): {beyond}",
            d.describe()
        ),
        "peer: ~50 SQL statements + ~12 Redis commands per run",
        "≤ 10 beyond reading its messages",
        verdict(beyond <= 10),
    );
}
