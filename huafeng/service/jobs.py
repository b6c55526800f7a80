"""A bounded job queue for long stylizations: worker threads, progress, cancellation, results on disk.

The queue holds at most ``max_queue`` waiting jobs (beyond that, :class:`QueueFull` → HTTP 429);
``workers`` threads run them. A job's progress callback raises :class:`Cancelled` once the job is
cancelled or past its time limit, which unwinds the library call at its next progress report.
Results go to ``results_dir`` under random names; the folder is kept under ``results_cap_bytes`` by
evicting the oldest files.
"""
from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..controls import Progress
from ..errors import HuafengError


class QueueFull(Exception):
    """The job queue is full: try again later."""


class Cancelled(HuafengError):
    """The job was cancelled (by the user, or because it ran past its time limit)."""

    http_status = 409


@dataclass
class Job:
    id: str
    params: dict
    status: str = "queued"            # queued, running, done, failed, cancelled
    progress: float = 0.0
    stage: str = ""
    error: str | None = None
    result: Path | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def public(self) -> dict:
        out = {"id": self.id, "status": self.status, "progress": round(self.progress, 3), "stage": self.stage,
               "error": self.error, "method": self.params.get("method")}
        if self.status == "done":
            out["result"] = f"/v1/jobs/{self.id}/result"
        if self.started:
            out["seconds"] = round((self.finished or time.time()) - self.started, 2)
        return out


class JobQueue:
    def __init__(self, run: Callable[[Job, Callable[[Progress], None]], Path], *, workers: int = 1,
                 max_queue: int = 8, job_timeout: float = 600.0, keep_jobs: int = 500) -> None:
        self._run, self.job_timeout, self.keep_jobs = run, job_timeout, keep_jobs
        self._q: queue.Queue[Job] = queue.Queue(maxsize=max_queue)
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._worker, daemon=True, name=f"huafeng-worker-{i}")
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, params: dict) -> Job:
        job = Job(id=uuid.uuid4().hex, params=params)
        with self._lock:
            try:
                self._q.put_nowait(job)
            except queue.Full:
                raise QueueFull from None
            self.jobs[job.id] = job
            self._forget_old()
        return job

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        if job is not None and job.status in ("queued", "running"):
            job.cancel.set()
            if job.status == "queued":
                job.status, job.finished = "cancelled", time.time()
        return job

    @property
    def waiting(self) -> int:
        return self._q.qsize()

    @property
    def running(self) -> int:
        return sum(1 for j in list(self.jobs.values()) if j.status == "running")

    def _forget_old(self) -> None:
        finished = [j for j in self.jobs.values() if j.status in ("done", "failed", "cancelled")]
        for j in sorted(finished, key=lambda j: j.created)[: max(0, len(self.jobs) - self.keep_jobs)]:
            del self.jobs[j.id]

    def _worker(self) -> None:
        while True:
            job = self._q.get()
            if job.cancel.is_set():
                continue
            job.status, job.started = "running", time.time()

            def report(p: Progress, job: Job = job) -> None:
                if job.cancel.is_set():
                    raise Cancelled("the job was cancelled.")
                if time.time() - job.started > self.job_timeout:
                    raise Cancelled(f"the job ran past its {self.job_timeout:.0f} s limit and was stopped.")
                job.progress, job.stage = p.fraction, p.stage

            try:
                job.result = self._run(job, report)
                job.status, job.progress = "done", 1.0
            except Cancelled as e:
                job.status, job.error = "cancelled", str(e)
            except HuafengError as e:
                job.status, job.error = "failed", str(e)
            except Exception as e:  # noqa: BLE001 - a worker must survive anything a job does
                job.status, job.error = "failed", f"internal error: {type(e).__name__}"
            finally:
                job.finished = time.time()


def evict_oldest(folder: Path, cap_bytes: int) -> None:
    """Delete the oldest files in ``folder`` until its total size is at most ``cap_bytes``."""
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in files)
    for p in files:
        if total <= cap_bytes:
            break
        total -= p.stat().st_size
        p.unlink(missing_ok=True)
