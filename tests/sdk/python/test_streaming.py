"""Conformance tests for streamed runs (SSE), driven by the official `openai` Python SDK's
streaming helpers (`runs.stream`, `submit_tool_outputs_stream`, `create_and_run_stream`) with an
`AssistantEventHandler`, as applications use them. Every test runs on both storage backends and
on the server as an Azure Functions custom handler (behind the host emulator) and through a proxy
server in front of a stored one (events relayed as they arrive); the model is the
server's stand-in (see conftest.py)."""

from __future__ import annotations

import json
import time

from typing_extensions import override

import openai
import pytest
from openai import AssistantEventHandler

from run_helpers import (
    FINAL,
    call,
    fail_500,
    make_assistant,
    make_thread,
    message_text,
    wait_for_run,
)

pytestmark = pytest.mark.backends("local", "azure", "functions", "proxy")

# The canonical event sequence of a text answer (protocol doc §8), with the message deltas
# collapsed into one entry.
DELTA = "thread.message.delta"
TEXT_ANSWER = [
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
    DELTA,
    "thread.message.completed",
    "thread.run.step.completed",
    "thread.run.completed",
]
RUN_START = ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]


class Recorder(AssistantEventHandler):
    """Keeps every event with its arrival time, the text deltas, and the callbacks seen."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list = []  # (name, data, time.time() at arrival)
        self.text_deltas_seen: list[str] = []
        self.exceptions: list[Exception] = []
        self.tool_calls_done: list = []
        self.messages_done: list = []
        self.ended = False

    @override
    def on_event(self, event) -> None:
        # A copy: the SDK accumulates later deltas into the `thread.message.created` object.
        data = event.data.model_copy(deep=True) if hasattr(event.data, "model_copy") else event.data
        self.events.append((event.event, data, time.time()))

    @override
    def on_text_delta(self, delta, snapshot) -> None:
        self.text_deltas_seen.append(delta.value or "")

    @override
    def on_tool_call_done(self, tool_call) -> None:
        self.tool_calls_done.append(tool_call)

    @override
    def on_message_done(self, message) -> None:
        self.messages_done.append(message)

    @override
    def on_exception(self, exception: Exception) -> None:
        self.exceptions.append(exception)

    @override
    def on_end(self) -> None:
        self.ended = True

    def names(self) -> list[str]:
        return [name for name, _, _ in self.events]

    def collapsed(self) -> list[str]:
        """Event names with each run of message deltas (and of step deltas) shown once."""
        out: list[str] = []
        for name in self.names():
            if name in (DELTA, "thread.run.step.delta") and out and out[-1] == name:
                continue
            out.append(name)
        return out

    def first(self, name: str):
        for n, data, _ in self.events:
            if n == name:
                return data
        raise AssertionError(f"no {name} event in {self.names()}")

    def all(self, name: str) -> list:
        return [data for n, data, _ in self.events if n == name]


def assert_clean(handler: Recorder) -> None:
    assert handler.exceptions == [], handler.exceptions
    assert handler.ended
    assert "error" not in handler.names(), handler.names()
    # The SDK maps unknown/garbled events to `event=None`; none may appear.
    assert None not in handler.names(), handler.names()


def assert_text_answer_payloads(h: Recorder, run_id: str, thread_id: str, text: str) -> None:
    """Checks the payloads of a text answer's events (after the run-start events)."""
    step = h.first("thread.run.step.created")
    assert step.object == "thread.run.step"
    assert step.type == "message_creation" and step.status == "in_progress"
    assert step.run_id == run_id and step.thread_id == thread_id
    msg_id = step.step_details.message_creation.message_id
    assert msg_id and msg_id.startswith("msg_")

    created = h.first("thread.message.created")
    assert created.id == msg_id
    assert created.status == "in_progress"
    assert created.content == []
    assert created.role == "assistant" and created.run_id == run_id
    assert h.first("thread.message.in_progress").id == msg_id

    deltas = h.all(DELTA)
    assert deltas, "no message deltas"
    for d in deltas:
        assert d.id == msg_id and d.object == "thread.message.delta"
        for part in d.delta.content or []:
            assert part.index == 0 and part.type == "text"
    assert "".join(h.text_deltas_seen) == text

    done = h.first("thread.message.completed")
    assert done.id == msg_id and done.status == "completed"
    assert message_text(done) == text
    assert isinstance(done.completed_at, int)

    # (after tool outputs the stream also completes the tool-calls step; pick the message step)
    (step_done,) = [s for s in h.all("thread.run.step.completed") if s.id == step.id]
    assert step_done.status == "completed"
    assert step_done.step_details.message_creation.message_id == msg_id
    assert step_done.usage is not None and step_done.usage.total_tokens > 0

    run_done = h.first("thread.run.completed")
    assert run_done.id == run_id and run_done.status == "completed"
    assert run_done.usage is not None and run_done.usage.total_tokens > 0
    assert run_done.completed_at is not None


