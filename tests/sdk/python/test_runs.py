"""Conformance tests for runs and run steps, driven by the official `openai` Python SDK the way
applications use it (poll helpers, function-calling loop, pagination). Every test runs on both
storage backends and on the server as an Azure Functions custom handler (behind the host
emulator; runs advance only through its queue-trigger deliveries) and through a proxy server in
front of a stored one; the "model" is the (stored) server's stand-in, scripted per test (`llm`
fixture, see conftest.py), and what reached it is checked through its request log."""

from __future__ import annotations

import json
import time

import openai
import pytest

from conftest import StorageConfig
from run_helpers import (
    FINAL,
    INSTRUCTIONS,
    call,
    chat_history,
    fail_500,
    make_assistant,
    make_thread,
    message_text,
    system_prompt,
    wait_for_run,
)

pytestmark = pytest.mark.backends("local", "azure", "functions", "proxy")


def assert_usage(usage, expected: dict | None = None):
    assert usage is not None, "usage is null on a finished run/step"
    assert usage.prompt_tokens >= 0 and usage.completion_tokens >= 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    if expected is not None:
        assert usage.model_dump() == expected


def assert_recent(ts):
    assert isinstance(ts, int), f"timestamp {ts!r} is not an integer"
    assert abs(ts - time.time()) < 300, f"timestamp {ts} is not unix seconds of now"


# --------------------------------------------------------------------------------------------
# Text answers


def test_create_and_poll_answers_in_the_thread_with_usage_and_a_step(client, llm):
    usage = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
    llm.script({"text": "Six times seven is 42.", "usage": usage})
    a = make_assistant(client, llm)
    t = make_thread(client, "What is six times seven?")

    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)

    assert run.status == "completed", run.model_dump()
    assert run.object == "thread.run"
    assert run.id.startswith("run_")
    assert run.thread_id == t.id
    assert run.assistant_id == a.id
    assert run.model == llm.model
    assert run.instructions == INSTRUCTIONS
    assert [tool.function.name for tool in run.tools] == ["get_weather", "get_time"]
    assert run.last_error is None
    assert run.required_action is None
    assert run.incomplete_details is None
    for ts in (run.created_at, run.started_at, run.completed_at):
        assert_recent(ts)
    assert run.created_at <= run.started_at <= run.completed_at
    assert run.failed_at is None and run.cancelled_at is None
    assert_usage(run.usage, usage)

    msgs = client.beta.threads.messages.list(thread_id=t.id).data  # newest first
    assert [m.role for m in msgs] == ["assistant", "user"]
    answer = msgs[0]
    assert message_text(answer) == "Six times seven is 42."
    assert answer.run_id == run.id
    assert answer.assistant_id == a.id
    assert answer.status == "completed"
    assert msgs[1].run_id is None
    assert [m.id for m in client.beta.threads.messages.list(thread_id=t.id, run_id=run.id)] == [
        answer.id
    ]

    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id).data
    assert len(steps) == 1, [s.model_dump() for s in steps]
    step = steps[0]
    assert step.object == "thread.run.step"
    assert step.id.startswith("step_")
    assert step.type == "message_creation"
    assert step.status == "completed"
    assert step.run_id == run.id and step.thread_id == t.id and step.assistant_id == a.id
    assert step.step_details.type == "message_creation"
    assert step.step_details.message_creation.message_id == answer.id
    assert_recent(step.completed_at)
    assert_usage(step.usage)
    got = client.beta.threads.runs.steps.retrieve(step.id, thread_id=t.id, run_id=run.id)
    assert got.model_dump() == step.model_dump()

    # The stored run reads back as the poll helper returned it.
    assert client.beta.threads.runs.retrieve(run.id, thread_id=t.id).model_dump() == run.model_dump()
    assert len(llm.requests()) == 1


