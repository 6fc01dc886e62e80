"""The API documentation the server serves: the OpenAPI document (`/openapi.json`) and the
Swagger UI page (`/docs/`).

- The served document is valid OpenAPI 3.1 (openapi-spec-validator).
- Every operation of the official specs (`tests/spec/openai-assistants-openapi.yaml`; the
  service implements all 44; and `tests/spec/openai-responses-openapi.yaml`: 14 of its 15,
  all but `POST /responses/compact`) is in it, at the same path and method, with the same
  parameters (name, in, required), and nothing else is.
- The page and every file it loads are served with their content types, without a key, while
  the API still wants one.
- What the real server answers, for every operation, validates against the document's schema
  for that operation and status (successes, errors, and the objects of a streamed run), and
  the bounds the document states (list `limit`, `order` and `filter`, temperature, top_p,
  metadata and string sizes) are the ones the server enforces.

Requests go over plain HTTP (urllib), not the SDK, so what is checked is exactly what the
server sent.
"""

from __future__ import annotations

import http.client
import json
import pathlib
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from conftest import KEY_A, random_id
from run_helpers import WEATHER_TOOL, call

pytestmark = pytest.mark.backends("local", "proxy")

ROOT = pathlib.Path(__file__).resolve().parents[3]
OFFICIAL_SPEC = ROOT / "tests" / "spec" / "openai-assistants-openapi.yaml"
RESPONSES_SPEC = ROOT / "tests" / "spec" / "openai-responses-openapi.yaml"
# Operations of the Responses spec the service does not serve.
UNSERVED = {"Compactconversation"}
# The Responses and Conversations paths of the document.
RESPONSES_PATHS = ("/responses", "/conversations")
METHODS = ("get", "post", "delete", "put", "patch")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


class Answer:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def content_type(self) -> str:
        return (self.headers.get("content-type") or "").split(";")[0].strip()

    def json(self):
        return json.loads(self.body)


def request(url: str, method: str = "GET", *, body: bytes | None = None, headers=None) -> Answer:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with OPENER.open(req, timeout=30) as resp:
            return Answer(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.headers, e.read())


