"""The web studio and REST API: a thin FastAPI layer over the library.

Nothing from a request reaches the filesystem: styles are looked up by bundled name, uploads are
decoded in memory, results are stored under random ids, and ids are checked against a pattern.
Routers: ``routes_catalog`` (studio pages, methods, styles, networks), ``routes_jobs`` (jobs by id),
``routes_stylize`` (one request, one PNG). Job records live in SQLite beside the results folder
(``store``), so finished jobs outlive a restart and interrupted ones say so.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from .. import __version__
from .config import ServiceConfig
from .jobs import JobQueue
from .routes_catalog import STATIC, METHOD_NOTES, catalog_router, web_models
from .routes_jobs import jobs_router
from .routes_stylize import SYNC_METHODS, stylize_router
from .runner import Runner
from .schema import custom_openapi, error, install_errors
from .store import JobStore

__all__ = ["ServiceConfig", "create_app", "METHOD_NOTES", "SYNC_METHODS", "web_models"]


def create_app(config: ServiceConfig = ServiceConfig()) -> FastAPI:
    results = Path(config.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    store = JobStore(config.jobs_db, keep=config.keep_job_records)
    store.recover(results)  # jobs a stopped process left queued or running: failed, "interrupted by a restart"
    jobs = JobQueue(Runner(config, results), store, results, workers=config.workers, max_queue=config.max_queue,
                    job_timeout=config.job_timeout)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        store.close()  # a clean stop gives up this app's claim on its jobs

    app = FastAPI(title="huafeng", version=__version__, lifespan=lifespan,
                  description="Style transfer: the studio page at /, the REST API under /v1. Every error is "
                              "JSON {\"error\": \"one sentence\"}.")
    app.state.jobs, app.state.config, app.state.store = jobs, config, store
    install_errors(app, config.retry_after)

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > 2 * config.max_upload_bytes + 2**20:
            return error(413, f"the upload is over {config.max_upload_bytes // 2**20} MB.")
        return await call_next(request)

    app.include_router(catalog_router(jobs))
    app.include_router(jobs_router(config, jobs, results))
    app.include_router(stylize_router(config, jobs))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.openapi = lambda: custom_openapi(app)  # type: ignore[method-assign]
    return app
