"""A pool of worker processes for the web service, with per-request deadlines.

Each worker is a spawned process that loads the models once and then serves requests from a
pipe. A request that overruns its deadline has its worker killed and replaced, so a pathological
upload cannot hold a worker forever; a worker that dies is replaced too.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from ._jobs import single_threaded_children

__all__ = ["PoolBusy", "PoolTimeout", "WorkerCrashed", "WorkerPool"]

log = logging.getLogger("ecgscan.service")
_SPAWN_LOCK = threading.Lock()


class PoolTimeout(Exception):
    """The request did not finish within its deadline (its worker was restarted)."""


class PoolBusy(Exception):
    """Every worker stayed busy until the request's deadline."""


class WorkerCrashed(Exception):
    """The worker process died while handling the request (it was replaced)."""


def _worker_main(
    conn: Connection,
    setup: Callable[[Mapping[str, Any]], dict[str, Any]],
    handler: Callable[[dict[str, Any]], dict[str, Any]],
    options: Mapping[str, Any],
) -> None:
    """Body of a worker process: set up once, then answer requests until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    try:
        info = setup(options)
    except Exception as exc:  # reported to the parent, which refuses to start
        conn.send({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    conn.send({"ready": True, **info})
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        try:
            reply = handler(request)
        except Exception as exc:  # a bug: reported as a 500 with the traceback in the log
            reply = {
                "status": 500,
                "detail": f"internal error ({type(exc).__name__}); see the server log",
                "traceback": traceback.format_exc(),
            }
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


@dataclass
class _Worker:
    process: Any
    conn: Connection
    info: dict[str, Any]


class WorkerPool:
    """``n`` worker processes running ``handler(request) -> reply`` after ``setup(options)``.

    ``setup`` and ``handler`` must be module-level functions (they are sent to spawned
    processes). :meth:`call` is blocking and thread-safe; run it in a thread from async code.
    """

    def __init__(
        self,
        n: int,
        *,
        setup: Callable[[Mapping[str, Any]], dict[str, Any]],
        handler: Callable[[dict[str, Any]], dict[str, Any]],
        options: Mapping[str, Any] | None = None,
        start_timeout: float = 300.0,
    ) -> None:
        if n < 1:
            raise ValueError(f"a worker pool needs at least one worker, got {n}")
        self.n = n
        self._setup = setup
        self._handler = handler
        self._options = dict(options or {})
        self._start_timeout = start_timeout
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.info: dict[str, Any] = {}
        self.restarts = 0

    # ----------------------------------------------------------------- lifecycle
    def _spawn(self) -> tuple[Any, Connection]:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, self._setup, self._handler, self._options),
            name="ecgscan-worker",
            daemon=True,
        )
        with _SPAWN_LOCK, single_threaded_children():  # one core per worker, from the start
            proc.start()
        child.close()
        return proc, parent

    def _await_ready(self, proc: Any, conn: Connection) -> _Worker:
        if not conn.poll(self._start_timeout):
            proc.kill()
            proc.join()
            raise RuntimeError(f"a worker did not start within {self._start_timeout:g} s")
        try:
            info = conn.recv()
        except EOFError:
            proc.join()
            raise RuntimeError(
                f"a worker process exited while starting (exit code {proc.exitcode})"
            ) from None
        if not info.get("ready"):
            proc.join()
            raise RuntimeError(f"a worker failed to start: {info.get('error')}")
        info.pop("ready")
        return _Worker(proc, conn, info)

    def start(self) -> None:
        """Start every worker and wait until each has loaded its models."""
        spawned = [self._spawn() for _ in range(self.n)]  # start in parallel, then wait
        try:
            for proc, conn in spawned:
                worker = self._await_ready(proc, conn)
                with self._lock:
                    self._all.append(worker)
                self._idle.put(worker)
        except BaseException:
            for proc, _ in spawned:
                if proc.is_alive():
                    proc.kill()
            raise
        self.info = dict(self._all[0].info) if self._all else {}

    def _replace(self, worker: _Worker) -> None:
        """Kill ``worker`` and start a new one in its place (in the background)."""
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=10)
        worker.conn.close()
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
            self.restarts += 1
            if self._closed:
                return

        def restart() -> None:
            try:
                new = self._await_ready(*self._spawn())
            except RuntimeError:
                log.exception("could not restart a worker")
                return
            with self._lock:
                if self._closed:
                    new.process.kill()
                    return
                self._all.append(new)
            self._idle.put(new)

        threading.Thread(target=restart, name="ecgscan-worker-restart", daemon=True).start()

    def close(self) -> None:
        """Stop every worker (politely, then by force)."""
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
        deadline = time.monotonic() + 5.0
        for worker in workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()

    @property
    def alive(self) -> int:
        """Workers running now."""
        with self._lock:
            return sum(1 for w in self._all if w.process.is_alive())

    @property
    def idle(self) -> int:
        """Workers waiting for a request."""
        return self._idle.qsize()

    # ----------------------------------------------------------------- requests
    def call(self, request: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        """Run one request on a free worker; wait at most ``timeout`` seconds in all.

        Raises
        ------
        PoolBusy
            No worker became free before the deadline.
        PoolTimeout
            The worker did not answer before the deadline (it is replaced).
        WorkerCrashed
            The worker died (it is replaced).
        """
        deadline = time.monotonic() + timeout
        try:
            worker = self._idle.get(timeout=max(timeout, 0.001))
        except queue.Empty:
            raise PoolBusy from None
        keep = True
        try:
            worker.conn.send(request)
            if not worker.conn.poll(max(0.0, deadline - time.monotonic())):
                keep = False
                self._replace(worker)
                raise PoolTimeout
            reply: dict[str, Any] = worker.conn.recv()
        except (EOFError, OSError):
            if keep:
                keep = False
                self._replace(worker)
            raise WorkerCrashed from None
        finally:
            if keep:
                self._idle.put(worker)
        return reply