def send_headers_only(url: str, method: str, headers: dict, length: int) -> Answer:
    """A request that declares a `length`-byte JSON body and sends none of it: what the server
    answers to the declaration alone (a 413 comes before any body is read)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, parts.path + (f"?{parts.query}" if parts.query else ""))
        for name, value in {**headers, "Content-Type": "application/json",
                            "Content-Length": str(length)}.items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return Answer(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def root_url(server) -> str:
    return f"http://127.0.0.1:{server.port}"


class Doc:
    """The served document: finds the operation of a request and validates answers."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.registry = Registry().with_resource(
            "urn:doc", Resource.from_contents(doc, default_specification=DRAFT202012)
        )
        self.operations = []  # (METHOD, regex, template, operation)
        for template, item in doc["paths"].items():
            pattern = re.sub(r"\{[^/]+\}", "[^/]+", template)
            for method in METHODS:
                if method in item:
                    self.operations.append(
                        (method.upper(), re.compile(f"^{pattern}$"), template, item[method])
                    )

    def find(self, method: str, api_path: str):
        found = [
            (t, op)
            for m, rx, t, op in self.operations
            if m == method and rx.match(api_path)
            # A literal segment wins over a parameter (`/threads/runs` vs `/threads/{id}`).
        ]
        found.sort(key=lambda f: f[0].count("{"))
        assert found, f"{method} {api_path} is not in the document"
        return found[0]

    def validator(self, pointer: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": "urn:doc#" + pointer}, registry=self.registry)

    def response_pointer(self, template: str, method: str, status: int, media: str) -> str:
        escaped = template.replace("~", "~0").replace("/", "~1")
        pointer = f"/paths/{escaped}/{method.lower()}/responses/{status}"
        response = self.doc["paths"][template][method.lower()]["responses"].get(str(status))
        assert response is not None, f"{method} {template} answered {status}, not documented"
        if "$ref" in response:
            pointer = response["$ref"].lstrip("#")
            response = self.doc["components"]["responses"][pointer.rsplit("/", 1)[1]]
        assert media in response.get("content", {}), (
            f"{method} {template} {status}: {media} not documented ({list(response.get('content', {}))})"
        )
        return f"{pointer}/content/{media.replace('/', '~1')}/schema"

    def check(self, instance, pointer: str, what: str) -> None:
        error = best_match(self.validator(pointer).iter_errors(instance))
        assert error is None, (
            f"{what} does not match the document ({pointer}): {error.message} "
            f"at {list(error.absolute_path)}\n{json.dumps(instance)[:2000]}"
        )

    def schema(self, name: str) -> dict:
        return self.doc["components"]["schemas"][name]


@pytest.fixture(scope="module")
def doc(server) -> Doc:
    answer = request(root_url(server) + "/openapi.json")
    assert answer.status == 200 and answer.content_type == "application/json"
    return Doc(answer.json())


class Api:
    """Calls the API and checks each answer against the document; remembers what it saw."""

    def __init__(self, server, doc: Doc):
        self.base = server.base_url
        self.doc = doc
        self.seen: dict[str, set[int]] = {}

    def __call__(self, method: str, path: str, body=None, *, key=KEY_A, query=None,
                 raw: bytes | None = None, content_type: str = "application/json",
                 declared_length: int | None = None, expect: int | None = 200) -> Answer:
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        headers = {"OpenAI-Beta": "assistants=v2"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        if declared_length is not None:
            answer = send_headers_only(url, method, headers, declared_length)
        else:
            answer = request(url, method, body=data, headers=headers)
        template, op = self.doc.find(method, path)
        self.seen.setdefault(op["operationId"], set()).add(answer.status)
        what = f"{method} {path} -> {answer.status}"
        if expect is not None:
            assert answer.status == expect, f"{what}: {answer.body[:500]!r}"
        if answer.content_type == "application/json":
            pointer = self.doc.response_pointer(template, method, answer.status, "application/json")
            self.doc.check(answer.json(), pointer, what)
        elif answer.content_type == "text/event-stream":
            self.doc.response_pointer(template, method, answer.status, "text/event-stream")
            self.check_events(answer.body.decode(), what)
        else:
            # Downloads: the stored bytes with their own type, documented as `*/*`.
            self.doc.response_pointer(template, method, answer.status, "*/*")
        return answer

    def check_events(self, text: str, what: str) -> None:
        """Every object a stream carries has the shape the document gives it."""
        if what.split()[1].startswith("/responses"):
            self.check_response_events(text, what)
            return
        event = None
        names = []
        for line in text.splitlines():
            if line.startswith("event:"):
                event = line[len("event:"):].strip()
                names.append(event)
            elif line.startswith("data:") and event not in (None, "done"):
                data = json.loads(line[len("data:"):])
                schema = None
                if event == "thread.created":
                    schema = "Thread"
                elif event.startswith("thread.run.step.") and not event.endswith(".delta"):
                    schema = "RunStep"
                elif event.startswith("thread.run.") and not event.startswith("thread.run.step"):
                    schema = "Run"
                elif event.startswith("thread.message.") and not event.endswith(".delta"):
                    schema = "Message"
                if schema:
                    self.doc.check(data, f"/components/schemas/{schema}", f"{what} event {event}")
        assert names and names[-1] == "done", f"{what}: events {names}"

    def check_response_events(self, text: str, what: str) -> None:
        """A response's stream: each event's data is a `ResponseStreamEvent` whose `type` is
        the event's name, sequence numbers count up by one, and the stream ends with the
        terminal event, without `[DONE]`."""
        assert "[DONE]" not in text, f"{what}: a Responses stream has no [DONE]"
        events = []
        event = None
        for line in text.splitlines():
            if line.startswith("event:"):
                event = line[len("event:"):].strip()
            elif line.startswith("data:"):
                data = json.loads(line[len("data:"):])
                self.doc.check(data, "/components/schemas/ResponseStreamEvent", f"{what} event {event}")
                assert data["type"] == event, f"{what}: event {event} carries {data['type']}"
                events.append(data)
        assert events, f"{what}: no events"
        numbers = [e["sequence_number"] for e in events]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), f"{what}: {numbers}"
        assert events[-1]["type"] in ("response.completed", "response.failed", "response.incomplete"), (
            f"{what}: ends with {events[-1]['type']}"
        )


def multipart(fields: dict[str, str], filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "b" + uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: text/plain\r\n\r\n".encode() + data + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def wait(api: Api, path: str, done, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        obj = api("GET", path).json()
        if done(obj):
            return obj
        assert time.monotonic() < deadline, f"{path} still {obj.get('status')}"
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# The document itself


def test_served_document_is_valid_openapi_3_1(doc):
    assert doc.doc["openapi"] == "3.1.0"
    validate_openapi(doc.doc)
    assert doc.doc["servers"] == [{"url": "/v1", "description": "This server"}]
    assert doc.doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc.doc["components"]["securitySchemes"]["bearer"]["description"],
    }


@pytest.mark.parametrize("spec_file, expected", [(OFFICIAL_SPEC, 44), (RESPONSES_SPEC, 14)],
                         ids=["assistants", "responses"])
def test_every_official_operation_is_documented_with_the_same_parameters(doc, spec_file, expected):
    assert spec_file.is_file(), f"the official spec is missing: {spec_file}"
    official = yaml.safe_load(spec_file.read_text())
    count = 0
    for path, item in official["paths"].items():
        for method in METHODS:
            if method not in item or item[method]["operationId"] in UNSERVED:
                continue
            count += 1
            spec_op = item[method]
            ours = doc.doc["paths"].get(path, {}).get(method)
            assert ours is not None, f"{method.upper()} {path} ({spec_op['operationId']}) missing"
            assert ours["operationId"] == spec_op["operationId"]
            params = lambda op: sorted(
                (p["name"], p["in"], bool(p.get("required", False))) for p in op.get("parameters", [])
            )
            assert params(ours) == params(spec_op), f"{method.upper()} {path}"
            assert ("requestBody" in ours) == ("requestBody" in spec_op), f"{method.upper()} {path}"
    assert count == expected
    responses_api = spec_file == RESPONSES_SPEC
    ours_count = sum(1 for path, item in doc.doc["paths"].items() for m in METHODS
                     if m in item and path.startswith(RESPONSES_PATHS) == responses_api)
    assert ours_count == count


# --------------------------------------------------------------------------------------------
# The page


@pytest.mark.backends("local", "functions", "proxy")
def test_swagger_page_and_its_files_are_served_without_a_key(server):
    base = root_url(server)
    # The API itself still wants a key.
    assert request(base + "/v1/assistants").status == 401

    docs = request(base + "/docs")
    assert docs.status == 302 and docs.headers["location"] == "docs/"
    page = request(base + "/docs/")
    assert page.status == 200 and page.content_type == "text/html"
    html = page.body.decode()
    assert 'id="swagger-ui"' in html
    files = re.findall(r'(?:src|href)="(?:\./)?([^"/:]+)"', html)
    assert {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-initializer.js"} <= set(files)
    types = {"css": {"text/css"}, "js": {"text/javascript", "application/javascript"},
             "png": {"image/png"}}
    for name in files:
        answer = request(f"{base}/docs/{name}")
        assert answer.status == 200, name
        assert answer.content_type in types[name.rsplit(".", 1)[1]], (name, answer.content_type)
        assert answer.body, name
    initializer = request(base + "/docs/swagger-initializer.js").body.decode()
    assert '"url": "openapi.json"' in initializer

    beside = request(base + "/docs/openapi.json")
    assert beside.status == 200 and beside.content_type == "application/json"
    assert beside.json() == request(base + "/openapi.json").json()
    # Under the Functions host's default `/api` prefix the server URL follows.
    assert request(base + "/api/openapi.json").json()["servers"][0]["url"] == "/api/v1"

    # `/` sends browsers to the playground and tells programs where things are.
    browser = request(base + "/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.status == 302 and browser.headers["location"] == "playground/"
    service = request(base + "/", headers={"Accept": "application/json"}).json()
    assert service["docs"] == "/docs/" and service["openapi"] == "/openapi.json"
    assert service["playground"] == "/playground/"
    # Nothing else of the bundle, and nothing outside it.
    assert request(base + "/docs/swagger-ui-bundle.js.map").status == 404
    assert request(base + "/docs/../Cargo.toml").status == 404


# --------------------------------------------------------------------------------------------
# Real answers against the document


def test_every_operation_answers_as_documented(server, doc, llm):
    api = Api(server, doc)
    text = b"Oslo is the capital of Norway. It lies at the head of the Oslofjord."

    # Files.
    body, ctype = multipart({"purpose": "assistants"}, "oslo.txt", text)
    file1 = api("POST", "/files", raw=body, content_type=ctype).json()
    body, ctype = multipart({"purpose": "assistants"}, "more.txt", b"Bergen is rainy.")
    file2 = api("POST", "/files", raw=body, content_type=ctype).json()
    api("GET", "/files", query={"purpose": "assistants"})
    api("GET", f"/files/{file1['id']}")
    download = api("GET", f"/files/{file1['id']}/content")
    assert download.body == text

    # Vector stores, their files and batches, search.
    vs = api("POST", "/vector_stores", {"name": "kb", "file_ids": [file1["id"]],
                                        "metadata": {"k": "v"}}).json()
    vs_path = f"/vector_stores/{vs['id']}"
    api("GET", "/vector_stores")
    api("POST", vs_path, {"name": "kb2", "expires_after": {"anchor": "last_active_at", "days": 7}})
    wait(api, f"{vs_path}/files/{file1['id']}", lambda f: f["status"] != "in_progress")
    api("GET", vs_path)
    api("GET", f"{vs_path}/files", query={"filter": "completed"})
    api("GET", f"{vs_path}/files/{file1['id']}/content")
    api("POST", f"{vs_path}/files/{file1['id']}", {"attributes": {"city": "Oslo", "n": 1}})
    found = api("POST", f"{vs_path}/search", {
        "query": "capital of Norway", "max_num_results": 5,
        "filters": {"type": "and", "filters": [{"type": "eq", "key": "city", "value": "Oslo"}]},
        "ranking_options": {"score_threshold": 0.0},
    }).json()
    assert found["data"] and found["data"][0]["file_id"] == file1["id"]
    batch = api("POST", f"{vs_path}/file_batches", {"file_ids": [file2["id"]]}).json()
    batch_path = f"{vs_path}/file_batches/{batch['id']}"
    api("GET", batch_path)
    api("GET", f"{batch_path}/files")
    api("POST", f"{batch_path}/cancel")
    api("POST", f"{vs_path}/files", {"file_id": file2["id"]})

    # Assistants.
    assistant = api("POST", "/assistants", {
        "model": llm.model, "name": "doc", "instructions": "Be brief.", "tools": [WEATHER_TOOL],
        "temperature": 0.5, "top_p": 0.9, "metadata": {"a": "b"},
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    }).json()
    a_path = f"/assistants/{assistant['id']}"
    api("GET", "/assistants", query={"limit": 5, "order": "asc"})
    api("GET", a_path)
    api("POST", a_path, {"description": "documented", "response_format": "auto"})

    # Threads and messages.
    thread = api("POST", "/threads", {"messages": [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"},
                                     {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}}],
         "attachments": [{"file_id": file1["id"], "tools": [{"type": "code_interpreter"}]}]},
    ]}).json()
    t_path = f"/threads/{thread['id']}"
    api("GET", t_path)
    api("POST", t_path, {"metadata": {"topic": "weather"}})
    msg = api("POST", f"{t_path}/messages", {"role": "user", "content": "Please answer."}).json()
    m_path = f"{t_path}/messages/{msg['id']}"
    api("GET", f"{t_path}/messages")
    api("GET", m_path)
    api("POST", m_path, {"metadata": {"seen": "yes"}})

    # A run that calls a tool, gets its output and answers; its steps.
    llm.script({"tool_calls": [call("get_weather", {"city": "Oslo"})]}, {"text": "Cold."})
    run = api("POST", f"{t_path}/runs", {"assistant_id": assistant["id"],
                                         "truncation_strategy": {"type": "last_messages", "last_messages": 10},
                                         "tool_choice": "auto"}).json()
    r_path = f"{t_path}/runs/{run['id']}"
    run = wait(api, r_path, lambda r: r["status"] == "requires_action")
    steps = api("GET", f"{r_path}/steps").json()
    api("GET", f"{r_path}/steps/{steps['data'][0]['id']}")
    calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    api("POST", f"{r_path}/submit_tool_outputs",
        {"tool_outputs": [{"tool_call_id": c["id"], "output": "-3 C"} for c in calls]})
    wait(api, r_path, lambda r: r["status"] == "completed")
    api("GET", f"{r_path}/steps", query={"order": "asc"})
    api("GET", f"{t_path}/messages", query={"run_id": run["id"]})
    api("GET", f"{t_path}/runs")
    api("POST", r_path, {"metadata": {"checked": "yes"}})

    # A streamed run: its events carry documented objects.
    llm.script({"text": "Streamed answer."})
    api("POST", f"{t_path}/runs", {"assistant_id": assistant["id"], "stream": True})

    # A run cancelled while it waits for tool outputs; a thread created with its run.
    llm.script({"tool_calls": [call("get_weather", {"city": "Rome"})]})
    run2 = api("POST", f"{t_path}/runs", {"assistant_id": assistant["id"]}).json()
    wait(api, f"{t_path}/runs/{run2['id']}", lambda r: r["status"] == "requires_action")
    api("POST", f"{t_path}/runs/{run2['id']}/cancel")
    llm.script({"text": "New thread."})
    run3 = api("POST", "/threads/runs", {"assistant_id": assistant["id"],
                                         "thread": {"messages": [{"role": "user", "content": "hi"}]}}).json()
    wait(api, f"/threads/{run3['thread_id']}/runs/{run3['id']}", lambda r: r["status"] == "completed")

    # Conversations and their items (every item kind a request can add).
    conv = api("POST", "/conversations", {"metadata": {"k": "v"}, "items": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "input_text", "text": "Weather?"},
                                     {"type": "input_image", "file_id": file1["id"]}]},
    ]}).json()
    c_path = f"/conversations/{conv['id']}"
    api("GET", c_path)
    api("POST", c_path, {"metadata": {"k": "w"}})
    added = api("POST", f"{c_path}/items", {"items": [
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "-3 C"},
        {"type": "reasoning", "id": "rs_x", "summary": [{"type": "summary_text", "text": "cold"}]},
        {"type": "file_search_call", "id": "fs_x", "queries": ["oslo"], "status": "completed",
         "results": []},
        {"type": "code_interpreter_call", "id": "ci_x", "code": "1+1", "outputs": [],
         "container_id": "cntr_x", "status": "completed"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Cold.",
                                           "annotations": []}]},
    ]}, query={"include[]": ["file_search_call.results"]}).json()
    api("GET", f"{c_path}/items", query={"include[]": ["code_interpreter_call.outputs"]})
    api("GET", f"{c_path}/items/{added['data'][0]['id']}")
    api("DELETE", f"{c_path}/items/{added['data'][0]['id']}")
    # A thread of the Assistants API is a conversation too.
    api("GET", f"/conversations/{thread['id']}/items", query={"order": "asc"})
    api("GET", f"/conversations/{random_id('conv_')}", expect=404)

    # The bounds of every list's query parameters, as the document states them.
    ids = {"assistant_id": assistant["id"], "thread_id": thread["id"], "run_id": run["id"],
           "vector_store_id": vs["id"], "batch_id": batch["id"], "file_id": file1["id"],
           "conversation_id": conv["id"]}
    checked = check_list_parameters(api, doc, ids)
    assert checked >= 8

    # Errors: each answer of the documented error shape, at its documented status.
    api("GET", f"/assistants/{random_id('asst_')}", expect=404)
    api("GET", "/assistants", query={"limit": 0}, expect=400)
    api("POST", "/assistants", {"model": llm.model, "bogus": 1}, expect=400)
    api("GET", "/assistants", key=None, expect=401)
    # One byte over the default MAX_REQUEST_BYTES (8 MiB).
    api("POST", f"{t_path}/messages", declared_length=8 * 1024 * 1024 + 1, expect=413)
    api("POST", f"{t_path}/runs/{run['id']}/cancel", expect=400)

    # Deletes.
    api("DELETE", c_path)
    api("DELETE", f"{vs_path}/files/{file2['id']}")
    api("DELETE", vs_path)
    api("DELETE", m_path)
    api("DELETE", t_path)
    api("DELETE", a_path)
    api("DELETE", f"/files/{file1['id']}")

    # (The Responses and Conversations operations: the next test.)
    every = {op["operationId"] for _, _, t, op in doc.operations if not t.startswith(RESPONSES_PATHS)}
    answered = {op for op, statuses in api.seen.items() if 200 in statuses and op in every}
    assert answered == every, f"not exercised: {sorted(every - answered)}"
    statuses = set().union(*api.seen.values())
    assert {200, 400, 401, 404, 413} <= statuses


