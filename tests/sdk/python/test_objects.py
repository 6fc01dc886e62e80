"""Conformance tests for assistants, threads and messages, driven by the official `openai`
Python SDK exactly as an application uses it. Every test runs on both storage backends and
through a proxy server in front of a stored one (see conftest.py). Raw HTTP is used only where
the SDK cannot express the request (no API key) or to look at the exact error body."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import openai
import pytest

from conftest import KEY_A, KEY_B, KEY_PAGING, KEY_PLAIN, StorageConfig, random_id

pytestmark = pytest.mark.backends("local", "azure", "proxy")

MODEL = "gpt-4o-mini"
FUNCTION_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}
N_PAGED = 45
PAGE = 20


def id_pattern(prefix: str) -> re.Pattern:
    return re.compile("^" + re.escape(prefix) + "[A-Za-z0-9]{24}$")


def assert_recent(ts) -> None:
    assert isinstance(ts, int), f"timestamp {ts!r} is not an integer"
    assert abs(ts - time.time()) < 300, f"timestamp {ts} is not unix seconds of now"


def assert_error_body(e: openai.APIStatusError, status: int, type_: str = "invalid_request_error"):
    """The body is {"error": {"message", "type", "param", "code"}} with the usual types."""
    assert e.status_code == status
    raw = e.response.json()
    assert set(raw) == {"error"}, raw
    assert set(raw["error"]) == {"message", "type", "param", "code"}, raw
    assert isinstance(raw["error"]["message"], str) and raw["error"]["message"], raw
    assert raw["error"]["type"] == type_, raw
    assert raw["error"]["param"] is None or isinstance(raw["error"]["param"], str), raw
    assert raw["error"]["code"] is None or isinstance(raw["error"]["code"], str), raw
    # The SDK unwraps "error" into e.body and copies the fields onto the exception.
    assert e.body == raw["error"]
    assert e.message.endswith(raw["error"]["message"])
    assert e.param == raw["error"]["param"]
    assert e.type == raw["error"]["type"]
    assert e.code == raw["error"]["code"]
    return raw["error"]


def raw_request(server, method: str, path: str, *, headers=None, body=None):
    """A request without the SDK; returns (status, parsed JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.base_url + path, data=data, method=method)
    req.add_header("OpenAI-Beta", "assistants=v2")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def page_extra(page, name: str):
    """first_id / last_id / object are not declared on the SDK's page model; read them raw."""
    extra = page.model_extra or {}
    assert name in extra, f"list response lacks {name!r}: {page.model_dump()}"
    return extra[name]


def assert_page(page, expected_ids: list[str], has_more: bool) -> None:
    ids = [o.id for o in page.data]
    assert ids == expected_ids
    assert page.has_more is has_more
    assert page_extra(page, "object") == "list"
    assert page_extra(page, "first_id") == (expected_ids[0] if expected_ids else None)
    assert page_extra(page, "last_id") == (expected_ids[-1] if expected_ids else None)


def make_assistant(client, **kw):
    kw.setdefault("model", MODEL)
    return client.beta.assistants.create(**kw)


# --------------------------------------------------------------------------------------------
# Assistants


def test_create_assistant_returns_every_field_it_was_given(client):
    a = client.beta.assistants.create(
        model=MODEL,
        name="Weather bot",
        description="Answers weather questions",
        instructions="Be brief.",
        tools=[
            {
                "type": "function",
                "function": {"name": "f", "description": "weather", "parameters": FUNCTION_PARAMS},
            }
        ],
        metadata={"team": "blue", "env": "test"},
        temperature=0.5,
        top_p=0.75,
        response_format="auto",
    )
    assert id_pattern("asst_").match(a.id), a.id
    assert a.object == "assistant"
    assert_recent(a.created_at)
    assert a.model == MODEL
    assert a.name == "Weather bot"
    assert a.description == "Answers weather questions"
    assert a.instructions == "Be brief."
    assert len(a.tools) == 1
    tool = a.tools[0]
    assert tool.type == "function"
    assert tool.function.name == "f"
    assert tool.function.description == "weather"
    assert tool.function.parameters == FUNCTION_PARAMS
    assert a.metadata == {"team": "blue", "env": "test"}
    assert a.temperature == pytest.approx(0.5)
    assert a.top_p == pytest.approx(0.75)
    assert a.response_format == "auto"


