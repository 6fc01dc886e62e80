"""Retrieval quality of the service's vector-store search, over its HTTP API.

Uploads the corpus (`corpus/*.md`) through `POST /files`, builds one vector store per
chunking strategy, asks each question of `questions.json` through
`POST /vector_stores/{id}/search`, and reports recall@k: the share of questions whose
answer file is among the files of the top k results. As a reference it also ranks the same
stored chunks exactly (f32 cosine in Python, embeddings from the same endpoint), so a loss
in the service's own search would show as a gap between the two.

    python eval.py --base-url http://127.0.0.1:8080/v1 --embeddings-url http://127.0.0.1:9000/v1 \
        --label minilm --out results.json

Only the standard library (urllib) is used, so it runs in any Python 3.
"""

import argparse
import json
import math
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHUNKINGS = {
    # The service's default: 800 tokens, 400 of overlap.
    "auto": {"type": "auto"},
    # Windows that fit MiniLM's 256 word pieces (its encoder truncates longer input).
    "static-200/100": {"type": "static",
                       "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 100}},
}
KS = (1, 3, 5)


def call(method, url, body=None, headers=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {url}: {e.code} {e.read()[:500]!r}") from None


def upload(base, path):
    boundary = uuid.uuid4().hex
    parts = [
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n".encode(),
        (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
         "Content-Type: text/markdown\r\n\r\n").encode() + path.read_bytes() + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return call("POST", f"{base}/files", raw=b"".join(parts),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})["id"]


def embed(url, texts):
    out = []
    for i in range(0, len(texts), 64):
        data = call("POST", f"{url}/embeddings",
                    {"model": "reference", "input": texts[i:i + 64]})["data"]
        for item in sorted(data, key=lambda d: d["index"]):
            v = item["embedding"]
            n = math.sqrt(sum(x * x for x in v)) or 1.0
            out.append([x / n for x in v])
    return out


def ranked_files(hits):
    """Files in the order of their first appearance in the ranked chunks."""
    seen = []
    for h in hits:
        if h not in seen:
            seen.append(h)
    return seen


def scores(rankings, answers):
    n = len(answers)
    result = {f"recall@{k}": round(sum(a in r[:k] for r, a in zip(rankings, answers)) / n, 3)
              for k in KS}
    result["mrr"] = round(sum(1 / (r.index(a) + 1) if a in r else 0
                              for r, a in zip(rankings, answers)) / n, 3)
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True)
    p.add_argument("--embeddings-url", help="the same endpoint the service embeds with")
    p.add_argument("--label", default="run")
    p.add_argument("--out")
    args = p.parse_args()
    base = args.base_url.rstrip("/")

    corpus = sorted((HERE / "corpus").glob("*.md"))
    questions = json.loads((HERE / "questions.json").read_text())
    answers = [q["file"] for q in questions]
    t = time.time()
    file_ids = {upload(base, f): f.name for f in corpus}
    print(f"[{args.label}] uploaded {len(file_ids)} files in {time.time() - t:.1f}s", flush=True)

    q_vectors = embed(args.embeddings_url, [q["question"] for q in questions]) \
        if args.embeddings_url else None
    report = {"label": args.label, "files": len(corpus), "questions": len(questions),
              "chunkings": {}}
    for name, strategy in CHUNKINGS.items():
        t = time.time()
        vs = call("POST", f"{base}/vector_stores",
                  {"name": f"eval {name}", "file_ids": list(file_ids), "chunking_strategy": strategy})
        while vs["status"] == "in_progress":
            time.sleep(0.5)
            vs = call("GET", f"{base}/vector_stores/{vs['id']}")
        ingest_s = time.time() - t
        counts = vs["file_counts"]
        if counts["completed"] != len(corpus):
            raise SystemExit(f"[{args.label}] {name}: ingestion ended with {counts}")

        rankings, latencies = [], []
        for q in questions:
            t = time.time()
            page = call("POST", f"{base}/vector_stores/{vs['id']}/search",
                        {"query": q["question"], "max_num_results": 10})
            latencies.append((time.time() - t) * 1000)
            rankings.append(ranked_files([h["filename"] for h in page["data"]]))
        result = {"ingest_s": round(ingest_s, 1), **scores(rankings, answers),
                  "search_ms_p50": round(sorted(latencies)[len(latencies) // 2], 1)}

        # The exact reference over the very chunks the service stored.
        chunks = []
        for fid, fname in file_ids.items():
            content = call("GET", f"{base}/vector_stores/{vs['id']}/files/{fid}/content")
            chunks += [(fname, c["text"]) for c in content["data"]]
        result["chunks"] = len(chunks)
        if q_vectors:
            c_vectors = embed(args.embeddings_url, [c for _, c in chunks])
            exact = []
            for qv in q_vectors:
                order = sorted(range(len(chunks)),
                               key=lambda i: -sum(a * b for a, b in zip(qv, c_vectors[i])))
                exact.append(ranked_files([chunks[i][0] for i in order[:10]]))
            result["exact"] = scores(exact, answers)
        result["misses@3"] = [q["question"] for q, r in zip(questions, rankings)
                              if q["file"] not in r[:3]]
        report["chunkings"][name] = result
        line = ", ".join(f"{k} {result[k]}" for k in ("recall@1", "recall@3", "recall@5", "mrr"))
        ref = f"; exact f32 reference recall@3 {result['exact']['recall@3']}" if q_vectors else ""
        print(f"[{args.label}] {name}: {result['chunks']} chunks, ingested in {ingest_s:.1f}s; "
              f"{line}; search p50 {result['search_ms_p50']} ms{ref}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