def test_every_responses_operation_answers_as_documented(server, doc, llm):
    """The 14 Responses and Conversations operations, each answering 200 (and the errors
    they share) as the document says: responses plain, streamed, in the background (its
    stream replayed), chained and in a conversation; conversations and their items."""
    api = Api(server, doc)

    # A conversation with an item, changed, and given more items.
    conv = api("POST", "/conversations", {
        "metadata": {"topic": "doc"},
        "items": [{"type": "message", "role": "user", "content": "Hello."}],
    }).json()
    c_path = f"/conversations/{conv['id']}"
    api("GET", c_path)
    api("POST", c_path, {"metadata": {"topic": "weather"}})
    added = api("POST", f"{c_path}/items", {"items": [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Oslo?"}]},
    ]}).json()
    api("GET", f"{c_path}/items", query={"limit": 5, "order": "asc"})
    api("GET", f"{c_path}/items/{added['data'][0]['id']}")

    # A response in the conversation, one chained to it, their input items.
    llm.script({"text": "Cold."})
    first = api("POST", "/responses", {"model": llm.model, "input": "And tomorrow?",
                                      "conversation": conv["id"]}).json()
    assert first["status"] == "completed", first
    r_path = f"/responses/{first['id']}"
    api("GET", r_path)
    api("GET", f"{r_path}/input_items", query={"limit": 10, "order": "asc"})
    llm.script({"text": "Warmer."})
    api("POST", "/responses", {"model": llm.model, "input": [{"role": "user", "content": "Sure?"}],
                               "previous_response_id": first["id"], "instructions": "Be brief."})
    api("POST", "/responses/input_tokens", {"model": llm.model, "input": "How many tokens?"})

    # A streamed response; a background one, streamed, cancelled when already finished, and
    # its stream replayed after its first event.
    llm.script({"text": "Streamed."})
    api("POST", "/responses", {"model": llm.model, "input": "Stream it.", "stream": True})
    llm.script({"text": "In the background."})
    streamed = api("POST", "/responses", {"model": llm.model, "input": "Later.",
                                          "background": True, "stream": True})
    created = next(json.loads(line[len("data:"):]) for line in streamed.body.decode().splitlines()
                   if line.startswith("data:"))
    replay = api("GET", f"/responses/{created['response']['id']}",
                 query={"stream": "true", "starting_after": 0})
    assert '"sequence_number":0' not in replay.body.decode().replace(" ", "")
    llm.script({"text": "Also in the background."})
    background = api("POST", "/responses", {"model": llm.model, "input": "Later.",
                                            "background": True}).json()
    b_path = f"/responses/{background['id']}"
    wait(api, b_path, lambda r: r["status"] in ("completed", "failed", "incomplete", "cancelled"))
    api("POST", f"{b_path}/cancel")

    # The item lists' query bounds, as the document states them.
    ids = {"response_id": first["id"], "conversation_id": conv["id"]}
    assert check_list_parameters(api, doc, ids, only=RESPONSES_PATHS) == 2

    # Errors in the documented shape.
    api("GET", "/responses/resp_" + "x" * 24, expect=404)
    api("GET", f"/conversations/{random_id('conv_')}", expect=404)
    api("POST", "/responses", {"model": llm.model, "input": "x", "temperature": 9}, expect=400)
    api("GET", c_path, key=None, expect=401)

    # Deletes.
    api("DELETE", f"{c_path}/items/{added['data'][0]['id']}")
    api("DELETE", r_path)
    api("DELETE", c_path)

    every = {op["operationId"] for _, _, t, op in doc.operations if t.startswith(RESPONSES_PATHS)}
    answered = {op for op, statuses in api.seen.items() if 200 in statuses}
    assert answered == every, f"not exercised: {sorted(every - answered)}"


