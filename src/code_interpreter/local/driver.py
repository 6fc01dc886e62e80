"""The Python side of a local code-interpreter session; runs inside the sandbox.

Embedded in the service binary (src/code_interpreter/local/driver.py) and bound read-only into
each sandbox. One long-lived process per session, so variables persist between cells, like a
Jupyter kernel.

Channels (set up by the host; see local/mod.rs):
  fd 0  requests, one JSON object per line (moved to a private fd at start; user code gets
        /dev/null as stdin)
  fd 1  responses, one JSON object per line (moved to a private fd at start)
  fd 2  the log pipe: user code's stdout and stderr both go here, interleaved as written

Requests:  {"code": str, "timeout": float, "marker": str, "cell": int}
Responses: {"ready": true, "python": str} once at start, then per cell
           {"result": str|null, "error": {"name","message","traceback"}|null,
            "images": [base64 PNG], "marker_written": bool}

After a cell the driver writes `marker` to the log pipe, then the response: the host reads the
log pipe up to the marker, so it has all of the cell's output when it answers.
"""

import ast
import base64
import builtins
import io
import json
import linecache
import os
import resource
import signal
import sys
import time
import traceback
import types

MAX_REPR = 20000
MAX_TRACEBACK = 20000
MAX_IMAGES = 16
# How long the driver waits after a cell for the processes it killed to be gone.
STRAYS_GONE_S = 1.0


def _private_fd(fd):
    new = os.dup(fd)  # os.dup returns a non-inheritable fd: child processes don't get it
    return new


def main():
    nproc = int(sys.argv[1])
    proto_in = os.fdopen(_private_fd(0), "rb", buffering=1 << 16)
    proto_out = _private_fd(1)
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)

    _seed_matplotlib_cache()

    # RLIMIT_NPROC counts processes per user *inside this user namespace*, so it has to be set
    # from inside: set before bwrap it would also cap the host user's processes.
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    driver_pid = os.getpid()
    user_module = types.ModuleType("__main__")
    user_module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = user_module
    namespace = user_module.__dict__
    state = {"in_cell": False, "timeout": 0.0, "images": [], "pid": driver_pid}

    def on_alarm(signum, frame):
        if state["in_cell"]:
            raise TimeoutError(
                "Execution exceeded the time limit of %g seconds" % state["timeout"]
            )

    signal.signal(signal.SIGALRM, on_alarm)
    _install_pyplot_hook(state)

    def send(obj):
        data = (json.dumps(obj) + "\n").encode()
        view = memoryview(data)
        while view:
            n = os.write(proto_out, view)
            view = view[n:]

    send({"ready": True, "python": sys.version.split()[0]})

    while True:
        line = proto_in.readline()
        if not line:
            return
        request = json.loads(line)
        response = run_cell(request, namespace, state)
        _end_strays()
        response["marker_written"] = _write_marker(request["marker"])
        send(response)


def _seed_matplotlib_cache():
    """Copies the font list the host prepared into matplotlib's fresh config directory, so the
    first plot of a session does not spend seconds scanning fonts."""
    source = "/opt/ci/mpl"
    target = os.environ.get("MPLCONFIGDIR")
    if not target:
        return
    try:
        os.makedirs(target, exist_ok=True)
        for name in os.listdir(source):
            if name.startswith("fontlist-") and name.endswith(".json"):
                with open(os.path.join(source, name), "rb") as f:
                    data = f.read()
                with open(os.path.join(target, name), "wb") as f:
                    f.write(data)
    except OSError:
        pass


