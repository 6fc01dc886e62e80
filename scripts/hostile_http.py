#!/usr/bin/env python3
"""The HTTP hostile-input attacks of issue 17 at full scale (scripts/hostile-http.sh builds
the release binaries and runs this; the CI-sized versions are tests/hostile_http.rs).

    hostile_http.py --server-bin BIN --standin-url URL [--only NAME ...] [--report FILE]

Each attack runs against a server process of its own (so its peak memory, VmHWM, is the
attack's), on a fresh local store, with keys sk-hostile-a (tenant a) and sk-hostile-b
(tenant b). While it runs, tenant b's probe asks GET /v1/assistants?limit=1 every 100 ms on
a kept-alive connection; the report gives its worst latency and failures, the server's peak
and final memory, its log growth and open descriptors, and what became of the attacked
object. Attacks (the findings' sizes):

- multipart: a 600 MB `purpose` field (more than the 512 MiB upload limit);
- downloads: a 500 MB file, downloaded four times in parallel;
- streams: 40 streamed runs of a long answer (100,000 deltas each) whose clients never read;
- slowloris: 20,000 connections (fewer if this process may not open that many) sending half
  a request head and a header line now and then, reconnecting when cut, for 60 s, against a
  server with 20,000 descriptors; meanwhile a new client every second, and a streamed run
  that must complete.

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import resource
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

KEY_A = "sk-hostile-a"
KEY_B = "sk-hostile-b"
MiB = 1024 * 1024


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Server:
    """The service on a fresh local store, as a child process."""

    def __init__(self, binary: str, standin: str, env: dict[str, str], nofile: int | None = None):
        self.dir = tempfile.TemporaryDirectory(prefix="hostile-http.")
        self.port = free_port()
        self.log_path = os.path.join(self.dir.name, "server.log")
        full = {
            "PATH": os.environ.get("PATH", ""),
            "PORT": str(self.port),
            "BIND": "127.0.0.1",
            "DATA_DIR": os.path.join(self.dir.name, "data"),
            "ASSISTANTS_API_KEYS": f"{KEY_A}=tenanta,{KEY_B}=tenantb",
            "OPENAI_BASE_URL": standin,
            "OPENAI_API_KEY": "sk-standin",
            "CODE_INTERPRETER": "off",
            "RUST_LOG": "info",
        }
        full.update(env)

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [binary], env=full, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.log, preexec_fn=limit,
        )
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"the server did not start: {open(self.log_path).read()}")
                time.sleep(0.05)
        self.log_start = os.path.getsize(self.log_path)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def figures(self) -> dict:
        pid = self.proc.pid
        return {
            "peak_mib": round(proc_kb(pid, "VmHWM") / 1024, 1),
            "rss_mib": round(proc_kb(pid, "VmRSS") / 1024, 1),
            "fds": open_fds(pid),
            "log_growth_bytes": os.path.getsize(self.log_path) - self.log_start,
            "alive": self.proc.poll() is None,
        }

    def log_text(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        self.dir.cleanup()


def call(base: str, key: str, method: str, path: str, body: dict | None = None, timeout: float = 60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("OpenAI-Beta", "assistants=v2")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class Probe(threading.Thread):
    """Tenant b's GET every 100 ms on one kept-alive connection (reopened if it closes)."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.stop_flag = threading.Event()
        self.requests = 0
        self.failures = 0
        self.worst = 0.0
        self.first_failure = None

    def run(self) -> None:
        conn = None
        while not self.stop_flag.is_set():
            started = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", "/v1/assistants?limit=1", headers={
                    "Authorization": f"Bearer {KEY_B}", "OpenAI-Beta": "assistants=v2"})
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
                detail = f"status {r.status}"
            except (OSError, http.client.HTTPException) as e:
                ok, detail = False, repr(e)
                conn = None
            took = time.monotonic() - started
            self.requests += 1
            self.worst = max(self.worst, took)
            if not ok:
                self.failures += 1
                self.first_failure = self.first_failure or detail
            self.stop_flag.wait(max(0.0, 0.1 - took))

    def finish(self) -> dict:
        self.stop_flag.set()
        self.join()
        return {"requests": self.requests, "failures": self.failures,
                "worst_s": round(self.worst, 3), "first_failure": self.first_failure}


def raw_request(port: int, head: bytes, body_chunks, read_timeout: float = 120) -> tuple[int, bytes]:
    """Sends a request whose body comes from `body_chunks`, reading the answer meanwhile."""
    s = socket.create_connection(("127.0.0.1", port))
    answer = bytearray()
    done = threading.Event()

    def reader():
        s.settimeout(read_timeout)
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                answer.extend(data)
                end = answer.find(b"\r\n\r\n")
                if end >= 0:
                    headers = answer[:end].decode(errors="replace").lower()
                    for line in headers.split("\r\n"):
                        if line.startswith("content-length:") and len(answer) >= end + 4 + int(line.split(":")[1]):
                            return
        except OSError:
            pass
        finally:
            done.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        s.sendall(head)
        for chunk in body_chunks:
            if done.is_set():
                break
            s.sendall(chunk)
    except OSError:
        pass
    t.join(read_timeout)
    s.close()
    end = answer.find(b"\r\n\r\n")
    status = int(answer.split(b" ")[1]) if answer.startswith(b"HTTP/") else 0
    return status, bytes(answer[end + 4:]) if end >= 0 else b""


