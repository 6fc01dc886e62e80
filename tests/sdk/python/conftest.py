"""Fixtures for the SDK conformance tests.

Each test runs once per backend: "local" (a fresh temp directory), "azure" (Azurite, a unique
container and queue per server instance) and, for the modules that opt in (see
`pytest.mark.backends` / pytest_generate_tests), "functions": the server as an Azure Functions
custom handler behind `functions-host-emulator` (Azurite storage through AzureWebJobsStorage, a
unique container and queue; no queue poller in the handler, runs advance only through the
emulator's queue-trigger deliveries) and "proxy": a second server with BACKEND=proxy in front of
a stored one (local store), the SDK talking to the proxy, the stand-in to the stored server (see
start_server). One server (or proxy pair) is started per backend for the whole session (pytest
groups the tests by backend, so only one runs at a time) and is stopped afterwards. Tests keep
apart by creating their own objects; tests that need an empty tenant use a key of their own (see
KEYS).

Every server gets a Chat Completions stand-in process of its own (`llm-standin`, pointed at by
the server's OPENAI_BASE_URL), stopped together with the server. Tests script what the "model"
answers and read what reached it through the `llm` fixture (a model name unique to the test, so
tests never consume each other's scripts; see ModelScript).

Needs ASSISTANTS_BIN (the server binary), LLM_STANDIN_BIN (the stand-in binary),
AZURITE_CONNECTION_STRING (a running Azurite) and, for the "functions" backend,
FUNCTIONS_EMULATOR_BIN (the Functions-host stand-in); scripts/test.sh provides all four. Missing
any is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import pathlib
import queue
import secrets
import signal
import socket
import string
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field

import openai
import pytest

# Every backend, in the order the session runs them. A module picks its own with
# `pytestmark = pytest.mark.backends(...)`; without the mark it gets DEFAULT_BACKENDS.
BACKENDS = ["local", "azure", "functions", "proxy"]
DEFAULT_BACKENDS = ["local", "azure"]

KEY_A = "sk-test-a"
KEY_B = "sk-test-b"
# Used only by the assistant pagination test, so its tenant starts empty.
KEY_PAGING = "sk-test-paging"
# A key that names no tenant (the `key` form of ASSISTANTS_API_KEYS).
KEY_PLAIN = "sk-test-plain"
KEYS = f"{KEY_A}=tenanta,{KEY_B}=tenantb,{KEY_PAGING}=tenantpaging,{KEY_PLAIN}"
# The "proxy" backend's upstream keys: each of its tenants maps to the same tenant upstream
# (the stored server has the same KEYS), the key without a tenant to the upstream's default.
UPSTREAM_TENANT_KEYS = f"tenanta={KEY_A},tenantb={KEY_B},tenantpaging={KEY_PAGING}"
UPSTREAM_API_KEY = KEY_PLAIN

READY_TIMEOUT_S = 20.0
# The emulator itself waits up to 30 s for the handler before it gives up.
EMULATOR_READY_TIMEOUT_S = 40.0
STOP_TIMEOUT_S = 10.0

BASE62 = string.ascii_letters + string.digits


def random_id(prefix: str) -> str:
    """An id of the right shape (`prefix` + 24 base62 characters) that no server has issued."""
    return prefix + "".join(secrets.choice(BASE62) for _ in range(24))


def _required_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(
            f"{name} is not set; run the suite through scripts/test.sh "
            "(it builds the server and starts Azurite)",
            pytrace=False,
        )
    return value


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class StorageConfig:
    """Where one server keeps its state; reusing it for a second server shares the state."""

    backend: str
    data_dir: pathlib.Path
    container: str = ""
    queue: str = ""
    connection_string: str = ""

    @classmethod
    def fresh(cls, backend: str, tmp_dir: pathlib.Path) -> "StorageConfig":
        # "proxy": `data_dir` is the stored (upstream) server's local store.
        if backend in ("local", "proxy"):
            return cls(backend, tmp_dir / "data")
        return cls(
            backend,
            tmp_dir / "data",
            container="t" + uuid.uuid4().hex,
            queue="w" + uuid.uuid4().hex,
            connection_string=_required_env("AZURITE_CONNECTION_STRING"),
        )

    def env(self) -> dict[str, str]:
        if self.backend == "functions":
            # As a Functions app is configured: the storage is the host's own
            # (AzureWebJobsStorage, so STORAGE defaults to azure), no PORT.
            return {
                "AzureWebJobsStorage": self.connection_string,
                "STORAGE_CONTAINER": self.container,
                "QUEUE_NAME": self.queue,
            }
        env = {"STORAGE": self.backend, "DATA_DIR": str(self.data_dir)}
        if self.backend == "azure":
            env.update(
                STORAGE_CONNECTION_STRING=self.connection_string,
                STORAGE_CONTAINER=self.container,
                QUEUE_NAME=self.queue,
            )
        return env

    # Settings a "functions" handler must not inherit from the test environment.
    FUNCTIONS_UNSET = (
        "PORT",
        "BIND",
        "STORAGE",
        "STORAGE_CONNECTION_STRING",
        "DATA_DIR",
        "QUEUE",
        "HANDLER_PORT",
        "FUNCTIONS_CUSTOMHANDLER_PORT",
    )

STANDIN_READY_TIMEOUT_S = 10.0


@dataclass
class StandIn:
    """A running `llm-standin` process (a scripted Chat Completions endpoint)."""

    proc: subprocess.Popen
    base_url: str  # http://127.0.0.1:PORT/v1, what the server gets as OPENAI_BASE_URL
    log_path: pathlib.Path

    @property
    def root_url(self) -> str:
        return self.base_url[: -len("/v1")]

    def _call(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.root_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def script(self, responses: list[dict], model: str | None = None) -> None:
        """Appends scripted responses to `model`'s queue (the shared queue without a model)."""
        body: dict = {"responses": responses}
        if model is not None:
            body["model"] = model
        answer = self._call("POST", "/_script", body)
        assert answer == {"scripted": len(responses)}, (
            f"stand-in did not accept the script {responses!r}: {answer!r}"
        )

    def requests(self, model: str | None = None) -> list[dict]:
        """The chat request bodies received (each with `received_us`), oldest first."""
        path = "/_requests"
        if model is not None:
            path += "?" + urllib.parse.urlencode({"model": model})
        return self._call("GET", path)

    def model(self) -> "ModelScript":
        return ModelScript(self, "m-" + uuid.uuid4().hex)

    def log_tail(self, max_chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-max_chars:]
        except OSError as e:
            return f"<cannot read {self.log_path}: {e}>"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # it waits for ctrl-c
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass
class ModelScript:
    """One model name on a stand-in: what it answers and what it was asked.

    Use `model` as the assistant's (or run's) model; `script(...)` queues responses for it
    (fields as in standin/src/lib.rs: text, tool_calls, finish_reason, usage, chunk_delay_ms,
    first_chunk_delay_ms, error, cut_off, malformed); `requests()` lists the chat requests that
    named it. With the queue empty the stand-in answers "You said: <last user message>".
    """

    standin: StandIn
    model: str

    def script(self, *responses: dict) -> None:
        self.standin.script(list(responses), model=self.model)

    def requests(self) -> list[dict]:
        return self.standin.requests(model=self.model)


