"""Resumable archive jobs: many pages in, one committed set of outputs per page out.

A job turns a list of inputs (image files, PDFs, folders of them) into *page tasks*, writes
them to a manifest in the output folder, and runs a page function over them on local worker
processes or on a Ray cluster. Each finished page is committed with a write-ahead ledger:

1. ``begin`` (the output files about to be written) is appended to the ledger;
2. each output file is written to a temporary file and renamed into place;
3. ``done`` (names, sizes and SHA-256 of the outputs) is appended.

A job killed at any instant (even with SIGKILL) and resumed therefore loses nothing and
duplicates nothing: committed pages are skipped, a page that began but did not finish has its
files removed and is run again, and temporary files are deleted. Page functions must be
deterministic for resumed outputs to equal an uninterrupted run's.

The job's bookkeeping lives in ``<output>/.ecgscan-job/``: ``manifest.jsonl`` (a header line,
then one line per page task) and ``ledger.jsonl``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import multiprocessing
import os
import pickle
import re
import shutil
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import atomic_write_bytes, ensure_output_dir
from ..errors import EcgscanError

__all__ = [
    "BACKENDS",
    "INPUT_SUFFIXES",
    "JOB_DIR",
    "JobReport",
    "PageFailure",
    "PageTask",
    "expand_inputs",
    "read_job_state",
    "run_job",
]

#: Folder inside the output folder holding the manifest and the ledger.
JOB_DIR = ".ecgscan-job"
#: Backends :func:`run_job` can use.
BACKENDS = ("local", "ray")
#: File suffixes a job picks up from folders (case-insensitive).
INPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".pdf")

_MANIFEST_VERSION = 1
_SUFFIX_RE = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


# ------------------------------------------------------------------------------- types
@dataclass(frozen=True)
class PageTask:
    """One page of one input file.

    Attributes
    ----------
    index : int
        Position in the manifest (0-based); stable across resumes.
    stem : str
        Output stem relative to the output folder, POSIX style (``'ward3/scan-017'``,
        ``'report-p2'`` for page 2 of ``report.pdf``). Unique within a job; it is the page's id.
    source : str
        Absolute path of the input file.
    page : int
        0-based page index inside a PDF (0 for image files).
    """

    index: int
    stem: str
    source: str
    page: int = 0

    @property
    def id(self) -> str:
        """The page's id within the job (its output stem)."""
        return self.stem

    @property
    def name(self) -> str:
        """The last component of :attr:`stem` (a good record name)."""
        return self.stem.rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "stem": self.stem, "source": self.source, "page": self.page}


@dataclass(frozen=True)
class PageFailure:
    """A page the page function could not process (recorded, the job goes on)."""

    stem: str
    source: str
    page: int
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"stem": self.stem, "source": self.source, "page": self.page, "error": self.error}


@dataclass(frozen=True)
class JobReport:
    """What a job run did.

    Attributes
    ----------
    output_dir : Path
    total : int
        Page tasks in the manifest.
    processed : int
        Pages committed by this run (successfully).
    skipped : int
        Pages already finished (done or failed) by an earlier run and skipped.
    failed : tuple of PageFailure
        Pages that failed in this run.
    seconds : float
        Wall-clock time of this run.
    backend : str
    workers : int
    """

    output_dir: Path
    total: int
    processed: int
    skipped: int
    failed: tuple[PageFailure, ...]
    seconds: float
    backend: str
    workers: int
    recovered: int = 0

    @property
    def pages_per_second(self) -> float:
        """Throughput of this run: pages processed or failed per wall-clock second."""
        n = self.processed + len(self.failed)
        return n / self.seconds if self.seconds > 0 else 0.0

    @property
    def complete(self) -> bool:
        """True when every page of the manifest is finished (done or failed)."""
        return self.processed + len(self.failed) + self.skipped == self.total

    def to_dict(self) -> dict[str, Any]:
        return {
            "output_dir": str(self.output_dir),
            "total": self.total,
            "processed": self.processed,
            "skipped": self.skipped,
            "failed": [f.to_dict() for f in self.failed],
            "recovered": self.recovered,
            "seconds": round(self.seconds, 3),
            "pages_per_second": round(self.pages_per_second, 4),
            "backend": self.backend,
            "workers": self.workers,
        }