def test_instructions_additional_instructions_and_history_reach_the_model(client, llm):
    llm.script({"text": "first answer"}, {"text": "second answer"})
    a = make_assistant(client, llm, instructions="ASSISTANT-INSTRUCTIONS")
    t = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "m1"},
            {"role": "assistant", "content": "m2"},
            {"role": "user", "content": "m3"},
        ]
    )
    client.beta.threads.messages.create(thread_id=t.id, role="user", content="m4")
    client.beta.threads.messages.create(thread_id=t.id, role="user", content="m5")

    run1 = client.beta.threads.runs.create_and_poll(
        thread_id=t.id,
        assistant_id=a.id,
        additional_instructions="ADDITIONAL-INSTRUCTIONS",
        additional_messages=[{"role": "user", "content": "m6"}],
    )
    assert run1.status == "completed", run1.model_dump()
    assert run1.instructions.startswith("ASSISTANT-INSTRUCTIONS"), run1.instructions

    # A second run on the same thread sees the first run's answer; `instructions` replaces the
    # assistant's.
    client.beta.threads.messages.create(thread_id=t.id, role="user", content="m7")
    run2 = client.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=a.id, instructions="RUN-INSTRUCTIONS"
    )
    assert run2.status == "completed", run2.model_dump()
    assert run2.instructions == "RUN-INSTRUCTIONS"

    reqs = llm.requests()
    assert len(reqs) == 2
    first, second = reqs
    assert first["model"] == llm.model
    assert first["messages"][0]["role"] in ("system", "developer"), first["messages"][0]
    sys1 = system_prompt(first)
    assert "ASSISTANT-INSTRUCTIONS" in sys1 and "ADDITIONAL-INSTRUCTIONS" in sys1, sys1
    assert sys1.index("ASSISTANT-INSTRUCTIONS") < sys1.index("ADDITIONAL-INSTRUCTIONS"), sys1
    assert chat_history(first) == [
        ("user", "m1"),
        ("assistant", "m2"),
        ("user", "m3"),
        ("user", "m4"),
        ("user", "m5"),
        ("user", "m6"),
    ]
    # The function tools went along.
    assert [tool["function"]["name"] for tool in first["tools"]] == ["get_weather", "get_time"]
    assert first["tools"][0]["function"]["parameters"]["required"] == ["city"]

    sys2 = system_prompt(second)
    assert "RUN-INSTRUCTIONS" in sys2, sys2
    assert "ASSISTANT-INSTRUCTIONS" not in sys2, sys2
    assert "ADDITIONAL-INSTRUCTIONS" not in sys2, "additional_instructions leaked into a later run"
    assert chat_history(second) == [
        ("user", "m1"),
        ("assistant", "m2"),
        ("user", "m3"),
        ("user", "m4"),
        ("user", "m5"),
        ("user", "m6"),
        ("assistant", "first answer"),
        ("user", "m7"),
    ]
    assert second["received_us"] > first["received_us"]

    # The thread holds the same history (newest first by default).
    texts = [message_text(m) for m in client.beta.threads.messages.list(thread_id=t.id, order="asc")]
    assert texts == ["m1", "m2", "m3", "m4", "m5", "m6", "first answer", "m7", "second answer"]


def test_create_thread_and_run_poll(client, llm):
    llm.script({"text": "hello from a new thread"})
    a = make_assistant(client, llm)
    run = client.beta.threads.create_and_run_poll(
        assistant_id=a.id,
        thread={"messages": [{"role": "user", "content": "hi"}], "metadata": {"k": "v"}},
        metadata={"run": "meta"},
    )
    assert run.status == "completed", run.model_dump()
    assert run.thread_id.startswith("thread_")
    assert run.metadata == {"run": "meta"}
    assert_usage(run.usage)
    thread = client.beta.threads.retrieve(run.thread_id)
    assert thread.metadata == {"k": "v"}
    msgs = client.beta.threads.messages.list(thread_id=run.thread_id, order="asc").data
    assert [(m.role, message_text(m)) for m in msgs] == [
        ("user", "hi"),
        ("assistant", "hello from a new thread"),
    ]
    assert msgs[1].run_id == run.id
    (req,) = llm.requests()
    assert chat_history(req) == [("user", "hi")]


