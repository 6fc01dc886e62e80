#!/usr/bin/env python3
"""The soak workload (scripts/soak.sh starts the services and runs this).

    soak.py --base-url URL --standin-url URL --server-pid PID --seconds N [--workers W]
            [--report FILE] [--azurite-pid PID] [--azurite-url BLOB_ENDPOINT]

W workers (threads), each with its own OpenAI client (the official Python SDK), repeat a
mixed workload until the time is up: assistant and thread CRUD with messages, queued runs
(create_and_poll), streamed runs (runs.stream), function calls answered with
submit_tool_outputs (the stand-in is scripted per call through its /_script endpoint), runs
cancelled while the model answers slowly, file_search runs over a fresh vector store (queued
and streamed in turn) and code_interpreter runs in the local sandbox. Every HTTP exchange is
counted through httpx event hooks; an error is any exception, any 5xx, any 4xx the workload
did not ask for, or a run that does not end as expected. The server's resident memory and
open file descriptors are sampled every 30 s from /proc (Azurite's RSS too, given its pid),
and Azurite, given its blob endpoint, is probed every second. The report (Markdown, with the
figures as JSON at the end) goes to stdout and FILE.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import threading
import time
import traceback
import urllib.request
import warnings

import openai

try:  # the pinned SDK (openai 3.x) is built on httpx2; older ones on httpx
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx

KEY = "sk-soak"

# The SDK marks the whole Assistants API deprecated: that is the API under test.
warnings.filterwarnings("ignore", category=DeprecationWarning)


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.statuses: collections.Counter[int] = collections.Counter()
        self.operations: collections.Counter[str] = collections.Counter()
        self.runs: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.error_examples: list[str] = []
        self.started = time.monotonic()

    def response(self, status: int) -> None:
        with self.lock:
            self.requests += 1
            self.statuses[status] += 1

    def done(self, operation: str) -> None:
        with self.lock:
            self.operations[operation] += 1

    def run(self, kind: str) -> None:
        with self.lock:
            self.runs[kind] += 1

    def error(self, operation: str, detail: str) -> None:
        with self.lock:
            self.errors[operation] += 1
            if len(self.error_examples) < 20:
                at = time.monotonic() - self.started
                self.error_examples.append(f"{at:.0f} s, {operation}: {detail[:500]}")


def rss_kib(pid: int) -> int:
    """Resident memory of `pid`, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def load_average() -> str:
    with open("/proc/loadavg", encoding="utf-8") as f:
        return " ".join(f.read().split()[:3])