def test_text_answer_streams_the_canonical_event_sequence(client, llm):
    text = "Streaming works fine today"
    llm.script({"text": text})
    a = make_assistant(client, llm)
    t = make_thread(client, "Does streaming work?")

    with client.beta.threads.runs.stream(
        thread_id=t.id, assistant_id=a.id, event_handler=Recorder()
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
        messages = stream.get_final_messages()
    h = stream
    assert_clean(h)
    assert h.collapsed() == RUN_START + TEXT_ANSWER, h.names()

    run_id = h.first("thread.run.created").id
    for name in RUN_START:
        data = h.first(name)
        assert data.id == run_id and data.thread_id == t.id and data.assistant_id == a.id
    assert h.first("thread.run.created").status == "queued"
    assert h.first("thread.run.queued").status == "queued"
    assert h.first("thread.run.in_progress").status == "in_progress"
    assert_text_answer_payloads(h, run_id, t.id, text)

    assert final.id == run_id and final.status == "completed"
    assert [m.id for m in messages] == [h.first("thread.message.created").id]
    assert [message_text(m) for m in h.messages_done] == [text]

    # What was streamed is what was stored.
    stored = client.beta.threads.messages.list(thread_id=t.id).data[0]
    assert stored.id == messages[0].id
    assert message_text(stored) == "".join(h.text_deltas_seen) == text
    stored_run = client.beta.threads.runs.retrieve(run_id, thread_id=t.id)
    assert stored_run.status == "completed"
    assert stored_run.usage == h.first("thread.run.completed").usage


def test_function_call_stream_then_submit_tool_outputs_stream(client, llm):
    llm.script(
        {
            "tool_calls": [
                call("get_weather", {"city": "Paris"}),
                call("get_time", {"city": "Tokyo"}),
            ]
        },
        {"text": "Sunny in Paris, 9pm in Tokyo."},
    )
    a = make_assistant(client, llm)
    t = make_thread(client, "Weather in Paris and time in Tokyo?")

    with client.beta.threads.runs.stream(
        thread_id=t.id, assistant_id=a.id, event_handler=Recorder()
    ) as h1:
        h1.until_done()
    assert_clean(h1)
    assert h1.collapsed() == RUN_START + [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.delta",
        "thread.run.requires_action",
    ], h1.names()
    step = h1.first("thread.run.step.created")
    assert step.type == "tool_calls" and step.status == "in_progress"
    assert step.step_details.type == "tool_calls" and step.step_details.tool_calls == []

    run = h1.get_final_run()
    assert run.status == "requires_action", run.model_dump()
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"city": "Tokyo"}),
    ]
    assert run.usage is not None, "requires_action run carries usage (protocol doc §8)"
    # The SDK's accumulated step (from the deltas) matches the required action.
    (snapshot,) = h1.get_final_run_steps()
    assert [
        (c.id, c.function.name, json.loads(c.function.arguments))
        for c in snapshot.step_details.tool_calls
    ] == [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls]
    assert [c.id for c in h1.tool_calls_done] == [c.id for c in calls]

    outputs = {"get_weather": "sunny", "get_time": "21:00"}
    with client.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run.id,
        thread_id=t.id,
        tool_outputs=[{"tool_call_id": c.id, "output": outputs[c.function.name]} for c in calls],
        event_handler=Recorder(),
    ) as h2:
        h2.until_done()
    assert_clean(h2)
    assert h2.collapsed() == [
        "thread.run.step.completed",
        "thread.run.queued",
        "thread.run.in_progress",
    ] + TEXT_ANSWER, h2.names()
    tool_step = h2.events[0][1]
    assert tool_step.id == step.id and tool_step.status == "completed"
    assert [(c.id, c.function.output) for c in tool_step.step_details.tool_calls] == [
        (c.id, outputs[c.function.name]) for c in calls
    ]
    assert_text_answer_payloads(h2, run.id, t.id, "Sunny in Paris, 9pm in Tokyo.")
    assert h2.get_final_run().status == "completed"

    reqs = llm.requests()
    assert len(reqs) == 2
    assert [(m["role"], m.get("tool_call_id"), m["content"]) for m in reqs[1]["messages"][-2:]] == [
        ("tool", calls[0].id, "sunny"),
        ("tool", calls[1].id, "21:00"),
    ]


