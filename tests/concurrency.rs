//! Concurrent writers: parallel message creates and modifies lose nothing, a thread's
//! modifies never clobber its active-run claim, and two server instances on the same Azure
//! storage and queue (as a scaled-out Functions app runs) share 200 runs without advancing
//! any twice. (Ten parallel create-run calls on one thread giving one run and nine 400s is
//! `runs.rs`'s `one_active_run_per_thread`.)

mod support;

use futures::future::join_all;
use futures::StreamExt;
use llm_standin::{Response, StandIn};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use support::remote::{check_run, Api, ServerProcess, TERMINAL};
use support::{azurite_connection_string, call, say, spawn_app, unique_name, Backend, KEY_A};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

async fn parallel_messages_lose_nothing_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = app.api();
    let tid = id(&api.post("/threads", json!({})).await.ok());
    let path = format!("/threads/{tid}/messages");

    // 40 creates at once: 40 messages, each once, each with its own text.
    let created: Vec<Value> = join_all((0..40).map(|i| {
        let (api, path) = (api.clone(), path.clone());
        async move {
            api.post(&path, json!({"role": "user", "content": format!("m{i}")}))
                .await
                .ok()
        }
    }))
    .await;
    let listed = api.list_all(&path).await;
    assert_eq!(listed.len(), 40);
    let texts: HashSet<&str> = listed
        .iter()
        .map(|m| m["content"][0]["text"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 40);
    // Ascending order is creation order, ids are unique.
    let ids: Vec<&str> = listed.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(ids, sorted);

    // Modifies of 20 messages, at the same time as 20 more creates: every one lands.
    let modifies = created[..20].iter().enumerate().map(|(i, m)| {
        let (api, path, mid) = (api.clone(), path.clone(), id(m));
        async move {
            api.post(
                &format!("{path}/{mid}"),
                json!({"metadata": {"n": i.to_string()}}),
            )
            .await
            .ok();
        }
    });
    let creates = (40..60).map(|i| {
        let (api, path) = (api.clone(), path.clone());
        async move {
            api.post(&path, json!({"role": "user", "content": format!("m{i}")}))
                .await
                .ok();
        }
    });
    futures::future::join(join_all(modifies), join_all(creates)).await;
    let listed = api.list_all(&path).await;
    assert_eq!(listed.len(), 60);
    for (i, m) in created[..20].iter().enumerate() {
        let now = api.get(&format!("{path}/{}", id(m))).await.ok();
        assert_eq!(now["metadata"], json!({"n": i.to_string()}));
        assert_eq!(now["content"], m["content"]);
    }

    // 20 modifies of one message at once: all answered 200, and the end state is exactly
    // one of them (never a mix, never lost).
    let target = id(&created[30]);
    let answers: Vec<Value> = join_all((0..20).map(|i| {
        let (api, path, target) = (api.clone(), path.clone(), target.clone());
        async move {
            api.post(
                &format!("{path}/{target}"),
                json!({"metadata": {"writer": i.to_string(), "check": format!("c{i}")}}),
            )
            .await
            .ok()
        }
    }))
    .await;
    assert_eq!(answers.len(), 20);
    let end = api.get(&format!("{path}/{target}")).await.ok();
    let writer = end["metadata"]["writer"].as_str().unwrap();
    assert_eq!(end["metadata"]["check"], format!("c{writer}"));
}
both_backends!(
    parallel_messages_lose_nothing,
    parallel_messages_lose_nothing_test
);

/// Thread modifies racing a run's claim of the thread: the claim survives them.
async fn thread_modifies_keep_the_run_claim_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = app.api();
    app.llm.script(
        None,
        vec![Response {
            text: Some("a slow answer in several pieces".into()),
            chunk_delay_ms: 400,
            ..Default::default()
        }],
    );
    let asst = id(&api.post("/assistants", json!({"model": "m"})).await.ok());
    let tid = id(&api
        .post(
            "/threads",
            json!({"messages": [{"role": "user", "content": "q"}]}),
        )
        .await
        .ok());
    let modifies = join_all((0..20).map(|i| {
        let (api, tid) = (api.clone(), tid.clone());
        async move {
            api.post(
                &format!("/threads/{tid}"),
                json!({"metadata": {"i": i.to_string()}}),
            )
            .await
            .ok();
        }
    }));
    let run = async {
        api.post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok()
    };
    let (_, run) = futures::future::join(modifies, run).await;
    let rid = id(&run);
    // The run still holds the thread: a message is refused until it ends.
    let refused = api
        .post(
            &format!("/threads/{tid}/messages"),
            json!({"role": "user", "content": "too early"}),
        )
        .await;
    let status = api.get(&format!("/threads/{tid}/runs/{rid}")).await.ok()["status"].clone();
    if TERMINAL.contains(&status.as_str().unwrap()) {
        panic!("the run ended before the check; make the model slower: {status}");
    }
    refused.error(400);
    api.wait_run(&tid, &rid, TERMINAL, Duration::from_secs(30))
        .await;
    check_run(&api, &tid, &rid).await;
    let thread = api.get(&format!("/threads/{tid}")).await.ok();
    assert!(thread["metadata"]["i"].is_string());
}
both_backends!(
    thread_modifies_keep_the_run_claim,
    thread_modifies_keep_the_run_claim_test
);

