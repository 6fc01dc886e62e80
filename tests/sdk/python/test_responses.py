"""Conformance tests for the Responses API, driven by the official `openai` Python SDK as
applications use it: `responses.create` / `.stream` / `.retrieve` / `.cancel` / `.delete` /
`.input_items.list` and `responses.parse`. Runs on both storage backends, on the server as an
Azure Functions custom handler and through a proxy in front of a stored server; the model is
the server's stand-in (see conftest.py)."""

from __future__ import annotations

import json
import time

import openai
import pytest
from pydantic import BaseModel

from run_helpers import call

pytestmark = pytest.mark.backends("local", "azure", "functions", "proxy")

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def wait_for(client, response_id: str, statuses: set[str], timeout: float = 20.0):
    deadline = time.time() + timeout
    while True:
        r = client.responses.retrieve(response_id)
        if r.status in statuses:
            return r
        assert time.time() < deadline, f"still {r.status}"
        time.sleep(0.05)


def test_text_answer_retrieve_input_items_and_delete(client, llm):
    llm.script({"text": "Hello from the stand-in.",
                "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}})
    r = client.responses.create(model=llm.model, input="Say hello.", instructions="Be brief.")
    assert r.object == "response"
    assert r.status == "completed"
    assert r.output_text == "Hello from the stand-in."
    assert r.instructions == "Be brief."
    assert r.usage.input_tokens == 9 and r.usage.output_tokens == 4
    assert r.usage.total_tokens == 13
    assert r.error is None and r.incomplete_details is None

    got = client.responses.retrieve(r.id)
    assert got.model_dump() == r.model_dump()
    items = client.responses.input_items.list(r.id)
    assert [i.type for i in items.data] == ["message"]
    assert items.data[0].role == "user"
    assert items.data[0].content[0].text == "Say hello."

    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_function_call_round_trip_with_parallel_calls(client, llm):
    llm.script(
        {"tool_calls": [call("get_weather", {"city": "Paris"}),
                        call("get_weather", {"city": "Rome"})]},
        {"text": "Paris is sunny, Rome is rainy."},
    )
    first = client.responses.create(model=llm.model, input="Weather in Paris and Rome?",
                                    tools=[WEATHER])
    assert first.status == "completed"
    calls = [o for o in first.output if o.type == "function_call"]
    assert [json.loads(c.arguments)["city"] for c in calls] == ["Paris", "Rome"]
    outputs = [
        {"type": "function_call_output", "call_id": c.call_id,
         "output": "sunny" if json.loads(c.arguments)["city"] == "Paris" else "rainy"}
        for c in calls
    ]
    second = client.responses.create(model=llm.model, previous_response_id=first.id,
                                     input=outputs, tools=[WEATHER])
    assert second.output_text == "Paris is sunny, Rome is rainy."
    assert second.previous_response_id == first.id
    sent = llm.requests()[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    assert {m["content"] for m in sent[2:]} == {"sunny", "rainy"}


def test_previous_response_id_keeps_the_context_but_not_the_instructions(client, llm):
    llm.script({"text": "Noted, Ada."}, {"text": "Your name is Ada."})
    first = client.responses.create(model=llm.model, input="My name is Ada.",
                                    instructions="first instructions")
    second = client.responses.create(model=llm.model, input="What is my name?",
                                     previous_response_id=first.id)
    assert second.output_text == "Your name is Ada."
    sent = llm.requests()[-1]["messages"]
    assert [m["content"] for m in sent] == ["My name is Ada.", "Noted, Ada.", "What is my name?"]
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=llm.model, input="x", previous_response_id="resp_nope")
    assert e.value.code == "previous_response_not_found"


def test_store_false_is_not_kept(client, llm):
    llm.script({"text": "ephemeral"})
    r = client.responses.create(model=llm.model, input="x", store=False)
    assert r.output_text == "ephemeral"
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_json_schema_with_parse(client, llm):
    class Answer(BaseModel):
        city: str
        degrees: int

    llm.script({"text": json.dumps({"city": "Paris", "degrees": 21})})
    r = client.responses.parse(model=llm.model, input="Weather?", text_format=Answer)
    assert r.output_parsed == Answer(city="Paris", degrees=21)
    sent = llm.requests()[-1]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["strict"] is True


def test_max_output_tokens_ends_incomplete_and_model_error_fails(client, llm):
    llm.script({"text": "Once upon a", "finish_reason": "length"})
    r = client.responses.create(model=llm.model, input="A story.", max_output_tokens=16)
    assert r.status == "incomplete"
    assert r.incomplete_details.reason == "max_output_tokens"
    assert llm.requests()[-1]["max_completion_tokens"] == 16

    llm.script({"error": {"status": 400, "message": "bad prompt"}})
    r = client.responses.create(model=llm.model, input="x")
    assert r.status == "failed"
    assert r.error.message


def test_background_polling_and_cancel(client, llm):
    llm.script({"text": "background answer"})
    r = client.responses.create(model=llm.model, input="x", background=True)
    assert r.status == "queued" and r.background is True
    done = wait_for(client, r.id, {"completed"})
    assert done.output_text == "background answer"

    llm.script({"text": "slow", "first_chunk_delay_ms": 3000})
    r = client.responses.create(model=llm.model, input="x", background=True)
    cancelled = client.responses.cancel(r.id)
    assert cancelled.status == "cancelled"
    assert wait_for(client, r.id, {"cancelled"}).status == "cancelled"
    # Cancelling again answers the same.
    assert client.responses.cancel(r.id).status == "cancelled"

    llm.script({"text": "fg"})
    fg = client.responses.create(model=llm.model, input="x")
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(fg.id)


def test_stream_text_answer_with_the_stream_helper(client, llm):
    llm.script({"text": "Hello streaming world."})
    seen = []
    with client.responses.stream(model=llm.model, input="hi") as stream:
        for event in stream:
            seen.append(event.type)
        final = stream.get_final_response()
    assert seen[0] == "response.created"
    assert seen[-1] == "response.completed"
    assert "response.output_text.delta" in seen
    assert final.output_text == "Hello streaming world."
    assert client.responses.retrieve(final.id).output_text == "Hello streaming world."


def test_stream_function_call(client, llm):
    llm.script({"tool_calls": [call("get_weather", {"city": "Oslo"})]})
    with client.responses.stream(model=llm.model, input="Oslo?", tools=[WEATHER]) as stream:
        args_done = [e for e in stream if e.type == "response.function_call_arguments.done"]
        final = stream.get_final_response()
    assert len(args_done) == 1
    fc = final.output[0]
    assert fc.type == "function_call" and json.loads(fc.arguments) == {"city": "Oslo"}


def test_raw_stream_numbers_every_event(client, llm):
    llm.script({"text": "one two three"})
    events = list(client.responses.create(model=llm.model, input="count", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"


def test_a_thread_continued_as_a_conversation(client, llm):
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "I like tea."}])
    llm.script({"text": "Tea it is."})
    r = client.responses.create(model=llm.model, conversation=thread.id,
                                input="What do I like?")
    assert r.conversation.id == thread.id
    sent = llm.requests()[-1]["messages"]
    assert [m["content"] for m in sent] == ["I like tea.", "What do I like?"]
    texts = [m.content[0].text.value
             for m in client.beta.threads.messages.list(thread.id, order="asc").data]
    assert "Tea it is." in texts


def test_background_stream_resumes_with_retrieve_and_the_stream_helper(client, llm):
    llm.script({"text": "a resumable background answer", "chunk_delay_ms": 20})
    live = list(client.responses.create(model=llm.model, input="x", background=True, stream=True))
    assert [e.type for e in live[:3]] == ["response.created", "response.queued",
                                         "response.in_progress"]
    response_id = live[0].response.id
    # The raw stream again, from event 4 on (the server skips what came before).
    resumed = list(client.responses.retrieve(response_id, stream=True, starting_after=4))
    assert [e.sequence_number for e in resumed] == [e.sequence_number for e in live[5:]]
    assert resumed[-1].type == "response.completed"
    # The helper replays from the start and drops what the client had already seen.
    with client.responses.stream(response_id=response_id, starting_after=4) as stream:
        seen = [e.sequence_number for e in stream]
        final = stream.get_final_response()
    assert seen == [e.sequence_number for e in live[5:]]
    assert final.output_text == "a resumable background answer"