def test_create_assistant_with_only_a_model_has_empty_defaults(client):
    a = make_assistant(client)
    assert a.model == MODEL
    assert a.name is None
    assert a.description is None
    assert a.tools == []
    assert a.metadata == {}


def test_retrieve_assistant_returns_the_stored_object(client):
    a = make_assistant(client, name="r", instructions="x", metadata={"k": "v"})
    got = client.beta.assistants.retrieve(a.id)
    assert got.model_dump() == a.model_dump()


def test_update_assistant_changes_given_fields_and_keeps_the_rest(client):
    a = make_assistant(
        client,
        name="before",
        description="d",
        instructions="i",
        metadata={"k": "v1"},
        temperature=0.3,
    )
    u = client.beta.assistants.update(
        a.id, name="after", metadata={"k": "v2"}, model="gpt-4o", top_p=0.5
    )
    assert u.id == a.id
    assert u.created_at == a.created_at
    assert u.name == "after"
    assert u.model == "gpt-4o"
    assert u.metadata == {"k": "v2"}
    assert u.top_p == pytest.approx(0.5)
    assert u.description == "d"
    assert u.instructions == "i"
    assert u.temperature == pytest.approx(0.3)
    assert client.beta.assistants.retrieve(a.id).model_dump() == u.model_dump()


def test_update_unknown_assistant_is_not_found(client):
    missing = random_id("asst_")
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.update(missing, name="x")


def test_delete_assistant_then_retrieve_is_not_found(client):
    a = make_assistant(client)
    d = client.beta.assistants.delete(a.id)
    assert d.id == a.id
    assert d.deleted is True
    assert d.object == "assistant.deleted"
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve(a.id)
    assert a.id not in [x.id for x in client.beta.assistants.list(limit=100)]
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.delete(a.id)


def test_list_assistants_shows_new_assistants_newest_first(client):
    ids = [make_assistant(client, name=f"l{i}").id for i in range(3)]
    page = client.beta.assistants.list(limit=3)
    assert [a.id for a in page.data] == ids[::-1]
    page = client.beta.assistants.list(limit=2, order="desc")
    assert [a.id for a in page.data] == ids[:0:-1]
    assert page.has_more is True


def test_assistants_paginate_both_ways_with_cursors(server):
    # A tenant of its own, so the list holds exactly what this test created.
    client = server.client(KEY_PAGING)
    empty = client.beta.assistants.list()
    assert_page(empty, [], False)

    ids = [make_assistant(client, name=f"p{i:02d}").id for i in range(N_PAGED)]
    assert len(set(ids)) == N_PAGED
    rev = ids[::-1]

    p1 = client.beta.assistants.list(limit=PAGE, order="asc")
    assert_page(p1, ids[:20], True)
    p2 = client.beta.assistants.list(limit=PAGE, order="asc", after=ids[19])
    assert_page(p2, ids[20:40], True)
    p3 = client.beta.assistants.list(limit=PAGE, order="asc", after=ids[39])
    assert_page(p3, ids[40:], False)

    d1 = client.beta.assistants.list(limit=PAGE)  # default order is desc
    assert_page(d1, rev[:20], True)
    d2 = client.beta.assistants.list(limit=PAGE, order="desc", after=rev[19])
    assert_page(d2, rev[20:40], True)
    d3 = client.beta.assistants.list(limit=PAGE, order="desc", after=rev[39])
    assert_page(d3, rev[40:], False)

    # Auto-pagination: every object once, in order.
    assert [a.id for a in client.beta.assistants.list(limit=PAGE, order="asc")] == ids
    assert [a.id for a in client.beta.assistants.list(limit=PAGE, order="desc")] == rev
    assert [a.id for a in client.beta.assistants.list()] == rev
    # Page by page through the SDK's own helpers.
    pages = []
    page = client.beta.assistants.list(limit=PAGE, order="asc")
    while True:
        pages.append([a.id for a in page.data])
        if not page.has_next_page():
            break
        page = page.get_next_page()
    assert pages == [ids[:20], ids[20:40], ids[40:]]

    # `before`: the objects just before the cursor, still in the requested order.
    b = client.beta.assistants.list(limit=PAGE, order="asc", before=ids[30])
    assert_page(b, ids[10:30], True)
    b = client.beta.assistants.list(limit=PAGE, order="asc", before=ids[5])
    assert_page(b, ids[:5], False)
    b = client.beta.assistants.list(limit=PAGE, order="desc", before=rev[30])
    assert_page(b, rev[10:30], True)
    # The last object has nothing after it.
    assert_page(client.beta.assistants.list(order="asc", after=ids[-1]), [], False)