# --------------------------------------------------------------------------------------------
# Function calling


def test_function_calling_loop_with_parallel_calls(client, llm):
    llm.script(
        # Round 1: two calls at once.
        {
            "tool_calls": [
                call("get_weather", {"city": "Paris"}),
                call("get_time", {"city": "Paris"}),
            ]
        },
        # Round 2: one more call after seeing the outputs.
        {"tool_calls": [call("get_weather", {"city": "Rome"})]},
        {"text": "Paris: sunny at noon; Rome: rainy."},
    )
    a = make_assistant(client, llm)
    t = make_thread(client, "Weather and time in Paris, then weather in Rome?")

    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "requires_action", run.model_dump()
    assert run.required_action.type == "submit_tool_outputs"
    calls1 = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.type, c.function.name, json.loads(c.function.arguments)) for c in calls1] == [
        ("function", "get_weather", {"city": "Paris"}),
        ("function", "get_time", {"city": "Paris"}),
    ]
    assert len({c.id for c in calls1}) == 2 and all(c.id for c in calls1)
    assert run.completed_at is None and run.last_error is None
    assert abs(run.expires_at - (run.created_at + 600)) <= 1, (run.created_at, run.expires_at)

    # The pending tool step: in progress, calls without outputs.
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id).data
    assert len(steps) == 1
    assert steps[0].type == "tool_calls" and steps[0].status == "in_progress"
    pending = steps[0].step_details.tool_calls
    assert [(c.id, c.function.name, c.function.output) for c in pending] == [
        (c.id, c.function.name, None) for c in calls1
    ]

    outputs1 = {"get_weather": "sunny", "get_time": "12:00"}
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=t.id,
        tool_outputs=[
            {"tool_call_id": c.id, "output": outputs1[c.function.name]} for c in calls1
        ],
    )
    assert run.status == "requires_action", run.model_dump()
    calls2 = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls2] == [
        ("get_weather", {"city": "Rome"})
    ]
    assert calls2[0].id not in {c.id for c in calls1}

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=t.id,
        tool_outputs=[{"tool_call_id": calls2[0].id, "output": "rainy"}],
    )
    assert run.status == "completed", run.model_dump()
    assert run.required_action is None
    assert_usage(run.usage)

    msgs = client.beta.threads.messages.list(thread_id=t.id).data
    assert message_text(msgs[0]) == "Paris: sunny at noon; Rome: rainy."
    assert msgs[0].run_id == run.id

    # Steps: two tool rounds, then the message, each completed; outputs recorded.
    steps = list(client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id, order="asc"))
    assert [(s.type, s.status) for s in steps] == [
        ("tool_calls", "completed"),
        ("tool_calls", "completed"),
        ("message_creation", "completed"),
    ]
    assert [(c.id, c.function.name, c.function.output) for c in steps[0].step_details.tool_calls] == [
        (calls1[0].id, "get_weather", "sunny"),
        (calls1[1].id, "get_time", "12:00"),
    ]
    assert [(c.id, c.function.output) for c in steps[1].step_details.tool_calls] == [
        (calls2[0].id, "rainy")
    ]
    assert steps[2].step_details.message_creation.message_id == msgs[0].id

    # What the model saw: the calls it made, then the outputs, matched by call id.
    reqs = llm.requests()
    assert len(reqs) == 3
    assert chat_history(reqs[0]) == [("user", "Weather and time in Paris, then weather in Rome?")]
    tail1 = reqs[1]["messages"][-3:]
    assert tail1[0]["role"] == "assistant"
    assert [
        (tc["id"], tc["type"], tc["function"]["name"], json.loads(tc["function"]["arguments"]))
        for tc in tail1[0]["tool_calls"]
    ] == [
        (calls1[0].id, "function", "get_weather", {"city": "Paris"}),
        (calls1[1].id, "function", "get_time", {"city": "Paris"}),
    ]
    assert [(m["role"], m["tool_call_id"], m["content"]) for m in tail1[1:]] == [
        ("tool", calls1[0].id, "sunny"),
        ("tool", calls1[1].id, "12:00"),
    ]
    # The third request has both rounds, in order.
    roles = [m["role"] for m in reqs[2]["messages"] if m["role"] != "system"]
    assert roles == ["user", "assistant", "tool", "tool", "assistant", "tool"]
    last = reqs[2]["messages"][-2:]
    assert [tc["id"] for tc in last[0]["tool_calls"]] == [calls2[0].id]
    assert (last[1]["role"], last[1]["tool_call_id"], last[1]["content"]) == (
        "tool",
        calls2[0].id,
        "rainy",
    )