const RUNS: usize = 200;
/// Every fourth run calls a tool first (two turns).
fn has_tool(i: usize) -> bool {
    i % 4 == 0
}

/// Two server processes on one Azurite container and queue: runs created on either are
/// advanced by whichever takes the work item, tool outputs submitted through the other.
/// Every turn is taken exactly once: one model call per turn (the stand-in sees which
/// instance called, by path), one step per turn, one answer per run, and the run's usage
/// equals its steps' (a turn committed twice would count twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_200_runs() {
    let llm = StandIn::new();
    let llm_addr = llm.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let connection = azurite_connection_string();
    let (container, queue) = (unique_name("twin"), unique_name("twin"));
    let logs = tempfile::tempdir().unwrap();
    let mut servers = Vec::new();
    for name in ["a", "b"] {
        let base_url = format!("http://{llm_addr}/{name}/v1");
        servers.push(
            ServerProcess::start(
                &[
                    ("STORAGE", "azure"),
                    ("STORAGE_CONNECTION_STRING", &connection),
                    ("STORAGE_CONTAINER", &container),
                    ("QUEUE_NAME", &queue),
                    ("OPENAI_BASE_URL", &base_url),
                    ("QUEUE_POLL_MAX_MS", "100"),
                ],
                &logs.path().join(format!("{name}.log")),
            )
            .await,
        );
    }
    // Polling 200 runs often would load the servers more than the runs do.
    let apis: Vec<Api> = servers
        .iter()
        .map(|s| Api {
            poll: Duration::from_millis(300),
            ..s.api(KEY_A)
        })
        .collect();
    let tool = json!({"type": "function", "function": {"name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}});
    let asst = id(&apis[0]
        .post("/assistants", json!({"model": "m", "tools": [tool]}))
        .await
        .ok());
    for i in 0..RUNS {
        let model = format!("m-{i}");
        let answer = say(&format!("answer {i}"));
        let script = if has_tool(i) {
            vec![call(&[("lookup", &format!(r#"{{"q":"{i}"}}"#))]), answer]
        } else {
            vec![answer]
        };
        llm.script(Some(&model), script);
    }

    // Create the runs, alternating instances, 16 at a time.
    let created: Vec<(usize, String, String)> = futures::stream::iter(0..RUNS)
        .map(|i| {
            let api = apis[i % 2].clone();
            let asst = asst.clone();
            async move {
                let (tid, rid) = api
                    .create_thread_and_run(&asst, Some(&format!("m-{i}")), &format!("question {i}"))
                    .await;
                (i, tid, rid)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    // Tool runs: outputs through the instance that did not create the run.
    futures::stream::iter(created.iter().filter(|(i, _, _)| has_tool(*i)))
        .for_each_concurrent(16, |(i, tid, rid)| {
            let api = apis[(i + 1) % 2].clone();
            async move {
                let run = api
                    .wait_run(tid, rid, &["requires_action", "failed"], Duration::from_secs(120))
                    .await;
                assert_eq!(run["status"], "requires_action", "{run}");
                let call_id =
                    run["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"].clone();
                api.post(
                    &format!("/threads/{tid}/runs/{rid}/submit_tool_outputs"),
                    json!({"tool_outputs": [{"tool_call_id": call_id, "output": format!("out {i}")}]}),
                )
                .await
                .ok();
            }
        })
        .await;

    futures::stream::iter(created.iter())
        .for_each_concurrent(16, |(i, tid, rid)| {
            let api = apis[*i % 2].clone();
            async move {
                let run = api
                    .wait_run(tid, rid, TERMINAL, Duration::from_secs(120))
                    .await;
                assert_eq!(run["status"], "completed", "{run}");
            }
        })
        .await;

    let requests = llm.requests();
    let mut calls: HashMap<String, usize> = HashMap::new();
    let mut by_instance: HashMap<String, usize> = HashMap::new();
    for r in &requests {
        *calls
            .entry(r["model"].as_str().unwrap().to_string())
            .or_default() += 1;
        let path = r["_path"].as_str().unwrap();
        *by_instance.entry(path[1..2].to_string()).or_default() += 1;
    }
    let turns = |i: usize| if has_tool(i) { 2 } else { 1 };
    let checks = futures::stream::iter(created.iter())
        .map(|(i, tid, rid)| {
            let api = apis[(i + 1) % 2].clone();
            let calls = calls.get(&format!("m-{i}")).copied().unwrap_or(0);
            async move {
                assert_eq!(calls, turns(*i), "run {i}: model calls");
                let state = check_run(&api, tid, rid).await;
                assert_eq!(state.answers(), vec![format!("answer {i}")], "run {i}");
                assert_eq!(state.steps.len(), turns(*i), "run {i}: {:?}", state.steps);
                let thread = api.list_all(&format!("/threads/{tid}/messages")).await;
                assert_eq!(thread.len(), 2, "run {i}: {thread:?}");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>();
    checks.await;
    let total: usize = (0..RUNS).map(turns).sum();
    assert_eq!(requests.len(), total);
    assert!(
        by_instance.get("a").copied().unwrap_or(0) > 0
            && by_instance.get("b").copied().unwrap_or(0) > 0,
        "both instances took turns: {by_instance:?}"
    );
    for server in &mut servers {
        server.stop();
    }
}