def test_create_and_run_stream_starts_with_thread_created(client, llm):
    text = "Hello in a fresh thread"
    llm.script({"text": text})
    a = make_assistant(client, llm)
    with client.beta.threads.create_and_run_stream(
        assistant_id=a.id,
        thread={"messages": [{"role": "user", "content": "start"}]},
        event_handler=Recorder(),
    ) as h:
        h.until_done()
    assert_clean(h)
    assert h.collapsed() == ["thread.created"] + RUN_START + TEXT_ANSWER, h.names()
    thread = h.first("thread.created")
    assert thread.object == "thread" and thread.id.startswith("thread_")
    run_id = h.first("thread.run.created").id
    assert h.first("thread.run.created").thread_id == thread.id
    assert_text_answer_payloads(h, run_id, thread.id, text)
    msgs = client.beta.threads.messages.list(thread_id=thread.id, order="asc").data
    assert [(m.role, message_text(m)) for m in msgs] == [("user", "start"), ("assistant", text)]


def test_failing_model_streams_run_failed(client, llm):
    llm.script(*fail_500(3))
    a = make_assistant(client, llm)
    t = make_thread(client, "fail please")
    with client.beta.threads.runs.stream(
        thread_id=t.id, assistant_id=a.id, event_handler=Recorder()
    ) as h:
        h.until_done()
    assert_clean(h)
    names = h.names()
    assert names[:3] == RUN_START, names
    assert names[-1] == "thread.run.failed", names
    assert names.count("thread.run.failed") == 1
    assert "thread.run.completed" not in names
    failed = h.first("thread.run.failed")
    assert failed.status == "failed"
    assert failed.last_error is not None and failed.last_error.code == "server_error"
    assert failed.failed_at is not None
    # Anything opened along the way was closed.
    opened_steps = {s.id for s in h.all("thread.run.step.created")}
    closed_steps = {
        s.id
        for n in ("thread.run.step.completed", "thread.run.step.failed", "thread.run.step.cancelled")
        for s in h.all(n)
    }
    assert opened_steps <= closed_steps, names
    opened_msgs = {m.id for m in h.all("thread.message.created")}
    closed_msgs = {
        m.id for n in ("thread.message.completed", "thread.message.incomplete") for m in h.all(n)
    }
    assert opened_msgs <= closed_msgs, names
    assert h.get_final_run().status == "failed"
    stored = client.beta.threads.runs.retrieve(failed.id, thread_id=t.id)
    assert stored.status == "failed" and stored.last_error.code == "server_error"
    assert len(llm.requests()) == 3


def test_message_deltas_arrive_while_the_model_is_still_answering(client, llm):
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
    delay_s = 0.3
    text = " ".join(words)
    llm.script({"text": text, "chunk_delay_ms": int(delay_s * 1000)})
    a = make_assistant(client, llm)
    t = make_thread(client, "count slowly")
    with client.beta.threads.runs.stream(
        thread_id=t.id, assistant_id=a.id, event_handler=Recorder()
    ) as h:
        h.until_done()
    assert_clean(h)
    assert h.get_final_run().status == "completed"
    assert "".join(h.text_deltas_seen) == text

    (req,) = llm.requests()
    started = req["received_us"] / 1e6
    # The stand-in sends one word per chunk, each after `delay_s`: it cannot have finished the
    # text before this (a lower bound of its total sending time).
    model_done = started + len(words) * delay_s
    delta_times = [ts for name, _, ts in h.events if name == DELTA]
    first_delta, last_delta = delta_times[0], delta_times[-1]
    completed_at = [ts for name, _, ts in h.events if name == "thread.run.completed"][0]
    detail = (
        f"model request at {started:.3f}, model done >= {model_done:.3f}; deltas at "
        + ", ".join(f"{ts - started:+.3f}" for ts in delta_times)
        + f"; run.completed at {completed_at - started:+.3f} (s after the request)"
    )
    print(detail)
    # Sanity: the clocks agree and the stand-in really was slow.
    assert completed_at >= model_done - 0.05, detail
    # The first delta was forwarded as soon as the model sent it, well before the end...
    assert first_delta <= model_done - 4 * delay_s, detail
    # ...and the deltas were spread over the answer, not released in one burst at the end.
    assert last_delta - first_delta >= (len(words) - 1) * delay_s * 0.5, detail