# --------------------------------------------------------------------------------------------
# Threads


def test_create_thread_with_messages_metadata_and_tool_resources(client):
    t = client.beta.threads.create(
        messages=[{"role": "user", "content": "hi"}],
        metadata={"user": "u1"},
        tool_resources={"code_interpreter": {"file_ids": []}},
    )
    assert id_pattern("thread_").match(t.id), t.id
    assert t.object == "thread"
    assert_recent(t.created_at)
    assert t.metadata == {"user": "u1"}
    assert t.tool_resources is not None
    assert t.tool_resources.code_interpreter is not None
    assert t.tool_resources.code_interpreter.file_ids == []

    msgs = client.beta.threads.messages.list(t.id).data
    assert len(msgs) == 1
    m = msgs[0]
    assert m.thread_id == t.id
    assert m.role == "user"
    assert m.content[0].type == "text"
    assert m.content[0].text.value == "hi"


def test_create_thread_without_arguments(client):
    t = client.beta.threads.create()
    assert t.object == "thread"
    assert t.metadata == {}
    assert client.beta.threads.messages.list(t.id).data == []


def test_retrieve_and_update_thread(client):
    t = client.beta.threads.create(metadata={"a": "1"})
    assert client.beta.threads.retrieve(t.id).model_dump() == t.model_dump()
    u = client.beta.threads.update(t.id, metadata={"a": "2", "b": "3"})
    assert u.id == t.id
    assert u.created_at == t.created_at
    assert u.metadata == {"a": "2", "b": "3"}
    assert client.beta.threads.retrieve(t.id).metadata == {"a": "2", "b": "3"}