def attack_multipart(args) -> dict:
    server = Server(args.server_bin, args.standin_url, {})
    probe = Probe(server.port)
    probe.start()
    size = 600 * 1000 * 1000
    boundary = "hostile"
    before = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
              f"Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}\r\n"
              f"Content-Disposition: form-data; name=\"purpose\"\r\n\r\n").encode()
    after = f"\r\n--{boundary}--\r\n".encode()
    total = len(before) + size + len(after)
    head = (f"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_A}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {total}\r\n\r\n").encode()
    block = b"p" * MiB

    def body():
        yield before
        sent = 0
        while sent < size:
            n = min(len(block), size - sent)
            yield block[:n]
            sent += n
        yield after

    started = time.monotonic()
    status, answer = raw_request(server.port, head, body())
    took = time.monotonic() - started
    time.sleep(1)
    result = {"status": status, "answer_bytes": len(answer), "seconds": round(took, 2),
              "answer": answer[:300].decode(errors="replace"),
              "files_after": len(call(server.base, KEY_A, "GET", "/files")[1]["data"]),
              "probe": probe.finish(), **server.figures()}
    server.stop()
    return result


def attack_downloads(args) -> dict:
    server = Server(args.server_bin, args.standin_url, {})
    size = 500 * 1000 * 1000
    boundary = "dl"
    before = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
              f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\r\n").encode()
    after = f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_A}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(before) + size + len(after)}\r\n\r\n").encode()
    block = bytes(range(256)) * 4096

    def body():
        yield before
        sent = 0
        while sent < size:
            n = min(len(block), size - sent)
            yield block[:n]
            sent += n
        yield after

    status, answer = raw_request(server.port, head, body(), read_timeout=600)
    if status != 200:
        raise SystemExit(f"upload failed: {status} {answer[:300]!r}")
    file_id = json.loads(answer)["id"]
    after_upload = server.figures()["peak_mib"]
    probe = Probe(server.port)
    probe.start()
    results = []

    def download():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        conn.request("GET", f"/v1/files/{file_id}/content", headers={"Authorization": f"Bearer {KEY_A}"})
        r = conn.getresponse()
        got = 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            got += len(chunk)
        results.append((r.status, got))

    started = time.monotonic()
    threads = [threading.Thread(target=download) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = {"downloads": results, "complete": all(r == (200, size) for r in results),
              "seconds": round(time.monotonic() - started, 2), "peak_after_upload_mib": after_upload,
              "probe": probe.finish(), **server.figures()}
    server.stop()
    return result


def script(standin: str, model: str, responses: list[dict]) -> None:
    req = urllib.request.Request(standin.rsplit("/v1", 1)[0] + "/_script",
                                 data=json.dumps({"model": model, "responses": responses}).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()


def attack_streams(args) -> dict:
    server = Server(args.server_bin, args.standin_url, {})
    streams, words = 40, 100_000
    script(args.standin_url, "long", [{"text": "w " * words} for _ in range(streams)])
    _, asst = call(server.base, KEY_A, "POST", "/assistants", {"model": "long"})
    threads = []
    for _ in range(streams):
        _, t = call(server.base, KEY_A, "POST", "/threads", {"messages": [{"role": "user", "content": "talk"}]})
        threads.append(t["id"])
    probe = Probe(server.port)
    probe.start()
    socks = []
    started = time.monotonic()
    for tid in threads:
        body = json.dumps({"assistant_id": asst["id"], "stream": True}).encode()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", server.port))
        s.sendall((f"POST /v1/threads/{tid}/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_A}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
        socks.append(s)
    completed = 0
    deadline = time.time() + 900
    while completed < streams and time.time() < deadline:
        completed = 0
        for tid in threads:
            _, runs = call(server.base, KEY_A, "GET", f"/threads/{tid}/runs")
            completed += bool(runs["data"]) and runs["data"][0]["status"] == "completed"
        time.sleep(1)
    took = time.monotonic() - started
    answers_whole = 0
    for tid in threads:
        _, msgs = call(server.base, KEY_A, "GET", f"/threads/{tid}/messages?limit=1")
        answers_whole += len(msgs["data"][0]["content"][0]["text"]["value"]) == 2 * words
    for s in socks:
        s.close()
    result = {"streams": streams, "deltas_each": words, "runs_completed": completed,
              "answers_stored_whole": answers_whole, "seconds": round(took, 1),
              "streams_dropped_logged": server.log_text().count("stream dropped"),
              "probe": probe.finish(), **server.figures()}
    server.stop()
    return result


async def slowloris_conn(port: int, until: float, kept: list, stats: dict) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        started = loop.time()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
        except (OSError, asyncio.TimeoutError):
            stats["connect_failures"] += 1
            await asyncio.sleep(0.5)
            continue
        try:
            writer.write(b"GET /v1/assistants HTTP/1.1\r\nHost: x\r\n")
            while loop.time() < until:
                try:
                    data = await asyncio.wait_for(reader.read(1024), 2.0)
                    if not data:
                        break
                except asyncio.TimeoutError:
                    writer.write(b"X-Slow: 1\r\n")
                    await writer.drain()
            else:
                writer.close()
                return
            kept.append(loop.time() - started)
        except OSError:
            kept.append(loop.time() - started)
        finally:
            writer.close()


def attack_slowloris(args) -> dict:
    # 20,000 attackers need more descriptors than that in this process (root may raise the
    # hard limit; otherwise the probes' own connections fail here, not in the server).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (100_000, 100_000))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = Server(args.server_bin, args.standin_url, {}, nofile=20_000)
    script(args.standin_url, "slow", [{"text": "one word at a time " * 60, "chunk_delay_ms": 250}])
    _, asst = call(server.base, KEY_A, "POST", "/assistants", {"model": "slow"})
    _, thread = call(server.base, KEY_A, "POST", "/threads", {"messages": [{"role": "user", "content": "talk"}]})
    stream_result = {}

    def streamed():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
        body = json.dumps({"assistant_id": asst["id"], "stream": True})
        conn.request("POST", f"/v1/threads/{thread['id']}/runs", body=body, headers={
            "Authorization": f"Bearer {KEY_A}", "Content-Type": "application/json"})
        r = conn.getresponse()
        try:
            text = r.read().decode()
            stream_result["complete"] = "event:done" in text
        except (OSError, http.client.HTTPException) as e:
            stream_result["complete"] = False
            stream_result["error"] = repr(e)

    probe = Probe(server.port)
    probe.start()
    stream_thread = threading.Thread(target=streamed)
    stream_thread.start()
    time.sleep(0.5)
    fresh = {"worst_s": 0.0, "failures": 0, "requests": 0, "first_failure": None}
    peak_fds = [0]
    stop = threading.Event()

    def new_clients():
        while not stop.is_set():
            peak_fds[0] = max(peak_fds[0], open_fds(server.proc.pid))
            started = time.monotonic()
            try:
                status, _ = call(server.base, KEY_B, "GET", "/assistants?limit=1", timeout=120)
                ok, detail = status == 200, f"status {status}"
            except OSError as e:
                ok, detail = False, repr(e)
            fresh["requests"] += 1
            fresh["worst_s"] = max(fresh["worst_s"], round(time.monotonic() - started, 2))
            fresh["failures"] += not ok
            if not ok and fresh["first_failure"] is None:
                fresh["first_failure"] = f"{detail} after {time.monotonic() - started:.2f} s"
            stop.wait(1)

    watcher = threading.Thread(target=new_clients)
    watcher.start()
    # 20,000 connections, or as many as this process may open keeping 1,000 for itself.
    n = min(20_000, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1_000)
    seconds = 60
    kept: list[float] = []
    stats = {"connect_failures": 0}

    async def attack():
        until = asyncio.get_running_loop().time() + seconds
        await asyncio.gather(*(slowloris_conn(server.port, until, kept, stats) for _ in range(n)))

    asyncio.run(attack())
    stop.set()
    watcher.join()
    stream_thread.join()
    log = server.log_text()
    result = {"connections": n, "seconds": seconds, "cut_by_server": len(kept),
              "longest_kept_s": round(max(kept, default=0), 2),
              "connect_failures": stats["connect_failures"], "new_clients": fresh,
              "streamed_run_complete": stream_result, "peak_fds": peak_fds[0],
              "too_many_open_files_in_log": "Too many open files" in log,
              "probe": probe.finish(), **server.figures()}
    result["client_fd_limit"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    server.stop()
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    except (ValueError, OSError):
        pass
    return result


ATTACKS = {
    "multipart": attack_multipart,
    "downloads": attack_downloads,
    "streams": attack_streams,
    "slowloris": attack_slowloris,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--standin-url", required=True)
    parser.add_argument("--only", nargs="*", choices=list(ATTACKS), default=list(ATTACKS))
    parser.add_argument("--report")
    args = parser.parse_args()
    report = {}
    for name in args.only:
        print(f"== {name}", flush=True)
        report[name] = ATTACKS[name](args)
        print(json.dumps(report[name], indent=2), flush=True)
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