def test_submit_tool_outputs_must_answer_every_pending_call(client, llm):
    llm.script(
        {"tool_calls": [call("get_weather", {"city": "A"}), call("get_weather", {"city": "B"})]},
        {"text": "done"},
    )
    a = make_assistant(client, llm)
    t = make_thread(client, "two cities")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "requires_action", run.model_dump()
    calls = run.required_action.submit_tool_outputs.tool_calls
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id,
            thread_id=t.id,
            tool_outputs=[{"tool_call_id": calls[0].id, "output": "x"}],
        )
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id,
            thread_id=t.id,
            tool_outputs=[{"tool_call_id": "call_unknown", "output": "x"}]
            + [{"tool_call_id": c.id, "output": "x"} for c in calls],
        )
    # Still waiting, and a full answer goes through.
    assert client.beta.threads.runs.retrieve(run.id, thread_id=t.id).status == "requires_action"
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=t.id,
        tool_outputs=[{"tool_call_id": c.id, "output": "x"} for c in calls],
    )
    assert run.status == "completed", run.model_dump()
    # A finished run takes no more outputs.
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id,
            thread_id=t.id,
            tool_outputs=[{"tool_call_id": c.id, "output": "x"} for c in calls],
        )


def test_cancel_during_requires_action(client, llm):
    llm.script({"tool_calls": [call("get_weather", {"city": "Oslo"})]}, {"text": "after cancel"})
    a = make_assistant(client, llm)
    t = make_thread(client, "weather in Oslo")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "requires_action", run.model_dump()

    cancelled = client.beta.threads.runs.cancel(run_id=run.id, thread_id=t.id)
    assert cancelled.id == run.id
    assert cancelled.status in ("cancelling", "cancelled"), cancelled.model_dump()
    final = wait_for_run(client, t.id, run.id)
    assert final.status == "cancelled", final.model_dump()
    assert_recent(final.cancelled_at)
    assert final.required_action is None
    assert final.completed_at is None and final.failed_at is None

    (step,) = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id).data
    assert step.type == "tool_calls"
    assert step.status == "cancelled", step.model_dump()
    assert_recent(step.cancelled_at)

    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id,
            thread_id=t.id,
            tool_outputs=[
                {"tool_call_id": run.required_action.submit_tool_outputs.tool_calls[0].id, "output": "x"}
            ],
        )
    # The thread is free again.
    nxt = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert nxt.status == "completed", nxt.model_dump()
    assert len(llm.requests()) == 2


def test_a_second_active_run_on_a_thread_is_rejected(client, llm):
    llm.script({"tool_calls": [call("get_time", {"city": "Lima"})]}, {"text": "ok"})
    a = make_assistant(client, llm)
    t = make_thread(client, "time in Lima")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "requires_action", run.model_dump()

    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    assert run.id in err.value.message, err.value.message
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.messages.create(thread_id=t.id, role="user", content="more")
    # Only the first run exists; no model call was made for the rejected one.
    assert [r.id for r in client.beta.threads.runs.list(thread_id=t.id)] == [run.id]

    tc = run.required_action.submit_tool_outputs.tool_calls[0]
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=t.id, tool_outputs=[{"tool_call_id": tc.id, "output": "9am"}]
    )
    assert done.status == "completed", done.model_dump()
    assert len(llm.requests()) == 2