def test_client_disconnect_does_not_stop_the_run(client, llm):
    words = "the run goes on after the client leaves".split()
    text = " ".join(words)
    llm.script({"text": text, "chunk_delay_ms": 200})
    a = make_assistant(client, llm)
    t = make_thread(client, "keep going")
    seen = []
    with client.beta.threads.runs.stream(
        thread_id=t.id, assistant_id=a.id, event_handler=Recorder()
    ) as h:
        for event in h:
            seen.append(event.event)
            if event.event == DELTA:
                break  # leaving the block closes the HTTP response mid-stream
    assert seen[-1] == DELTA and "thread.run.completed" not in seen, seen
    run_id = h.first("thread.run.created").id
    disconnected_at = time.time()

    run = wait_for_run(client, t.id, run_id, until=FINAL, timeout=30)
    assert run.status == "completed", run.model_dump()
    msgs = client.beta.threads.messages.list(thread_id=t.id).data
    assert msgs[0].role == "assistant" and msgs[0].run_id == run_id
    assert message_text(msgs[0]) == text
    assert msgs[0].status == "completed"
    (step,) = client.beta.threads.runs.steps.list(run_id=run_id, thread_id=t.id).data
    assert step.status == "completed"
    # The model was asked once (the turn was not restarted) and the run ended after the
    # client had gone.
    (req,) = llm.requests()
    assert req["received_us"] / 1e6 < disconnected_at


def test_incomplete_answer_streams_message_incomplete_and_run_incomplete(client, llm):
    llm.script({"text": "cut by length", "finish_reason": "length"})
    a = make_assistant(client, llm)
    t = make_thread(client, "a long story please")
    with client.beta.threads.runs.stream(
        thread_id=t.id, assistant_id=a.id, event_handler=Recorder()
    ) as h:
        h.until_done()
    assert_clean(h)
    assert h.collapsed() == RUN_START + [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        DELTA,
        "thread.message.incomplete",
        "thread.run.step.completed",
        "thread.run.incomplete",
    ], h.names()
    msg = h.first("thread.message.incomplete")
    assert msg.status == "incomplete" and message_text(msg) == "cut by length"
    run = h.get_final_run()
    assert run.status == "incomplete"
    assert run.incomplete_details.reason == "max_completion_tokens"
    stored = client.beta.threads.messages.retrieve(msg.id, thread_id=t.id)
    assert stored.status == "incomplete" and message_text(stored) == "".join(h.text_deltas_seen)


def test_stream_on_a_thread_with_an_active_run_is_a_bad_request(client, llm):
    llm.script({"tool_calls": [call("get_weather", {"city": "Bern"})]})
    a = make_assistant(client, llm)
    t = make_thread(client, "weather in Bern")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "requires_action", run.model_dump()
    # Rejected with a plain HTTP 400 before any event (so the SDK raises, not a stream error).
    try:
        with client.beta.threads.runs.stream(
            thread_id=t.id, assistant_id=a.id, event_handler=Recorder()
        ) as h:
            h.until_done()
    except openai.BadRequestError as e:
        assert run.id in e.message, e.message
    else:
        raise AssertionError(f"streaming a second run was accepted: {h.names()}")
    # Outputs for a run that does not wait for them: 400 as well.
    client.beta.threads.runs.cancel(run_id=run.id, thread_id=t.id)
    assert wait_for_run(client, t.id, run.id).status == "cancelled"
    tc = run.required_action.submit_tool_outputs.tool_calls[0]
    try:
        with client.beta.threads.runs.submit_tool_outputs_stream(
            run_id=run.id,
            thread_id=t.id,
            tool_outputs=[{"tool_call_id": tc.id, "output": "x"}],
            event_handler=Recorder(),
        ) as h:
            h.until_done()
    except openai.BadRequestError:
        pass
    else:
        raise AssertionError(f"tool outputs for a cancelled run were streamed: {h.names()}")
    assert len(llm.requests()) == 1


