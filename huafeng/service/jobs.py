"""A bounded job queue for long stylizations: worker threads, progress, cancellation, results on disk.

The queue holds at most ``max_queue`` waiting jobs (beyond that, :class:`QueueFull` → HTTP 429);
``workers`` threads run them. A job's progress callback raises :class:`Cancelled` once the job is
cancelled or past its time limit, which unwinds the library call at its next progress report.

Jobs that are queued or running live in memory (with their inputs and cancel flag); every change of
state is also written to the :class:`~.store.JobStore`, which answers for jobs once they finish and
after a restart. Results go to the results folder under the job's id; the folder is kept under its
size cap by evicting the oldest results.
"""
from __future__ import annotations

import re
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG

from ..controls import Progress
from ..errors import HuafengError
from .store import JobStore, remove_scratch

RESULT_NAME = re.compile(r"^[0-9a-f]{32}\.[a-z0-9]+$")  # a result file: the job's id and a suffix
_PROGRESS_EVERY = 1.0  # seconds between progress writes to the database (memory has every report)


class QueueFull(Exception):
    """The job queue is full: try again later."""


class Cancelled(HuafengError):
    """The job was cancelled (by the user, or because it ran past its time limit)."""

    http_status = 409


@dataclass
class Job:
    id: str
    params: dict
    kind: str = "image"               # image, video, train
    method: str | None = None
    status: str = "queued"            # queued, running, done, failed, cancelled
    progress: float = 0.0
    stage: str = ""
    error: str | None = None
    internal: bool = False            # failed with an unexpected exception (a bug), not a user's error
    result: Path | None = None
    scratch: tuple[str, ...] = ()     # files the job owns until it ends (uploads waiting to run)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def public(self) -> dict:
        out = {"id": self.id, "status": self.status, "progress": round(self.progress, 3), "stage": self.stage,
               "error": self.error, "method": self.method}
        if self.status == "done":
            out["result"] = f"/v1/jobs/{self.id}/result"
        if self.started:
            out["seconds"] = round((self.finished or time.time()) - self.started, 2)
        return out


class JobQueue:
    def __init__(self, run: Callable[[Job, Callable[[Progress], None]], Path], store: JobStore, results: Path, *,
                 workers: int = 1, max_queue: int = 8, job_timeout: float = 600.0) -> None:
        self._run, self.store, self.results, self.job_timeout = run, store, Path(results), job_timeout
        self.max_queue = max_queue
        self._waiting: deque[Job] = deque()  # queued jobs, oldest first; a cancelled one leaves at once
        self.live: dict[str, Job] = {}       # this process's queued and running jobs
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._threads = [threading.Thread(target=self._worker, daemon=True, name=f"huafeng-worker-{i}")
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, params: dict, *, kind: str = "image", scratch: Sequence[str] = ()) -> Job:
        """Queue a job (recorded before it can start); :class:`QueueFull` when the queue is full."""
        job = Job(id=uuid.uuid4().hex, params=params, kind=kind, method=params.get("method"), scratch=tuple(scratch))
        with self._ready:
            if len(self._waiting) >= self.max_queue:
                raise QueueFull
            self.store.insert(job.id, kind, job.method, job.created, list(job.scratch))
            self._waiting.append(job)
            self.live[job.id] = job
            self._ready.notify()
        return job

    def get(self, job_id: str) -> Job | None:
        """A live job, else the record of a finished one (from this or an earlier process)."""
        with self._lock:
            job = self.live.get(job_id)
        if job is not None:
            return job
        row = self.store.get(job_id)
        return None if row is None else self._from_record(row)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job of this process; other jobs are returned as they are."""
        with self._lock:
            job = self.live.get(job_id)
            if job is not None and job.status in ("queued", "running"):
                job.cancel.set()
                if job.status == "queued":  # never started: it ends here, and frees its place in the queue
                    self._waiting.remove(job)
                    job.status, job.finished = "cancelled", time.time()
                    self._record_end(job)
                    remove_scratch(list(job.scratch), self.results)
        return job if job is not None else self.get(job_id)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    @property
    def running(self) -> int:
        with self._lock:
            return sum(1 for j in self.live.values() if j.status == "running")

    def _from_record(self, row: dict) -> Job:
        name = row["result"]
        result = self.results / name if name and RESULT_NAME.match(name) else None
        return Job(id=row["id"], params={}, kind=row["kind"], method=row["method"], status=row["status"],
                   progress=row["progress"], stage=row["stage"], error=row["error"], result=result,
                   scratch=tuple(row["scratch"]), created=row["created"], started=row["started"],
                   finished=row["finished"])

    def _record_end(self, job: Job) -> None:
        """Write a finished job's record, then let go of it (called under the lock): from here on the
        database answers for it, and its inputs are freed."""
        try:
            self.store.update(job.id, status=job.status, progress=job.progress, stage=job.stage, error=job.error,
                              result=job.result.name if job.result is not None else None, finished=job.finished)
        except sqlite3.Error:
            return  # the database failed (disk full?): memory keeps answering for the job
        self.live.pop(job.id, None)
        job.params = {}

    def _worker(self) -> None:
        while True:
            with self._ready:  # taken and marked running at once: a cancel sees it queued or running, never between
                while not self._waiting:
                    self._ready.wait()
                job = self._waiting.popleft()
                job.status, job.started = "running", time.time()
            saved = [job.started]

            def report(p: Progress, job: Job = job, saved: list = saved) -> None:
                if job.cancel.is_set():
                    raise Cancelled("the job was cancelled.")
                assert job.started is not None  # set when the job was taken, before it runs
                if time.time() - job.started > self.job_timeout:
                    raise Cancelled(f"the job ran past its {self.job_timeout:.0f} s limit and was stopped.")
                job.progress, job.stage = p.fraction, p.stage
                if time.time() - saved[0] > _PROGRESS_EVERY:  # other processes on the database see it move
                    saved[0] = time.time()
                    try:
                        self.store.update(job.id, progress=job.progress, stage=job.stage)
                    except sqlite3.Error:
                        pass  # progress is a courtesy to other processes; this one has it in memory

            try:
                self.store.update(job.id, status="running", started=job.started)
                result = self._run(job, report)
                job.result, job.status, job.progress = result, "done", 1.0
            except Cancelled as e:
                job.status, job.error = "cancelled", str(e)
            except HuafengError as e:
                job.status, job.error = "failed", str(e)
            except Exception as e:  # noqa: BLE001 - a worker must survive anything a job does
                # marked internal before it reads failed: a route watching the status sees both
                job.internal, job.error, job.status = True, f"internal error: {type(e).__name__}", "failed"
            finally:
                job.finished = time.time()
                with self._lock:
                    self._record_end(job)


_EVICTING = threading.Lock()  # one eviction at a time: the workers of a server finish jobs at once


def evict_oldest(folder: Path, cap_bytes: int, only: Callable[[Path], bool] | None = None) -> None:
    """Delete the oldest files in ``folder`` (those ``only`` accepts, if given) until their total size
    is at most ``cap_bytes``. A file that goes away meanwhile (another server on the folder evicting
    too) is skipped, never an error: the job whose result was just written must not fail for it."""
    with _EVICTING:
        files = []
        for p in folder.iterdir():
            try:
                if only is None or only(p):
                    st = p.stat()
                    if S_ISREG(st.st_mode):
                        files.append((st.st_mtime, st.st_size, p))
            except FileNotFoundError:
                continue
        files.sort(key=lambda f: f[0])
        total = sum(size for _, size, _ in files)
        for _, size, p in files:
            if total <= cap_bytes:
                break
            total -= size
            p.unlink(missing_ok=True)