def run_cell(request, namespace, state):
    code = request["code"]
    filename = "<cell-%d>" % request["cell"]
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    state["images"] = []
    state["timeout"] = float(request["timeout"])
    result = None
    error = None
    try:
        try:
            tree = ast.parse(code, filename, "exec")
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            body = compile(tree, filename, "exec")
            tail = compile(last, filename, "eval") if last is not None else None
        except SyntaxError as e:
            error = _error(e, None)
        else:
            state["in_cell"] = True
            signal.setitimer(signal.ITIMER_REAL, state["timeout"])
            try:
                exec(body, namespace)
                if tail is not None:
                    value = eval(tail, namespace)
                    if value is not None:
                        namespace["_"] = value
                        result = _truncate(repr(value), MAX_REPR)
            finally:
                state["in_cell"] = False
                signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException as e:  # noqa: B902 - a cell's SystemExit/KeyboardInterrupt is its error
        if os.getpid() != state["pid"]:
            os._exit(1)  # a process forked by the cell: it must not act as the driver
        state["in_cell"] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        error = _error(e, e.__traceback__)
    if os.getpid() != state["pid"]:
        os._exit(0)
    _flush()
    try:
        _collect_figures(state)
    except Exception as e:  # a figure that cannot be drawn is the cell's error
        if error is None:
            error = _error(e, e.__traceback__)
    return {"result": result, "error": error, "images": state["images"][:MAX_IMAGES]}


def _end_strays():
    """Ends every process the cell left behind and reaps our children, so the next cell
    finds the session's process limit free again (orphans are reaped by init; the driver
    waits a moment for them to be gone). A courtesy, not the guarantee: a cell can replace
    this function, so the host also ends every process of the namespace but init and this
    driver after each cell, and stops the driver until the next one (kernel.rs)."""
    me = os.getpid()
    deadline = time.monotonic() + STRAYS_GONE_S
    while True:
        try:
            # Every process of the namespace but init and the caller, in one pass of the
            # kernel (no fork can slip in while it runs).
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass  # none left
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
        try:
            left = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
        except OSError:
            return
        if not left or time.monotonic() > deadline:
            return
        time.sleep(0.01)


def _error(exc, tb):
    # The traceback starts at the cell's code and shows none of the driver's frames (such as
    # the alarm handler that raised a TimeoutError).
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell-"):
        tb = tb.tb_next
    report = traceback.TracebackException(type(exc), exc, tb)
    _drop_driver_frames(report, set())
    return {
        "name": type(exc).__name__,
        "message": _truncate(str(exc), MAX_REPR),
        "traceback": _truncate("".join(report.format()), MAX_TRACEBACK),
    }


def _drop_driver_frames(report, seen):
    if report is None or id(report) in seen:
        return
    seen.add(id(report))
    report.stack = traceback.StackSummary.from_list(
        [frame for frame in report.stack if frame.filename != __file__]
    )
    _drop_driver_frames(report.__cause__, seen)
    _drop_driver_frames(report.__context__, seen)


def _truncate(text, limit):
    if len(text) <= limit:
        return text
    return text[:limit] + "... [truncated %d characters]" % (len(text) - limit)


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _write_marker(marker):
    try:
        data = marker.encode()
        while data:
            n = os.write(2, data)
            data = data[n:]
        return True
    except OSError:
        return False


def _collect_figures(state):
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    for num in plt.get_fignums():
        figure = plt.figure(num)
        buf = io.BytesIO()
        figure.savefig(buf, format="png", bbox_inches="tight")
        state["images"].append(base64.b64encode(buf.getvalue()).decode())
    plt.close("all")


def _install_pyplot_hook(state):
    """Replaces pyplot.show when pyplot is first imported: a shown figure becomes an image of
    the cell and is closed, as in Jupyter's inline backend (figures left open are collected
    after the cell)."""
    import importlib.abc
    import importlib.util

    def show(*args, **kwargs):
        _collect_figures(state)

    class Hook(importlib.abc.MetaPathFinder):
        busy = False

        def find_spec(self, name, path, target=None):
            if name != "matplotlib.pyplot" or Hook.busy:
                return None
            Hook.busy = True
            try:
                spec = importlib.util.find_spec(name)
            finally:
                Hook.busy = False
            if spec is None or spec.loader is None:
                return spec
            loader = spec.loader
            exec_module = loader.exec_module

            def patched(module):
                exec_module(module)
                module.show = show

            loader.exec_module = patched
            return spec

    sys.meta_path.insert(0, Hook())


if __name__ == "__main__":
    main()
