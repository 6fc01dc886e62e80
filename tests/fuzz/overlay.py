#!/usr/bin/env python3
"""Write the copy of the official spec that the schemathesis run uses.

    overlay.py SPEC_IN OUT.json                 the Assistants spec (CHANGES)
    overlay.py --responses SPEC_IN OUT.json     the Responses and Conversations spec
                                                (RESPONSES_CHANGES, R1-R6 and the shared ones)

The official file (tests/spec/openai-assistants-openapi.yaml) is never edited. Each change below
is a place where that spec is looser or stricter than the API it describes, so that
schemathesis would otherwise report the server for doing what the real API did (or push it
to do something the real API did not). Every change is listed, with its reason, in
tests/fuzz/README.md ("Spec exceptions"); each is marked `x-fuzz-overlay: <id>` in the output.
Most changes *add* constraints the API's documentation states in prose (limits, id
prefixes, unknown-field rejection), so the negative tests get stronger; O3-O5 widen a
response schema where the spec contradicts itself or the documented wire format; O8 adds
links. None turns a check off. (O14, which took out the `vector_stores` helper of
`tool_resources.file_search` until the server had it, is gone.)
"""

import copy
import json
import sys

import yaml

# Path (and body) ids: the API's ids have fixed prefixes (protocol notes section 1); a
# different prefix is answered 400 "Expected an ID that begins with 'thread'", anything else
# with a 404. The spec types them as any string, so positive tests send ids like "0" and
# expect a 404.
ID_PREFIXES = {
    "assistant_id": "asst_",
    "thread_id": "thread_",
    "message_id": "msg_",
    "run_id": "run_",
    "step_id": "step_",
    "file_id": "file-",
    "vector_store_id": "vs_",
    "batch_id": "vsfb_",
}

# Request-body fields holding ids of those kinds, checked the same way (400 on another prefix).
# `tool_call_id` is left alone: it is matched against the run's pending calls instead.
BODY_IDS = {
    "assistant_id": "asst_",
    "file_id": "file-",
    "file_ids": "file-",  # array of ids
    "vector_store_ids": "vs_",  # array of ids
}


def mark(node, change):
    """Tag a changed node (several changes may touch one node)."""
    previous = node.get("x-fuzz-overlay")
    if previous is None:
        node["x-fuzz-overlay"] = change
    elif change not in previous.split(", "):
        node["x-fuzz-overlay"] = f"{previous}, {change}"
    return node


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].split("/")[-1]]
    return node


def operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, op


def request_bodies(spec):
    for _, _, op in operations(spec):
        body = op.get("requestBody")
        if body:
            for media, content in body["content"].items():
                if media in ("application/json", "multipart/form-data"):
                    yield content["schema"]


def object_schemas(spec, root):
    """Every schema node reachable from `root` (each component once), parents first."""
    schemas = spec["components"]["schemas"]
    seen = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        if "$ref" in node:
            name = node["$ref"].split("/")[-1]
            if name not in seen:
                seen.add(name)
                stack.append(schemas[name])
            continue
        yield node
        for key in ("properties",):
            if key in node:
                stack.extend(node[key].values())
        for key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties", "not"):
            if key in node:
                stack.append(node[key])


def id_patterns(spec):
    """O1: path ids carry their kind's prefix (pattern), and so do checked body ids."""
    n = 0
    for _, _, op in operations(spec):
        for p in op.get("parameters", []):
            if p.get("in") == "path" and p["name"] in ID_PREFIXES:
                p["schema"]["pattern"] = "^" + ID_PREFIXES[p["name"]]
                mark(p["schema"], "O1-id-prefix")
                n += 1
    for body in request_bodies(spec):
        for node in object_schemas(spec, body):
            for name, prop in node.get("properties", {}).items():
                if name in BODY_IDS:
                    target = prop["items"] if prop.get("type") == "array" else prop
                    assert target.get("type") == "string", name
                    target["pattern"] = "^" + BODY_IDS[name]
                    mark(target, "O1-id-prefix")
                    n += 1
    return n


def limits(spec):
    """O2: `limit` is 1..100 (1..10000 on GET /files), stated only in the description."""
    n = 0
    for _, _, op in operations(spec):
        for p in op.get("parameters", []):
            if p.get("in") == "query" and p["name"] == "limit":
                high = 10000 if op["operationId"] == "listFiles" else 100
                assert str(high) in p.get("description", "").replace(",", ""), op["operationId"]
                p["schema"].update(minimum=1, maximum=high)
                mark(p["schema"], "O2-limit-range")
                n += 1
    return n


def nullable_list_cursors(spec):
    """O3: `first_id` / `last_id` of a list are null when the page is empty."""
    n = 0
    for name, schema in spec["components"]["schemas"].items():
        props = schema.get("properties", {})
        if name.startswith("List") and "first_id" in props and "last_id" in props:
            for key in ("first_id", "last_id"):
                assert props[key].get("type") == "string", (name, key)
                props[key]["type"] = ["string", "null"]
                mark(props[key], "O3-null-cursor")
                n += 1
    return n