# --------------------------------------------------------------------------------------------
# Listing


def test_list_runs_paginates(client, llm):
    a = make_assistant(client, llm)
    t = make_thread(client, "hi")
    ids = []
    for i in range(3):
        llm.script({"text": f"answer {i}"})
        r = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
        assert r.status == "completed", r.model_dump()
        ids.append(r.id)

    page = client.beta.threads.runs.list(thread_id=t.id, limit=1)
    assert [r.id for r in page.data] == [ids[2]]
    assert page.has_more is True
    assert (page.model_extra or {}).get("first_id") == ids[2]
    assert (page.model_extra or {}).get("last_id") == ids[2]
    nxt = page.get_next_page()
    assert [r.id for r in nxt.data] == [ids[1]]

    assert [r.id for r in client.beta.threads.runs.list(thread_id=t.id, limit=1)] == ids[::-1]
    assert [r.id for r in client.beta.threads.runs.list(thread_id=t.id, limit=1, order="asc")] == ids
    last = client.beta.threads.runs.list(thread_id=t.id, limit=1, order="asc", after=ids[1])
    assert [r.id for r in last.data] == [ids[2]] and last.has_more is False
    listed = client.beta.threads.runs.list(thread_id=t.id).data
    assert [r.model_dump() for r in listed] == [
        client.beta.threads.runs.retrieve(i, thread_id=t.id).model_dump() for i in ids[::-1]
    ]


def test_list_run_steps_paginates(client, llm):
    llm.script(
        {"tool_calls": [call("get_weather", {"city": "X"})]},
        {"tool_calls": [call("get_time", {"city": "X"})]},
        {"text": "all done"},
    )
    a = make_assistant(client, llm)
    t = make_thread(client, "steps")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    for _ in range(2):
        assert run.status == "requires_action", run.model_dump()
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id,
            thread_id=t.id,
            tool_outputs=[
                {"tool_call_id": c.id, "output": "ok"}
                for c in run.required_action.submit_tool_outputs.tool_calls
            ],
        )
    assert run.status == "completed", run.model_dump()

    asc = list(client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id, order="asc"))
    assert [s.type for s in asc] == ["tool_calls", "tool_calls", "message_creation"]
    assert [s.step_details.tool_calls[0].function.name for s in asc[:2]] == ["get_weather", "get_time"]
    ids = [s.id for s in asc]
    assert len(set(ids)) == 3

    page = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id, limit=1)
    assert [s.id for s in page.data] == [ids[2]] and page.has_more is True
    auto_desc = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id, limit=1)
    assert [s.id for s in auto_desc] == ids[::-1]
    auto_asc = client.beta.threads.runs.steps.list(
        run_id=run.id, thread_id=t.id, limit=1, order="asc"
    )
    assert [s.id for s in auto_asc] == ids
    tail = client.beta.threads.runs.steps.list(
        run_id=run.id, thread_id=t.id, limit=2, order="asc", after=ids[0]
    )
    assert [s.id for s in tail.data] == ids[1:] and tail.has_more is False


# --------------------------------------------------------------------------------------------
# Failures