class StorageProbe(threading.Thread):
    """Times a request to Azurite every second (an unauthenticated list: answered 403 at
    once by a responsive Azurite), so that a stall of the storage itself shows in the report
    beside the errors it causes."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url.rstrip("/") + "?comp=list"
        self.stopped = threading.Event()
        self.started = time.monotonic()
        self.slow: list[tuple[int, float]] = []  # (seconds into the soak, seconds taken)
        self.longest = 0.0

    def run(self) -> None:
        while not self.stopped.is_set():
            began = time.monotonic()
            try:
                urllib.request.urlopen(self.url, timeout=30).read()
            except Exception:  # noqa: BLE001 - a 403 (or any answer) is an answer
                pass
            took = time.monotonic() - began
            self.longest = max(self.longest, took)
            if took >= 1.0:
                self.slow.append((round(began - self.started), round(took, 1)))
            time.sleep(max(0.0, 1.0 - took))


def script(standin_url: str, model: str, responses: list[dict]) -> None:
    body = json.dumps({"model": model, "responses": responses}).encode()
    request = urllib.request.Request(
        standin_url.removesuffix("/v1") + "/_script",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


class Worker(threading.Thread):
    def __init__(self, n: int, args, stats: Stats, stop_at: float) -> None:
        super().__init__(daemon=True)
        self.n = n
        self.args = args
        self.stats = stats
        self.stop_at = stop_at
        self.rng = random.Random(n)
        self.counter = 0
        # Only the server's own answers are counted; 4xx the workload expects are listed
        # per call in `self.expected`.
        self.expected: set[int] = set()
        http = httpx.Client(
            timeout=60,
            event_hooks={"response": [self._on_response]},
        )
        self.client = openai.OpenAI(
            base_url=args.base_url, api_key=KEY, http_client=http, max_retries=0
        )
        tools = [{"type": "function", "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
        self.assistant = self.client.beta.assistants.create(
            model="soak", name=f"soak-{n}", instructions="Be brief.", tools=tools
        )

    def _on_response(self, response) -> None:
        status = response.status_code
        self.stats.response(status)
        if status >= 500 or (status >= 400 and status not in self.expected):
            response.read()
            self.stats.error(
                f"HTTP {status}", f"{response.request.method} {response.request.url.path}: {response.text}"
            )

    def model(self, kind: str) -> str:
        self.counter += 1
        return f"soak-{self.n}-{kind}-{self.counter}"

    def run(self) -> None:
        operations = [
            (self.crud, 30),
            (self.queued_run, 25),
            (self.streamed_run, 20),
            (self.tool_run, 15),
            (self.cancelled_run, 10),
            (self.file_search_run, 8),
            (self.code_interpreter_run, 4),
        ]
        functions = [f for f, _ in operations]
        weights = [w for _, w in operations]
        while time.monotonic() < self.stop_at:
            operation = self.rng.choices(functions, weights)[0]
            name = operation.__name__
            try:
                operation()
                self.stats.done(name)
            except Exception as e:  # noqa: BLE001 - every failure is counted, then go on
                request = getattr(e, "request", None)
                where = f" ({request.method} {request.url.path})" if request is not None else ""
                self.stats.error(
                    name, f"{type(e).__name__}{where}: {e}\n{traceback.format_exc(limit=3)}"
                )
            finally:
                self.expected = set()

    # --- the operations ------------------------------------------------------------

    def crud(self) -> None:
        c = self.client.beta
        a = c.assistants.create(model="soak", name="crud", metadata={"k": "v"})
        c.assistants.update(a.id, name="crud 2", metadata={"k": "w"})
        got = c.assistants.retrieve(a.id)
        assert got.name == "crud 2", got
        c.assistants.list(limit=5)
        t = c.threads.create(messages=[{"role": "user", "content": "hello"}])
        m = c.threads.messages.create(t.id, role="user", content="more")
        c.threads.messages.update(m.id, thread_id=t.id, metadata={"seen": "yes"})
        messages = c.threads.messages.list(t.id, order="asc")
        assert [x.content[0].text.value for x in messages.data] == ["hello", "more"], messages
        c.threads.update(t.id, metadata={"n": str(self.counter)})
        c.threads.messages.delete(m.id, thread_id=t.id)
        assert c.threads.delete(t.id).deleted
        assert c.assistants.delete(a.id).deleted
        self.expected = {404}
        try:
            c.assistants.retrieve(a.id)
            raise AssertionError("a deleted assistant is still there")
        except openai.NotFoundError:
            pass

    def queued_run(self) -> None:
        model = self.model("queued")
        text = f"queued answer {self.counter}"
        script(self.args.standin_url, model, [{"text": text}])
        t = self.client.beta.threads.create(messages=[{"role": "user", "content": "q"}])
        run = self.client.beta.threads.runs.create_and_poll(
            thread_id=t.id, assistant_id=self.assistant.id, model=model, poll_interval_ms=100
        )
        assert run.status == "completed", run
        answer = self.client.beta.threads.messages.list(t.id).data[0]
        assert answer.content[0].text.value == text, answer
        self.stats.run("queued")
        self.client.beta.threads.delete(t.id)

    def streamed_run(self) -> None:
        model = self.model("streamed")
        text = f"streamed answer number {self.counter} in several words"
        script(self.args.standin_url, model, [{"text": text}])
        t = self.client.beta.threads.create(messages=[{"role": "user", "content": "q"}])
        with self.client.beta.threads.runs.stream(
            thread_id=t.id, assistant_id=self.assistant.id, model=model
        ) as stream:
            streamed = "".join(
                e.data.delta.content[0].text.value
                for e in stream
                if e.event == "thread.message.delta"
            )
            run = stream.get_final_run()
        assert run.status == "completed", run
        assert streamed == text, streamed
        self.stats.run("streamed")
        self.client.beta.threads.delete(t.id)

    def tool_run(self) -> None:
        model = self.model("tools")
        script(self.args.standin_url, model, [
            {"tool_calls": [{"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                            {"name": "get_weather", "arguments": '{"city": "Paris"}'}]},
            {"text": "Oslo is cold, Paris is mild."},
        ])
        t = self.client.beta.threads.create(messages=[{"role": "user", "content": "weather?"}])
        run = self.client.beta.threads.runs.create_and_poll(
            thread_id=t.id, assistant_id=self.assistant.id, model=model, poll_interval_ms=100
        )
        assert run.status == "requires_action", run
        calls = run.required_action.submit_tool_outputs.tool_calls
        run = self.client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=t.id, poll_interval_ms=100,
            tool_outputs=[{"tool_call_id": c.id, "output": "ok"} for c in calls],
        )
        assert run.status == "completed", run
        steps = self.client.beta.threads.runs.steps.list(run.id, thread_id=t.id)
        assert len(steps.data) == 2, steps
        self.stats.run("tools")
        self.client.beta.threads.delete(t.id)

    def cancelled_run(self) -> None:
        model = self.model("cancel")
        script(self.args.standin_url, model,
               [{"text": "a slow answer that will not be finished", "chunk_delay_ms": 300}])
        t = self.client.beta.threads.create(messages=[{"role": "user", "content": "q"}])
        run = self.client.beta.threads.runs.create(
            thread_id=t.id, assistant_id=self.assistant.id, model=model
        )
        while run.status == "queued":
            time.sleep(0.05)
            run = self.client.beta.threads.runs.retrieve(run.id, thread_id=t.id)
        self.client.beta.threads.runs.cancel(run.id, thread_id=t.id)
        run = self.client.beta.threads.runs.poll(run.id, thread_id=t.id, poll_interval_ms=100)
        assert run.status == "cancelled", run
        answers = self.client.beta.threads.messages.list(t.id, run_id=run.id)
        assert not answers.data, answers
        self.stats.run("cancelled")
        self.client.beta.threads.delete(t.id)

    def file_search_run(self) -> None:
        """A file in a new vector store, a run (streamed or queued, in turn) that searches it
        and cites it; then the store, the file and the rest deleted."""
        c = self.client
        model = self.model("search")
        vs = c.vector_stores.create(name="soak")
        text = f"The soak file {self.counter} says that Oslo is the capital of Norway.\n"
        done = c.vector_stores.files.upload_and_poll(
            vector_store_id=vs.id, file=("oslo.txt", text.encode())
        )
        assert done.status == "completed", done
        answer = "Oslo is the capital【0:0†oslo.txt】."
        script(self.args.standin_url, model, [
            {"tool_calls": [{"name": "file_search",
                             "arguments": json.dumps({"queries": ["capital of Norway"]})}]},
            {"text": answer},
        ])
        a = c.beta.assistants.create(
            model=model, tools=[{"type": "file_search"}],
            tool_resources={"file_search": {"vector_store_ids": [vs.id]}},
        )
        t = c.beta.threads.create(messages=[{"role": "user", "content": "Capital of Norway?"}])
        streamed = self.counter % 2 == 0
        if streamed:
            with c.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id) as stream:
                for _ in stream:
                    pass
                run = stream.get_final_run()
        else:
            run = c.beta.threads.runs.create_and_poll(
                thread_id=t.id, assistant_id=a.id, poll_interval_ms=100
            )
        assert run.status == "completed", run
        steps = c.beta.threads.runs.steps.list(run.id, thread_id=t.id, order="asc")
        assert [s.type for s in steps.data] == ["tool_calls", "message_creation"], steps
        message = c.beta.threads.messages.list(t.id, run_id=run.id).data[0]
        [citation] = message.content[0].text.annotations
        assert citation.file_citation.file_id == done.id, citation
        self.stats.run("file_search (streamed)" if streamed else "file_search (queued)")
        c.beta.threads.delete(t.id)
        c.beta.assistants.delete(a.id)
        assert c.vector_stores.delete(vs.id).deleted
        assert c.files.delete(done.id).deleted

    def code_interpreter_run(self) -> None:
        """A queued run whose model runs a cell in the thread's sandbox session (started for
        the run, ended when the thread is deleted)."""
        c = self.client.beta
        model = self.model("code")
        script(self.args.standin_url, model, [
            {"tool_calls": [{"name": "python",
                             "arguments": json.dumps({"code": "print(sum(range(10)))"})}]},
            {"text": "The sum is 45."},
        ])
        a = c.assistants.create(model=model, tools=[{"type": "code_interpreter"}])
        t = c.threads.create(messages=[{"role": "user", "content": "Sum 0..9"}])
        run = c.threads.runs.create_and_poll(
            thread_id=t.id, assistant_id=a.id, poll_interval_ms=100
        )
        assert run.status == "completed", run
        steps = c.threads.runs.steps.list(run.id, thread_id=t.id, order="asc")
        call = steps.data[0].step_details.tool_calls[0]
        assert call.type == "code_interpreter", call
        logs = [o.logs for o in call.code_interpreter.outputs if o.type == "logs"]
        assert len(logs) == 1 and logs[0].strip() == "45", call
        self.stats.run("code_interpreter")
        c.threads.delete(t.id)
        c.assistants.delete(a.id)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--standin-url", required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--azurite-pid", type=int)
    parser.add_argument("--azurite-url", help="Azurite's blob endpoint, probed every second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--report")
    args = parser.parse_args()

    stats = Stats()
    azurite = [(0, rss_kib(args.azurite_pid))] if args.azurite_pid else []
    rss_start = rss_kib(args.server_pid)
    fds_start = open_fds(args.server_pid)
    load_start = load_average()
    started = time.monotonic()
    stop_at = started + args.seconds
    probe = StorageProbe(args.azurite_url) if args.azurite_url else None
    if probe:
        probe.start()
    workers = [Worker(n, args, stats, stop_at) for n in range(args.workers)]
    for w in workers:
        w.start()
    samples = [(0, rss_start)]
    fd_samples = [(0, fds_start)]
    while any(w.is_alive() for w in workers):
        time.sleep(1)
        elapsed = time.monotonic() - started
        if elapsed - samples[-1][0] >= 30:
            samples.append((round(elapsed), rss_kib(args.server_pid)))
            fd_samples.append((round(elapsed), open_fds(args.server_pid)))
            if azurite:
                azurite.append((round(elapsed), rss_kib(args.azurite_pid)))
    elapsed = time.monotonic() - started
    load_end = load_average()
    # Work still queued when the clients stop (deletes, delayed watchdog items) settles.
    time.sleep(5)
    if probe:
        probe.stopped.set()
        probe.join()
    rss_end = rss_kib(args.server_pid)
    fds_end = open_fds(args.server_pid)
    samples.append((round(elapsed), rss_end))
    fd_samples.append((round(elapsed), fds_end))
    if azurite:
        azurite.append((round(elapsed), rss_kib(args.azurite_pid)))
    figures = {
        "seconds": round(elapsed, 1),
        "workers": args.workers,
        "requests": stats.requests,
        "requests_per_second": round(stats.requests / elapsed, 1),
        "statuses": dict(sorted(stats.statuses.items())),
        "operations": dict(stats.operations),
        "runs_completed": dict(stats.runs),
        "errors": sum(stats.errors.values()),
        "errors_by_kind": dict(stats.errors),
        "error_examples": stats.error_examples,
        "rss_kib_start": rss_start,
        "rss_kib_end": rss_end,
        "rss_kib_samples": samples,
        "open_fds_samples": fd_samples,
        "azurite_rss_kib_samples": azurite,
        "azurite_probe_longest_seconds": round(probe.longest, 1) if probe else None,
        "azurite_probe_slow": probe.slow if probe else None,
        "load_average_start": load_start,
        "load_average_end": load_end,
    }
    lines = [
        f"- duration: {figures['seconds']} s, {args.workers} workers",
        f"- requests: {stats.requests} ({figures['requests_per_second']}/s); statuses {figures['statuses']}",
        f"- operations: {figures['operations']}",
        f"- runs completed: {sum(stats.runs.values())} {figures['runs_completed']}",
        f"- errors: {figures['errors']} {figures['errors_by_kind']}",
        f"- server RSS: {rss_start / 1024:.1f} MiB idle at the start, "
        f"{samples[1][1] / 1024:.1f} MiB after the first 30 s, {rss_end / 1024:.1f} MiB at the end; "
        f"every 30 s: {', '.join(f'{kib / 1024:.1f}' for _, kib in samples)} MiB",
        f"- server open file descriptors: {fds_start} at the start, {fds_end} at the end; "
        f"every 30 s: {', '.join(str(n) for _, n in fd_samples)}",
        f"- Azurite RSS every 30 s: {', '.join(f'{kib / 1024:.0f}' for _, kib in azurite)} MiB",
        f"- Azurite probe (a request every second): longest answer "
        f"{probe.longest if probe else 0:.1f} s; answers of 1 s or more (at s, took s): "
        f"{probe.slow if probe else None}",
        f"- load average (1, 5, 15 min): {load_start} at the start, {load_end} at the end",
    ]
    for example in stats.error_examples:
        lines.append(f"  - {example.splitlines()[0]}")
    report = "\n".join(lines) + "\n\n```json\n" + json.dumps(figures, indent=1) + "\n```\n"
    print(report)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            f.write(report)
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
