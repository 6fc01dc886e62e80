"""Files and vector stores through the official `openai` Python SDK exactly as applications
use them: uploads, `vector_stores.files.upload_and_poll`, `file_batches.upload_and_poll`,
search, deletes. Embeddings come from the server's stand-in (a bag-of-words vector, so texts
that share words are near each other)."""

from __future__ import annotations

import io
import json

import openai
import pytest

pytestmark = pytest.mark.backends("local", "azure", "proxy")

OSLO = b"Oslo is the capital of Norway. The capital city lies at the head of the Oslofjord."
RUST = b"Rust is a systems programming language focused on memory safety and speed."
SOUP = b"To cook tomato soup, simmer tomatoes with onion, garlic and basil for twenty minutes."


def named(data: bytes, name: str):
    f = io.BytesIO(data)
    f.name = name
    return f


def test_files_upload_list_download_delete(client):
    f = client.files.create(file=named(OSLO, "oslo.txt"), purpose="assistants")
    assert f.id.startswith("file-")
    assert f.bytes == len(OSLO) and f.filename == "oslo.txt" and f.purpose == "assistants"
    assert client.files.retrieve(f.id).id == f.id
    assert any(x.id == f.id for x in client.files.list(purpose="assistants"))
    assert client.files.content(f.id).read() == OSLO
    deleted = client.files.delete(f.id)
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)


def test_upload_and_poll_then_search_finds_the_relevant_file(client):
    vs = client.vector_stores.create(name="kb")
    assert vs.id.startswith("vs_") and vs.object == "vector_store"
    done = {}
    for data, name in [(OSLO, "oslo.txt"), (RUST, "rust.md"), (SOUP, "soup.txt")]:
        vsf = client.vector_stores.files.upload_and_poll(vector_store_id=vs.id, file=named(data, name))
        assert vsf.status == "completed", vsf
        done[name] = vsf.id
    store = client.vector_stores.retrieve(vs.id)
    assert store.status == "completed"
    assert store.file_counts.completed == 3 and store.file_counts.total == 3
    assert store.usage_bytes > 0

    page = client.vector_stores.search(vector_store_id=vs.id, query="What is the capital of Norway?")
    results = list(page)
    assert results, "no results"
    assert results[0].file_id == done["oslo.txt"]
    assert results[0].filename == "oslo.txt"
    assert "Oslo" in results[0].content[0].text
    assert 0 < results[0].score <= 1

    files = list(client.vector_stores.files.list(vector_store_id=vs.id, filter="completed"))
    assert {f.id for f in files} == set(done.values())
    client.vector_stores.files.delete(file_id=done["rust.md"], vector_store_id=vs.id)
    assert client.vector_stores.retrieve(vs.id).file_counts.total == 2
    assert client.vector_stores.delete(vs.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(vs.id)


def test_file_batches_upload_and_poll_and_bad_files(client):
    vs = client.vector_stores.create()
    batch = client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=vs.id,
        files=[named(OSLO, "a.txt"), named(SOUP, "b.txt"), named(b"\x00\x9f\x92\x96\x00", "c.bin")],
    )
    assert batch.id.startswith("vsfb_")
    assert batch.status == "completed"
    assert batch.file_counts.completed == 2 and batch.file_counts.failed == 1
    failed = list(
        client.vector_stores.file_batches.list_files(batch_id=batch.id, vector_store_id=vs.id, filter="failed")
    )
    assert len(failed) == 1
    assert failed[0].last_error.code == "unsupported_file"
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.search(vector_store_id=vs.id, query="x", max_num_results=100)


INCLUDE = ["step_details.tool_calls[*].file_search.results[*].content"]


def _kb_assistant(client, llm):
    vs = client.vector_stores.create(name="kb")
    for data, name in [(OSLO, "oslo.txt"), (SOUP, "soup.txt")]:
        assert client.vector_stores.files.upload_and_poll(vector_store_id=vs.id, file=named(data, name)).status == "completed"
    return client.beta.assistants.create(
        model=llm.model,
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [vs.id]}},
    )