def download_any_type(spec):
    """O4: GET /files/{id}/content answers the stored bytes with their own content type."""
    ok = spec["paths"]["/files/{file_id}/content"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["application/json"]
    ok["content"] = {"*/*": mark({"schema": {"type": "string", "format": "binary"}}, "O4-raw-download")}
    return 1


def file_purpose_evals(spec):
    """O5: CreateFileRequest.purpose allows `evals`; OpenAIFile.purpose must report it."""
    schemas = spec["components"]["schemas"]
    request = resolve(spec, schemas["CreateFileRequest"]["properties"]["purpose"])
    response = schemas["OpenAIFile"]["properties"]["purpose"]
    added = [v for v in request["enum"] if v not in response["enum"]]
    assert added == ["evals"], added
    response["enum"] = response["enum"] + added
    mark(response, "O5-purpose-evals")
    return 1


def closed_request_objects(spec):
    """O6: the API refuses unknown fields at any depth ("Unrecognized request argument
    supplied"); the spec says so (`additionalProperties: false`) only on the top-level
    request schemas. Close every object schema reachable from a request body (JSON, or a
    JSON part of a multipart one) that lists `properties` and says nothing about extra
    ones. Schemas that allow extra keys on
    purpose (Metadata, FunctionParameters, ResponseFormatJsonSchemaSchema) say so
    explicitly and are left alone; allOf members are left alone (closing one would refuse
    the other members' properties)."""
    schemas = spec["components"]["schemas"]
    done = set()
    n = 0

    def walk(node, in_all_of=False):
        nonlocal n
        if isinstance(node, list):
            for x in node:
                walk(x, in_all_of)
            return
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            name = node["$ref"].split("/")[-1]
            if name not in done:
                done.add(name)
                walk(schemas[name], in_all_of)
            return
        if "properties" in node and "additionalProperties" not in node and not in_all_of:
            node["additionalProperties"] = False
            mark(node, "O6-closed-objects")
            n += 1
        for key, value in node.items():
            if key == "allOf":
                walk(value, True)
            elif key == "properties":
                for sub in value.values():
                    walk(sub)
            elif key in ("items", "anyOf", "oneOf", "additionalProperties", "not"):
                walk(value)

    # Multipart bodies too: their JSON parts (a file's `expires_after`) are objects as well.
    for body in request_bodies(spec):
        walk(body)
    return n


def attachment_file_id_required(spec):
    """O7: upstream puts `required: [file_id, tools]` on the attachments *array*, where it
    means nothing, instead of on its items. An attachment names a file, so `file_id` is
    required (the server refuses one without, as the API did); `tools` is left optional as
    the server treats it (the SDK types make both optional)."""
    n = 0
    for body in request_bodies(spec):
        for node in object_schemas(spec, body):
            attachments = node.get("properties", {}).get("attachments")
            if not attachments:
                continue
            for variant in attachments.get("anyOf", [attachments]):
                if variant.get("type") == "array" and "required" in variant:
                    assert variant.pop("required") == ["file_id", "tools"]
                    variant["items"]["required"] = ["file_id"]
                    mark(variant["items"], "O7-attachment-file-id")
                    n += 1
    return n


# O8: OpenAPI links, so the stateful phase reaches objects it created (the spec has none;
# schemathesis infers some). They only steer which requests are made; no check changes.
BODY_ID = "$response.body#/id"
LINKS = {
    "createAssistant": {"assistant_id": BODY_ID},
    "createFile": {"file_id": BODY_ID},
    "createThread": {"thread_id": BODY_ID},
    "createMessage": {"thread_id": "$response.body#/thread_id", "message_id": BODY_ID},
    "createRun": {"thread_id": "$response.body#/thread_id", "run_id": BODY_ID},
    "createThreadAndRun": {"thread_id": "$response.body#/thread_id", "run_id": BODY_ID},
    "listRunSteps": {
        "thread_id": "$request.path.thread_id",
        "run_id": "$request.path.run_id",
        "step_id": "$response.body#/data/0/id",
    },
}


# Links that fill a request-body field (merged into the generated body): a run needs an
# existing assistant, so create-thread-and-run follows create-assistant.
BODY_LINKS = {
    ("createAssistant", "createThreadAndRun"): {"assistant_id": BODY_ID},
}


def links(spec):
    by_id = {op["operationId"]: (path, op) for path, _, op in operations(spec)}
    n = 0
    for source, values in LINKS.items():
        _, op = by_id[source]
        found = {}
        for target, (path, target_op) in by_id.items():
            if target == source:
                continue
            params = [p["name"] for p in target_op.get("parameters", []) if p.get("in") == "path"]
            # link when the source provides every path id of the target and the target's
            # last id is one the source names by its response (not only passed through).
            if params and all(p in values for p in params) and not values[params[-1]].startswith("$request"):
                found[f"fuzz-{target}"] = {
                    "operationId": target,
                    "parameters": {p: values[p] for p in params},
                    "x-fuzz-overlay": "O8-links",
                }
        op["responses"]["200"].setdefault("links", {}).update(found)
        n += len(found)
    for (source, target), body in BODY_LINKS.items():
        by_id[source][1]["responses"]["200"].setdefault("links", {})[f"fuzz-{target}"] = {
            "operationId": target,
            "requestBody": body,
            "x-fuzz-overlay": "O8-links",
        }
        n += 1
    return n


def name_patterns(spec):
    """O9: the name of a function tool and of a json_schema response format "must be a-z,
    A-Z, 0-9, or contain underscores and dashes, with a maximum length of 64" (their
    descriptions); the API refuses other names."""
    schemas = spec["components"]["schemas"]
    names = [
        schemas["FunctionObject"]["properties"]["name"],
        schemas["ResponseFormatJsonSchema"]["properties"]["json_schema"]["properties"]["name"],
    ]
    for name in names:
        assert "maximum length of 64" in name["description"], name
        name["pattern"] = "^[a-zA-Z0-9_-]{1,64}$"
        mark(name, "O9-name-pattern")
    return len(names)


def model_name_length(spec):
    """O10: `model` is a model name. The API refused names that are not models; the server
    cannot know the backend's models and refuses only the empty name and names over 256
    characters. The free-string branch of each request's `model` gets minLength 1 and
    maxLength 256 (the enum branches are model names already)."""
    n = 0
    for schema in ("CreateAssistantRequest", "ModifyAssistantRequest", "CreateRunRequest",
                   "CreateThreadAndRunRequest"):
        model = spec["components"]["schemas"][schema]["properties"]["model"]
        for branch in model["anyOf"]:
            if branch.get("type") == "string" and "enum" not in branch:
                branch.update(minLength=1, maxLength=256)
                mark(branch, "O10-model-name")
                n += 1
    return n


def metadata_limits(spec):
    """O11: metadata is "16 key-value pairs ... keys at most 64 characters, values at most
    512" (its description); the API refuses more. Stated as maxProperties / propertyNames /
    maxLength."""
    metadata = spec["components"]["schemas"]["Metadata"]
    obj = next(b for b in metadata["anyOf"] if b.get("type") == "object")
    assert "maximum length of 64" in obj["description"] and "512" in obj["description"]
    obj["maxProperties"] = 16
    obj["propertyNames"] = {"maxLength": 64}
    obj["additionalProperties"] = {"type": "string", "maxLength": 512}
    mark(obj, "O11-metadata-limits")
    return 1


def truncation_needs_count(spec):
    """O12: a `last_messages` truncation strategy keeps "the n most recent messages"; n is
    `last_messages`, which the spec leaves optional. The API needs it with that type."""
    truncation = spec["components"]["schemas"]["TruncationObject"]
    assert truncation["properties"]["type"]["enum"] == ["auto", "last_messages"]
    assert "anyOf" not in truncation and "oneOf" not in truncation
    truncation["anyOf"] = [
        {"properties": {"type": {"enum": ["auto"]}}},
        {"required": ["last_messages"], "properties": {"last_messages": {"type": "integer"}}},
    ]
    mark(truncation, "O12-truncation-count")
    return 1


def tool_call_id_required(spec):
    """O13: a tool output answers one tool call, named by `tool_call_id`; the spec leaves it
    optional, the API required it."""
    item = spec["components"]["schemas"]["SubmitToolOutputsRunRequest"]["properties"]["tool_outputs"]["items"]
    assert "required" not in item
    item["required"] = ["tool_call_id"]
    mark(item, "O13-tool-call-id")
    return 1


def chunk_overlap_not_negative(spec):
    """O15: chunk_overlap_tokens is a token count ("must not exceed half of
    max_chunk_size_tokens", its description); a negative overlap is refused. minimum 0.
    (The "at most half" relation cannot be said in JSON Schema: hooks.py E6.)"""
    overlap = spec["components"]["schemas"]["StaticChunkingStrategy"]["properties"]["chunk_overlap_tokens"]
    assert "must not exceed half" in overlap["description"] and "minimum" not in overlap
    overlap["minimum"] = 0
    mark(overlap, "O15-chunk-overlap")
    return 1


def batch_ids_xor_files(spec):
    """O16: a file batch takes `file_ids` or `files`, each "mutually exclusive with" the other
    (their descriptions); the schema says anyOf. Made oneOf."""
    batch = spec["components"]["schemas"]["CreateVectorStoreFileBatchRequest"]
    assert batch["anyOf"] == [{"required": ["file_ids"]}, {"required": ["files"]}]
    batch["oneOf"] = batch.pop("anyOf")
    mark(batch, "O16-batch-xor")
    return 1


def search_query_not_empty(spec):
    """O17: upstream puts `minItems: 1` on the *items* of the query array (where it means
    nothing) instead of on the array; moved there. An empty query string is refused the same
    way (nothing to search for): minLength 1."""
    query = spec["components"]["schemas"]["VectorStoreSearchRequest"]["properties"]["query"]
    string, array = query["oneOf"]
    assert string["type"] == "string" and array["type"] == "array"
    assert array["items"].pop("minItems") == 1
    array["minItems"] = 1
    string["minLength"] = 1
    array["items"]["minLength"] = 1
    mark(query, "O17-search-query")
    return 1


SAFE_INTEGER = 2**53 - 1


def interoperable_integers(spec):
    """O18: JSON Schema integers are unbounded; JSON parsers are not. Request integers
    without a bound get the I-JSON range (RFC 7493: +-(2**53 - 1), what the Node SDK can
    send at all) instead of literals like 2.3e38 that no 64-bit field holds."""
    n = 0
    for body in request_bodies(spec):
        for node in object_schemas(spec, body):
            types = node.get("type")
            if types == "integer" or (isinstance(types, list) and "integer" in types):
                if "maximum" not in node:
                    node["maximum"] = SAFE_INTEGER
                    n += 1
                if "minimum" not in node:
                    node["minimum"] = -SAFE_INTEGER
                    n += 1
                mark(node, "O18-safe-integers")
    return n


def stream_event_data_is_json(spec):
    """O19: on the wire an event's `data` is a line of JSON text, not an object. The spec's
    `text/event-stream` schemas (added by the trimmed file) type `data` as the object it
    holds, so every event would fail; `data` becomes a string whose JSON content
    (`contentMediaType` / `contentSchema`) is that object, which schemathesis parses and
    checks. `done`'s `[DONE]` is a plain string already and stays as it is."""
    schemas = spec["components"]["schemas"]
    seen = set()
    n = 0

    def walk(node):
        nonlocal n
        if isinstance(node, list):
            for x in node:
                walk(x)
            return
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            name = node["$ref"].split("/")[-1]
            if name not in seen:
                seen.add(name)
                walk(schemas[name])
            return
        data = node.get("properties", {}).get("data")
        if "event" in node.get("properties", {}) and isinstance(data, dict):
            target = resolve(spec, data)
            if target.get("type") != "string":
                node["properties"]["data"] = mark({
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": data,
                }, "O19-event-data-json")
                n += 1
        for key in ("oneOf", "anyOf", "allOf"):
            walk(node.get(key, []))

    for _, _, op in operations(spec):
        for response in op.get("responses", {}).values():
            stream = response.get("content", {}).get("text/event-stream")
            if stream and "schema" in stream:
                walk(stream["schema"])
    return n


CHANGES = [
    id_patterns,
    limits,
    nullable_list_cursors,
    download_any_type,
    file_purpose_evals,
    closed_request_objects,
    attachment_file_id_required,
    links,
    name_patterns,
    model_name_length,
    metadata_limits,
    truncation_needs_count,
    tool_call_id_required,
    chunk_overlap_not_negative,
    batch_ids_xor_files,
    search_query_not_empty,
    interoperable_integers,
    stream_event_data_is_json,
]


# ---- The Responses and Conversations spec ----

RESPONSES_ID_PREFIXES = {
    "response_id": "^resp_",
    # A conversation is a thread: an Assistants thread id names one too.
    "conversation_id": "^(conv|thread)_",
}


def responses_id_patterns(spec):
    """R1: path ids carry their kind's prefix, as on the Assistants paths (O1); `item_id`
    has none (items of several kinds share the path)."""
    n = 0
    for _, _, op in operations(spec):
        for p in op.get("parameters", []):
            if p.get("in") == "path" and p["name"] in RESPONSES_ID_PREFIXES:
                p["schema"]["pattern"] = RESPONSES_ID_PREFIXES[p["name"]]
                mark(p["schema"], "R1-id-prefix")
                n += 1
    return n


# The image and file content parts: those of messages, and those of a function call's output
# (`*Param`).
IMAGE_PARTS = ("InputImageContent", "InputImageContentParamAutoParam")
FILE_PARTS = ("InputFileContent", "InputFileContentParam")


def content_file_ids(spec):
    """R16: the file ids of content parts (`input_file`, `input_image`, in messages and in
    a function call's output) name files of this server, so they carry the `file-` prefix,
    as every file id does on the Assistants paths (O1); another string is a 400 naming the
    field."""
    schemas = spec["components"]["schemas"]
    n = 0
    for name in IMAGE_PARTS + FILE_PARTS:
        field = schemas[name]["properties"]["file_id"]
        for branch in field["anyOf"]:
            if branch.get("type") == "string":
                branch["pattern"] = "^file-[A-Za-z0-9]{1,64}$"
                mark(branch, "R16-content-file-ids")
                n += 1
    return n


def assistant_easy_message_text(spec):
    """R17: an easy input message of the `assistant` role takes its content as a string only.
    The spec gives every easy message the input content list (`input_text`, `input_image`,
    `input_file`), whatever its role; the API refuses input parts in an assistant message
    (`Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'.`,
    protocol notes section 3.3), and so does the server (400 naming
    `input[n].content[m].type`). Added to EasyInputMessage after O6 (its clauses list
    properties only to constrain them); `role` is required there, so "a role other than
    assistant, or string content" is exact."""
    message = spec["components"]["schemas"]["EasyInputMessage"]
    assert "allOf" not in message and "role" in message["required"]
    roles = [r for r in message["properties"]["role"]["enum"] if r != "assistant"]
    assert len(roles) == 3, roles
    message["allOf"] = [mark({"anyOf": [
        {"properties": {"role": {"enum": roles}}},
        {"properties": {"content": {"type": "string"}}},
    ]}, "R17-assistant-text")]
    return 1


def content_part_sources(spec):
    """R18: an image part names its image (`image_url` or `file_id`, one of them), a file
    part its file (`file_id`, `file_url` or `file_data`): the spec makes each of them
    optional, but a part without one has nothing to give the model (protocol notes section
    3.3: `input_image {image_url | file_id}`, `input_file {file_id | file_url | file_data}`);
    the server refuses one without (400 naming the part) and an image with both. Added
    after O6 (its clauses list properties only to constrain them)."""
    schemas = spec["components"]["schemas"]
    n = 0
    for names, fields, union in ((IMAGE_PARTS, ("image_url", "file_id"), "oneOf"),
                                 (FILE_PARTS, ("file_id", "file_url", "file_data"), "anyOf")):
        for name in names:
            part = schemas[name]
            assert "allOf" not in part and all(f in part["properties"] for f in fields), name
            part["allOf"] = [mark({union: [present(f) for f in fields]}, "R18-part-sources")]
            n += 1
    return n


def responses_null_cursors(spec):
    """R2: `first_id` / `last_id` of the item lists are null on an empty page (O3)."""
    n = 0
    for name in ("ResponseItemList", "ConversationItemList"):
        props = spec["components"]["schemas"][name]["properties"]
        for key in ("first_id", "last_id"):
            assert props[key].get("type") == "string", (name, key)
            props[key]["type"] = ["string", "null"]
            mark(props[key], "R2-null-cursor")
            n += 1
    return n


def response_deleted_body(spec):
    """R3: DELETE /responses/{id} documents `200` without a body; the API (its own example)
    and the server answer `{"id", "object": "response", "deleted": true}`."""
    ok = spec["paths"]["/responses/{response_id}"]["delete"]["responses"]["200"]
    assert "content" not in ok
    ok["content"] = {"application/json": mark({"schema": {
        "type": "object",
        "required": ["id", "object", "deleted"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["response"]},
            "deleted": {"type": "boolean", "enum": [True]},
        },
    }}, "R3-deleted-response")}
    return 1


