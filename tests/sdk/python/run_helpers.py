"""Shared pieces of the run and streaming conformance tests (test_runs.py, test_streaming.py)."""

from __future__ import annotations

import json
import time

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Local time of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

# Statuses the SDK poll helpers stop at.
POLL_TERMINAL = {"requires_action", "cancelled", "completed", "failed", "expired", "incomplete"}
# Statuses a run never leaves.
FINAL = {"cancelled", "completed", "failed", "expired", "incomplete"}

INSTRUCTIONS = "You are a terse test assistant."


def make_assistant(client, llm, **kw):
    """An assistant on the test's own stand-in model, with two function tools."""
    kw.setdefault("model", llm.model)
    kw.setdefault("instructions", INSTRUCTIONS)
    kw.setdefault("tools", [WEATHER_TOOL, TIME_TOOL])
    return client.beta.assistants.create(**kw)


def make_thread(client, *texts: str):
    return client.beta.threads.create(
        messages=[{"role": "user", "content": t} for t in texts]
    )


def call(name: str, arguments: dict, call_id: str | None = None) -> dict:
    """A scripted tool call for the stand-in."""
    c = {"name": name, "arguments": json.dumps(arguments)}
    if call_id:
        c["id"] = call_id
    return c


def fail_500(n: int = 1) -> list[dict]:
    """`n` scripted 500s (Retry-After 0, so the engine's retries do not wait)."""
    return [{"error": {"status": 500, "message": "boom", "retry_after": 0}} for _ in range(n)]


def wait_for_run(client, thread_id: str, run_id: str, until=FINAL, timeout: float = 30.0):
    """Reads the run until its status is in `until`; fails with the last status otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status in until:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(
                f"run {run_id} is still {run.status!r} after {timeout:.0f} s "
                f"(waited for {sorted(until)}): {run.model_dump()}"
            )
        time.sleep(0.1)


def message_text(message) -> str:
    """The text of a message whose content is text parts only."""
    assert message.content, f"message {message.id} has no content: {message.model_dump()}"
    assert all(p.type == "text" for p in message.content), message.model_dump()
    return "".join(p.text.value for p in message.content)


def chat_history(request: dict) -> list[tuple[str, str]]:
    """(role, content) of the non-system messages of a chat request, in order."""
    out = []
    for m in request["messages"]:
        if m["role"] == "system":
            continue
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content)
        out.append((m["role"], content))
    return out


def system_prompt(request: dict) -> str:
    """The system/developer instructions of a chat request (all such messages, joined)."""
    return "\n".join(
        m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])
        for m in request["messages"]
        if m["role"] in ("system", "developer")
    )