# The page function: a picklable callable returning {suffix: file contents}; each output is
# written to ``<output_dir>/<task.stem><suffix>``.
PageFunction = Callable[[PageTask], Mapping[str, bytes]]


@dataclass
class _Outcome:
    index: int
    outputs: dict[str, bytes] | None = None
    error: str | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0


# ------------------------------------------------------------------------- the manifest
def _pdf_page_count(path: Path) -> int | None:
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(path))
    except Exception:  # corrupt or encrypted: the page function reports it as a failure
        return None
    try:
        return len(doc)
    finally:
        doc.close()


def _walk(folder: Path, *, recursive: bool, skip: Path | None) -> Iterator[Path]:
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if recursive and (skip is None or entry.resolve() != skip):
                yield from _walk(entry, recursive=recursive, skip=skip)
        elif entry.suffix.lower() in INPUT_SUFFIXES:
            yield entry


def expand_inputs(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    recursive: bool = True,
    exclude: str | os.PathLike[str] | None = None,
) -> list[PageTask]:
    """Expand files and folders into page tasks with unique, stable output stems.

    Parameters
    ----------
    inputs : path or sequence of paths
        Image files, PDF files (one task per page) and folders (searched for files with
        :data:`INPUT_SUFFIXES`; hidden entries skipped). Files named directly are taken
        whatever their suffix.
    recursive : bool
        Search sub-folders; their structure is kept in the output stems.
    exclude : path, optional
        A folder not to search (the job's output folder, when it lies inside an input).

    Returns
    -------
    list of PageTask
        In a deterministic order (inputs in the given order, folder entries sorted by name).

    Raises
    ------
    FileNotFoundError
        If an input does not exist.
    EcgscanError
        If no page is found.
    """
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    if not items:
        raise EcgscanError("no inputs given; pass image or PDF files, or folders of them")
    skip = Path(exclude).resolve() if exclude is not None else None
    found: list[tuple[Path, str]] = []  # (file, stem relative to the output folder)
    for item in items:
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"input {str(path)!r} does not exist")
        if path.is_dir():
            for file in _walk(path, recursive=recursive, skip=skip):
                rel = file.relative_to(path).with_suffix("")
                found.append((file, rel.as_posix()))
        else:
            found.append((path, path.stem))
    if not found:
        raise EcgscanError(
            f"no image or PDF files found in {', '.join(repr(str(i)) for i in items)}; "
            f"expected files ending in {', '.join(INPUT_SUFFIXES)}"
        )
    stems = _unique_stems(found)
    tasks: list[PageTask] = []
    for (file, _), stem in zip(found, stems, strict=True):
        source = str(file.resolve())
        if file.suffix.lower() == ".pdf":
            n = _pdf_page_count(file)
            for k in range(n if n else 1):
                tasks.append(PageTask(len(tasks), f"{stem}-p{k + 1}", source, k))
        else:
            tasks.append(PageTask(len(tasks), stem, source, 0))
    # a PDF page stem ('a-p1') may meet an image named 'a-p1.png': number the later one
    seen: Counter[str] = Counter()
    for k, task in enumerate(tasks):
        seen[task.stem.lower()] += 1
        if seen[task.stem.lower()] > 1:
            tasks[k] = PageTask(k, f"{task.stem}_{seen[task.stem.lower()]}", task.source, task.page)
    return tasks


def _unique_stems(found: Sequence[tuple[Path, str]]) -> list[str]:
    """Disambiguate equal stems (``a.png`` and ``a.jpg`` → ``a_png``, ``a_jpg``; then ``_2``…)."""
    counts = Counter(stem.lower() for _, stem in found)
    pairs = Counter((stem.lower(), file.suffix.lower()) for file, stem in found)
    stems = [
        f"{stem}_{file.suffix.lower().lstrip('.')}"
        if counts[stem.lower()] > 1 and pairs[stem.lower(), file.suffix.lower()] == 1
        else stem
        for file, stem in found
    ]
    seen: Counter[str] = Counter()
    out = []
    for stem in stems:
        seen[stem.lower()] += 1
        out.append(stem if seen[stem.lower()] == 1 else f"{stem}_{seen[stem.lower()]}")
    return out


