"""Files and vector stores through the official `openai` Python SDK exactly as applications
use them: uploads, `vector_stores.files.upload_and_poll`, `file_batches.upload_and_poll`,
search, deletes. Embeddings come from the server's stand-in (a bag-of-words vector, so texts
that share words are near each other)."""

from __future__ import annotations

import io

import openai
import pytest

pytestmark = pytest.mark.backends("local", "azure", "proxy")

OSLO = b"Oslo is the capital of Norway. The capital city lies at the head of the Oslofjord."
RUST = b"Rust is a systems programming language focused on memory safety and speed."
SOUP = b"To cook tomato soup, simmer tomatoes with onion, garlic and basil for twenty minutes."


def named(data: bytes, name: str):
    f = io.BytesIO(data)
    f.name = name
    return f


def test_files_upload_list_download_delete(client):
    f = client.files.create(file=named(OSLO, "oslo.txt"), purpose="assistants")
    assert f.id.startswith("file-")
    assert f.bytes == len(OSLO) and f.filename == "oslo.txt" and f.purpose == "assistants"
    assert client.files.retrieve(f.id).id == f.id
    assert any(x.id == f.id for x in client.files.list(purpose="assistants"))
    assert client.files.content(f.id).read() == OSLO
    deleted = client.files.delete(f.id)
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)


def test_upload_and_poll_then_search_finds_the_relevant_file(client):
    vs = client.vector_stores.create(name="kb")
    assert vs.id.startswith("vs_") and vs.object == "vector_store"
    done = {}
    for data, name in [(OSLO, "oslo.txt"), (RUST, "rust.md"), (SOUP, "soup.txt")]:
        vsf = client.vector_stores.files.upload_and_poll(vector_store_id=vs.id, file=named(data, name))
        assert vsf.status == "completed", vsf
        done[name] = vsf.id
    store = client.vector_stores.retrieve(vs.id)
    assert store.status == "completed"
    assert store.file_counts.completed == 3 and store.file_counts.total == 3
    assert store.usage_bytes > 0

    page = client.vector_stores.search(vector_store_id=vs.id, query="What is the capital of Norway?")
    results = list(page)
    assert results, "no results"
    assert results[0].file_id == done["oslo.txt"]
    assert results[0].filename == "oslo.txt"
    assert "Oslo" in results[0].content[0].text
    assert 0 < results[0].score <= 1

    files = list(client.vector_stores.files.list(vector_store_id=vs.id, filter="completed"))
    assert {f.id for f in files} == set(done.values())
    client.vector_stores.files.delete(file_id=done["rust.md"], vector_store_id=vs.id)
    assert client.vector_stores.retrieve(vs.id).file_counts.total == 2
    assert client.vector_stores.delete(vs.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(vs.id)


def test_file_batches_upload_and_poll_and_bad_files(client):
    vs = client.vector_stores.create()
    batch = client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=vs.id,
        files=[named(OSLO, "a.txt"), named(SOUP, "b.txt"), named(b"\x00\x9f\x92\x96\x00", "c.bin")],
    )
    assert batch.id.startswith("vsfb_")
    assert batch.status == "completed"
    assert batch.file_counts.completed == 2 and batch.file_counts.failed == 1
    failed = list(
        client.vector_stores.file_batches.list_files(batch_id=batch.id, vector_store_id=vs.id, filter="failed")
    )
    assert len(failed) == 1
    assert failed[0].last_error.code == "unsupported_file"
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.search(vector_store_id=vs.id, query="x", max_num_results=100)
