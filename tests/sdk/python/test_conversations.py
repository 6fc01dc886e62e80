"""Conformance tests for the Conversations API, driven by the official `openai` Python SDK as
an application uses it: `client.conversations` and `client.conversations.items` (with the
SDK's auto-paging). Every test runs on both storage backends and through a proxy server in
front of a stored one (see conftest.py)."""

from __future__ import annotations

import re

import openai
import pytest

from conftest import random_id

pytestmark = pytest.mark.backends("local", "azure", "proxy")


def id_pattern(prefix: str) -> re.Pattern:
    return re.compile("^" + re.escape(prefix) + "[A-Za-z0-9]{24}$")


def test_conversation_lifecycle(client: openai.OpenAI):
    conv = client.conversations.create(
        metadata={"topic": "sdk"},
        items=[{"type": "message", "role": "user", "content": "Hello!"}],
    )
    assert id_pattern("conv_").match(conv.id), conv.id
    assert conv.object == "conversation"
    assert conv.metadata == {"topic": "sdk"}
    assert isinstance(conv.created_at, int)

    got = client.conversations.retrieve(conv.id)
    assert got == conv

    updated = client.conversations.update(conv.id, metadata={"topic": "changed"})
    assert updated.metadata == {"topic": "changed"}
    assert client.conversations.retrieve(conv.id).metadata == {"topic": "changed"}

    empty = client.conversations.create()
    assert empty.metadata == {}
    assert list(client.conversations.items.list(empty.id)) == []

    deleted = client.conversations.delete(conv.id)
    assert deleted.id == conv.id
    assert deleted.deleted is True
    assert deleted.object == "conversation.deleted"
    with pytest.raises(openai.NotFoundError) as e:
        client.conversations.retrieve(conv.id)
    assert e.value.message.endswith(f"Conversation with id '{conv.id}' not found.")
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(conv.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(random_id("conv_"))
    client.conversations.delete(empty.id)


def test_items_create_list_retrieve_delete(client: openai.OpenAI):
    conv = client.conversations.create(
        items=[{"role": "developer", "content": "Answer briefly."}]
    )
    created = client.conversations.items.create(
        conv.id,
        items=[
            {"role": "user", "content": [{"type": "input_text", "text": "What is 2+2?"}]},
            {"type": "function_call", "call_id": "call_add", "name": "add",
             "arguments": '{"a":2,"b":2}'},
            {"type": "function_call_output", "call_id": "call_add", "output": "4"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "4"}]},
        ],
    )
    assert created.object == "list"
    assert created.has_more is False
    kinds = [item.type for item in created.data]
    assert kinds == ["message", "function_call", "function_call_output", "message"]
    assert created.first_id == created.data[0].id
    assert created.last_id == created.data[-1].id
    call = created.data[1]
    assert id_pattern("fc_").match(call.id)
    assert call.call_id == "call_add" and call.name == "add"
    assert call.arguments == '{"a":2,"b":2}'
    assert created.data[3].content[0].type == "output_text"
    assert created.data[3].content[0].text == "4"

    # Newest first by default; the SDK's pager walks every page.
    listed = [item.id for item in client.conversations.items.list(conv.id, limit=2)]
    assert len(listed) == 5
    assert listed[:4] == [item.id for item in reversed(created.data)]
    ascending = [
        item.id for item in client.conversations.items.list(conv.id, limit=2, order="asc")
    ]
    assert ascending == list(reversed(listed))
    page = client.conversations.items.list(conv.id, limit=2, order="asc")
    assert len(page.data) == 2 and page.has_more is True

    msg = client.conversations.items.retrieve(created.data[0].id, conversation_id=conv.id)
    assert msg.type == "message" and msg.role == "user"
    assert msg.content[0].text == "What is 2+2?"
    assert msg.status == "completed"

    after = client.conversations.items.delete(created.data[1].id, conversation_id=conv.id)
    assert after.id == conv.id and after.object == "conversation"
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(created.data[1].id, conversation_id=conv.id)
    assert len(list(client.conversations.items.list(conv.id))) == 4


def test_include_and_bad_items(client: openai.OpenAI):
    conv = client.conversations.create()
    created = client.conversations.items.create(
        conv.id,
        items=[{"type": "file_search_call", "id": "fs_x", "status": "completed",
                "queries": ["q"], "results": [{"file_id": "file-a", "filename": "a.txt",
                                               "score": 0.5, "text": "hit", "attributes": {}}]}],
    )
    fs = created.data[0]
    assert fs.results is None
    shown = client.conversations.items.retrieve(
        fs.id, conversation_id=conv.id, include=["file_search_call.results"]
    )
    assert shown.results[0].text == "hit"
    listed = client.conversations.items.list(conv.id, include=["file_search_call.results"])
    assert listed.data[0].results[0].file_id == "file-a"

    with pytest.raises(openai.BadRequestError) as e:
        client.conversations.items.create(
            conv.id,
            items=[{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}],
        )
    assert e.value.param == "items[0].content[0].type"
    with pytest.raises(openai.BadRequestError) as e:
        client.conversations.items.list(conv.id, include=["nothing.at.all"])
    assert e.value.param == "include"


def test_assistants_thread_is_a_conversation(client: openai.OpenAI):
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "from threads"}])
    conv = client.conversations.retrieve(thread.id)
    assert conv.id == thread.id and conv.object == "conversation"
    items = list(client.conversations.items.list(thread.id))
    assert [i.content[0].text for i in items] == ["from threads"]
    added = client.conversations.items.create(
        thread.id, items=[{"role": "user", "content": "from conversations"}]
    )
    message = client.beta.threads.messages.retrieve(added.data[0].id, thread_id=thread.id)
    assert message.content[0].text.value == "from conversations"
    client.conversations.delete(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(thread.id)