def _manifest_bytes(tasks: Sequence[PageTask], settings: Mapping[str, Any]) -> bytes:
    header = {"ecgscan_job": _MANIFEST_VERSION, "n_tasks": len(tasks), "settings": dict(settings)}
    lines = [json.dumps(header, sort_keys=True)]
    lines += [json.dumps(t.to_dict(), sort_keys=True) for t in tasks]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _read_manifest(path: Path) -> tuple[dict[str, Any], list[PageTask]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0])
        tasks = [PageTask(**json.loads(line)) for line in lines[1:]]
    except (OSError, ValueError, IndexError, TypeError) as exc:
        raise EcgscanError(
            f"job manifest {str(path)!r} is unreadable ({exc}); remove the folder "
            f"{str(path.parent)!r} to start the job afresh"
        ) from None
    if header.get("ecgscan_job") != _MANIFEST_VERSION or header.get("n_tasks") != len(tasks):
        raise EcgscanError(
            f"job manifest {str(path)!r} is from another ecgscan version or incomplete; "
            f"remove the folder {str(path.parent)!r} to start the job afresh"
        )
    return header, tasks


# --------------------------------------------------------------------------- the ledger
@dataclass
class _LedgerState:
    done: dict[int, list[str]] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    begun: dict[int, list[str]] = field(default_factory=dict)  # begun, not finished
    valid_bytes: int = 0


def _read_ledger(path: Path) -> _LedgerState:
    state = _LedgerState()
    if not path.is_file():
        return state
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            break  # a line cut short by a kill: ignored (and truncated away on resume)
        try:
            entry = json.loads(data[pos:end])
            index = int(entry["i"])
            event = entry["event"]
        except (ValueError, KeyError, TypeError):
            break
        if event == "begin":
            state.begun[index] = [str(n) for n in entry["files"]]
        elif event == "done":
            state.begun.pop(index, None)
            state.failed.pop(index, None)
            state.done[index] = [str(f["name"]) for f in entry["files"]]
        elif event == "failed":
            state.begun.pop(index, None)
            state.failed[index] = str(entry.get("error", ""))
        pos = end + 1
    state.valid_bytes = pos
    return state


