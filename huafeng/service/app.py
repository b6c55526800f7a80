"""The web studio and REST API: a thin FastAPI layer over the library.

Nothing from a request reaches the filesystem: styles are looked up by bundled name, uploads are
decoded in memory, results are stored under random ids, and ids are checked against a pattern.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..api import stylize_image
from ..errors import HuafengError, SettingsError
from ..image import read_image, save_image
from ..methods import METHODS, choose_method, get_stylizer, make_settings
from ..methods.fast import gallery
from ..methods.gan import gallery as gan_gallery
from ..styles import BUNDLED
from .jobs import Job, JobQueue, QueueFull, evict_oldest

STATIC = Path(__file__).resolve().parent / "static"
_ID = re.compile(r"^[0-9a-f]{32}$")
SYNC_METHODS = ("photoreal", "fast")  # fast enough to answer within one request
# what the studio's method menu says of each method ("auto" is the library's choice: choose_method)
METHOD_NOTES = {"auto": "a gallery style with a trained network runs it; otherwise photoreal",
                "photoreal": "fast: the picture's colours and tone", "fast": "the style's trained network",
                "arbitrary": "painting network, one pass; in training", "optimize": "painting look, slow",
                "gan": "a trained GAN model: its collection's look, no painting needed"}


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


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _TooLarge(Exception):
    pass


def create_app(config: ServiceConfig = ServiceConfig()) -> FastAPI:
    app = FastAPI(title="huafeng", version=__version__,
                  description="Style transfer: the studio page at /, the REST API under /v1.")
    results = Path(config.results_dir)
    results.mkdir(parents=True, exist_ok=True)

    def run(job: Job, report) -> Path:
        p = job.params
        if p.get("kind") == "video":
            return _run_video(job, report)
        if p.get("kind") == "train":
            return _run_train(job, report)
        rgb, alpha = stylize_image(p["content"], p["styles"], p["method"], strength=p["strength"],
                                   preserve_color=p["preserve_color"], progress=report,
                                   **{**config.method_defaults.get(p["method"], {}), **p["settings"]})
        path = save_image(rgb, results / f"{job.id}.png", alpha=alpha)
        evict_oldest(results, config.results_cap_bytes)
        return path

    def _run_video(job: Job, report) -> Path:
        from ..video import VideoSettings, stylize_video

        p = job.params
        stylizer = get_stylizer(p["method"], make_settings(p["method"], **{
            **config.method_defaults.get(p["method"], {}), **p["settings"]}))
        out = results / f"{job.id}.mp4"
        try:
            stylize_video(p["video"], out, stylizer, p["styles"], [1.0] * len(p["styles"]),
                          settings=VideoSettings(consistency=p["consistency"]), progress=report)
        finally:
            Path(p["video"]).unlink(missing_ok=True)
        evict_oldest(results, config.results_cap_bytes)
        return out

    def _run_train(job: Job, report) -> Path:
        import shutil

        from ..train.style import StyleTrainSettings, train_style

        p = job.params
        work = results / f"{job.id}.run"
        try:
            summary = train_style(StyleTrainSettings(painting=p["painting"], content_dir=config.train_content_dir,
                                                     out=str(work), name="style", minutes=p["minutes"],
                                                     **config.train_overrides), progress=report)
            out = results / f"{job.id}.safetensors"
            shutil.copyfile(summary["weights"], out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            Path(p["painting"]).unlink(missing_ok=True)
        evict_oldest(results, config.results_cap_bytes)
        return out

    jobs = JobQueue(run, workers=config.workers, max_queue=config.max_queue, job_timeout=config.job_timeout)
    app.state.jobs, app.state.config = jobs, config

    # ------------------------------------------------------------------------------------- errors
    @app.exception_handler(HuafengError)
    async def _huafeng_error(_: Request, e: HuafengError):
        return _error(e.http_status, str(e))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ())[1:]) or "request"
        return _error(422, f"invalid {where}: {first.get('msg', 'bad value')}.")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, e: StarletteHTTPException):
        return _error(e.status_code, str(e.detail))

    @app.exception_handler(_TooLarge)
    async def _too_large(_: Request, e: _TooLarge):
        return _error(413, str(e))

    @app.exception_handler(QueueFull)
    async def _full(_: Request, e: QueueFull):
        return _error(429, "the queue is full; try again shortly.", {"Retry-After": str(config.retry_after)})

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > 2 * config.max_upload_bytes + 2**20:
            return _error(413, f"the upload is over {config.max_upload_bytes // 2**20} MB.")
        return await call_next(request)

    # --------------------------------------------------------------------------------- endpoints
    @app.get("/", include_in_schema=False)
    def studio():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/browser", include_in_schema=False)
    def browser_page():
        """Stylize in the browser with onnxruntime-web: the photo stays on the user's machine."""
        return FileResponse(STATIC / "browser.html")

    @app.get("/v1/models")
    def models() -> list[dict]:
        """Trained networks that run in the browser, each with the URL of its ONNX export."""
        return [{"name": n, "kind": kind, "url": f"/v1/models/{n}.onnx"} for n, kind in _web_models().items()]

    @app.get("/v1/models/{name}.onnx")
    def model_onnx(name: str):
        """A trained network exported to ONNX (on first request, checked against torch, then cached)."""
        from ..export import cached_export

        if name not in _web_models():  # a gallery name, never a path
            return _error(404, f"no trained network named {name[:40]!r}.")
        return FileResponse(cached_export(name), media_type="application/octet-stream", filename=f"{name}.onnx")

    @app.get("/v1/health")
    def health() -> dict:
        return {"status": "ok", "version": __version__, "queued": jobs.waiting, "running": jobs.running,
                "methods": list(METHODS)}

    @app.get("/v1/methods")
    def methods() -> list[dict]:
        """Every method, "auto" (the library's choice) first; a GAN method per shipped model."""
        out = [{"method": "auto", "note": METHOD_NOTES["auto"]}]
        for m in METHODS:
            if m == "gan":
                out += [{"method": m, "model": name, "note": METHOD_NOTES.get(m, "")} for name in gan_gallery()]
            else:
                out.append({"method": m, "note": METHOD_NOTES.get(m, "")})
        return out

    @app.get("/v1/styles")
    def styles() -> list[dict]:
        """Bundled styles; ``network``: the style has a trained network (the fast method, auto's choice)."""
        trained = gallery()
        return [{"name": s.name, "title": s.title, "artist": s.artist, "year": s.year, "network": s.name in trained,
                 "thumbnail": f"/v1/styles/{s.name}/thumbnail"} for s in BUNDLED.values()]

    @app.get("/v1/styles/{name}/thumbnail")
    def thumbnail(name: str):
        if name not in BUNDLED:  # a name, never a path
            return _error(404, f"no bundled style named {name[:40]!r}.")
        return FileResponse(BUNDLED[name].path, media_type="image/jpeg")

    async def _params(content: UploadFile, style: str | None, style_file: UploadFile | None, method: str,
                      strength: float, preserve_color: str, size: int | None, content_is_image: bool = True,
                      model: str | None = None, allowed: tuple[str, ...] | None = None, what: str = "") -> dict[str, Any]:
        if size is not None and not 16 <= size <= config.max_size:
            raise SettingsError(f"size must be between 16 and {config.max_size}.")
        if model and model not in gan_gallery():  # a shipped name, never a path
            raise SettingsError(f"no GAN model {model[:40]!r}; shipped models: {', '.join(gan_gallery()) or 'none'}.")
        names: list[str] = []
        if style_file is not None and style_file.filename:
            styles: list = [read_image(await _read(style_file), max_pixels=config.max_pixels)[0]]
        elif style:
            names = [s.strip() for s in style.split(",") if s.strip()]
            bad = [n for n in names if n not in BUNDLED]
            if bad or not names:
                raise SettingsError(f"unknown style {bad[0] if bad else style!r}; choose one of: {', '.join(BUNDLED)}.")
            styles = names
        elif not (model and method in ("auto", "gan")):
            raise SettingsError("give a style name (style) or a painting (style_file).")
        else:
            styles = []
        method = choose_method(method, styles, model=model, allowed=allowed, what=what)  # the library's choice
        settings: dict[str, Any] = {"size": size} if size is not None else {}
        if method == "gan" and model:
            settings["model"] = model
        if getattr(METHODS[method][1], "takes_style_images", True):
            styles = [read_image(BUNDLED[n].path)[0] for n in names] if names else styles
        elif method == "fast":  # a trained network per style, by its gallery name
            if not names or any(n not in gallery() for n in names):
                raise SettingsError(f"the fast method runs trained networks; pick a style that has one: "
                                    f"{', '.join(gallery())}.")
        else:
            styles = []  # gan: the model is the style
        if not content_is_image:
            return {"styles": styles, "method": method, "settings": settings}
        rgb, alpha = read_image(await _read(content), max_pixels=config.max_pixels)
        get_stylizer(method, make_settings(method, **{**config.method_defaults.get(method, {}), **settings}))
        return {"content": rgb if alpha is None else _with_alpha(rgb, alpha), "styles": styles, "method": method,
                "strength": strength, "preserve_color": preserve_color, "settings": settings}

    async def _read(upload: UploadFile) -> bytes:
        data = await upload.read(config.max_upload_bytes + 1)
        if len(data) > config.max_upload_bytes:
            raise _TooLarge(f"{upload.filename or 'the upload'} is over {config.max_upload_bytes // 2**20} MB.")
        return data

    @app.post("/v1/jobs", status_code=202)
    async def create_job(content: UploadFile = File(...), style: str | None = Form(None),
                         style_file: UploadFile | None = File(None), method: str = Form("auto"),
                         strength: float = Form(1.0, ge=0, le=1), preserve_color: str = Form("none"),
                         size: int | None = Form(None), model: str | None = Form(None)) -> dict:
        """Stylize a photo; ``method`` "auto" is the library's choice (a gallery style's trained network)."""
        job = jobs.submit(await _params(content, style, style_file, method, strength, preserve_color, size,
                                        model=model))
        return job.public()

    @app.post("/v1/video-jobs", status_code=202)
    async def create_video_job(video: UploadFile = File(...), style: str | None = Form(None),
                               style_file: UploadFile | None = File(None), method: str = Form("auto"),
                               consistency: float = Form(0.7, ge=0, lt=1), size: int | None = Form(None)) -> dict:
        """Stylize a video (mp4, mov, mkv, webm) with temporal consistency; the audio is kept."""
        import tempfile

        from ..video import VIDEO_METHODS, probe

        p = await _params(video, style, style_file, method, 1.0, "none", size, content_is_image=False,
                          allowed=VIDEO_METHODS, what="video")
        method, styles = p["method"], p["styles"]
        data = await _read(video)
        fd, path = tempfile.mkstemp(suffix=".video", dir=results)  # a random name, never the client's
        with open(fd, "wb") as f:
            f.write(data)
        try:
            info = probe(path)
            if info["frames"] > config.max_video_frames or info["width"] * info["height"] > config.max_pixels:
                raise _TooLarge(f"the video is over {config.max_video_frames} frames or {config.max_pixels} pixels.")
        except BaseException:
            Path(path).unlink(missing_ok=True)
            raise
        job = jobs.submit({"kind": "video", "video": path, "styles": styles, "method": method, "settings": p["settings"],
                           "consistency": consistency})
        return job.public()

    @app.post("/v1/train-jobs", status_code=202)
    async def create_train_job(painting: UploadFile = File(...), minutes: float = Form(5.0, gt=0)) -> dict:
        """Train a fast per-style network on an uploaded painting; the result is its .safetensors file."""
        import tempfile

        if config.train_content_dir is None:
            raise SettingsError("training is not enabled on this server (start it with --train-content DIR).")
        if minutes > config.train_max_minutes:
            raise SettingsError(f"minutes must be at most {config.train_max_minutes:g}.")
        data = await _read(painting)
        read_image(data, max_pixels=config.max_pixels)  # a bad painting fails now, with a 4xx
        fd, path = tempfile.mkstemp(suffix=".png", dir=results)
        with open(fd, "wb") as f:
            f.write(data)
        job = jobs.submit({"kind": "train", "painting": path, "minutes": minutes, "method": "fast"})
        return job.public()

    @app.get("/v1/jobs/{job_id}")
    def get_job(job_id: str) -> dict:
        return _job(job_id).public()

    @app.delete("/v1/jobs/{job_id}")
    def cancel_job(job_id: str) -> dict:
        _job(job_id)
        return jobs.cancel(job_id).public()

    @app.get("/v1/jobs/{job_id}/result")
    def job_result(job_id: str):
        job = _job(job_id)
        if job.status != "done" or job.result is None or not job.result.exists():
            return _error(404 if job.status == "done" else 409, f"job {job_id} has no result ({job.status}).")
        media = {".png": "image/png", ".mp4": "video/mp4", ".safetensors": "application/octet-stream"}
        return FileResponse(job.result, media_type=media.get(job.result.suffix, "application/octet-stream"),
                            filename=f"huafeng-{job_id[:8]}{job.result.suffix}")

    def _job(job_id: str) -> Job:
        job = jobs.get(job_id) if _ID.match(job_id) else None
        if job is None:
            raise StarletteHTTPException(404, f"no job {job_id[:40]!r}.")
        return job

    @app.post("/v1/stylize")
    async def stylize(content: UploadFile = File(...), style: str | None = Form(None),
                      style_file: UploadFile | None = File(None), method: str = Form("auto"),
                      strength: float = Form(1.0, ge=0, le=1), preserve_color: str = Form("none"),
                      size: int | None = Form(None)):
        """Synchronous stylization for fast methods; returns the PNG."""
        import asyncio
        import time

        p = await _params(content, style, style_file, method, strength, preserve_color, size)
        if p["method"] not in SYNC_METHODS:
            raise SettingsError(f"{p['method']} is too slow to answer in one request; POST /v1/jobs instead.")
        job = jobs.submit(p)
        deadline = time.time() + config.request_timeout
        while job.status in ("queued", "running"):
            if time.time() > deadline:
                jobs.cancel(job.id)
                return _error(504, f"the stylization took over {config.request_timeout:.0f} s and was stopped.")
            await asyncio.sleep(0.02)
        if job.status != "done":
            return _error(422 if job.status == "failed" else 409, job.error or job.status)
        return Response(job.result.read_bytes(), media_type="image/png", headers={"X-Job-Id": job.id})

    return app


def _web_models() -> dict[str, str]:
    """Gallery networks by name, with their kind: per-style (fast) networks, then GAN generators."""
    from ..methods import fast

    found = {n: "fast" for n in fast.gallery()}
    try:
        from ..methods import gan
    except ImportError:
        return found
    for n in gan.gallery():
        found.setdefault(n, "gan")
    return found


def _with_alpha(rgb, alpha):
    """Keep the alpha with the content through the job (re-attached on save)."""
    import torch

    return torch.cat([rgb, alpha], 1)