def wrapped_not_found(spec):
    """R4: the 404s of deleteResponse / cancelResponse give the bare `Error` object as their
    schema; the API's errors (and every other error of the spec, `default`) are wrapped,
    `{"error": {...}}`."""
    n = 0
    for path in ("/responses/{response_id}", "/responses/{response_id}/cancel"):
        for op in spec["paths"][path].values():
            if not isinstance(op, dict) or "404" not in op.get("responses", {}):
                continue
            media = op["responses"]["404"]["content"]["application/json"]
            assert media["schema"] == {"$ref": "#/components/schemas/Error"}
            media["schema"] = {"$ref": "#/components/schemas/ErrorResponse"}
            mark(media, "R4-wrapped-error")
            n += 1
    return n


def response_events_on_the_wire(spec):
    """R5: the `text/event-stream` schema of a response is the event object
    (`ResponseStreamEvent`); on the wire each event is `event: <type>` and `data: <that
    object as one line of JSON>`, and schemathesis checks each parsed event (`event`,
    `data`). The schema becomes that frame, `data`'s JSON content checked against the
    event object (as O19 does for the Assistants events). A `[DONE]` line, which Responses
    streams do not have, fails it."""
    n = 0
    for _, _, op in operations(spec):
        stream = op.get("responses", {}).get("200", {}).get("content", {}).get("text/event-stream")
        if stream:
            assert stream["schema"] == {"$ref": "#/components/schemas/ResponseStreamEvent"}
            stream["schema"] = mark({
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"type": "string"},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {"$ref": "#/components/schemas/ResponseStreamEvent"},
                    },
                },
            }, "R5-event-frames")
            n += 1
    return n


