"""Fixtures for the SDK conformance tests.

Each test runs once per storage backend: "local" (a fresh temp directory) and "azure"
(Azurite, a unique container and queue per server instance). One server process is started per
backend for the whole session (pytest groups the tests by backend, so only one runs at a time)
and is stopped afterwards. Tests keep apart by creating their own objects; tests that need an
empty tenant use a key of their own (see KEYS).

Needs ASSISTANTS_BIN (the server binary) and AZURITE_CONNECTION_STRING (a running Azurite);
scripts/test.sh provides both. Missing either is a failure, not a skip.
"""

from __future__ import annotations

import os
import pathlib
import secrets
import signal
import socket
import string
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

import openai
import pytest

BACKENDS = ["local", "azure"]

KEY_A = "sk-test-a"
KEY_B = "sk-test-b"
# Used only by the assistant pagination test, so its tenant starts empty.
KEY_PAGING = "sk-test-paging"
# A key that names no tenant (the `key` form of ASSISTANTS_API_KEYS).
KEY_PLAIN = "sk-test-plain"
KEYS = f"{KEY_A}=tenanta,{KEY_B}=tenantb,{KEY_PAGING}=tenantpaging,{KEY_PLAIN}"

READY_TIMEOUT_S = 20.0
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
        if backend == "local":
            return cls(backend, tmp_dir / "data")
        return cls(
            backend,
            tmp_dir / "data",
            container="t" + uuid.uuid4().hex,
            queue="w" + uuid.uuid4().hex,
            connection_string=_required_env("AZURITE_CONNECTION_STRING"),
        )

    def env(self) -> dict[str, str]:
        env = {"STORAGE": self.backend, "DATA_DIR": str(self.data_dir)}
        if self.backend == "azure":
            env.update(
                STORAGE_CONNECTION_STRING=self.connection_string,
                STORAGE_CONTAINER=self.container,
                QUEUE_NAME=self.queue,
            )
        return env


@dataclass
class Server:
    """A running assistants-service process."""

    storage: StorageConfig
    port: int
    proc: subprocess.Popen
    log_path: pathlib.Path
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
            return f"<cannot read {self.log_path}: {e}>"
        return text[-max_chars:]

    def stop(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)


def start_server(storage: StorageConfig, log_path: pathlib.Path) -> Server:
    """Start the binary with `storage`, wait until it answers HTTP, or fail with its stderr."""
    binary = _required_env("ASSISTANTS_BIN")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"ASSISTANTS_BIN={binary} is not an executable file", pytrace=False)
    storage.data_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = dict(os.environ)
    env.update(storage.env())
    env.update(
        PORT=str(port),
        BIND="127.0.0.1",
        ASSISTANTS_API_KEYS=KEYS,
        RUST_LOG="info",
    )
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(
            [binary],
            env=env,
            cwd=storage.data_dir.parent,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()
    server = Server(storage, port, proc, log_path)

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
            server.stop()
            pytest.fail(
                f"{binary} ({storage.backend}) did not answer GET {url} within "
                f"{READY_TIMEOUT_S:.0f} s; output:\n{server.log_tail()}",
                pytrace=False,
            )
        time.sleep(0.1)
    return server


@pytest.fixture(scope="session", params=BACKENDS)
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

    def spawn(storage: StorageConfig) -> Server:
        srv = start_server(storage, tmp_path / f"server-{len(started)}.log")
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of the server's log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        srv = item.funcargs.get("server") if hasattr(item, "funcargs") else None
        if isinstance(srv, Server):
            report.sections.append((f"server log ({srv.backend}, tail)", srv.log_tail(3000)))
