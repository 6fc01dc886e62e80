//! `code_interpreter` inside runs, with the local sandbox (bubblewrap, which scripts/test.sh
//! installs): the tool offered to the model as a function, the code run in the thread's
//! session with the run's files in `/mnt/data`, the completed `tool_calls` step with the
//! code and its outputs, figures and written files stored as `assistants_output` files, the
//! answer's `image_file` part and `file_path` annotations, a server without a sandbox
//! failing such runs at once, and deleting a thread ending its session.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{call, say, spawn_app_with, Backend, TestApp};

const SALES: &str = "month,amount\n2024-01,120\n2024-01,30\n2024-02,200\n2024-03,75\n2024-03,25\n";

/// Reads the CSV, prints the monthly totals, saves them and plots them.
const PLOT: &str = r#"import pandas as pd
import matplotlib
import matplotlib.pyplot as plt
df = pd.read_csv('/mnt/data/sales.csv')
totals = df.groupby('month')['amount'].sum()
print(totals.to_string())
totals.to_csv('/mnt/data/monthly.csv')
totals.plot(kind='bar')
plt.title('Monthly totals')
plt.show()
"#;

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// A server with the local sandbox.
async fn app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[("CODE_INTERPRETER", "local")]).await
}

fn code_args(code: &str) -> String {
    json!({ "code": code }).to_string()
}