def responses_links(spec):
    """R6: OpenAPI links (O8) from what creates a response or a conversation to what reads,
    changes or deletes it, so the stateful phase reaches real objects."""
    by_id = {op["operationId"]: op for _, _, op in operations(spec)}
    targets = {
        "createResponse": ("response_id", ["getResponse", "deleteResponse", "cancelResponse",
                                           "listInputItems"]),
        "createConversation": ("conversation_id", ["getConversation", "updateConversation",
                                                   "deleteConversation", "listConversationItems",
                                                   "createConversationItems"]),
    }
    n = 0
    for source, (param, names) in targets.items():
        links = by_id[source]["responses"]["200"].setdefault("links", {})
        for target in names:
            links[f"fuzz-{target}"] = {
                "operationId": target,
                "parameters": {param: BODY_ID},
                "x-fuzz-overlay": "R6-links",
            }
            n += 1
    items = by_id["listConversationItems"]["responses"]["200"].setdefault("links", {})
    for target in ("getConversationItem", "deleteConversationItem"):
        items[f"fuzz-{target}"] = {
            "operationId": target,
            "parameters": {"conversation_id": "$request.path.conversation_id",
                           "item_id": "$response.body#/data/0/id"},
            "x-fuzz-overlay": "R6-links",
        }
        n += 1
    return n


