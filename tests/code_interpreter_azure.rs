//! The Azure dynamic-sessions executor against a local stand-in of the pool's REST API and
//! of the managed-identity endpoint (tests/support/aca_standin.rs): the documented request
//! shapes, token handling, session loss, and the error mapping with its retries. Also the
//! executor chosen from settings (`CodeInterpreter::start`).

#[path = "support/aca_standin.rs"]
mod aca_standin;

use aca_standin::{AcaStandIn, IDENTITY_HEADER};
use assistants::code_interpreter::azure::identity::Identity;
use assistants::code_interpreter::azure::{AzureConfig, AzureExecutor, API_VERSION, MARKER_FILE};
use assistants::code_interpreter::{
    CodeExecutor, CodeInterpreter, ExecError, SessionKey, SessionOpen,
};
use assistants::config::Settings;
use bytes::Bytes;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const CELL: Duration = Duration::from_secs(60);

fn executor_for(standin: &AcaStandIn, header: &str) -> AzureExecutor {
    let mut cfg = AzureConfig::new(
        standin.pool_endpoint.clone(),
        Identity::AppService {
            endpoint: standin.identity_endpoint.clone(),
            header: header.to_string(),
            client_id: None,
        },
    );
    cfg.retry_base = Duration::from_millis(20);
    cfg.max_retry_wait = Duration::from_secs(5);
    AzureExecutor::new(cfg).unwrap()
}

async fn setup() -> (AcaStandIn, AzureExecutor, SessionKey) {
    let standin = AcaStandIn::start().await;
    let executor = executor_for(&standin, IDENTITY_HEADER);
    (standin, executor, SessionKey::random())
}