@pytest.mark.parametrize(
    "script, code, model_calls",
    [
        pytest.param(fail_500(3), "server_error", 3, id="500x3-server_error"),
        pytest.param(
            [{"error": {"status": 400, "message": "bad prompt"}}], "invalid_prompt", 1, id="400-invalid_prompt"
        ),
        pytest.param(
            [{"error": {"status": 429, "message": "slow down", "retry_after": 0}}] * 3,
            "rate_limit_exceeded",
            3,
            id="429x3-rate_limit_exceeded",
        ),
    ],
)
def test_model_failures_fail_the_run_with_the_right_code(client, llm, script, code, model_calls):
    llm.script(*script)
    a = make_assistant(client, llm)
    t = make_thread(client, "this will fail")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "failed", run.model_dump()
    assert run.last_error is not None
    assert run.last_error.code == code, run.last_error
    assert isinstance(run.last_error.message, str) and run.last_error.message
    assert_recent(run.failed_at)
    assert run.completed_at is None and run.cancelled_at is None
    assert len(llm.requests()) == model_calls
    # No answer was added; a failed run frees the thread.
    assert [m.role for m in client.beta.threads.messages.list(thread_id=t.id)] == ["user"]
    for step in client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id):
        assert step.status in ("failed", "cancelled"), step.model_dump()
    llm.script({"text": "recovered"})
    again = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert again.status == "completed", again.model_dump()


def test_transient_model_errors_are_retried(client, llm):
    llm.script(*fail_500(2), {"text": "third time lucky"})
    a = make_assistant(client, llm)
    t = make_thread(client, "flaky")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed", run.model_dump()
    assert run.last_error is None
    assert message_text(client.beta.threads.messages.list(thread_id=t.id).data[0]) == "third time lucky"
    assert len(llm.requests()) == 3


def test_length_finish_reason_makes_the_run_incomplete(client, llm):
    llm.script({"text": "This answer was cut", "finish_reason": "length"})
    a = make_assistant(client, llm)
    t = make_thread(client, "long answer please")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "incomplete", run.model_dump()
    assert run.incomplete_details is not None
    assert run.incomplete_details.reason == "max_completion_tokens"
    assert run.last_error is None
    assert_usage(run.usage)
    msg = client.beta.threads.messages.list(thread_id=t.id).data[0]
    assert msg.role == "assistant" and msg.run_id == run.id
    assert message_text(msg) == "This answer was cut"
    assert msg.status == "incomplete", msg.model_dump()
    # The thread is free again.
    llm.script({"text": "short"})
    assert client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id).status == "completed"


# --------------------------------------------------------------------------------------------
# Expiry


def test_requires_action_run_expires(server, spawn_server, tmp_path):
    """A server with RUN_EXPIRY_SECONDS=1: a run left waiting for outputs becomes `expired`."""
    srv = spawn_server(StorageConfig.fresh(server.backend, tmp_path), env={"RUN_EXPIRY_SECONDS": "1"})
    client = srv.client()
    llm = srv.standin.model()
    llm.script({"tool_calls": [call("get_weather", {"city": "Nuuk"})]}, {"text": "afterwards"})
    a = make_assistant(client, llm)
    t = make_thread(client, "weather in Nuuk")
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    assert run.expires_at is not None and 0 < run.expires_at - run.created_at <= 2, run.model_dump()

    final = wait_for_run(client, t.id, run.id, until=FINAL, timeout=20)
    assert final.status == "expired", final.model_dump()
    assert final.required_action is None
    assert final.completed_at is None and final.failed_at is None
    # It did wait for outputs first: a tool step, now expired.
    (step,) = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id).data
    assert step.type == "tool_calls"
    assert step.status == "expired", step.model_dump()
    assert step.expired_at is not None and step.expired_at >= run.expires_at

    call_id = step.step_details.tool_calls[0].id
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id, thread_id=t.id, tool_outputs=[{"tool_call_id": call_id, "output": "x"}]
        )
    # The thread is free again.
    nxt = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert nxt.status == "completed", nxt.model_dump()
    assert len(llm.requests()) == 2


# --------------------------------------------------------------------------------------------
# More of the run surface