def served_tools(spec):
    """R7: the server offers the model the tools it runs itself: `function`, `file_search`
    and `code_interpreter` (in an `auto` container); the other tool types of the spec (web
    search, computer use, MCP, image generation, shell, apply_patch, custom tools, ...) need
    OpenAI's hosted services and are refused (400 naming `tools[n].type`). The tool union,
    the code interpreter's `container` and the tool choice's types are narrowed to those, so
    positive cases stay servable and negative ones check the refusals."""
    schemas = spec["components"]["schemas"]
    keep = ["FunctionTool", "FileSearchTool", "CodeInterpreterTool"]
    tool = schemas["Tool"]
    names = [m["$ref"].split("/")[-1] for m in tool["oneOf"]]
    assert set(keep) <= set(names), names
    tool["oneOf"] = [{"$ref": f"#/components/schemas/{n}"} for n in keep]
    tool.get("discriminator", {}).pop("mapping", None)
    mark(tool, "R7-served-tools")
    container = schemas["CodeInterpreterTool"]["properties"]["container"]
    assert [m.get("type") for m in container["oneOf"]] == ["string", None], container
    container.pop("oneOf")
    container["$ref"] = "#/components/schemas/AutoCodeInterpreterToolParam"
    mark(container, "R7-served-tools")
    choice = schemas["ToolChoiceParam"]
    choice["oneOf"] = [m for m in choice["oneOf"] if m["$ref"].split("/")[-1] in
                       ("ToolChoiceOptions", "ToolChoiceAllowed", "ToolChoiceTypes",
                        "ToolChoiceFunction")]
    assert len(choice["oneOf"]) == 4
    mark(choice, "R7-served-tools")
    types = schemas["ToolChoiceTypes"]["properties"]["type"]
    assert {"file_search", "code_interpreter"} <= set(types["enum"])
    types["enum"] = ["file_search", "code_interpreter"]
    mark(types, "R7-served-tools")
    return 4


