#!/usr/bin/env python3
"""Resident memory of the service after a burst of list requests on Azure storage.

    AZURITE_CONNECTION_STRING=... benches/rss-after-burst.py target/release/assistants-service

Starts the given service binary on Azurite (a container and queue of its own), makes a
thread of 20 messages, lists it 64 × 12 times from 64 threads at once, then prints the
service's resident size (VmRSS) fresh, right after the burst and every 15 s for a minute:
the memory trimmer (`src/memory.rs`) should bring it back near the fresh size. Standard
library only; the figures are recorded in BENCHMARKS.md (finding 5).
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    binary = sys.argv[1]
    port = free_port()
    name = f"rss{os.getpid()}"
    env = dict(
        os.environ,
        PORT=str(port),
        BIND="127.0.0.1",
        STORAGE="azure",
        STORAGE_CONNECTION_STRING=os.environ["AZURITE_CONNECTION_STRING"],
        STORAGE_CONTAINER=name,
        QUEUE_NAME=name,
        ASSISTANTS_API_KEYS="sk-rss",
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        CODE_INTERPRETER="off",
        RUST_LOG="warn",
    )
    service = subprocess.Popen(
        [binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}/v1"

    def call(method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            base + path,
            method=method,
            data=data,
            headers={
                "Authorization": "Bearer sk-rss",
                "Content-Type": "application/json",
                "OpenAI-Beta": "assistants=v2",
            },
        )
        with urllib.request.urlopen(request, timeout=120) as r:
            return json.loads(r.read())

    def rss_mb() -> float:
        with open(f"/proc/{service.pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    try:
        for _ in range(100):
            try:
                call("GET", "/assistants")
                break
            except OSError:
                time.sleep(0.1)
        print("fresh", rss_mb(), "MB")
        thread = call("POST", "/threads", {})["id"]
        for i in range(20):
            call(
                "POST",
                f"/threads/{thread}/messages",
                {"role": "user", "content": f"message {i} " * 20},
            )

        def lists() -> None:
            for _ in range(12):
                call("GET", f"/threads/{thread}/messages?limit=20")

        workers = [threading.Thread(target=lists) for _ in range(64)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        print("right after the burst", rss_mb(), "MB")
        for seconds in (15, 30, 45, 60):
            time.sleep(15)
            print(f"{seconds} s after", rss_mb(), "MB")
    finally:
        service.terminate()
        service.wait()


if __name__ == "__main__":
    main()