#[tokio::test]
async fn cells_files_and_images_go_through_the_documented_api() {
    let (standin, executor, key) = setup().await;
    let id = key.session_id("default", "thread_azure");
    assert_eq!(
        executor.open_session(&id).await.unwrap(),
        SessionOpen::Created
    );
    assert_eq!(
        executor.open_session(&id).await.unwrap(),
        SessionOpen::Existing
    );
    executor.execute(&id, "x = 41", CELL).await.unwrap();
    let out = executor
        .execute(&id, "print('hi')\nx + 1", CELL)
        .await
        .unwrap();
    assert_eq!(out.logs, "hi\n");
    assert_eq!(out.result.as_deref(), Some("42"));

    let csv = "month,total\n1,10\n2,30\n";
    let info = executor
        .upload(&id, "sales.csv", Bytes::from(csv))
        .await
        .unwrap();
    assert_eq!(
        (info.path.as_str(), info.bytes),
        ("sales.csv", csv.len() as u64)
    );
    let out = executor
        .execute(
            &id,
            "import pandas as pd, matplotlib.pyplot as plt\n\
             df = pd.read_csv('/mnt/data/sales.csv')\n\
             df.to_csv('/mnt/data/copy.csv', index=False)\n\
             plt.plot(df.month, df.total)\n\
             plt.show()",
            CELL,
        )
        .await
        .unwrap();
    assert_eq!(out.error, None, "{}", out.logs);
    assert_eq!(out.images.len(), 1);
    assert!(out.images[0].starts_with(b"\x89PNG"));
    let changed: Vec<&str> = out.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(changed, ["copy.csv"]);
    let copy = executor.download(&id, "copy.csv", 1 << 20).await.unwrap();
    assert_eq!(std::str::from_utf8(&copy).unwrap(), csv);
    let listed: Vec<String> = executor
        .list_files(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(
        listed,
        ["copy.csv", "sales.csv"],
        "the marker file is not listed"
    );

    // Every call carried the pinned version, the session's identifier and a valid token,
    // and one token served them all.
    let seen = standin.seen();
    assert!(seen.len() >= 10);
    for s in &seen {
        assert_eq!(s.api_version, API_VERSION, "{s:?}");
        assert_eq!(s.identifier, id.as_str());
        assert!(s.status < 300, "{s:?}");
    }
    assert!(seen
        .iter()
        .any(|s| s.method == "POST" && s.path == "code/execute"));
    assert!(seen
        .iter()
        .any(|s| s.method == "POST" && s.path == "files/upload"));
    assert!(seen.iter().any(|s| s.path == "files/content/copy.csv"));
    assert_eq!(standin.token_requests(), 1);
}

#[tokio::test]
async fn an_exception_is_a_failed_cell_not_an_executor_error() {
    let (_standin, executor, key) = setup().await;
    let id = key.session_id("default", "thread_azure_error");
    executor.open_session(&id).await.unwrap();
    let out = executor
        .execute(&id, "print('before')\n1/0", CELL)
        .await
        .unwrap();
    let error = out.error.unwrap();
    assert_eq!(error.name, "ZeroDivisionError");
    assert_eq!(error.message, "division by zero");
    assert!(error.traceback.contains("Traceback"));
    assert_eq!(out.logs, "before\n");
}

#[tokio::test]
async fn a_recycled_session_is_reported_lost_and_opens_again_empty() {
    let (standin, executor, key) = setup().await;
    let id = key.session_id("default", "thread_azure_recycled");
    executor.open_session(&id).await.unwrap();
    executor.execute(&id, "x = 1", CELL).await.unwrap();
    standin.recycle(id.as_str()).await;
    let err = executor.execute(&id, "x", CELL).await.unwrap_err();
    assert!(matches!(err, ExecError::SessionLost(_)), "{err:?}");
    assert!(matches!(
        executor.list_files(&id).await,
        Err(ExecError::SessionLost(_))
    ));
    assert_eq!(
        executor.open_session(&id).await.unwrap(),
        SessionOpen::Created
    );
    let out = executor.execute(&id, "x", CELL).await.unwrap();
    assert_eq!(out.error.unwrap().name, "NameError");
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_and_refusals_are_auth_errors() {
    let (standin, executor, key) = setup().await;
    let id = key.session_id("default", "thread_azure_auth");
    executor.open_session(&id).await.unwrap();
    standin.revoke_tokens();
    executor.list_files(&id).await.unwrap();
    assert_eq!(standin.token_requests(), 2);

    standin.fail_next(403, 1, None, None);
    let err = executor.list_files(&id).await.unwrap_err();
    assert!(
        matches!(err, ExecError::Auth(ref m) if m.contains("403")),
        "{err:?}"
    );
    standin.fail_next(401, 2, None, None);
    let err = executor.list_files(&id).await.unwrap_err();
    assert!(matches!(err, ExecError::Auth(_)), "{err:?}");

    let wrong = executor_for(&standin, "not-the-header");
    let err = wrong.open_session(&id).await.unwrap_err();
    assert!(
        matches!(err, ExecError::Auth(ref m) if m.contains("managed identity")),
        "{err:?}"
    );
}

#[tokio::test]
async fn throttling_is_retried_honouring_retry_after_then_reported_busy() {
    let (standin, executor, key) = setup().await;
    let id = key.session_id("default", "thread_azure_429");
    executor.open_session(&id).await.unwrap();

    standin.clear_seen();
    standin.fail_next(429, 1, Some("1"), None);
    let started = Instant::now();
    executor.list_files(&id).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(standin.seen().len(), 2);

    standin.clear_seen();
    standin.fail_next(429, 10, Some("0"), None);
    let err = executor.list_files(&id).await.unwrap_err();
    assert!(matches!(err, ExecError::Busy(_)), "{err:?}");
    assert_eq!(standin.seen().len(), 4, "max_attempts tries");
    standin.clear_faults();

    // A wait longer than we accept gives up at once.
    standin.fail_next(429, 10, Some("600"), None);
    standin.clear_seen();
    let started = Instant::now();
    assert!(matches!(
        executor.list_files(&id).await,
        Err(ExecError::Busy(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(standin.seen().len(), 1);

    // A pool at its session limit answers 404 to new identifiers: busy too.
    let other = key.session_id("default", "thread_azure_full");
    standin.fail_next(404, 10, None, None);
    assert!(matches!(
        executor.open_session(&other).await,
        Err(ExecError::Busy(_))
    ));
}

#[tokio::test]
async fn server_errors_are_retried_but_code_never_runs_twice() {
    let (standin, executor, key) = setup().await;
    let id = key.session_id("default", "thread_azure_5xx");
    executor.open_session(&id).await.unwrap();
    executor.execute(&id, "runs = 0", CELL).await.unwrap();

    standin.clear_seen();
    standin.fail_next(500, 2, None, Some("files"));
    executor.list_files(&id).await.unwrap();
    assert_eq!(standin.seen().len(), 3);

    // A 500 from code/execute may mean the code ran: not retried.
    standin.clear_seen();
    standin.fail_next(500, 1, None, Some("code/execute"));
    let err = executor.execute(&id, "runs += 1", CELL).await.unwrap_err();
    assert!(matches!(err, ExecError::Transient(_)), "{err:?}");
    let executes = standin
        .seen()
        .iter()
        .filter(|s| s.path == "code/execute")
        .count();
    assert_eq!(executes, 1);

    // A 503 means it was not taken: retried, and the code runs once.
    standin.fail_next(503, 1, Some("0"), Some("code/execute"));
    executor.execute(&id, "runs += 1", CELL).await.unwrap();
    let out = executor.execute(&id, "runs", CELL).await.unwrap();
    assert_eq!(out.result.as_deref(), Some("1"));

    standin.fail_next(502, 10, None, Some("files"));
    assert!(matches!(
        executor.list_files(&id).await,
        Err(ExecError::Transient(_))
    ));
}

#[tokio::test]
async fn file_errors_map_to_too_large_and_not_found() {
    let standin = AcaStandIn::start_with_upload_limit(1024).await;
    let executor = executor_for(&standin, IDENTITY_HEADER);
    let id = SessionKey::random().session_id("default", "thread_azure_files");
    executor.open_session(&id).await.unwrap();
    let err = executor
        .upload(&id, "big.bin", Bytes::from(vec![0u8; 4096]))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::FileTooLarge(_)), "{err:?}");
    assert!(matches!(
        executor.download(&id, "missing.csv", 100).await,
        Err(ExecError::NotFound(_))
    ));
    executor
        .upload(&id, "small.txt", Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    assert!(matches!(
        executor.download(&id, "small.txt", 5).await,
        Err(ExecError::FileTooLarge(5))
    ));
    assert!(matches!(
        executor.upload(&id, MARKER_FILE, Bytes::new()).await,
        Err(ExecError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn ending_a_session_deletes_it_and_is_idempotent() {
    let (standin, executor, key) = setup().await;
    let id = key.session_id("default", "thread_azure_end");
    executor.open_session(&id).await.unwrap();
    executor.execute(&id, "x = 1", CELL).await.unwrap();
    executor.end_session(&id).await.unwrap();
    let delete = standin
        .seen()
        .into_iter()
        .find(|s| s.method == "DELETE")
        .unwrap();
    assert_eq!(delete.path, "session");
    assert_eq!(delete.api_version, "2025-10-02-preview");
    assert_eq!(
        executor.open_session(&id).await.unwrap(),
        SessionOpen::Created
    );
    executor.end_session(&id).await.unwrap();
    executor.end_session(&id).await.unwrap();
}

#[tokio::test]
async fn the_self_test_runs_code_and_finds_no_egress() {
    let (_standin, executor, _key) = setup().await;
    let report = executor.self_test().await.unwrap();
    assert_eq!(report.checks.len(), 3, "{:?}", report.checks);
    assert!(
        report.checks[2].starts_with("no egress"),
        "{:?}",
        report.checks
    );
}

fn settings(pairs: &[(&str, &str)]) -> Settings {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_lookup(|k| map.get(k).cloned()).unwrap()
}

#[tokio::test]
async fn settings_choose_the_executor_and_it_is_enabled_only_after_its_self_test() {
    let standin = AcaStandIn::start().await;
    let azure = CodeInterpreter::start(&settings(&[
        ("CODE_INTERPRETER_POOL_ENDPOINT", &standin.pool_endpoint),
        ("CODE_INTERPRETER_SESSION_KEY", "a-long-random-session-key"),
        ("IDENTITY_ENDPOINT", &standin.identity_endpoint),
        ("IDENTITY_HEADER", IDENTITY_HEADER),
    ]))
    .await;
    assert_eq!(azure.executor().map(|e| e.kind()), Some("azure"));
    // The start-up probe ran in a session derived from the key, kept for the next start.
    let probe = SessionKey::new(b"a-long-random-session-key").session_id("", "self-test");
    assert!(standin
        .seen()
        .iter()
        .any(|s| s.path == "code/execute" && s.identifier == probe.as_str()));
    assert!(!standin.seen().iter().any(|s| s.method == "DELETE"));
    assert_eq!(
        azure.session_id("default", "thread_x"),
        SessionKey::new(b"a-long-random-session-key").session_id("default", "thread_x")
    );

    let bad_header = CodeInterpreter::start(&settings(&[
        ("CODE_INTERPRETER_POOL_ENDPOINT", &standin.pool_endpoint),
        ("CODE_INTERPRETER_SESSION_KEY", "a-long-random-session-key"),
        ("IDENTITY_ENDPOINT", &standin.identity_endpoint),
        ("IDENTITY_HEADER", "wrong"),
    ]))
    .await;
    assert!(bad_header.executor().is_none());
    assert!(bad_header
        .unavailable_reason()
        .unwrap()
        .contains("managed identity"));

    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let local = CodeInterpreter::start(&settings(&[("DATA_DIR", data_dir)])).await;
    assert_eq!(local.executor().map(|e| e.kind()), Some("local"));
    assert_eq!(local.cell_timeout(), Duration::from_secs(60));

    let off = CodeInterpreter::start(&settings(&[("CODE_INTERPRETER", "off")])).await;
    assert!(off.executor().is_none());

    let no_bwrap = CodeInterpreter::start(&settings(&[
        ("DATA_DIR", data_dir),
        ("CODE_INTERPRETER", "local"),
        ("CODE_INTERPRETER_BWRAP", "/nonexistent/bwrap"),
    ]))
    .await;
    assert!(no_bwrap
        .unavailable_reason()
        .unwrap()
        .contains("bubblewrap"));

    let functions = CodeInterpreter::start(&settings(&[
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "7071"),
        ("ASSISTANTS_ALLOW_OPEN", "true"),
        ("DATA_DIR", data_dir),
    ]))
    .await;
    assert!(functions
        .unavailable_reason()
        .unwrap()
        .contains("Functions"));
}