def present(name, schema=None):
    """A JSON Schema clause: `name` is given and not null (the server, like the API, reads a
    null field as an absent one)."""
    return {"required": [name], "properties": {name: schema or {"not": {"type": "null"}}}}


def create_response_relations(spec):
    """R8: what a response request needs beyond its fields' types, each refused by the API
    with a 400 naming it: a `model` ("Missing required parameter: 'model'"; the spec makes it
    optional for stored prompts, R8 refuses `prompt`); an `input` unless the context comes
    from `previous_response_id` or `conversation` ("Missing required parameter: 'input'");
    not both of those ("Mutually exclusive parameters"); no `background` without `store`
    ("background requires store"); no stored prompt template (`prompt`: the server has no
    prompt store). Added to CreateResponse's allOf."""
    schema = spec["components"]["schemas"]["CreateResponse"]
    assert "allOf" in schema
    relations = [
        present("model"),
        {"anyOf": [present("input"), present("previous_response_id"),
                   present("conversation")]},
        {"not": {"allOf": [present("previous_response_id"), present("conversation")]}},
        {"not": {"allOf": [present("background", {"const": True}),
                           present("store", {"const": False})]}},
        {"not": present("prompt")},
    ]
    for relation in relations:
        schema["allOf"].append(mark(relation, "R8-response-relations"))
    # The input token count reads its body as a response request (the model defaults):
    # the same input-or-context and exclusivity rules apply.
    counts = spec["components"]["schemas"]["TokenCountsBody"]
    assert "allOf" not in counts
    counts["allOf"] = [mark(relations[1], "R8-response-relations"),
                       mark(relations[2], "R8-response-relations")]
    # So it needs a body (the spec marks it optional), as a response request does.
    body = spec["paths"]["/responses/input_tokens"]["post"]["requestBody"]
    assert not body.get("required")
    body["required"] = True
    mark(body, "R8-response-relations")
    return len(relations) + 3


def function_tool_name_pattern(spec):
    """R9: a function tool's `name` follows the rule of the Assistants spec's function names
    (O9: a-z, A-Z, 0-9, underscores and dashes, at most 64), which the Responses spec states
    only for Chat Completions' functions; the model endpoints refuse other names, so the
    server refuses them up front (400 naming `tools[n].name`). The same for the name of a
    `json_schema` text format, whose description states the rule ("Must be a-z, A-Z, 0-9,
    or contain underscores and dashes, with a maximum length of 64"; 400 naming
    `text.format.name`)."""
    schemas = spec["components"]["schemas"]
    name = schemas["FunctionTool"]["properties"]["name"]
    format_name = schemas["TextResponseFormatJsonSchema"]["properties"]["name"]
    assert "maximum length of 64" in format_name["description"]
    for node in (name, format_name):
        assert node.get("type") == "string" and "pattern" not in node
        node["pattern"] = "^[a-zA-Z0-9_-]{1,64}$"
        mark(node, "R9-function-name")
    return 2


def function_strict_optional(spec):
    """R19: a function tool's `strict` may be left out. The spec (like the SDKs' types)
    requires it, nullable; the API documents leaving it out ("with `strict` omitted or
    null", the schema is made strict: protocol notes section 4.1, from the function
    calling guide), the SDK tests and examples leave it out, and the server reads it as
    null. `parameters` stays required (may be null)."""
    tool = spec["components"]["schemas"]["FunctionTool"]
    assert "strict" in tool["required"] and "parameters" in tool["required"]
    tool["required"] = [r for r in tool["required"] if r != "strict"]
    mark(tool, "R19-function-strict")
    return 1


def file_search_bounds(spec):
    """R10: the bounds the file search tool's descriptions state: `max_num_results` "between
    1 and 50 inclusive", `ranking_options.score_threshold` "a number between 0 and 1"."""
    schemas = spec["components"]["schemas"]
    count = schemas["FileSearchTool"]["properties"]["max_num_results"]
    assert "between 1 and 50" in count["description"]
    count.update(minimum=1, maximum=50)
    mark(count, "R10-file-search-bounds")
    threshold = schemas["RankingOptions"]["properties"]["score_threshold"]
    assert "between 0 and 1" in threshold["description"]
    threshold.update(minimum=0, maximum=1)
    mark(threshold, "R10-file-search-bounds")
    return 2


SERVED_ITEM_TYPES = {"message", "function_call", "function_call_output", "item_reference",
                     "reasoning", "file_search_call", "code_interpreter_call"}


def served_items(spec):
    """R11: the input items the server takes (in a response's `input` and a conversation's
    `items`) are the kinds it can give the model: messages, function calls and their
    outputs, item references, reasoning, file search and code interpreter calls. The other
    kinds (computer, shell, apply_patch, MCP, program, compaction, ...) belong to tools it
    does not run (R7) and are refused with a 400 naming `input[n].type` / `items[n].type`.
    The input item unions are narrowed to those kinds."""
    schemas = spec["components"]["schemas"]

    def kinds(ref):
        node = resolve(spec, ref)
        enum = node.get("properties", {}).get("type", {})
        values = set(enum.get("enum", []))
        for branch in enum.get("anyOf", []):
            values |= set(branch.get("enum", []))
        return values

    item = schemas["Item"]
    item["oneOf"] = [m for m in item["oneOf"] if kinds(m) & SERVED_ITEM_TYPES]
    item.get("discriminator", {}).pop("mapping", None)
    mark(item, "R11-served-items")
    inputs = schemas["InputItem"]
    inputs["oneOf"] = [m for m in inputs["oneOf"]
                       if m.get("$ref", "").endswith(("/EasyInputMessage", "/Item", "/ItemReferenceParam"))]
    assert len(inputs["oneOf"]) == 3, inputs["oneOf"]
    inputs.get("discriminator", {}).pop("mapping", None)
    mark(inputs, "R11-served-items")
    return len(item["oneOf"]) + len(inputs["oneOf"])