async fn csv_and_plot_test(backend: Backend) {
    let app = app(backend).await;
    let csv = app.upload(SALES.as_bytes(), "sales.csv").await;
    let asst = id(&app
        .post(
            "/assistants",
            json!({"model": "m", "instructions": "You analyse data.",
                   "tools": [{"type": "code_interpreter"}],
                   "tool_resources": {"code_interpreter": {"file_ids": [csv]}}}),
        )
        .await
        .ok());
    let thread = id(&app
        .post(
            "/threads",
            json!({"messages": [{"role": "user", "content": "Plot the monthly totals."}]}),
        )
        .await
        .ok());
    let answer =
        "Here is the chart. The totals are in [monthly.csv](sandbox:/mnt/data/monthly.csv).";
    app.llm.script(
        None,
        vec![
            call(&[("python", &code_args(PLOT))]),
            call(&[("python", &code_args("totals.sum()"))]),
            say(answer),
        ],
    );
    let run = app
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok();
    let run = app
        .wait_run(&thread, &id(&run), &["completed", "failed"])
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    let run_id = id(&run);

    // The model was offered the tool as a function and told about the file.
    let requests = app.chat_requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    let tools = requests[0]["tools"].as_array().expect("tools offered");
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["function"]["name"], "python");
    assert_eq!(tools[0]["function"]["parameters"]["required"][0], "code");
    let system = requests[0]["messages"][0]["content"].as_str().unwrap();
    assert!(system.starts_with("You analyse data."), "{system}");
    assert!(system.contains("/mnt/data/sales.csv"), "{system}");
    // What the first cell printed and made reached the model.
    let tool_output = |request: &Value, n: usize| -> String {
        request["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "tool")
            .nth(n)
            .expect("tool message")["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first = tool_output(&requests[1], 0);
    assert!(first.contains("2024-01    150"), "{first}");
    assert!(first.contains("2024-02    200"), "{first}");
    assert!(first.contains("[1 image was shown to the user]"), "{first}");
    assert!(first.contains("sandbox:/mnt/data/monthly.csv"), "{first}");
    // The second call saw the first call's variables.
    let second = tool_output(&requests[2], 1);
    assert!(second.contains("450"), "{second}");

    // Steps: two completed code_interpreter steps, then the message.
    let steps = app
        .get(&format!("/threads/{thread}/runs/{run_id}/steps?order=asc"))
        .await
        .ok();
    let steps = steps["data"].as_array().unwrap().clone();
    assert_eq!(steps.len(), 3, "{steps:?}");
    let ci = &steps[0]["step_details"]["tool_calls"][0];
    assert_eq!(steps[0]["status"], "completed");
    assert_eq!(ci["type"], "code_interpreter", "{ci}");
    assert_eq!(ci["code_interpreter"]["input"], PLOT);
    let outputs = ci["code_interpreter"]["outputs"].as_array().unwrap();
    assert_eq!(outputs[0]["type"], "logs");
    assert!(outputs[0]["logs"]
        .as_str()
        .unwrap()
        .contains("2024-03    100"));
    assert_eq!(outputs[1]["type"], "image", "{outputs:?}");
    let image_id = outputs[1]["image"]["file_id"].as_str().unwrap().to_string();
    let second_ci = &steps[1]["step_details"]["tool_calls"][0];
    assert_eq!(second_ci["code_interpreter"]["outputs"][0]["logs"], "450");
    assert_eq!(steps[2]["type"], "message_creation");

    // The figure is a PNG file with purpose assistants_output.
    let image = app.get(&format!("/files/{image_id}")).await.ok();
    assert_eq!(image["purpose"], "assistants_output");
    let png = app
        .raw(Method::GET, &format!("/files/{image_id}/content"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert_eq!(image["bytes"], png.len());

    // The answer: the figure first, then the text with the file link annotated.
    let messages = app
        .get(&format!("/threads/{thread}/messages?run_id={run_id}"))
        .await
        .ok();
    let message = &messages["data"][0];
    let content = message["content"].as_array().unwrap();
    assert_eq!(content.len(), 2, "{message}");
    assert_eq!(content[0]["type"], "image_file");
    assert_eq!(content[0]["image_file"]["file_id"], image_id.as_str());
    let text = &content[1]["text"];
    assert_eq!(text["value"], answer);
    let annotations = text["annotations"].as_array().unwrap();
    assert_eq!(annotations.len(), 1, "{text}");
    let a = &annotations[0];
    assert_eq!(a["type"], "file_path");
    assert_eq!(a["text"], "sandbox:/mnt/data/monthly.csv");
    let start = answer.find("sandbox:").unwrap();
    assert_eq!(a["start_index"], start);
    assert_eq!(
        a["end_index"],
        start + "sandbox:/mnt/data/monthly.csv".len()
    );
    let csv_out = a["file_path"]["file_id"].as_str().unwrap();
    let out = app.get(&format!("/files/{csv_out}")).await.ok();
    assert_eq!(out["filename"], "monthly.csv");
    assert_eq!(out["purpose"], "assistants_output");
    let body = app
        .raw(Method::GET, &format!("/files/{csv_out}/content"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("2024-01,150"), "{body}");

    // Output files are listed under their purpose.
    let listed = app.get("/files?purpose=assistants_output").await.ok();
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(
        ids.contains(&image_id.as_str()) && ids.contains(&csv_out),
        "{listed}"
    );
}

#[tokio::test]
async fn csv_and_plot_local() {
    csv_and_plot_test(Backend::Local).await
}

#[tokio::test]
async fn csv_and_plot_azurite() {
    csv_and_plot_test(Backend::Azurite).await
}

/// A cell that raises is a normal output the model reads; the run goes on.
#[tokio::test]
async fn an_exception_is_an_output_not_a_failure() {
    let app = app(Backend::Local).await;
    let asst = id(&app
        .post(
            "/assistants",
            json!({"model": "m", "tools": [{"type": "code_interpreter"}]}),
        )
        .await
        .ok());
    let thread = id(&app
        .post(
            "/threads",
            json!({"messages": [{"role": "user", "content": "Divide by zero."}]}),
        )
        .await
        .ok());
    app.llm.script(
        None,
        vec![
            call(&[("python", &code_args("print('before')\n1/0"))]),
            say("It failed."),
        ],
    );
    let run = app
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok();
    let run = app
        .wait_run(&thread, &id(&run), &["completed", "failed"])
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    let steps = app
        .get(&format!(
            "/threads/{thread}/runs/{}/steps?order=asc",
            id(&run)
        ))
        .await
        .ok();
    let logs = steps["data"][0]["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"][0]
        ["logs"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(logs.starts_with("before\n"), "{logs}");
    assert!(logs.contains("ZeroDivisionError"), "{logs}");
    let requests = app.chat_requests();
    let told = requests[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        told.contains("ZeroDivisionError: division by zero"),
        "{told}"
    );
}

/// A run of a new assistant with the tool on a new thread, once it is completed or failed.
async fn finished_code_interpreter_run(app: &TestApp) -> Value {
    let asst = id(&app
        .post(
            "/assistants",
            json!({"model": "m", "tools": [{"type": "code_interpreter"}]}),
        )
        .await
        .ok());
    let thread = id(&app.post("/threads", json!({})).await.ok());
    let run = app
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok();
    app.wait_run(&thread, &id(&run), &["completed", "failed"])
        .await
}

/// Without a sandbox, a run that needs the tool fails at once and says why.
#[tokio::test]
async fn without_a_sandbox_the_run_fails_with_the_reason() {
    let app = spawn_app_with(Backend::Local, &[("CODE_INTERPRETER", "off")]).await;
    let run = finished_code_interpreter_run(&app).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["last_error"]["code"], "server_error");
    let message = run["last_error"]["message"].as_str().unwrap();
    assert!(
        message.contains("code_interpreter tool is not available")
            && message.contains("CODE_INTERPRETER=off"),
        "{message}"
    );
    // The model was never called.
    assert!(app.chat_requests().is_empty());
}

/// A sandbox that cannot start (here its Python exits at once) fails the self-test, and a
/// run that needs the tool says so in plain words (issue 18: not "the local executor's the
/// code interpreter is unavailable").
#[tokio::test]
async fn a_failed_self_test_is_the_reason_in_plain_words() {
    let app = spawn_app_with(
        Backend::Local,
        &[
            ("CODE_INTERPRETER", "local"),
            ("CODE_INTERPRETER_PYTHON", "/usr/bin/true"),
        ],
    )
    .await;
    let run = finished_code_interpreter_run(&app).await;
    assert_eq!(run["status"], "failed", "{run}");
    let message = run["last_error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "The code_interpreter tool is not available on this server: the local executor's \
             self-test failed: the sandbox did not start"
        ),
        "{message}"
    );
    assert!(!message.contains("executor's the"), "{message}");
}

/// Variables live in the thread's session across runs, sessions are per thread, and
/// deleting the thread ends its session.
#[tokio::test]
async fn sessions_belong_to_threads() {
    let app = app(Backend::Local).await;
    let asst = id(&app
        .post(
            "/assistants",
            json!({"model": "m", "tools": [{"type": "code_interpreter"}]}),
        )
        .await
        .ok());
    let run_code = |thread: String, code: &'static str| {
        let app = &app;
        let asst = asst.clone();
        async move {
            app.llm.script(
                None,
                vec![call(&[("python", &code_args(code))]), say("done")],
            );
            let run = app
                .post(
                    &format!("/threads/{thread}/runs"),
                    json!({"assistant_id": asst}),
                )
                .await
                .ok();
            let run = app
                .wait_run(&thread, &id(&run), &["completed", "failed"])
                .await;
            assert_eq!(run["status"], "completed", "{run}");
            let steps = app
                .get(&format!(
                    "/threads/{thread}/runs/{}/steps?order=asc",
                    id(&run)
                ))
                .await
                .ok();
            steps["data"][0]["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"][0]
                ["logs"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    let one = id(&app.post("/threads", json!({})).await.ok());
    let two = id(&app.post("/threads", json!({})).await.ok());
    run_code(one.clone(), "secret = 41").await;
    assert_eq!(run_code(one.clone(), "secret + 1").await, "42");
    let other = run_code(two.clone(), "'secret' in globals()").await;
    assert_eq!(other, "False");
    let ci = app.engine.code_interpreter().get().await;
    let sessions = || ci.executor().and_then(|e| e.sessions_open()).unwrap_or(0);
    assert_eq!(sessions(), 2, "a session per thread");
    app.delete(&format!("/threads/{one}")).await.ok();
    assert_eq!(sessions(), 1, "the deleted thread's session is gone");
}

/// Issue 18: with every code-interpreter setting at its default and DATA_DIR inside a
/// private directory (mode 0700, as `mktemp -d` or a clone under /root make it), the
/// sandbox passes its self-test and a run uses it. As root (CI) the sandbox runs as another
/// uid, which cannot enter that directory.
#[tokio::test]
async fn the_default_sandbox_works_with_a_private_data_dir() {
    use std::os::unix::fs::PermissionsExt;
    use support::remote::ServerProcess;
    let llm = llm_standin::StandIn::new();
    let llm_addr = llm.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let data_dir = private.path().join("data").display().to_string();
    let server = ServerProcess::start(
        &[
            ("DATA_DIR", &data_dir),
            ("OPENAI_BASE_URL", &format!("http://{llm_addr}/v1")),
        ],
        &private.path().join("server.log"),
    )
    .await;
    let api = server.api(support::KEY_A);
    let asst = id(&api
        .post(
            "/assistants",
            json!({"model": "m", "tools": [{"type": "code_interpreter"}]}),
        )
        .await
        .ok());
    let thread = id(&api.post("/threads", json!({})).await.ok());
    llm.script(
        None,
        vec![call(&[("python", &code_args("6 * 7"))]), say("42")],
    );
    let run = api
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok();
    let run = api
        .wait_run(
            &thread,
            &id(&run),
            &["completed", "failed"],
            std::time::Duration::from_secs(60),
        )
        .await;
    let log = server.log_text();
    assert_eq!(run["status"], "completed", "{run}\n{log}");
    assert!(
        log.contains("code_interpreter enabled (local executor"),
        "{log}"
    );
    let steps = api
        .get(&format!(
            "/threads/{thread}/runs/{}/steps?order=asc",
            id(&run)
        ))
        .await
        .ok();
    assert_eq!(
        steps["data"][0]["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"][0]["logs"],
        "42"
    );
}
