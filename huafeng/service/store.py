"""Job records in SQLite (the standard library's ``sqlite3``, WAL mode): what a restart must not forget.

One row per job: its kind, method, status, progress, error, the result's file name in the results
folder, and the scratch files it owns (uploads waiting to run). Inputs (decoded photos) are not
stored, so a job that was queued or running when its process stopped cannot be re-run: a later app
over the same database marks it ``failed`` with :data:`INTERRUPTED` and deletes its scratch files.
Finished jobs keep answering with their results.

Which jobs were interrupted is decided exactly, not guessed: every app holds an exclusive ``flock``
on a lock file of its own beside the database, which the kernel releases when the process ends
(``kill -9`` included). A job whose owner's lock can be taken has no live owner; the jobs of an app
that is still running (a second server on the same folder, a test) are left alone.

One connection, shared by the app's threads under a lock; WAL lets other processes read meanwhile.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock; every other owner counts as gone (one server per folder there)
    fcntl = None  # type: ignore[assignment]

INTERRUPTED = "interrupted by a service restart; submit the job again."
UNFINISHED = ("queued", "running")
FIELDS = ("id", "kind", "method", "status", "progress", "stage", "error", "result", "scratch", "owner",
          "created", "started", "finished")
_SCHEMA = """CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, method TEXT, status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0, stage TEXT NOT NULL DEFAULT '', error TEXT, result TEXT,
    scratch TEXT NOT NULL DEFAULT '[]', owner TEXT NOT NULL, created REAL NOT NULL, started REAL, finished REAL)"""


class JobStore:
    """The job table of one database file; ``owner`` names this app in the rows it writes."""

    def __init__(self, path: str | os.PathLike, keep: int = 10_000) -> None:
        self.path, self.keep = Path(path), keep
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.owner = uuid.uuid4().hex
        self._claim = _claim(self._lock_path(self.owner))  # before any row names this owner
        self._lock = threading.Lock()
        self._inserts = 0
        # autocommit (isolation_level=None): every statement is its own transaction
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
            self._db.execute(_SCHEMA)
            self._db.execute("CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status)")

    def insert(self, job_id: str, kind: str, method: str | None, created: float, scratch: list[str]) -> None:
        with self._lock:
            self._db.execute("INSERT INTO jobs (id, kind, method, status, scratch, owner, created) "
                             "VALUES (?, ?, ?, 'queued', ?, ?, ?)",
                             (job_id, kind, method, json.dumps(scratch), self.owner, created))
            self._inserts += 1
            if self._inserts % 100 == 0:
                self._prune()

    def update(self, job_id: str, **values: Any) -> None:
        bad = set(values) - set(FIELDS[3:8]) - {"started", "finished"}
        if bad:
            raise ValueError(f"not a job field: {', '.join(sorted(bad))}")
        cols = ", ".join(f"{k} = ?" for k in values)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*values.values(), job_id))

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(FIELDS)} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        out = dict(zip(FIELDS, row))
        out["scratch"] = json.loads(out["scratch"])
        return out

    def recover(self, folder: Path) -> list[str]:
        """Mark the unfinished jobs of every owner that is gone ``failed`` (:data:`INTERRUPTED`) and
        delete their scratch files (only ever inside ``folder``); returns their ids."""
        import time

        with self._lock:
            rows = self._db.execute("SELECT id, owner, scratch FROM jobs WHERE status IN (?, ?) AND owner != ?",
                                    (*UNFINISHED, self.owner)).fetchall()
        gone: dict[str, bool] = {}
        interrupted = []
        for job_id, owner, scratch in rows:
            if owner not in gone:
                gone[owner] = self._gone(owner)
            if not gone[owner]:
                continue
            with self._lock:
                self._db.execute("UPDATE jobs SET status = 'failed', error = ?, finished = ? "
                                 "WHERE id = ? AND status IN (?, ?)", (INTERRUPTED, time.time(), job_id, *UNFINISHED))
            remove_scratch(json.loads(scratch), folder)
            interrupted.append(job_id)
        for lock in self.path.parent.glob(self.path.name + "-*.lock"):  # owners gone without leaving jobs
            owner = lock.name[len(self.path.name) + 1:-len(".lock")]
            if owner != self.owner and owner not in gone:
                self._gone(owner)
        return interrupted

    def close(self) -> None:
        """Close the database and give up this app's claim (its lock file goes too)."""
        with self._lock:
            self._db.close()
        if self._claim is not None:
            self._lock_path(self.owner).unlink(missing_ok=True)
            os.close(self._claim)
            self._claim = None

    def _prune(self) -> None:
        """Keep the newest ``keep`` finished records (called under the lock)."""
        self._db.execute("DELETE FROM jobs WHERE status NOT IN (?, ?) AND id NOT IN "
                         "(SELECT id FROM jobs ORDER BY created DESC LIMIT ?)", (*UNFINISHED, self.keep))

    def _lock_path(self, owner: str) -> Path:
        return self.path.with_name(f"{self.path.name}-{owner}.lock")

    def _gone(self, owner: str) -> bool:
        """True when ``owner``'s process has ended (its lock is free, or there is none); a free lock
        file is removed on the way."""
        path = self._lock_path(owner)
        if fcntl is None:
            path.unlink(missing_ok=True)
            return True
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False  # held: that app is alive
        path.unlink(missing_ok=True)
        os.close(fd)
        return True


def _claim(path: Path) -> int | None:
    """Create ``path`` already locked (locked under a temporary name, then renamed into place, so that
    no one ever sees it unlocked); the returned descriptor holds the lock while it stays open."""
    if fcntl is None:
        path.touch()
        return None
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.replace(tmp, path)
    return fd


def remove_scratch(paths: list[str], folder: Path) -> None:
    """Delete a job's scratch files and folders, refusing anything outside ``folder``."""
    import shutil

    root = folder.resolve()
    for p in map(Path, paths):
        p = p.resolve()
        if root not in p.parents:
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