def test_file_search_run_cites_the_file(client, llm):
    asst = _kb_assistant(client, llm)
    answer = "Oslo is the capital【0:0†oslo.txt】."
    llm.script(
        {"tool_calls": [{"name": "file_search", "arguments": json.dumps({"queries": ["capital of Norway"]})}]},
        {"text": answer},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Capital of Norway?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id, include=INCLUDE)
    assert run.status == "completed", run

    steps = list(client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id, order="asc", include=INCLUDE))
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    call = steps[0].step_details.tool_calls[0]
    assert call.type == "file_search"
    results = call.file_search.results
    assert results[0].file_name == "oslo.txt"
    assert "Oslo is the capital" in results[0].content[0].text
    bare = client.beta.threads.runs.steps.retrieve(step_id=steps[0].id, run_id=run.id, thread_id=thread.id)
    assert bare.step_details.tool_calls[0].file_search.results[0].content is None

    message = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0]
    text = message.content[0].text
    assert text.value == answer
    [citation] = text.annotations
    assert citation.type == "file_citation"
    assert citation.file_citation.file_id == results[0].file_id
    assert text.value[citation.start_index : citation.end_index] == citation.text == "【0:0†oslo.txt】"


def test_file_search_run_streams_with_the_sdk_helpers(client, llm):
    asst = _kb_assistant(client, llm)
    llm.script(
        {"tool_calls": [{"name": "file_search", "arguments": json.dumps({"queries": ["tomato soup"]})}]},
        {"text": "Simmer tomatoes【0:0†soup.txt】 for twenty minutes."},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "How to cook soup?"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=asst.id) as stream:
        seen = list(stream)
        run = stream.get_final_run()
        messages = stream.get_final_messages()
        steps = stream.get_final_run_steps()
    events = [e.event for e in seen]
    assert run.status == "completed"
    assert events.index("thread.run.step.completed") < events.index("thread.message.created")
    # The accumulated step shows the call as file_search (its delta is typed, and empty,
    # as OpenAI streamed it); the completed event carries the results.
    tool_step = next(s for s in steps if s.type == "tool_calls")
    assert tool_step.step_details.tool_calls[0].type == "file_search"
    completed = next(e.data for e in seen if e.event == "thread.run.step.completed" and e.data.type == "tool_calls")
    result = completed.step_details.tool_calls[0].file_search.results[0]
    assert result.file_name == "soup.txt" and result.content is None
    [citation] = messages[-1].content[0].text.annotations
    assert citation.file_citation.file_id == result.file_id
    assert messages[-1].content[0].text.value.endswith("for twenty minutes.")


def test_message_attachments_search_a_thread_store(client, llm):
    f = client.files.create(file=named(SOUP, "soup.txt"), purpose="assistants")
    asst = client.beta.assistants.create(model=llm.model, tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Soup?", "attachments": [{"file_id": f.id, "tools": [{"type": "file_search"}]}]}]
    )
    [vs_id] = client.beta.threads.retrieve(thread.id).tool_resources.file_search.vector_store_ids
    llm.script(
        {"tool_calls": [{"name": "file_search", "arguments": json.dumps({"queries": ["soup"]})}]},
        {"text": "Basil【0:0†soup.txt】."},
    )
    # Started at once: the run waits until the attachment is searchable.
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id)
    assert run.status == "completed", run
    assert client.vector_stores.retrieve(vs_id).file_counts.completed == 1
    message = client.beta.threads.messages.list(thread_id=thread.id, limit=1).data[0]
    assert message.content[0].text.annotations[0].file_citation.file_id == f.id


def test_created_thread_shows_its_attachment_store(client):
    # As OpenAI's file-search guide does: print the thread's store straight from the create.
    f = client.files.create(file=named(SOUP, "soup.txt"), purpose="assistants")
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Soup?", "attachments": [{"file_id": f.id, "tools": [{"type": "file_search"}]}]}]
    )
    assert thread.tool_resources.file_search is not None
    [vs_id] = thread.tool_resources.file_search.vector_store_ids
    assert thread == client.beta.threads.retrieve(thread.id)
    assert client.vector_stores.retrieve(vs_id).file_counts.total == 1