def read_job_state(output_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Summarise a job folder: total pages, done, failed, and the pages still to run.

    Returns a dict with ``total``, ``done``, ``failed``, ``pending`` (counts), ``failures``
    (stem → error) and ``outputs`` (stem → committed file names).
    """
    job = Path(output_dir) / JOB_DIR
    manifest = job / "manifest.jsonl"
    if not manifest.is_file():
        raise EcgscanError(f"{str(output_dir)!r} holds no ecgscan job (no {manifest.name})")
    _, tasks = _read_manifest(manifest)
    state = _read_ledger(job / "ledger.jsonl")
    by_index = {t.index: t for t in tasks}
    return {
        "total": len(tasks),
        "done": len(state.done),
        "failed": len(state.failed),
        "pending": len(tasks) - len(state.done) - len(state.failed),
        "failures": {by_index[i].stem: e for i, e in sorted(state.failed.items())},
        "outputs": {by_index[i].stem: names for i, names in sorted(state.done.items())},
    }


class _Ledger:
    """Append-only, fsync'ed JSON-lines ledger."""

    def __init__(self, path: Path, valid_bytes: int) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.ftruncate(self._fd, valid_bytes)  # drop a line cut short by a kill
        os.lseek(self._fd, 0, os.SEEK_END)

    def append(self, entry: Mapping[str, Any]) -> None:
        line = (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8")
        os.write(self._fd, line)
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _commit(out: Path, tmp: Path, task: PageTask, outcome: _Outcome, ledger: _Ledger) -> None:
    outputs = outcome.outputs or {}
    names = [task.stem + suffix for suffix in outputs]
    ledger.append({"i": task.index, "event": "begin", "files": names})
    files: list[dict[str, Any]] = []
    parents = set()
    for name, data in zip(names, outputs.values(), strict=True):
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = tmp / f"{task.index}-{len(files)}.part"
        with open(staged, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(staged, target)
        parents.add(target.parent)
        digest = hashlib.sha256(data).hexdigest()
        files.append({"name": name, "size": len(data), "sha256": digest})
    for parent in parents:
        _fsync_dir(parent)
    ledger.append({"i": task.index, "event": "done", "files": files,
                   "seconds": round(outcome.seconds, 4),
                   "cpu_seconds": round(outcome.cpu_seconds, 4)})  # fmt: skip


def _check_outputs(task: PageTask, outputs: Any) -> dict[str, bytes]:
    if not isinstance(outputs, Mapping) or not outputs:
        raise TypeError(
            f"the page function returned {type(outputs).__name__} for {task.stem!r}; it must "
            "return a non-empty mapping of file suffix (e.g. '.hea') to bytes"
        )
    checked: dict[str, bytes] = {}
    for suffix, data in outputs.items():
        if not isinstance(suffix, str) or not _SUFFIX_RE.match(suffix) or suffix in {".", ".."}:
            raise ValueError(
                f"the page function returned the output suffix {suffix!r} for {task.stem!r}; "
                "suffixes are appended to the page stem and may hold only letters, digits, "
                "'.', '_' and '-' (e.g. '.hea', '.overlay.png')"
            )
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"output {suffix!r} of {task.stem!r} is not bytes")
        checked[suffix] = bytes(data)
    return checked


# ------------------------------------------------------------------------- the workers
#: Environment variables that make numerical libraries use one thread.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS")  # fmt: skip


@contextlib.contextmanager
def single_threaded_children() -> Iterator[None]:
    """Processes started inside this block use one thread per numerical library.

    Spawned children inherit the environment when they start, before they import numpy; set
    later, these variables would be ignored. The parent's environment is restored afterwards.
    """
    saved = {var: os.environ.get(var) for var in THREAD_VARIABLES}
    os.environ.update({var: "1" for var in THREAD_VARIABLES})
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _init_worker() -> None:
    """Keep each worker process on one core (the pool provides the parallelism); leave Ctrl-C
    to the parent, which stops the job after the pages in flight."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in THREAD_VARIABLES:
        os.environ[var] = "1"
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - OpenCV is a base dependency
        pass


def _run_task(function: PageFunction, task: PageTask) -> _Outcome:
    """Run the page function on one task; every exception becomes a recorded failure."""
    tic, cpu = time.perf_counter(), time.process_time()
    outcome = _Outcome(task.index)
    try:
        outcome.outputs = _check_outputs(task, function(task))
    except EcgscanError as exc:
        outcome.error = str(exc)
    except Exception as exc:  # a bug on one page must not stop an archive job
        outcome.error = f"internal error ({type(exc).__name__}: {exc})"
    outcome.seconds = time.perf_counter() - tic
    outcome.cpu_seconds = time.process_time() - cpu
    return outcome


def _run_task_in_worker(function: PageFunction, task: PageTask) -> _Outcome:
    _init_worker()
    return _run_task(function, task)


def _local_results(
    function: PageFunction, tasks: Sequence[PageTask], workers: int
) -> Iterator[_Outcome]:
    ctx = multiprocessing.get_context("spawn")
    with (
        single_threaded_children(),
        cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool,
    ):
        queue = iter(tasks)
        pending: set[cf.Future[_Outcome]] = set()
        try:
            while True:
                while len(pending) < 2 * workers:
                    task = next(queue, None)
                    if task is None:
                        break
                    pending.add(pool.submit(_run_task, function, task))
                if not pending:
                    return
                finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: f.result().index):
                    yield future.result()
        except BrokenProcessPool:
            raise EcgscanError(
                "a worker process died (out of memory or killed; or, from a Python script, the "
                "script starts the job without `if __name__ == '__main__':`, which worker "
                "processes need); the pages committed so far are kept: run the job again with "
                "--resume (resume=True)"
            ) from None
        finally:
            for future in pending:
                future.cancel()


def _import_ray() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import ray
    except ImportError:
        raise EcgscanError(
            "backend 'ray' needs Ray; install it with `pip install 'ecgscan[cluster]'`"
        ) from None
    return ray


def _ray_results(
    function: PageFunction, tasks: Sequence[PageTask], workers: int, address: str | None
) -> Iterator[_Outcome]:
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": False,
        }
        if address is None:
            kwargs["num_cpus"] = workers
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise EcgscanError(
                f"cannot connect to the Ray cluster at {address!r}: {exc}; start it with "
                "`ray start --head` or pass --address of a running cluster"
            ) from None
        started = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=3)(_run_task_in_worker)
        fn_ref = ray.put(function)
        capacity = max(1, int(ray.cluster_resources().get("CPU", workers)))
        limit = 2 * (capacity if address is not None else workers)
        queue = iter(tasks)
        pending: list[Any] = []
        while True:
            while len(pending) < limit:
                task = next(queue, None)
                if task is None:
                    break
                pending.append(remote.remote(fn_ref, task))
            if not pending:
                return
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                yield ray.get(ref)
    finally:
        if started:
            ray.shutdown()


# --------------------------------------------------------------------------------- run
def run_job(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    process_page: PageFunction,
    settings: Mapping[str, Any] | None = None,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    recursive: bool = True,
    progress: bool = True,
) -> JobReport:
    """Run ``process_page`` over every page of ``inputs``, committing each page atomically.

    Parameters
    ----------
    inputs : path or sequence of paths
        Image files, PDFs and folders (see :func:`expand_inputs`).
    output_dir : path
        Where the outputs go (``<output_dir>/<stem><suffix>``) and the job's manifest and ledger
        (``<output_dir>/.ecgscan-job/``).
    process_page : callable, keyword-only
        ``process_page(task: PageTask) -> {suffix: bytes}``; must be picklable (a module-level
        function or an instance of a module-level class) and deterministic. An
        :class:`~ecgscan.errors.EcgscanError` marks the page as failed; so does any other
        exception (recorded as an internal error); the job goes on.
    settings : mapping, optional
        JSON-able description of what ``process_page`` does (e.g. ``{'fs': 500}``); stored in
        the manifest, and a resume with different settings is refused.
    workers : int
        Local worker processes (``backend='local'``), or CPUs of the local Ray instance started
        when ``backend='ray'`` and no ``address`` is given.
    backend : {'local', 'ray'}
        Where pages run. ``'ray'`` needs the ``cluster`` extra; input files must be readable at
        the same paths on every Ray node (a shared file system).
    address : str, optional
        Address of a running Ray cluster (``'auto'``, ``'ray://host:10001'``, ``'host:6379'``).
    resume : bool
        Continue the job already in ``output_dir``: skip committed pages, redo pages that were
        cut short. Without it, an output folder holding a job is refused.
    retry_failed : bool
        With ``resume``, run the pages that failed before again.
    recursive : bool
        Search input folders recursively.
    progress : bool
        Show a progress bar with the rate and ETA on stderr.

    Returns
    -------
    JobReport

    Raises
    ------
    EcgscanError
        Bad parameters, an output folder holding another job, or a resume whose inputs or
        settings differ from the manifest.
    FileNotFoundError
        A missing input.
    """
    if backend not in BACKENDS:
        raise EcgscanError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise EcgscanError(f"workers must be a positive integer, got {workers!r}")
    if address is not None and backend != "ray":
        raise EcgscanError("address is only used with backend 'ray'; pass backend='ray'")
    if not callable(process_page):
        raise TypeError("process_page must be callable: process_page(task) -> {suffix: bytes}")
    try:
        pickle.dumps(process_page)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise TypeError(
            f"process_page must be picklable to run in worker processes ({exc}); use a "
            "module-level function or an instance of a module-level class, not a lambda or a "
            "local function"
        ) from None
    settings = dict(settings or {})
    try:
        json.dumps(settings)
    except TypeError as exc:
        raise EcgscanError(f"settings must be JSON-serialisable: {exc}") from None

    tic = time.perf_counter()
    out = ensure_output_dir(output_dir)
    job = out / JOB_DIR
    manifest = job / "manifest.jsonl"
    tasks = expand_inputs(inputs, recursive=recursive, exclude=out)
    if manifest.is_file():
        header, old_tasks = _read_manifest(manifest)
        if not resume:
            state = _read_ledger(job / "ledger.jsonl")
            raise EcgscanError(
                f"output folder {str(out)!r} already holds a job ({len(state.done)} of "
                f"{len(old_tasks)} pages done); pass --resume (resume=True) to continue it, or "
                "choose another output folder"
            )
        _check_same_job(out, header, old_tasks, tasks, settings)
        tasks = old_tasks
    else:
        job.mkdir(exist_ok=True)
        atomic_write_bytes(manifest, _manifest_bytes(tasks, settings))

    tmp = job / "tmp"
    shutil.rmtree(tmp, ignore_errors=True)  # leftovers of a killed run
    tmp.mkdir()
    for leftover in out.glob(".ecgscan-*"):  # atomic_write_* leftovers of a killed run
        if leftover.is_dir() and leftover.name != JOB_DIR:
            shutil.rmtree(leftover, ignore_errors=True)
    state = _read_ledger(job / "ledger.jsonl")
    recovered = 0
    for names in state.begun.values():  # cut short between 'begin' and 'done'
        recovered += 1
        for name in names:
            (out / name).unlink(missing_ok=True)
    finished = set(state.done) | (set() if retry_failed else set(state.failed))
    todo = [t for t in tasks if t.index not in finished]
    skipped = len(tasks) - len(todo)

    by_index = {t.index: t for t in tasks}
    ledger = _Ledger(job / "ledger.jsonl", state.valid_bytes)
    processed = 0
    failures: list[PageFailure] = []
    bar = _progress_bar(len(tasks), skipped, enabled=progress)
    try:
        if backend == "ray":
            results = _ray_results(process_page, todo, workers, address)
        else:
            results = _local_results(process_page, todo, workers)
        for outcome in results:
            task = by_index[outcome.index]
            if outcome.outputs is not None:
                _commit(out, tmp, task, outcome, ledger)
                processed += 1
            else:
                error = outcome.error or "unknown error"
                ledger.append({"i": task.index, "event": "failed", "error": error})
                failures.append(PageFailure(task.stem, task.source, task.page, error))
            if bar is not None:
                bar.update(1)
                if failures:
                    bar.set_postfix(failed=len(failures), refresh=False)
    finally:
        ledger.close()
        if bar is not None:
            bar.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return JobReport(
        output_dir=out,
        total=len(tasks),
        processed=processed,
        skipped=skipped,
        failed=tuple(failures),
        seconds=time.perf_counter() - tic,
        backend=backend,
        workers=workers,
        recovered=recovered,
    )


def _check_same_job(
    out: Path,
    header: Mapping[str, Any],
    old: Sequence[PageTask],
    new: Sequence[PageTask],
    settings: Mapping[str, Any],
) -> None:
    if [t.to_dict() for t in old] != [t.to_dict() for t in new]:
        old_src = {t.source for t in old}
        new_src = {t.source for t in new}
        added, removed = sorted(new_src - old_src), sorted(old_src - new_src)
        detail = []
        if added:
            detail.append(f"{len(added)} new file(s), e.g. {added[0]!r}")
        if removed:
            detail.append(f"{len(removed)} file(s) gone, e.g. {removed[0]!r}")
        raise EcgscanError(
            f"cannot resume the job in {str(out)!r}: its inputs differ from the ones given now "
            f"({'; '.join(detail) or 'different pages'}); pass the same inputs, or start a new "
            "job in another output folder"
        )
    if dict(header.get("settings", {})) != dict(settings):
        raise EcgscanError(
            f"cannot resume the job in {str(out)!r}: it was started with settings "
            f"{json.dumps(header.get('settings', {}), sort_keys=True)}, not "
            f"{json.dumps(dict(settings), sort_keys=True)}; use the same options, or start a new "
            "job in another output folder"
        )


def _progress_bar(total: int, initial: int, *, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="page",
        desc="pages",
        dynamic_ncols=True,
        file=sys.stderr,
        smoothing=0.1,
    )