def test_retried_model_stream_deltas_match_the_stored_message(client, llm):
    """The model's first answer breaks off after a few words and the engine retries. The
    client has already seen deltas of the broken attempt, so what it ends up with must still
    be the stored answer: deltas concatenate to the stored message text."""
    llm.script(
        {"text": "partial answer here", "cut_off": True},
        {"text": "the full answer"},
    )
    a = make_assistant(client, llm)
    t = make_thread(client, "answer me")
    with client.beta.threads.runs.stream(
        thread_id=t.id, assistant_id=a.id, event_handler=Recorder()
    ) as h:
        h.until_done()
    assert_clean(h)
    assert h.get_final_run().status == "completed", h.names()
    assert len(llm.requests()) == 2
    stored = client.beta.threads.messages.list(thread_id=t.id).data[0]
    assert message_text(stored) == "the full answer"
    # Every message announced complete in the stream is the stored one, word for word.
    for done in h.all("thread.message.completed"):
        assert message_text(done) == message_text(
            client.beta.threads.messages.retrieve(done.id, thread_id=t.id)
        )
    streamed = {}
    for d in h.all(DELTA):
        for part in d.delta.content or []:
            streamed[d.id] = streamed.get(d.id, "") + (part.text.value or "")
    assert streamed.get(stored.id) == "the full answer", (
        f"deltas of message {stored.id} concatenate to {streamed.get(stored.id)!r}, "
        f"stored text is 'the full answer'; events {h.names()}"
    )


def test_model_stream_cut_off_every_time_fails_and_closes_what_it_opened(client, llm):
    llm.script(*[{"text": "partial answer here", "cut_off": True}] * 3)
    a = make_assistant(client, llm)
    t = make_thread(client, "this breaks")
    with client.beta.threads.runs.stream(
        thread_id=t.id, assistant_id=a.id, event_handler=Recorder()
    ) as h:
        h.until_done()
    assert_clean(h)
    names = h.names()
    assert names[-1] == "thread.run.failed", names
    failed = h.first("thread.run.failed")
    assert failed.last_error.code == "server_error"
    assert len(llm.requests()) == 3
    # A message or step the stream opened is closed before the run ends, and is what the
    # API then lists for the run.
    opened_steps = [s.id for s in h.all("thread.run.step.created")]
    closed_steps = {
        s.id
        for n in ("thread.run.step.completed", "thread.run.step.failed", "thread.run.step.cancelled")
        for s in h.all(n)
    }
    opened_msgs = [m.id for m in h.all("thread.message.created")]
    closed_msgs = {
        m.id for n in ("thread.message.completed", "thread.message.incomplete") for m in h.all(n)
    }
    assert set(opened_steps) <= closed_steps and set(opened_msgs) <= closed_msgs, (
        f"opened steps {opened_steps} / messages {opened_msgs} were never closed; events {names}"
    )
    listed = [s.id for s in client.beta.threads.runs.steps.list(run_id=failed.id, thread_id=t.id)]
    assert sorted(listed) == sorted(opened_steps), (
        f"the stream announced steps {opened_steps}, the API lists {listed}"
    )


def test_cancel_while_streaming_ends_the_stream_with_run_cancelled(client, llm):
    words = "one two three four five six seven eight".split()
    llm.script({"text": " ".join(words), "chunk_delay_ms": 300})
    a = make_assistant(client, llm)
    t = make_thread(client, "count slowly")
    cancel_status = None
    with client.beta.threads.runs.stream(
        thread_id=t.id, assistant_id=a.id, event_handler=Recorder()
    ) as h:
        for event in h:
            if event.event == DELTA and cancel_status is None:
                run_id = h.first("thread.run.created").id
                cancel_status = client.beta.threads.runs.cancel(run_id=run_id, thread_id=t.id).status
    assert cancel_status in ("cancelling", "cancelled")
    assert_clean(h)
    run = wait_for_run(client, t.id, run_id)
    assert run.status == "cancelled", run.model_dump()
    names = h.names()
    # The stream tells the client how the run ended.
    assert "thread.run.completed" not in names, names
    assert names[-1] == "thread.run.cancelled", names
    assert h.get_final_run().status == "cancelled", names
    # What the stream called complete exists.
    for done in h.all("thread.message.completed"):
        try:
            client.beta.threads.messages.retrieve(done.id, thread_id=t.id)
        except openai.NotFoundError:
            raise AssertionError(
                f"the stream completed message {done.id}, which the API does not have; "
                f"events {names}"
            ) from None