def check_list_parameters(api: Api, doc: Doc, ids: dict, only: tuple = ("/",)) -> int:
    """For every list (under the paths `only` starts): `limit` at its bounds and beyond them,
    every `order` and `filter` value and one that is none of them. Returns how many lists
    were checked."""
    checked = 0
    for method, _, template, op in doc.operations:
        params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
        if method != "GET" or "limit" not in params or not template.startswith(only):
            continue
        if only == ("/",) and template.startswith(RESPONSES_PATHS):
            continue
        path = re.sub(r"\{([^}]+)\}", lambda m: ids[m.group(1)], template)
        limit = params["limit"]["schema"]
        api("GET", path, query={"limit": limit["maximum"]})
        api("GET", path, query={"limit": limit["minimum"]})
        api("GET", path, query={"limit": limit["maximum"] + 1}, expect=400)
        api("GET", path, query={"limit": limit["minimum"] - 1}, expect=400)
        for name in ("order", "filter"):
            if name in params:
                for value in params[name]["schema"]["enum"]:
                    api("GET", path, query={name: value})
                api("GET", path, query={name: "sideways"}, expect=400)
        checked += 1
    return checked


def test_request_bounds_are_the_ones_the_server_enforces(server, doc, llm):
    """The bounds the document gives CreateAssistant (and Metadata) hold exactly: the bound
    itself is accepted, one step beyond it refused."""
    api = Api(server, doc)
    schema = doc.schema("CreateAssistant")["properties"]
    base = {"model": llm.model}

    def create(extra: dict, expect: int):
        api("POST", "/assistants", {**base, **extra}, expect=expect)

    numbers = {k: s for k, s in schema.items() if "maximum" in s}
    assert {"temperature", "top_p"} <= set(numbers)
    for name, s in numbers.items():
        create({name: s["maximum"]}, 200)
        create({name: s["minimum"]}, 200)
        create({name: s["maximum"] + 0.01}, 400)
        create({name: s["minimum"] - 0.01}, 400)
    strings = {k: s for k, s in schema.items() if "maxLength" in s}
    assert {"name", "description", "instructions", "model"} <= set(strings)
    for name, s in strings.items():
        create({name: "x" * s["maxLength"]}, 200)
        create({name: "x" * (s["maxLength"] + 1)}, 400)
        if s.get("minLength"):
            create({name: ""}, 400)
    assert schema["tools"]["maxItems"] == 128

    meta = doc.schema("Metadata")
    pairs = meta["maxProperties"]
    key_max = meta["propertyNames"]["maxLength"]
    value_max = meta["additionalProperties"]["maxLength"]
    assert (pairs, key_max, value_max) == (16, 64, 512)
    create({"metadata": {f"k{i}": "v" for i in range(pairs)}}, 200)
    create({"metadata": {f"k{i}": "v" for i in range(pairs + 1)}}, 400)
    create({"metadata": {"k" * key_max: "x" * value_max}}, 200)
    create({"metadata": {"k" * (key_max + 1): "v"}}, 400)
    create({"metadata": {"k": "x" * (value_max + 1)}}, 400)

    effort = doc.schema("ReasoningEffort")["enum"]
    for value in effort:
        create({"reasoning_effort": value}, 200)
    create({"reasoning_effort": "enormous"}, 400)
