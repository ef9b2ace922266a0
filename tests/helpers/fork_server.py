"""Command-line runs for tests without paying the interpreter's imports each time: a fork server.

A test suite that runs `python -m gan_platform ...` a hundred times spends most of it importing
torch (and torch._dynamo, which the first optimizer pulls in), Hydra, Accelerate, torchvision and
matplotlib: about 4 s of CPU a run, more than the tiny runs themselves. So each test process
starts one server (a fresh `python`, the same environment `run_cli` gives) that imports those
once and then only forks. Every run is still its own process, forked from a pristine interpreter
that has imported but never run anything:

- the command line's own code, `runpy.run_module(MODULE, run_name="__main__")`, as `python -m`;
- its own argv, environment, working directory, stdin (/dev/null) and stdout/stderr (files);
- Python's default signal handling (Ctrl-C is KeyboardInterrupt; SIGKILL kills it), its own pid
  that tests signal, and the exit code Python would give: `sys.exit`'s code, 1 after a traceback
  printed to stderr, death by SIGINT after an unhandled KeyboardInterrupt;
- non-daemon threads joined and `atexit` handlers run at the end, as at interpreter exit.

What it cannot give is a clean import: a test of import-time behaviour, of the packaging, or of
two processes under `accelerate launch` starts a real interpreter (`subprocess`), as do runs with
a `preexec_fn` (LiveRun) and `run_cli(..., fork=False)`.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

# Runs in the server process. Each request: fork; the child becomes the run, the server reports its
# pid and, when it ends, its exit code (negative: the signal that killed it, as subprocess reports).
SERVER = r'''
import json, os, select, signal, socket, sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot  # noqa: F401
import torch, torch._dynamo, torchvision, hydra, omegaconf, accelerate  # noqa: F401,E401
# what the commands import; not the commands' own modules (gan_platform.__main__, .sample, ...), which
# `python -m` must find unimported, as runpy does
import gan_platform.config.preflight, gan_platform.run, gan_platform.evaluation.gan_evaluator  # noqa: F401,E401
import gan_platform.runs.loading, gan_platform.sweep.agent  # noqa: F401,E401


def child(req):
    import atexit, io, runpy, threading, traceback  # noqa: E401
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(os.open(req["stdout"], os.O_WRONLY | os.O_APPEND | os.O_CREAT), 1)
    os.dup2(os.open(req["stderr"], os.O_WRONLY | os.O_APPEND | os.O_CREAT), 2)
    sys.stdin = sys.__stdin__ = open(0, "r", closefd=False)
    sys.stdout = sys.__stdout__ = open(1, "w", closefd=False)  # block-buffered, as to a file
    sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")
    sys.argv = [req["module"], *req["argv"]]
    code, by_signal = 0, None
    try:
        runpy.run_module(req["module"], run_name="__main__", alter_sys=True)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        by_signal = signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        if by_signal is not None:
            signal.signal(by_signal, signal.SIG_DFL)
            os.kill(os.getpid(), by_signal)
        os._exit(code)


def serve(sock):
    children, buf = set(), b""
    send = lambda msg: sock.sendall((json.dumps(msg) + "\n").encode())  # noqa: E731
    while True:
        ready, _, _ = select.select([sock], [], [], 0.02)
        if ready:
            data = sock.recv(1 << 20)
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    sock.close()
                    child(req)
                children.add(pid)
                send({"id": req["id"], "pid": pid})
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            children.discard(pid)
            send({"pid": pid, "status": os.waitstatus_to_exitcode(status)})
    for pid in children:  # the tests are gone: leave nothing running
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


serve(socket.socket(fileno=int(sys.argv[1])))
'''


class ForkedProcess:
    """The part of `subprocess.Popen` the tests use, for a run the server forked."""

    def __init__(self, server: "ForkServer", pid: int, args: list[str]):
        self.server, self.pid, self.args = server, pid, args
        self.returncode: Optional[int] = None

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            self.returncode = self.server.status(self.pid, timeout=0)
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        if self.returncode is None:
            self.returncode = self.server.status(self.pid, timeout)
            if self.returncode is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        import signal

        self.send_signal(signal.SIGKILL)


class ForkServer:
    """One server per test process, started on first use with `env` (the environment of the runs'
    interpreter: PYTHONPATH, OMP_NUM_THREADS); it ends when this process does."""

    def __init__(self, env: dict):
        mine, theirs = socket.socketpair()
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                                     env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.sock, self.lock, self.changed = mine, threading.Lock(), threading.Condition()
        self.closed = False                   # the server has gone (its socket reached the end)
        self.pids: dict[int, int] = {}        # request id -> pid
        self.statuses: dict[int, int] = {}    # pid -> exit code
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        atexit.register(self.close)

    def _read(self) -> None:
        buf = b""
        while True:
            data = self.sock.recv(1 << 16)
            if not data:
                with self.changed:
                    self.closed = True
                    self.changed.notify_all()
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                msg = json.loads(line)
                with self.changed:
                    if "id" in msg:
                        self.pids[msg["id"]] = msg["pid"]
                    else:
                        self.statuses[msg["pid"]] = msg["status"]
                    self.changed.notify_all()

    def spawn(self, module: str, argv: list[str], cwd: Path, env: dict, stdout: Path, stderr: Path) -> ForkedProcess:
        with self.lock:
            self.next_id += 1
            rid = self.next_id
            request = {"id": rid, "module": module, "argv": list(argv), "cwd": str(cwd), "env": env,
                       "stdout": str(stdout), "stderr": str(stderr)}
            self.sock.sendall((json.dumps(request) + "\n").encode())
        with self.changed:
            if not self.changed.wait_for(lambda: rid in self.pids or self.closed, timeout=120) or self.closed:
                raise RuntimeError("the test fork server did not answer (see its traceback above)")
            return ForkedProcess(self, self.pids.pop(rid), [module, *argv])

    def status(self, pid: int, timeout: Optional[float]) -> Optional[int]:
        with self.changed:
            self.changed.wait_for(lambda: pid in self.statuses or self.closed, timeout=timeout)
            return self.statuses.get(pid)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # the server sees the end, and the reader thread wakes
            self.sock.close()
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001 - at interpreter exit, best effort
            self.proc.kill()


_server: Optional[ForkServer] = None


def server(env: dict) -> ForkServer:
    global _server
    if _server is None or _server.closed:
        _server = ForkServer(env)
    return _server
