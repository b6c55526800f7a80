"""The service's settings, in one frozen dataclass (the CLI's ``huafeng serve`` fills it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ServiceConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    results_dir: str = "huafeng-results"
    results_cap_bytes: int = 500 * 2**20
    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = 16_000_000
    max_size: int = 2048
    max_queue: int = 8
    workers: int = 1
    request_timeout: float = 120.0   # a synchronous /v1/stylize waits at most this long
    job_timeout: float = 900.0       # a job running longer is stopped
    retry_after: int = 5
    method_defaults: dict = field(default_factory=dict)  # per-method settings, e.g. {"optimize": {"steps": 60}}
    train_content_dir: str | None = None   # photos for "train a style" jobs; None turns those jobs off
    train_max_minutes: float = 15.0
    train_overrides: dict = field(default_factory=dict)
    max_video_frames: int = 2000
    keep_job_records: int = 10_000   # finished job records kept in the database (the oldest go first)

    @property
    def jobs_db(self) -> Path:
        """The job records: a SQLite file *beside* the results folder (``huafeng-results.jobs.db``), so
        that the folder's size cap never evicts it."""
        results = Path(self.results_dir).resolve()
        return results.with_name(results.name + ".jobs.db")
