"""A webhook receiver for tests/webhooks.rs: verifies each delivery with the official SDK
(`openai.OpenAI(...).webhooks.unwrap(body, headers, secret=...)`) and records it.

    receiver.py --secret SECRET --record FILE [--port N] [--statuses 500,500] [--hang]

Prints `PORT <n>` once listening (on 127.0.0.1; `--port 0`, the default, picks a free one).
Every POST is appended to FILE as one JSON line: `verified` (whether `unwrap` accepted it),
`webhook_id`, `id`, `type`, `sdk_class` (what `unwrap` parsed the body into), `body` (the raw
text), `answered` (the status sent back). A delivery `unwrap` refuses is answered 400. The
statuses of `--statuses` answer the first verified deliveries in turn, 200 after them;
`--hang` never answers (the connection stays open until the sender gives up).
"""

import argparse
import http.server
import json
import sys
import threading
import time

import openai

parser = argparse.ArgumentParser()
parser.add_argument("--secret", required=True)
parser.add_argument("--record", required=True)
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--statuses", default="")
parser.add_argument("--hang", action="store_true")
args = parser.parse_args()

client = openai.OpenAI(api_key="x")
statuses = [int(s) for s in args.statuses.split(",") if s.strip()]
lock = threading.Lock()


def record(entry):
    with lock, open(args.record, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length).decode("utf-8")
        if args.hang:
            record({"hung": True, "webhook_id": self.headers.get("webhook-id")})
            while True:
                time.sleep(3600)
        headers = {k: v for k, v in self.headers.items()}
        entry = {"webhook_id": self.headers.get("webhook-id"), "body": body}
        try:
            event = client.webhooks.unwrap(body, headers, secret=args.secret)
            entry.update(
                verified=True,
                id=event.id,
                type=event.type,
                sdk_class=type(event).__name__,
            )
            with lock:
                status = statuses.pop(0) if statuses else 200
        except Exception as e:  # InvalidWebhookSignatureError, ValueError for headers
            entry.update(verified=False, error=f"{type(e).__name__}: {e}")
            status = 400
        entry["answered"] = status
        record(entry)
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
server.daemon_threads = True
print(f"PORT {server.server_address[1]}", flush=True)
sys.stdout.flush()
server.serve_forever()
