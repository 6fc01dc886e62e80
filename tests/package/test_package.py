"""The deployable package: layout, the handler's mode, and the glibc it needs.

Runs on the zip that scripts/package.sh made (PACKAGE_ZIP, set by scripts/test.sh)."""

import json
import os
import pathlib
import re
import stat
import subprocess
import tempfile
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def package() -> pathlib.Path:
    path = os.environ.get("PACKAGE_ZIP", "")
    if not path or not pathlib.Path(path).is_file():
        pytest.fail("PACKAGE_ZIP does not name a zip: run scripts/package.sh (scripts/test.sh does)")
    return pathlib.Path(path)


def test_the_zip_holds_exactly_what_the_host_needs(package):
    with zipfile.ZipFile(package) as z:
        names = sorted(z.namelist())
    expected = sorted(
        ["host.json", "handler"]
        + [f"{d.name}/function.json" for d in (ROOT / "function-defs").iterdir() if d.is_dir()]
    )
    assert names == expected
    assert "openai/function.json" in names and "work/function.json" in names
    assert "local.settings.json" not in names


def test_the_configuration_is_the_repository_s(package):
    with zipfile.ZipFile(package) as z:
        assert json.loads(z.read("host.json")) == json.loads((ROOT / "host.json").read_text())
        for d in ("openai", "work"):
            packed = json.loads(z.read(f"{d}/function.json"))
            assert packed == json.loads((ROOT / "function-defs" / d / "function.json").read_text())


def test_the_handler_is_executable_and_needs_glibc_2_28_at_most(package):
    with zipfile.ZipFile(package) as z:
        info = z.getinfo("handler")
        mode = info.external_attr >> 16
        assert stat.S_ISREG(mode)
        assert mode & 0o777 == 0o755, oct(mode)
        with tempfile.TemporaryDirectory() as tmp:
            handler = pathlib.Path(z.extract("handler", tmp))
            assert handler.read_bytes()[:4] == b"\x7fELF"
            symbols = subprocess.run(
                ["objdump", "-T", str(handler)], check=True, capture_output=True, text=True
            ).stdout
    versions = {tuple(int(p) for p in v.split(".")) for v in re.findall(r"GLIBC_([0-9][0-9.]*)", symbols)}
    assert versions, "no glibc symbols found"
    assert max(versions) <= (2, 28), f"needs GLIBC_{'.'.join(map(str, max(versions)))}"


def test_the_packaged_handler_starts_as_a_custom_handler(package):
    """The host's readiness check: the handler answers GET / on FUNCTIONS_CUSTOMHANDLER_PORT."""
    import socket
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with zipfile.ZipFile(package) as z, tempfile.TemporaryDirectory() as tmp:
        handler = pathlib.Path(z.extract("handler", tmp))
        handler.chmod(0o755)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "FUNCTIONS_CUSTOMHANDLER_PORT": str(port),
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "ASSISTANTS_API_KEYS": "sk-package-test",
        }
        proc = subprocess.Popen([str(handler)], env=env, cwd=tmp,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while True:
                assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                        assert r.status == 200
                        break
                except (urllib.error.URLError, ConnectionError):
                    assert time.monotonic() < deadline, "the handler did not answer GET /"
                    time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# Strings only the test stand-in (standin/, a dev-dependency) holds: its fault header, its
# echo answer and its scripted error message.
STANDIN_MARKERS = [b"x-standin-fault", b"You said: ", b"scripted error"]


def test_the_handler_holds_nothing_of_the_test_stand_in(package):
    with zipfile.ZipFile(package) as z:
        handler = z.read("handler")
    found = [m.decode() for m in STANDIN_MARKERS if m in handler]
    assert not found, f"the handler contains the stand-in's {found}"