def assistant_message_without_id(spec):
    """R20: an output message given back as input may leave out its `id`. The spec's input
    item union takes a message with a `status` only as a whole `OutputMessage`, which
    requires the id; the OpenAI Agents SDK (0.25.0) sends assistant messages with `status`
    and no id: it deletes the placeholder id (`__fake_id__`) of items it made itself before
    sending them (`models/openai_responses.py`, `_clean_item_for_openai`) and strips the ids
    of items it keeps in a session (`run_internal/session_persistence.py`). The server takes
    them (tests/sdk/python/test_agents.py). The input union (`Item`) gets a copy of
    `OutputMessage` without `id` in `required`; the output schemas keep requiring it."""
    schemas = spec["components"]["schemas"]
    param = copy.deepcopy(schemas["OutputMessage"])
    assert "id" in param["required"]
    param["required"] = [f for f in param["required"] if f != "id"]
    schemas["OutputMessageParam"] = mark(param, "R20-output-message-id")
    item = schemas["Item"]
    refs = [m.get("$ref") for m in item["oneOf"]]
    at = refs.index("#/components/schemas/OutputMessage")
    item["oneOf"][at] = {"$ref": "#/components/schemas/OutputMessageParam"}
    mark(item, "R20-output-message-id")
    return 1


def output_text_lists_optional(spec):
    """R21: the `output_text` parts of an output message given back as input may leave out
    `logprobs` and `annotations`. The spec requires both (an output always has them). The
    SDKs' input type (`ResponseOutputTextParam` of the Python SDK) leaves `logprobs` out,
    and OpenAI's API takes parts without `annotations` too: its own Playground sends
    assistant history as `{"type": "output_text", "text": ...}` (OpenAI community, "Responses
    API endpoint - reference documentation errors and issues"), and clients found "OpenAI-
    hosted Responses" tolerating it where stricter servers did not (aaif-goose/goose#11263).
    Applications migrating from OpenAI send such parts, and the server takes them (reading
    both as []). The input copy of the output message (R20) gets content parts whose
    `output_text` has both optional; the output schemas keep requiring them."""
    schemas = spec["components"]["schemas"]
    text = copy.deepcopy(schemas["OutputTextContent"])
    assert {"logprobs", "annotations"} <= set(text["required"])
    text["required"] = [f for f in text["required"] if f not in ("logprobs", "annotations")]
    schemas["OutputTextContentParam"] = mark(text, "R21-output-text-lists")
    content = copy.deepcopy(schemas["OutputMessageContent"])
    refs = [m.get("$ref") for m in content["oneOf"]]
    at = refs.index("#/components/schemas/OutputTextContent")
    content["oneOf"][at] = {"$ref": "#/components/schemas/OutputTextContentParam"}
    mapping = content.get("discriminator", {}).get("mapping", {})
    if mapping:
        assert mapping["output_text"] == "#/components/schemas/OutputTextContent"
        mapping["output_text"] = "#/components/schemas/OutputTextContentParam"
    schemas["OutputMessageContentParam"] = mark(content, "R21-output-text-lists")
    param = schemas["OutputMessageParam"]
    assert param["properties"]["content"]["items"] == {
        "$ref": "#/components/schemas/OutputMessageContent"}
    param["properties"]["content"]["items"] = {
        "$ref": "#/components/schemas/OutputMessageContentParam"}
    mark(param, "R21-output-text-lists")
    return 1


def input_message_id(spec):
    """R23: a whole input message (`InputMessage`: the user, system and developer roles) may
    carry its `id`, a string. The spec lists none, but the items the API lists (a response's
    input items, a conversation's items) carry one, and the protocol notes (section 3.3) take
    a full message item as `{type, role, content, id?, status?}`, so that listed items can be
    given back verbatim; the server takes the id (and gives the item a fresh one). Added
    before O6 closes the object."""
    message = spec["components"]["schemas"]["InputMessage"]
    assert "id" not in message["properties"]
    message["properties"]["id"] = {"type": "string"}
    mark(message, "R23-input-message-id")
    return 1


def update_conversation_needs_a_body(spec):
    """R12: `POST /conversations/{id}` takes `{"metadata"}`, which its schema requires, yet
    the request body is marked optional; without a body there is no `metadata`, and the
    server answers 400."""
    body = spec["paths"]["/conversations/{conversation_id}"]["post"]["requestBody"]
    assert not body.get("required")
    body["required"] = True
    mark(body, "R12-update-body")
    return 1


