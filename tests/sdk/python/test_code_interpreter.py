"""The `code_interpreter` tool through the official `openai` Python SDK, as applications use
it: assistants with `tools=[{"type": "code_interpreter"}]` and files, polled and streamed
runs whose code the server runs in the thread's sandboxed Python session (the local
bubblewrap executor, which serves both storage backends; scripts/test.sh installs it).

The stand-in "model" calls the tool as the server offers it (a function `python` taking
`{"code": ...}`, its arguments streamed in pieces); what the code printed or what went wrong
reaches it as the tool message, read back through the stand-in's recorded requests. Besides
the happy paths: a timeout, an exception, a fork bomb and a memory hog, network access, host
files and secrets, a killed session and message attachments.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import signal
import socket
import time
import urllib.parse
import uuid

import pytest
from openai import AssistantEventHandler
from typing_extensions import override

from conftest import KEYS, SANDBOX_MEMORY_MB, StorageConfig

SALES = b"month,amount\n2024-01,120\n2024-01,30\n2024-02,200\n2024-03,75\n2024-03,25\n"
MONTHLY = "month,amount\n2024-01,150\n2024-02,200\n2024-03,100\n"

# Reads the CSV, prints and saves the monthly totals, plots them.
PLOT = """import pandas as pd
import matplotlib.pyplot as plt
df = pd.read_csv('/mnt/data/sales.csv')
totals = df.groupby('month')['amount'].sum()
print(totals.to_string())
totals.to_csv('/mnt/data/monthly.csv')
totals.plot(kind='bar')
plt.title('Monthly totals')
plt.show()
"""
ANSWER = "Here is the chart. The totals are in [monthly.csv](sandbox:/mnt/data/monthly.csv)."
LINK = "sandbox:/mnt/data/monthly.csv"

# src/code_interpreter/prompt.rs SESSION_RESTARTED_NOTE: what the model reads first after its
# session had to be started again.
SESSION_RESTARTED_NOTE = (
    "Note: the Python session was restarted; variables, imports and files written by earlier "
    "code are gone. The user's files were uploaded again to /mnt/data."
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def named(data: bytes, name: str):
    f = io.BytesIO(data)
    f.name = name
    return f


def code_call(code: str) -> dict:
    """A scripted model turn calling the tool once."""
    return {"tool_calls": [{"name": "python", "arguments": json.dumps({"code": code})}]}


def ci_assistant(client, llm, **kw):
    return client.beta.assistants.create(
        model=llm.model,
        instructions="You analyse data.",
        tools=[{"type": "code_interpreter"}],
        **kw,
    )


@pytest.fixture
def threads(client):
    """Threads made by a test, deleted afterwards so their sessions end (each is a Python
    process on the server)."""
    made: list[str] = []
    yield made
    for thread_id in made:
        try:
            client.beta.threads.delete(thread_id)
        except Exception:
            pass


def new_thread(client, threads, **kw):
    t = client.beta.threads.create(**kw)
    threads.append(t.id)
    return t


def run_and_poll(client, thread_id: str, assistant_id: str):
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, poll_interval_ms=100
    )
    assert run.status == "completed", run.model_dump()
    return run


def steps_of(client, thread_id: str, run_id: str):
    return list(client.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread_id, order="asc"))


def code_calls(steps) -> list:
    """The code_interpreter calls of the steps, in order."""
    out = []
    for s in steps:
        if s.type == "tool_calls":
            for c in s.step_details.tool_calls:
                assert c.type == "code_interpreter", c.model_dump()
                out.append(c.code_interpreter)
    return out


def logs_of(ci) -> str:
    """The `logs` output of a call (there is at most one)."""
    logs = [o.logs for o in ci.outputs if o.type == "logs"]
    assert len(logs) <= 1, ci.model_dump()
    return logs[0] if logs else ""


def tool_messages(llm) -> list[str]:
    """The tool results the model read, from its last request (which holds all of the run's)."""
    last = llm.requests()[-1]
    return [m["content"] for m in last["messages"] if m["role"] == "tool"]


def run_cells(client, llm, thread_id: str, assistant_id: str, *codes: str):
    """A run whose model calls the tool once per code (one turn each), then answers; returns
    the calls' code_interpreter objects and the tool results the model read."""
    llm.script(*[code_call(c) for c in codes], {"text": "done"})
    run = run_and_poll(client, thread_id, assistant_id)
    calls = code_calls(steps_of(client, thread_id, run.id))
    assert [c.input for c in calls] == list(codes)
    told = tool_messages(llm)
    assert len(told) >= len(codes), told
    return calls, told[-len(codes):]


# --------------------------------------------------------------------------------------------
# The CSV-and-plot scenario


def _plot_setup(client, llm, threads):
    csv = client.files.create(file=named(SALES, "sales.csv"), purpose="assistants")
    asst = ci_assistant(client, llm, tool_resources={"code_interpreter": {"file_ids": [csv.id]}})
    thread = new_thread(client, threads, messages=[{"role": "user", "content": "Plot the monthly totals."}])
    llm.script(code_call(PLOT), {"text": ANSWER})
    return asst, thread


def _check_image(client, file_id: str) -> None:
    image = client.files.retrieve(file_id)
    assert image.purpose == "assistants_output", image.model_dump()
    png = client.files.content(file_id).read()
    assert png.startswith(PNG_MAGIC), png[:16]
    assert image.bytes == len(png) and len(png) > 1000


def _check_monthly_link(client, text) -> str:
    """The answer's text part: the link to the written CSV annotated; returns its file id."""
    assert text.value == ANSWER
    [a] = text.annotations
    assert a.type == "file_path"
    assert a.text == LINK
    assert (a.start_index, a.end_index) == (ANSWER.index(LINK), ANSWER.index(LINK) + len(LINK))
    out = client.files.retrieve(a.file_path.file_id)
    assert out.filename == "monthly.csv" and out.purpose == "assistants_output"
    assert client.files.content(out.id).read().decode() == MONTHLY
    return out.id


def test_csv_and_plot_polled(client, llm, threads):
    asst, thread = _plot_setup(client, llm, threads)
    run = run_and_poll(client, thread.id, asst.id)

    # The model was offered the tool as a function taking the code, and told of the file.
    first, second = llm.requests()
    [tool] = first["tools"]
    assert tool["function"]["name"] == "python"
    assert tool["function"]["parameters"]["required"] == ["code"]
    system = first["messages"][0]["content"]
    assert system.startswith("You analyse data.") and "/mnt/data/sales.csv" in system, system
    [told] = [m["content"] for m in second["messages"] if m["role"] == "tool"]
    assert "2024-02    200" in told and "[1 image was shown to the user]" in told, told
    assert "[saved sandbox:/mnt/data/monthly.csv" in told, told

    steps = steps_of(client, thread.id, run.id)
    assert [(s.type, s.status) for s in steps] == [("tool_calls", "completed"), ("message_creation", "completed")]
    [ci] = code_calls(steps)
    assert ci.input == PLOT
    assert [o.type for o in ci.outputs] == ["logs", "image"]
    assert ci.outputs[0].logs.splitlines() == ["month", "2024-01    150", "2024-02    200", "2024-03    100"]
    image_id = ci.outputs[1].image.file_id
    _check_image(client, image_id)

    [message] = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
    assert message.id == steps[1].step_details.message_creation.message_id
    assert [p.type for p in message.content] == ["image_file", "text"]
    assert message.content[0].image_file.file_id == image_id
    csv_out = _check_monthly_link(client, message.content[1].text)
    listed = {f.id for f in client.files.list(purpose="assistants_output")}
    assert {image_id, csv_out} <= listed


class Recorder(AssistantEventHandler):
    """Every event (a copy of its data, as the SDK later mutates some), and the message as the
    SDK had accumulated it from the deltas before `thread.message.completed`."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list = []
        self.message_from_deltas = None
        self.exceptions: list = []

    @override
    def on_event(self, event) -> None:
        self.events.append((event.event, event.data.model_copy(deep=True)))

    @override
    def on_message_delta(self, delta, snapshot) -> None:
        self.message_from_deltas = snapshot.model_copy(deep=True)

    @override
    def on_exception(self, exception) -> None:
        self.exceptions.append(exception)

    def names(self) -> list[str]:
        return [n for n, _ in self.events]


def test_csv_and_plot_streamed(client, llm, threads):
    asst, thread = _plot_setup(client, llm, threads)
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=asst.id, event_handler=Recorder()
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
        accumulated_steps = stream.get_final_run_steps()
        final_messages = stream.get_final_messages()
    h = stream
    assert h.exceptions == [] and None not in h.names(), h.names()
    assert run.status == "completed", run.model_dump()
    names = h.names()

    # The tool step: the code in input deltas while the model wrote it, then its outputs,
    # then the step completed.
    tool_step = next(d for n, d in h.events if n == "thread.run.step.created" and d.type == "tool_calls")
    deltas = [
        (i, d.delta.step_details.tool_calls[0].code_interpreter)
        for i, (n, d) in enumerate(h.events)
        if n == "thread.run.step.delta" and d.id == tool_step.id
    ]
    inputs = [(i, ci.input) for i, ci in deltas if ci.input]
    assert len(inputs) >= 2, f"the code came in one piece: {inputs}"
    assert "".join(piece for _, piece in inputs) == PLOT
    [(outputs_at, with_outputs)] = [(i, ci) for i, ci in deltas if ci.outputs]
    completed_at = next(
        i for i, (n, d) in enumerate(h.events) if n == "thread.run.step.completed" and d.id == tool_step.id
    )
    assert max(i for i, _ in inputs) < outputs_at < completed_at, names
    assert [(o.index, o.type) for o in with_outputs.outputs] == [(0, "logs"), (1, "image")]
    assert "2024-03    100" in with_outputs.outputs[0].logs
    image_id = with_outputs.outputs[1].image.file_id
    _check_image(client, image_id)

    # The answer opens with the figure, then its text (whose deltas follow the figure's index).
    message_at = names.index("thread.message.created")
    assert completed_at < message_at
    message_deltas = [d.delta.content for n, d in h.events if n == "thread.message.delta"]
    first = message_deltas[0][0]
    assert (first.index, first.type, first.image_file.file_id) == (0, "image_file", image_id)
    text_parts = [p for parts in message_deltas[1:] for p in parts]
    assert text_parts and all(p.index == 1 and p.type == "text" for p in text_parts)
    assert "".join(p.text.value or "" for p in text_parts) == ANSWER

    # What the SDK accumulated agrees with what the server stored.
    stored_step = client.beta.threads.runs.steps.retrieve(step_id=tool_step.id, run_id=run.id, thread_id=thread.id)
    [stored_ci] = code_calls([stored_step])
    [snapshot] = [s for s in accumulated_steps if s.id == tool_step.id]
    [acc_ci] = code_calls([snapshot])
    assert acc_ci.input == stored_ci.input == PLOT

    def outputs(ci):
        return [(o.type, o.logs if o.type == "logs" else o.image.file_id) for o in ci.outputs]

    assert outputs(acc_ci) == outputs(stored_ci)
    assert outputs(stored_ci)[1] == ("image", image_id)

    [stored] = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
    assert [m.id for m in final_messages] == [stored.id]
    assert final_messages[0].content == stored.content
    from_deltas = h.message_from_deltas
    assert from_deltas.id == stored.id
    assert [p.type for p in from_deltas.content] == ["image_file", "text"]
    assert from_deltas.content[0].image_file.file_id == image_id
    assert from_deltas.content[1].text.value == ANSWER
    # The file link's annotation reached the stream too, as in the stored message.
    assert [a.model_dump(exclude={"index"}) for a in from_deltas.content[1].text.annotations] == [
        a.model_dump() for a in stored.content[1].text.annotations
    ]
    _check_monthly_link(client, stored.content[1].text)


# --------------------------------------------------------------------------------------------
# The session


def test_state_persists_across_calls_and_runs_of_a_thread(client, llm, threads):
    asst = ci_assistant(client, llm)
    thread = new_thread(client, threads)
    # Two calls in one model turn, then a second run on the same thread.
    llm.script(
        {
            "tool_calls": [
                {"name": "python", "arguments": json.dumps({"code": "secret = 41"})},
                {"name": "python", "arguments": json.dumps({"code": "secret + 1"})},
            ]
        },
        {"text": "done"},
    )
    run = run_and_poll(client, thread.id, asst.id)
    first = code_calls(steps_of(client, thread.id, run.id))
    assert [(c.input, logs_of(c)) for c in first] == [("secret = 41", ""), ("secret + 1", "42")]
    assert tool_messages(llm)[-2:] == ["(no output)", "42"]

    calls, told = run_cells(client, llm, thread.id, asst.id, "secret * 2")
    assert logs_of(calls[0]) == "82" and told == ["82"]
    # Another thread has a session of its own.
    other = new_thread(client, threads)
    calls, _ = run_cells(client, llm, other.id, asst.id, "'secret' in globals()")
    assert logs_of(calls[0]) == "False"


def test_timeout_stops_the_cell_and_a_killed_session_is_reported(server, spawn_server, tmp_path):
    """A server with a 2-second cell limit: a cell that sleeps past it gets a TimeoutError
    (its session lives on); one that ignores the interruption is killed with its session, the
    step's logs say so, and the next call's result tells the model the session restarted."""
    srv = spawn_server(
        StorageConfig.fresh(server.backend, tmp_path), env={"CODE_INTERPRETER_TIMEOUT_SECONDS": "2"}
    )
    client, llm = srv.client(), srv.standin.model()
    asst = ci_assistant(client, llm)
    thread = client.beta.threads.create()
    started = time.monotonic()
    calls, told = run_cells(
        client,
        llm,
        thread.id,
        asst.id,
        "kept = 'yes'\nimport time\ntime.sleep(30)",
        "kept",
        "import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\ntime.sleep(30)",
        "'kept' in globals()",
    )
    took = time.monotonic() - started
    # (Left alone, the two sleeping cells alone would take a minute.)
    assert took < 40, f"the cells were not stopped in time ({took:.1f} s)"
    soft, kept, hard, after = [logs_of(c) for c in calls]
    assert soft.splitlines()[-1] == "TimeoutError: Execution exceeded the time limit of 2 seconds", soft
    assert kept == "'yes'"
    assert hard == (
        "Execution timed out after 2 seconds and was stopped. The Python session was restarted: "
        "variables and imports from earlier code are gone."
    )
    assert told[2] == hard
    assert after == "False"
    assert told[3] == SESSION_RESTARTED_NOTE + "\n\nFalse", told[3]


def test_an_exception_is_an_output_and_the_run_completes(client, llm, threads):
    asst = ci_assistant(client, llm)
    thread = new_thread(client, threads)
    calls, told = run_cells(client, llm, thread.id, asst.id, "print('before')\n1/0")
    logs = logs_of(calls[0])
    assert logs.startswith("before\nTraceback (most recent call last):"), logs
    assert logs.splitlines()[-1] == "ZeroDivisionError: division by zero"
    assert told == [logs]


# --------------------------------------------------------------------------------------------
# Containment


def test_a_fork_bomb_and_a_memory_hog_are_contained(client, llm, threads):
    asst = ci_assistant(client, llm)
    thread = new_thread(client, threads)
    calls, _ = run_cells(
        client,
        llm,
        thread.id,
        asst.id,
        "import os\nwhile True:\n    os.fork()",
        "blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 1024**2))",
        "import os, subprocess\nn = len(blocks)\ndel blocks\n"
        "n * 64 < MB, sorted(int(p) for p in os.listdir('/proc') if p.isdigit()), subprocess.run(['true']).returncode"
        .replace("MB", str(SANDBOX_MEMORY_MB)),
    )
    bomb, hog, after = [logs_of(c) for c in calls]
    assert bomb.splitlines()[-1].startswith("BlockingIOError: [Errno 11]"), bomb
    assert hog.splitlines()[-1] == "MemoryError", hog
    # The session lives on: its memory stayed below the limit, nothing of the bomb runs on
    # (only bwrap's init and the Python driver are left) and it can start processes again.
    assert after == "(True, [1, 2], 0)"
    # The server answers, and code runs in a fresh thread.
    assert client.beta.assistants.retrieve(asst.id).id == asst.id
    fresh = new_thread(client, threads)
    calls, _ = run_cells(client, llm, fresh.id, asst.id, "import os\nos.getpid() > 0, sum(range(10))")
    assert logs_of(calls[0]) == "(True, 45)"


def test_code_cannot_reach_the_network(client, llm, threads, standin):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    standin_port = urllib.parse.urlparse(standin.base_url).port
    code = f"""import socket, urllib.request
def attempt(f):
    try:
        f()
        return 'connected'
    except Exception as e:
        return type(e).__name__ + ': ' + str(e)
print('listener', attempt(lambda: socket.create_connection(('127.0.0.1', {port}), timeout=3)))
print('standin', attempt(lambda: urllib.request.urlopen('http://127.0.0.1:{standin_port}/v1/models', timeout=3)))
print('dns', attempt(lambda: socket.getaddrinfo('example.com', 443)))
print('internet', attempt(lambda: socket.create_connection(('1.1.1.1', 443), timeout=3)))
"""
    asst = ci_assistant(client, llm)
    thread = new_thread(client, threads)
    try:
        calls, told = run_cells(client, llm, thread.id, asst.id, code)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected from the sandbox
    finally:
        listener.close()
    lines = dict(line.split(" ", 1) for line in logs_of(calls[0]).splitlines())
    denied = "OSError: [Errno 97] Address family not supported by protocol"
    assert lines["listener"] == denied, lines
    assert lines["standin"] == "URLError: <urlopen error [Errno 97] Address family not supported by protocol>", lines
    assert lines["dns"].startswith("gaierror: [Errno -"), lines
    assert lines["internet"] == denied, lines
    assert told == [logs_of(calls[0])]


# Files and environment a cell looks at: the named host paths must be invisible; every
# process's environment and command line inside is collected.
HOST_PROBE = """import glob, json, os
def read(path):
    try:
        if os.path.isdir(path):
            return 'dir: ' + ' '.join(sorted(os.listdir(path)))
        with open(path, 'rb') as f:
            return 'read: ' + f.read(4000).decode('latin-1')
    except Exception as e:
        return type(e).__name__
found = {{label: read(path) for label, path in {targets!r}.items()}}
procs = {{p: read(p) for p in sorted(glob.glob('/proc/[0-9]*/environ') + glob.glob('/proc/[0-9]*/cmdline'))}}
mounts = read('/proc/self/mountinfo')
print(json.dumps({{'found': found, 'environ': dict(os.environ), 'procs': procs, 'mounts': mounts}}))
"""
SANDBOX_ENV = {"HOME", "LANG", "MPLBACKEND", "MPLCONFIGDIR", "PATH", "PWD"}


def test_host_files_and_secrets_are_not_readable(server, client, llm, threads):
    asst = ci_assistant(client, llm)
    thread = new_thread(client, threads)
    data_dir = server.storage.data_dir.resolve()
    # On the local store, the thread's own object file; on Azurite, a file of the test's.
    own = [p for p in data_dir.rglob(f"*{thread.id}*") if p.is_file()]
    if own:
        host_file = own[0]
    else:
        host_file = data_dir / f"host-{uuid.uuid4().hex}.txt"
        host_file.write_text("a host file")
    assert host_file.is_file(), host_file
    targets = {
        "data_dir": str(data_dir),
        "host_file": str(host_file),
        "server_log": str(server.log_path.resolve()),
        "server_environ": f"/proc/{server.proc.pid}/environ",
        "standin_environ": f"/proc/{server.standin.proc.pid}/environ",
    }
    calls, told = run_cells(client, llm, thread.id, asst.id, HOST_PROBE.format(targets=targets))
    logs = logs_of(calls[0])
    seen = json.loads(logs)
    assert seen["found"] == {label: "FileNotFoundError" for label in targets}, seen["found"]
    assert set(seen["environ"]) == SANDBOX_ENV, seen["environ"]
    assert seen["procs"], "no process was visible to itself"
    # Nothing inside names where the service keeps its data (its mounts, command lines).
    assert seen["mounts"].startswith("read: ") and "/mnt/data" in seen["mounts"], seen["mounts"]
    for text in [seen["mounts"], *seen["procs"].values()]:
        assert str(data_dir) not in text and "code-interpreter" not in text, text
    secrets = [k.split("=")[0] for k in KEYS.split(",")] + ["sk-standin"]
    connection = server.storage.connection_string
    if connection:
        secrets.append(connection)
        secrets += [part.split("=", 1)[1] for part in connection.split(";") if part.startswith("AccountKey=")]
    for secret in secrets:
        assert secret not in logs and secret not in told[0], f"{secret[:12]}... is visible inside the sandbox"


# --------------------------------------------------------------------------------------------
# A lost session


def _children(pid: int) -> list[int]:
    out = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _gone(pid: int) -> bool:
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status  # exited, not yet reaped by the server


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def test_a_killed_session_is_recovered_with_its_files(server, client, llm, threads):
    name = f"notes-{uuid.uuid4().hex[:8]}.txt"
    content = b"the notes of this thread\n"
    f = client.files.create(file=named(content, name), purpose="assistants")
    asst = ci_assistant(client, llm)
    thread = new_thread(client, threads, tool_resources={"code_interpreter": {"file_ids": [f.id]}})
    calls, told = run_cells(client, llm, thread.id, asst.id, f"counter = 1\nopen('/mnt/data/{name}').read()")
    assert logs_of(calls[0]) == repr(content.decode())

    # The session's sandbox: the server's child (bwrap) whose /mnt/data (a tmpfs inside it,
    # seen through its processes' root) holds the thread's file.
    [sandbox] = [
        p
        for p in _children(server.proc.pid)
        if any(pathlib.Path(f"/proc/{q}/root/mnt/data/{name}").exists() for q in _descendants(p))
    ]
    inside = _descendants(sandbox)
    assert inside, "the sandbox runs no Python"
    os.kill(sandbox, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not all(_gone(p) for p in [sandbox, *inside]):
        assert time.monotonic() < deadline, "the sandbox's processes outlived it"
        time.sleep(0.05)

    calls, told = run_cells(
        client,
        llm,
        thread.id,
        asst.id,
        f"import os\n'counter' in globals(), sorted(os.listdir('/mnt/data')), open('/mnt/data/{name}').read()",
    )
    expected = repr((False, [name], content.decode()))
    assert logs_of(calls[0]) == expected
    assert told == [SESSION_RESTARTED_NOTE + "\n\n" + expected]
    # The new session keeps its state again.
    calls, told = run_cells(client, llm, thread.id, asst.id, "counter = 2", "counter")
    assert [logs_of(c) for c in calls] == ["", "2"]
    assert not any(SESSION_RESTARTED_NOTE in t for t in told), told


# --------------------------------------------------------------------------------------------
# Message attachments


def test_message_attachments_are_in_mnt_data(client, llm, threads):
    a = client.files.create(file=named(b"alpha,1\n", "alpha.csv"), purpose="assistants")
    b = client.files.create(file=named(b"beta,2\n", "beta.csv"), purpose="assistants")
    asst = ci_assistant(client, llm)
    code_tools = [{"type": "code_interpreter"}]
    thread = new_thread(
        client,
        threads,
        messages=[{"role": "user", "content": "Read alpha.", "attachments": [{"file_id": a.id, "tools": code_tools}]}],
    )
    assert client.beta.threads.retrieve(thread.id).tool_resources.code_interpreter.file_ids == [a.id]
    listing = "import os\nsorted(os.listdir('/mnt/data'))"
    calls, _ = run_cells(client, llm, thread.id, asst.id, listing, "open('/mnt/data/alpha.csv').read()")
    assert [logs_of(c) for c in calls] == ["['alpha.csv']", "'alpha,1\\n'"]
    assert "/mnt/data/alpha.csv" in llm.requests()[0]["messages"][0]["content"]

    # A later message's attachment joins the running session on the next run.
    client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content="And beta.", attachments=[{"file_id": b.id, "tools": code_tools}]
    )
    calls, _ = run_cells(client, llm, thread.id, asst.id, listing, "open('/mnt/data/beta.csv').read()")
    assert [logs_of(c) for c in calls] == ["['alpha.csv', 'beta.csv']", "'beta,2\\n'"]
    system = llm.requests()[-1]["messages"][0]["content"]
    assert "/mnt/data/alpha.csv" in system and "/mnt/data/beta.csv" in system, system


def test_a_response_runs_code_in_its_container_and_shows_the_outputs(client, llm):
    """The Responses face of the same tool: `container: {"type": "auto", "file_ids"}`, a
    `code_interpreter_call` item with its code, and its outputs with `include[]`."""
    sales = client.files.create(file=named(SALES, "sales.csv"), purpose="assistants")
    llm.script(code_call(PLOT), {"text": "Here is the chart."})
    tool = {"type": "code_interpreter", "container": {"type": "auto", "file_ids": [sales.id]}}
    r = client.responses.create(model=llm.model, input="Plot the monthly totals.",
                                tools=[tool], include=["code_interpreter_call.outputs"])
    assert r.status == "completed", r.model_dump()
    ci, message = r.output
    assert ci.type == "code_interpreter_call" and ci.status == "completed"
    assert ci.code == PLOT
    assert ci.container_id.startswith("cntr_")
    assert [o.type for o in ci.outputs] == ["logs", "image"]
    assert "2024-02    200" in ci.outputs[0].logs
    assert ci.outputs[1].url.startswith("/v1/files/file-")
    assert r.output_text == "Here is the chart."
    # The model was told of the file and read what the code printed.
    first, second = llm.requests()
    assert "/mnt/data/sales.csv" in first["messages"][0]["content"]
    [told] = [m["content"] for m in second["messages"] if m["role"] == "tool"]
    assert "2024-02    200" in told, told
    # Without include[], outputs are not shown.
    llm.script(code_call("print(6 * 7)"), {"text": "42"})
    plain = client.responses.create(model=llm.model, input="6*7?", tools=[tool])
    assert plain.output[0].code == "print(6 * 7)"
    assert plain.output[0].outputs is None