def test_run_usage_adds_up_the_model_calls_and_steps_carry_their_own(client, llm):
    u1 = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
    u2 = {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23}
    llm.script(
        {"tool_calls": [call("get_weather", {"city": "Kyiv"})], "usage": u1},
        {"text": "warm", "usage": u2},
    )
    a = make_assistant(client, llm)
    t = make_thread(client, "weather in Kyiv")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "requires_action", run.model_dump()
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=t.id,
        tool_outputs=[
            {"tool_call_id": run.required_action.submit_tool_outputs.tool_calls[0].id, "output": "20C"}
        ],
    )
    assert run.status == "completed", run.model_dump()
    assert_usage(run.usage, {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35})
    steps = list(client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id, order="asc"))
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert_usage(steps[0].usage, u1)
    assert_usage(steps[1].usage, u2)


def test_run_overrides_reach_the_model(client, llm, standin):
    other = standin.model()
    other.script({"text": "from the override model"})
    a = make_assistant(client, llm)
    t = client.beta.threads.create(
        messages=[{"role": "user", "content": f"old {i}"} for i in range(4)]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=t.id,
        assistant_id=a.id,
        model=other.model,
        tools=[a.tools[1].model_dump(exclude_none=True)],  # get_time only
        temperature=0.25,
        top_p=0.5,
        parallel_tool_calls=False,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        response_format={"type": "json_object"},
        max_completion_tokens=500,
        truncation_strategy={"type": "last_messages", "last_messages": 2},
        metadata={"purpose": "overrides"},
    )
    assert run.status == "completed", run.model_dump()
    assert run.model == other.model
    assert [tool.function.name for tool in run.tools] == ["get_time"]
    assert run.temperature == pytest.approx(0.25) and run.top_p == pytest.approx(0.5)
    assert run.parallel_tool_calls is False
    assert run.max_completion_tokens == 500
    assert run.truncation_strategy.type == "last_messages"
    assert run.truncation_strategy.last_messages == 2
    assert run.metadata == {"purpose": "overrides"}
    assert llm.requests() == []
    (req,) = other.requests()
    assert req["model"] == other.model
    assert [tool["function"]["name"] for tool in req["tools"]] == ["get_time"]
    assert req["temperature"] == pytest.approx(0.25) and req["top_p"] == pytest.approx(0.5)
    assert req["parallel_tool_calls"] is False
    assert req["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert req["response_format"] == {"type": "json_object"}
    assert 0 < req.get("max_completion_tokens", req.get("max_tokens", 0)) <= 500
    assert chat_history(req) == [("user", "old 2"), ("user", "old 3")]


def test_modify_run_metadata(client, llm):
    llm.script({"text": "ok"})
    a = make_assistant(client, llm)
    t = make_thread(client, "hi")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, metadata={"a": "1"})
    updated = client.beta.threads.runs.update(run.id, thread_id=t.id, metadata={"a": "2", "b": "3"})
    assert updated.id == run.id and updated.metadata == {"a": "2", "b": "3"}
    assert updated.status == "completed"
    assert client.beta.threads.runs.retrieve(run.id, thread_id=t.id).metadata == {"a": "2", "b": "3"}


def test_cancel_while_the_model_is_answering(client, llm):
    llm.script({"text": "one two three four five six", "chunk_delay_ms": 300}, {"text": "next"})
    a = make_assistant(client, llm)
    t = make_thread(client, "slowly")
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    # Wait until the model has been asked, then cancel mid-answer.
    deadline = time.monotonic() + 10
    while not llm.requests():
        assert time.monotonic() < deadline, "the model was never called"
        time.sleep(0.05)
    cancelled = client.beta.threads.runs.cancel(run_id=run.id, thread_id=t.id)
    assert cancelled.status in ("cancelling", "cancelled"), cancelled.model_dump()
    final = wait_for_run(client, t.id, run.id)
    assert final.status == "cancelled", final.model_dump()
    assert_recent(final.cancelled_at)
    assert final.completed_at is None
    # No late answer lands in the thread; the thread is free again.
    assert [m.role for m in client.beta.threads.messages.list(thread_id=t.id)] == ["user"]
    nxt = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert nxt.status == "completed", nxt.model_dump()