def discriminator_mappings(spec):
    """R13: the unions of items, content parts and events say `discriminator: {propertyName:
    type}` without a `mapping`; OpenAPI then maps component *names* (`CodeInterpreterToolCall`),
    never the `type` values the objects carry (`code_interpreter_call`), so every object
    fails the discriminator (ST111) and its union. Each such discriminator gets the mapping
    its members' `type` constants give; one whose members do not all have a single `type`
    value is removed (validation then tries every member, as JSON Schema does)."""
    n = 0
    for node in list(spec["components"]["schemas"].values()):
        for owner in [node] + [m for m in node.get("anyOf", []) if isinstance(m, dict)]:
            disc = owner.get("discriminator")
            members = owner.get("oneOf") or owner.get("anyOf") or []
            if not disc or disc.get("mapping") or disc.get("propertyName") != "type":
                continue
            mapping = {}
            for member in members:
                target = resolve(spec, member)
                values = target.get("properties", {}).get("type", {}).get("enum", [])
                if "$ref" not in member or len(values) != 1 or values[0] in mapping:
                    mapping = None
                    break
                mapping[values[0]] = member["$ref"]
            if mapping:
                disc["mapping"] = mapping
            else:
                owner.pop("discriminator")
            mark(owner, "R13-discriminators")
            n += 1
    return n


def tool_call_count_not_negative(spec):
    """R14: `max_tool_calls` is "the maximum number of total calls to built-in tools": a
    count, so not negative (the server refuses one below 0, naming the field)."""
    field = spec["components"]["schemas"]["ResponseProperties"]["properties"]["max_tool_calls"]
    integer = next(b for b in field["anyOf"] if b.get("type") == "integer")
    assert "minimum" not in integer and "maximum number" in integer["description"]
    integer["minimum"] = 0
    mark(integer, "R14-tool-call-count")
    return 1


def conversation_items(spec):
    """R15: what a conversation takes as items. Adding items (`POST
    /conversations/{id}/items`) takes one at least, as the API says ("The items to add",
    1 to 20; an empty list is a 400 naming `items`), in a JSON object (the schema lists its
    properties without `type: object`, so `null` passed it); and neither that nor a new conversation's
    `items` takes an `item_reference`: a conversation keeps items, not pointers to items it
    already has or never had (400 naming `items[n].type`). Their item union is the input
    one without `ItemReferenceParam`."""
    schemas = spec["components"]["schemas"]
    members = [m for m in schemas["InputItem"]["oneOf"]
               if not m.get("$ref", "").endswith("/ItemReferenceParam")]
    schemas["ConversationInputItem"] = mark({"oneOf": members}, "R15-conversation-items")
    n = 0
    add = spec["paths"]["/conversations/{conversation_id}/items"]["post"]["requestBody"]
    add_schema = add["content"]["application/json"]["schema"]
    # Its body is an object (the schema lists properties without saying so: null passed).
    add_schema["type"] = "object"
    add_items = add_schema["properties"]["items"]
    add_items["minItems"] = 1
    targets = [add_items]
    created = schemas["CreateConversationBody"]["properties"]["items"]
    targets += [b for b in created.get("anyOf", []) if b.get("type") == "array"]
    for array in targets:
        array["items"] = {"$ref": "#/components/schemas/ConversationInputItem"}
        mark(array, "R15-conversation-items")
        n += 1
    return n


def image_detail_optional(spec):
    """R22: an `input_image` part of a message given as input may leave out `detail`. The
    spec requires it in `InputImageContent` while its own description says "Defaults to
    `auto`", and the same part elsewhere in requests (`InputImageContentParamAutoParam`, a
    function call's output) has it optional; OpenAI's vision guide sends images without it,
    and the server reads a missing one as `auto`. The request unions (`InputContent`, and
    `FunctionAndCustomToolCallOutput`) get a copy of the part, made after every other change
    so that it keeps them, with `detail` optional; `Message`, which only the server
    writes, keeps requiring it."""
    schemas = spec["components"]["schemas"]
    old = "#/components/schemas/InputImageContent"
    new = "#/components/schemas/InputImageContentParam"
    part = copy.deepcopy(schemas["InputImageContent"])
    assert "detail" in part["required"] and "Defaults to `auto`" in \
        part["properties"]["detail"]["description"]
    part["required"] = [f for f in part["required"] if f != "detail"]
    schemas["InputImageContentParam"] = mark(part, "R22-image-detail")
    n = 0
    for name in ("InputContent", "FunctionAndCustomToolCallOutput"):
        union = schemas[name]
        union["oneOf"] = [{"$ref": new} if m.get("$ref") == old else m for m in union["oneOf"]]
        mapping = union.get("discriminator", {}).get("mapping", {})
        for kind, target in mapping.items():
            if target == old:
                mapping[kind] = new
        mark(union, "R22-image-detail")
        n += 1
    return n


RESPONSES_CHANGES = [
    discriminator_mappings,
    tool_call_count_not_negative,
    served_tools,
    served_items,
    assistant_message_without_id,
    output_text_lists_optional,
    input_message_id,
    conversation_items,
    update_conversation_needs_a_body,
    function_tool_name_pattern,
    function_strict_optional,
    file_search_bounds,
    responses_id_patterns,
    content_file_ids,
    limits,
    responses_null_cursors,
    response_deleted_body,
    wrapped_not_found,
    closed_request_objects,
    # After O6: their clauses list properties only to constrain them, and must stay open.
    create_response_relations,
    assistant_easy_message_text,
    content_part_sources,
    responses_links,
    metadata_limits,
    interoperable_integers,
    response_events_on_the_wire,
    # Last: it copies a part as the changes above left it.
    image_detail_optional,
]


def main():
    args = sys.argv[1:]
    changes = CHANGES
    if args and args[0] == "--responses":
        changes = RESPONSES_CHANGES
        args = args[1:]
    src, out = args[:2]
    with open(src, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    for change in changes:
        count = change(spec)
        print(f"overlay: {change.__name__}: {count} place(s)", file=sys.stderr)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(spec, f)


if __name__ == "__main__":
    main()