def test_delete_thread_deletes_its_messages(client):
    t = client.beta.threads.create(messages=[{"role": "user", "content": "bye"}])
    m = client.beta.threads.messages.list(t.id).data[0]
    d = client.beta.threads.delete(t.id)
    assert d.id == t.id
    assert d.deleted is True
    assert d.object == "thread.deleted"
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(t.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list(t.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(m.id, thread_id=t.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.create(t.id, role="user", content="again")


def test_unknown_thread_is_not_found(client):
    missing = random_id("thread_")
    with pytest.raises(openai.NotFoundError) as ei:
        client.beta.threads.retrieve(missing)
    err = assert_error_body(ei.value, 404)
    assert missing in err["message"]
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.create(missing, role="user", content="x")


# --------------------------------------------------------------------------------------------
# Messages


def test_create_message_with_string_content(client):
    t = client.beta.threads.create()
    m = client.beta.threads.messages.create(
        t.id, role="user", content="What is 2+2?", metadata={"n": "1"}
    )
    assert id_pattern("msg_").match(m.id), m.id
    assert m.object == "thread.message"
    assert_recent(m.created_at)
    assert m.thread_id == t.id
    assert m.role == "user"
    assert m.status == "completed"
    assert m.assistant_id is None
    assert m.run_id is None
    assert m.attachments in ([], None)
    assert m.metadata == {"n": "1"}
    assert len(m.content) == 1
    part = m.content[0]
    assert part.type == "text"
    assert part.text.value == "What is 2+2?"
    assert part.text.annotations == []


def test_create_message_with_content_parts(client):
    t = client.beta.threads.create()
    m = client.beta.threads.messages.create(
        t.id,
        role="user",
        content=[
            {"type": "text", "text": "hello"},
            {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
        ],
    )
    assert [p.type for p in m.content] == ["text", "image_url"]
    assert m.content[0].text.value == "hello"
    assert m.content[0].text.annotations == []
    assert m.content[1].image_url.url == "https://example.com/x.png"
    got = client.beta.threads.messages.retrieve(m.id, thread_id=t.id)
    assert got.model_dump() == m.model_dump()


def test_assistant_role_message_is_accepted(client):
    t = client.beta.threads.create()
    m = client.beta.threads.messages.create(t.id, role="assistant", content="I can help.")
    assert m.role == "assistant"
    assert m.content[0].text.value == "I can help."


def test_list_messages_is_newest_first_by_default_and_asc_on_request(client):
    t = client.beta.threads.create()
    ids = [
        client.beta.threads.messages.create(t.id, role="user", content=f"m{i}").id
        for i in range(3)
    ]
    default = client.beta.threads.messages.list(t.id)
    assert_page(default, ids[::-1], False)
    asc = client.beta.threads.messages.list(t.id, order="asc")
    assert_page(asc, ids, False)
    assert [m.content[0].text.value for m in asc.data] == ["m0", "m1", "m2"]


def test_list_messages_filtered_by_unknown_run_is_empty(client):
    t = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    page = client.beta.threads.messages.list(t.id, run_id=random_id("run_"))
    assert_page(page, [], False)


def test_retrieve_update_and_delete_message(client):
    t = client.beta.threads.create()
    m = client.beta.threads.messages.create(t.id, role="user", content="keep me")
    other = client.beta.threads.messages.create(t.id, role="user", content="stay")
    assert client.beta.threads.messages.retrieve(m.id, thread_id=t.id).model_dump() == m.model_dump()

    u = client.beta.threads.messages.update(m.id, thread_id=t.id, metadata={"seen": "yes"})
    assert u.id == m.id
    assert u.metadata == {"seen": "yes"}
    assert u.content[0].text.value == "keep me"
    assert client.beta.threads.messages.retrieve(m.id, thread_id=t.id).metadata == {"seen": "yes"}

    d = client.beta.threads.messages.delete(m.id, thread_id=t.id)
    assert d.id == m.id
    assert d.deleted is True
    assert d.object == "thread.message.deleted"
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(m.id, thread_id=t.id)
    assert [x.id for x in client.beta.threads.messages.list(t.id).data] == [other.id]


def test_message_of_another_thread_is_not_found(client):
    t1 = client.beta.threads.create()
    t2 = client.beta.threads.create()
    m = client.beta.threads.messages.create(t1.id, role="user", content="x")
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(m.id, thread_id=t2.id)


def test_messages_paginate_both_ways_with_cursors(client):
    t = client.beta.threads.create()
    ids = [
        client.beta.threads.messages.create(t.id, role="user", content=f"m{i:02d}").id
        for i in range(N_PAGED)
    ]
    assert len(set(ids)) == N_PAGED
    rev = ids[::-1]
    msgs = client.beta.threads.messages

    assert_page(msgs.list(t.id, limit=PAGE, order="asc"), ids[:20], True)
    assert_page(msgs.list(t.id, limit=PAGE, order="asc", after=ids[19]), ids[20:40], True)
    assert_page(msgs.list(t.id, limit=PAGE, order="asc", after=ids[39]), ids[40:], False)
    assert_page(msgs.list(t.id, limit=PAGE), rev[:20], True)
    assert_page(msgs.list(t.id, limit=PAGE, order="desc", after=rev[19]), rev[20:40], True)
    assert_page(msgs.list(t.id, limit=PAGE, order="desc", after=rev[39]), rev[40:], False)

    asc_all = list(msgs.list(t.id, limit=PAGE, order="asc"))
    assert [m.id for m in asc_all] == ids
    assert [m.content[0].text.value for m in asc_all] == [f"m{i:02d}" for i in range(N_PAGED)]
    assert [m.id for m in msgs.list(t.id, limit=PAGE, order="desc")] == rev
    assert [m.id for m in msgs.list(t.id)] == rev  # default limit 20, desc

    assert_page(msgs.list(t.id, limit=PAGE, order="asc", before=ids[30]), ids[10:30], True)
    assert_page(msgs.list(t.id, limit=PAGE, order="asc", before=ids[5]), ids[:5], False)
    assert_page(msgs.list(t.id, limit=PAGE, order="desc", before=rev[30]), rev[10:30], True)
    assert_page(msgs.list(t.id, limit=100, order="asc"), ids, False)
    assert_page(msgs.list(t.id, limit=1, order="asc"), ids[:1], True)


@pytest.mark.parametrize("limit", [0, 101])
def test_list_limit_out_of_range_is_rejected(client, limit):
    with pytest.raises(openai.BadRequestError) as ei:
        client.beta.assistants.list(limit=limit)
    err = assert_error_body(ei.value, 400)
    assert err["param"] == "limit"


def test_list_order_must_be_asc_or_desc(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.beta.assistants.list(order="sideways")
    err = assert_error_body(ei.value, 400)
    assert err["param"] == "order"


# --------------------------------------------------------------------------------------------
# Errors


def test_unknown_assistant_is_not_found_with_openai_message(client):
    missing = random_id("asst_")
    with pytest.raises(openai.NotFoundError) as ei:
        client.beta.assistants.retrieve(missing)
    err = assert_error_body(ei.value, 404)
    assert err["message"] == f"No assistant found with id '{missing}'."
    assert err["param"] is None
    assert err["code"] is None


def test_temperature_above_two_is_bad_request(client):
    with pytest.raises(openai.BadRequestError) as ei:
        make_assistant(client, temperature=5)
    err = assert_error_body(ei.value, 400)
    assert err["param"] == "temperature"


def test_top_p_above_one_is_bad_request(client):
    with pytest.raises(openai.BadRequestError) as ei:
        make_assistant(client, top_p=1.5)
    assert assert_error_body(ei.value, 400)["param"] == "top_p"


def test_metadata_with_17_keys_is_bad_request(client):
    with pytest.raises(openai.BadRequestError) as ei:
        make_assistant(client, metadata={f"k{i}": "v" for i in range(17)})
    err = assert_error_body(ei.value, 400)
    assert err["param"] == "metadata"
    # 16 keys is the limit, not beyond it.
    ok = make_assistant(client, metadata={f"k{i}": "v" for i in range(16)})
    assert len(ok.metadata) == 16


def test_metadata_value_over_512_chars_is_bad_request(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.beta.threads.create(metadata={"k": "x" * 600})
    err = assert_error_body(ei.value, 400)
    assert (err["param"] or "").startswith("metadata")
    ok = client.beta.threads.create(metadata={"k": "x" * 512})
    assert ok.metadata == {"k": "x" * 512}


def test_metadata_key_over_64_chars_is_bad_request(client):
    t = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as ei:
        client.beta.threads.messages.create(
            t.id, role="user", content="x", metadata={"k" * 65: "v"}
        )
    assert (assert_error_body(ei.value, 400)["param"] or "").startswith("metadata")


def test_unknown_request_field_is_bad_request(client):
    with pytest.raises(openai.BadRequestError) as ei:
        make_assistant(client, extra_body={"bogus": 1})
    err = assert_error_body(ei.value, 400)
    assert "Unrecognized request argument supplied: bogus" in err["message"]


def test_function_tool_without_name_is_bad_request_naming_the_nested_field(client):
    with pytest.raises(openai.BadRequestError) as ei:
        make_assistant(
            client, tools=[{"type": "function", "function": {"parameters": FUNCTION_PARAMS}}]
        )
    err = assert_error_body(ei.value, 400)
    assert err["param"] == "tools[0].function.name"


def test_malformed_id_is_bad_request(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.beta.assistants.retrieve("foo")
    err = assert_error_body(ei.value, 400)
    assert err["message"] == "Invalid 'assistant_id': 'foo'. Expected an ID that begins with 'asst'."
    assert err["param"] == "assistant_id"
    with pytest.raises(openai.BadRequestError) as ei:
        client.beta.threads.retrieve("undefined")
    err = assert_error_body(ei.value, 400)
    assert err["message"] == (
        "Invalid 'thread_id': 'undefined'. Expected an ID that begins with 'thread'."
    )


def test_missing_model_and_invalid_json_are_bad_requests(server):
    auth = {"Authorization": f"Bearer {KEY_A}"}
    status, body = raw_request(server, "POST", "/assistants", headers=auth, body={})
    assert status == 400
    assert body == {
        "error": {
            "message": "Missing required parameter: 'model'.",
            "type": "invalid_request_error",
            "param": "model",
            "code": None,
        }
    }
    req = urllib.request.Request(
        server.base_url + "/assistants",
        data=b'{"model": ',
        method="POST",
        headers={**auth, "Content-Type": "application/json", "OpenAI-Beta": "assistants=v2"},
    )
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=30)
    assert ei.value.code == 400
    body = json.loads(ei.value.read())
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"


def test_unknown_route_is_404_with_error_body(server):
    status, body = raw_request(
        server, "GET", "/no_such_thing", headers={"Authorization": f"Bearer {KEY_A}"}
    )
    assert status == 404
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_message_role_must_be_user_or_assistant(client):
    t = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as ei:
        client.beta.threads.messages.create(t.id, role="system", content="x")
    assert assert_error_body(ei.value, 400)["param"] == "role"


def test_wrong_api_key_is_authentication_error(server):
    bad = server.client("sk-not-a-key")
    with pytest.raises(openai.AuthenticationError) as ei:
        bad.beta.assistants.list()
    err = assert_error_body(ei.value, 401)
    assert err["message"].startswith("Incorrect API key provided")
    assert err["code"] == "invalid_api_key"
    assert "sk-not-a-key" not in err["message"], "the full key must not be echoed back"
    with pytest.raises(openai.AuthenticationError):
        bad.beta.threads.create()


def test_missing_api_key_is_401(server):
    status, body = raw_request(server, "GET", "/assistants")
    assert status == 401
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert "API key" in body["error"]["message"]


def test_key_without_tenant_is_accepted(server):
    c = server.client(KEY_PLAIN)
    a = make_assistant(c, name="plain")
    assert c.beta.assistants.retrieve(a.id).name == "plain"


# --------------------------------------------------------------------------------------------
# Tenants


def test_tenants_cannot_see_each_others_objects(client, client_b):
    a = make_assistant(client, name="tenant A's")
    t = client.beta.threads.create(messages=[{"role": "user", "content": "secret"}])
    m = client.beta.threads.messages.list(t.id).data[0]
    b_asst = make_assistant(client_b, name="tenant B's")

    with pytest.raises(openai.NotFoundError) as ei:
        client_b.beta.assistants.retrieve(a.id)
    assert ei.value.body["message"] == f"No assistant found with id '{a.id}'."
    with pytest.raises(openai.NotFoundError):
        client_b.beta.assistants.update(a.id, name="hijacked")
    with pytest.raises(openai.NotFoundError):
        client_b.beta.assistants.delete(a.id)
    with pytest.raises(openai.NotFoundError):
        client_b.beta.threads.retrieve(t.id)
    with pytest.raises(openai.NotFoundError):
        client_b.beta.threads.update(t.id, metadata={"x": "y"})
    with pytest.raises(openai.NotFoundError):
        client_b.beta.threads.messages.list(t.id)
    with pytest.raises(openai.NotFoundError):
        client_b.beta.threads.messages.retrieve(m.id, thread_id=t.id)
    with pytest.raises(openai.NotFoundError):
        client_b.beta.threads.messages.create(t.id, role="user", content="intrude")
    with pytest.raises(openai.NotFoundError):
        client_b.beta.threads.delete(t.id)

    b_ids = [x.id for x in client_b.beta.assistants.list(limit=100)]
    assert a.id not in b_ids
    assert b_asst.id in b_ids
    assert b_asst.id not in [x.id for x in client.beta.assistants.list(limit=100)]

    # Tenant A's objects are untouched by B's attempts.
    assert client.beta.assistants.retrieve(a.id).name == "tenant A's"
    assert client.beta.threads.retrieve(t.id).metadata == {}
    assert [x.id for x in client.beta.threads.messages.list(t.id).data] == [m.id]


# --------------------------------------------------------------------------------------------
# Persistence


def test_objects_survive_a_server_restart(server, spawn_server, tmp_path):
    storage = StorageConfig.fresh(server.backend, tmp_path)
    first = spawn_server(storage)
    c = first.client(KEY_A)
    a = make_assistant(c, name="durable", metadata={"k": "v"})
    t = c.beta.threads.create(messages=[{"role": "user", "content": "remember me"}])
    first.stop()

    second = spawn_server(storage)
    c2 = second.client(KEY_A)
    assert c2.beta.assistants.retrieve(a.id).model_dump() == a.model_dump()
    assert c2.beta.threads.retrieve(t.id).model_dump() == t.model_dump()
    msgs = c2.beta.threads.messages.list(t.id).data
    assert [m.content[0].text.value for m in msgs] == ["remember me"]