def start_standin(log_path: pathlib.Path) -> StandIn:
    """Start `llm-standin` on a free port; wait for its `listening on ...` line."""
    binary = _required_env("LLM_STANDIN_BIN")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"LLM_STANDIN_BIN={binary} is not an executable file", pytrace=False)
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(
            [binary, "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
        )
    finally:
        log.close()
    lines: queue.Queue = queue.Queue()

    def read_first_line():
        lines.put(proc.stdout.readline())

    threading.Thread(target=read_first_line, daemon=True).start()
    try:
        line = lines.get(timeout=STANDIN_READY_TIMEOUT_S).decode(errors="replace").strip()
    except queue.Empty:
        line = None
    prefix = "listening on "
    if not line or not line.startswith(prefix) or not line.endswith("/v1"):
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)
        stderr = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
        pytest.fail(
            f"{binary} did not announce its address within {STANDIN_READY_TIMEOUT_S:.0f} s "
            f"(first line {line!r}, exit code {proc.returncode}); stderr:\n{stderr}",
            pytrace=False,
        )
    return StandIn(proc, line[len(prefix):], log_path)


@dataclass
class Server:
    """A running assistants-service process (or, for "functions", the host emulator that runs
    it as its custom handler; `proc` is then the emulator, which stops the handler with it; for
    "proxy", the BACKEND=proxy process, with the stored server behind it as `upstream`)."""

    storage: StorageConfig
    port: int
    proc: subprocess.Popen
    log_path: pathlib.Path
    standin: StandIn
    # Whether stop() also stops the stand-in (false when it was handed in by the caller).
    owns_standin: bool = True
    # "proxy" only: the stored server the proxy forwards to (stopped with the proxy).
    upstream: "Server | None" = None
    _clients: dict = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return self.storage.backend

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def client(self, api_key: str = KEY_A) -> openai.OpenAI:
        """An SDK client as an application would build it (no retries, so errors surface)."""
        if api_key not in self._clients:
            self._clients[api_key] = openai.OpenAI(
                base_url=self.base_url, api_key=api_key, max_retries=0, timeout=30.0
            )
        return self._clients[api_key]

    def log_tail(self, max_chars: int = 6000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as e:
            text = f"<cannot read {self.log_path}: {e}>"
        if self.upstream is None:
            return text[-max_chars:]
        half = max(max_chars // 2, 1)
        return (
            f"--- proxy ({self.log_path.name}) ---\n{text[-half:]}\n"
            f"--- upstream ({self.upstream.log_path.name}) ---\n{self.upstream.log_tail(half)}"
        )

    def stop(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()
        _stop_process(self.proc, signal.SIGTERM, own_group=self.backend == "functions")
        if self.upstream is not None:
            self.upstream.stop()  # stops the stand-in too when it started it
        if self.owns_standin:
            self.standin.stop()


def _stop_process(proc: subprocess.Popen, sig: int, *, own_group: bool) -> None:
    """Signals `proc` and waits; kills it (and, with `own_group`, the process group it leads,
    so an emulator's handler cannot outlive it) when it does not stop in time."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
    if own_group:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group (normally none)
        except (ProcessLookupError, PermissionError):
            pass


# What a "proxy" server must not inherit: it reaches no model and has no storage of its own.
PROXY_UNSET = (
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "AzureWebJobsStorage",
    "STORAGE_CONNECTION_STRING",
    "QUEUE",
    "FUNCTIONS_CUSTOMHANDLER_PORT",
)


def _proxy_env(storage: StorageConfig, upstream: "Server") -> dict:
    """A BACKEND=proxy server in front of `upstream`, with the same client keys, each tenant
    mapped to the same tenant upstream; a DATA_DIR of its own (it stores nothing)."""
    proc_env = dict(os.environ)
    for name in PROXY_UNSET:
        proc_env.pop(name, None)
    proc_env.update(
        BACKEND="proxy",
        UPSTREAM_BASE_URL=upstream.base_url,
        UPSTREAM_TENANT_KEYS=UPSTREAM_TENANT_KEYS,
        UPSTREAM_API_KEY=UPSTREAM_API_KEY,
        ASSISTANTS_API_KEYS=KEYS,
        RUST_LOG="info",
        PORT=str(_free_port()),
        BIND="127.0.0.1",
        STORAGE="local",
        DATA_DIR=str(storage.data_dir.parent / "proxy-data"),
    )
    return proc_env


# The memory limit of a code-interpreter session (per process and, where cgroups allow, in
# all): half the default, so a test's memory hog costs the machine less.
SANDBOX_MEMORY_MB = 1024


def _server_env(storage: StorageConfig, standin: StandIn, env: dict[str, str] | None) -> dict:
    proc_env = dict(os.environ)
    proc_env.update(
        ASSISTANTS_API_KEYS=KEYS,
        RUST_LOG="info",
        OPENAI_BASE_URL=standin.base_url,
        OPENAI_API_KEY="sk-standin",
    )
    if storage.backend == "functions":
        for name in StorageConfig.FUNCTIONS_UNSET:
            proc_env.pop(name, None)
    else:
        proc_env.pop("FUNCTIONS_CUSTOMHANDLER_PORT", None)
        proc_env.update(PORT=str(_free_port()), BIND="127.0.0.1")
    proc_env.update(storage.env())
    proc_env.update(env or {})
    proc_env.setdefault("CODE_INTERPRETER_MEMORY_MB", str(SANDBOX_MEMORY_MB))
    return proc_env


def start_server(
    storage: StorageConfig,
    log_path: pathlib.Path,
    *,
    standin: StandIn | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    """Start the binary with `storage`, wait until it answers HTTP, or fail with its stderr.

    The server talks to `standin`, or to a stand-in started for it (and stopped with it).
    `env` adds or overrides settings (e.g. RUN_EXPIRY_SECONDS). For the "functions" backend the
    binary is started by the Functions-host emulator as its custom handler. For "proxy" a stored
    server (local store in `storage.data_dir`, the stand-in and `env` are its) is started first,
    then a BACKEND=proxy server in front of it; the returned Server is the proxy.
    """
    binary = _required_env("ASSISTANTS_BIN")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"ASSISTANTS_BIN={binary} is not an executable file", pytrace=False)
    emulator = None
    if storage.backend == "functions":
        emulator = _required_env("FUNCTIONS_EMULATOR_BIN")
        if not os.access(emulator, os.X_OK):
            pytest.fail(
                f"FUNCTIONS_EMULATOR_BIN={emulator} is not an executable file", pytrace=False
            )
    storage.data_dir.mkdir(parents=True, exist_ok=True)
    owns_standin = standin is None
    if standin is None:
        standin = start_standin(log_path.with_name(log_path.stem + "-standin.log"))
    try:
        if storage.backend == "proxy":
            return _start_proxy(binary, storage, log_path, standin, owns_standin, env)
        proc_env = _server_env(storage, standin, env)
        if emulator is not None:
            return _start_functions(emulator, binary, storage, log_path, standin, owns_standin, proc_env)
        return _start_standalone(binary, storage, log_path, standin, owns_standin, proc_env)
    except BaseException:
        if owns_standin:
            standin.stop()
        raise


def _start_proxy(binary, storage, log_path, standin, owns_standin, env) -> Server:
    """The stored server (which owns the stand-in if we started it), then the proxy."""
    upstream_log = log_path.with_name(log_path.stem + "-upstream.log")
    upstream = start_server(
        StorageConfig("local", storage.data_dir), upstream_log, standin=standin, env=env
    )
    upstream.owns_standin = owns_standin
    try:
        proxy_env = _proxy_env(storage, upstream)
        pathlib.Path(proxy_env["DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        proxy = _start_standalone(binary, storage, log_path, standin, False, proxy_env)
    except BaseException:
        upstream.owns_standin = False  # start_server's caller stops it
        upstream.stop()
        raise
    proxy.upstream = upstream
    return proxy


def _start_standalone(binary, storage, log_path, standin, owns_standin, proc_env) -> Server:
    port = int(proc_env["PORT"])
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(
            [binary],
            env=proc_env,
            cwd=storage.data_dir.parent,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()
    server = Server(storage, port, proc, log_path, standin, owns_standin)

    url = f"http://127.0.0.1:{port}/v1/assistants"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(
                f"{binary} ({storage.backend}) exited with code {proc.returncode} "
                f"during start-up; output:\n{server.log_tail()}",
                pytrace=False,
            )
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except urllib.error.HTTPError:
            break  # any HTTP answer (401 without a key) means it is serving
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            server.owns_standin = False  # the caller stops it
            server.stop()
            pytest.fail(
                f"{binary} ({storage.backend}) did not answer GET {url} within "
                f"{READY_TIMEOUT_S:.0f} s; output:\n{server.log_tail()}",
                pytrace=False,
            )
        time.sleep(0.1)
    return server


def _start_functions(emulator, binary, storage, log_path, standin, owns_standin, proc_env) -> Server:
    """`functions-host-emulator <binary>`: wait for its `handler listening on URL` line (the
    handler answers `GET /` by then); the rest of its stdout (and the handler's, which it
    shares) goes to the log, as does stderr."""
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(
            [emulator, binary],
            env=proc_env,
            cwd=storage.data_dir.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            # Its own process group, so a forced stop can take the handler along.
            start_new_session=True,
        )
    finally:
        log.close()
    prefix = "handler listening on "
    found: queue.Queue = queue.Queue()

    def pump():
        announced = False
        with open(log_path, "ab", buffering=0) as out:
            for raw in iter(proc.stdout.readline, b""):
                line = raw.decode(errors="replace").strip()
                if not announced and line.startswith(prefix):
                    announced = True
                    found.put(line[len(prefix):])
                out.write(raw)
        if not announced:
            found.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        url = found.get(timeout=EMULATOR_READY_TIMEOUT_S)
    except queue.Empty:
        url = None
    parsed = urllib.parse.urlparse(url or "")
    if not url or parsed.path != "/v1" or parsed.port is None:
        exited = proc.poll()
        _stop_process(proc, signal.SIGTERM, own_group=True)
        what = (
            f"exited with code {exited} before announcing the handler"
            if exited is not None
            else f"did not announce the handler within {EMULATOR_READY_TIMEOUT_S:.0f} s"
        )
        pytest.fail(
            f"{emulator} {binary} ({storage.backend}) {what} (announced {url!r}); "
            f"output:\n{log_path.read_text(errors='replace')[-6000:]}",
            pytrace=False,
        )
    return Server(storage, parsed.port, proc, log_path, standin, owns_standin)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "backends(*names): the server backends a module's tests run on "
        f"(default {DEFAULT_BACKENDS}; all: {BACKENDS})",
    )


def pytest_generate_tests(metafunc):
    """Parametrizes the session-scoped `server` fixture with the test's backends (the
    `backends` mark, else DEFAULT_BACKENDS), always in BACKENDS order so that pytest groups all
    tests of one backend together across modules."""
    if "server" not in metafunc.fixturenames:
        return
    mark = metafunc.definition.get_closest_marker("backends")
    wanted = list(mark.args) if mark else DEFAULT_BACKENDS
    unknown = set(wanted) - set(BACKENDS)
    if unknown:
        raise pytest.UsageError(f"unknown backends {sorted(unknown)} (known: {BACKENDS})")
    backends = [b for b in BACKENDS if b in wanted]
    metafunc.parametrize("server", backends, indirect=True, scope="session")


@pytest.fixture(scope="session")
def server(request, tmp_path_factory):
    """One server per backend for the whole session."""
    backend = request.param
    tmp = tmp_path_factory.mktemp(f"server-{backend}")
    srv = start_server(StorageConfig.fresh(backend, tmp), tmp / "server.log")
    yield srv
    srv.stop()


@pytest.fixture
def spawn_server(request, tmp_path):
    """Start extra servers (e.g. to restart on the same storage); all stopped after the test."""
    started: list[Server] = []

    def spawn(storage: StorageConfig, **kw) -> Server:
        """`kw` as for start_server (`standin=`, `env=`)."""
        srv = start_server(storage, tmp_path / f"server-{len(started)}.log", **kw)
        started.append(srv)
        return srv

    yield spawn
    for srv in started:
        srv.stop()


@pytest.fixture
def client(server) -> openai.OpenAI:
    """Tenant A."""
    return server.client(KEY_A)


@pytest.fixture
def client_b(server) -> openai.OpenAI:
    """Tenant B."""
    return server.client(KEY_B)


@pytest.fixture
def standin(server) -> StandIn:
    """The stand-in model endpoint of this backend's server."""
    return server.standin


@pytest.fixture
def llm(standin) -> ModelScript:
    """A model name of this test's own on the server's stand-in (script it, read its requests)."""
    return standin.model()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of the server's log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        srv = item.funcargs.get("server") if hasattr(item, "funcargs") else None
        if isinstance(srv, Server):
            report.sections.append((f"server log ({srv.backend}, tail)", srv.log_tail(3000)))
        script = item.funcargs.get("llm") if hasattr(item, "funcargs") else None
        if isinstance(script, ModelScript):
            try:
                reqs = script.requests()
                summary = json.dumps(reqs, indent=1)[-4000:]
            except Exception as e:  # the stand-in may be the thing that broke
                summary = f"<cannot read the stand-in's requests: {e}>"
            report.sections.append((f"stand-in requests for {script.model}", summary))
