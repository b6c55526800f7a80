"""Jobs: submit a photo, a video or a painting to train on; follow, cancel and download by id."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TypedDict

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import SettingsError
from ..image import read_image
from ..video import VIDEO_METHODS
from .config import ServiceConfig
from .forms import StyleForm, color_field, fast_pattern, strength_field, style_form
from .jobs import Job, JobQueue
from .params import job_params, read_upload
from .schema import UPLOAD_ERRORS, JobInfo, TooLarge, binary, error, errors, style_rule

_ID = re.compile(r"^[0-9a-f]{32}$")
RESULT_TYPES = {".png": "image/png", ".mp4": "video/mp4", ".safetensors": "application/octet-stream"}


class _JobRoute(TypedDict):
    """The keyword arguments every route that answers with a job shares (typed, so ``**_JOB`` is checked)."""

    response_model: type[JobInfo]
    response_model_exclude_unset: bool


_JOB: _JobRoute = {"response_model": JobInfo, "response_model_exclude_unset": True}


def jobs_router(config: ServiceConfig, jobs: JobQueue, results: Path) -> APIRouter:
    from ..methods import gan

    r = APIRouter()
    models = list(gan.gallery())
    model_field = Form(None, description="A shipped GAN model (with method auto or gan, no style is needed).",
                       json_schema_extra={"enum": models} if models else None)

    @r.post("/v1/jobs", status_code=202, **_JOB, responses=errors(*UPLOAD_ERRORS, 500),
            openapi_extra=style_rule(model_too=True, fast_pattern=fast_pattern()))
    async def create_job(content: UploadFile = File(..., description="The photo."),
                         form: StyleForm = Depends(style_form(config)), strength: float = strength_field(),
                         preserve_color: str = color_field(), model: str | None = model_field) -> dict:
        """Stylize a photo. Give ``style`` or ``style_file`` (or a GAN ``model``); ``method`` "auto" is
        the library's choice (a gallery style's trained network)."""
        photo, painting = await read_upload(content, config), await read_upload(form.style_file, config, optional=True)
        p = await run_in_threadpool(job_params, config, photo, form.style, painting, form.method, strength,
                                    preserve_color, form.size, model)
        return (await run_in_threadpool(jobs.submit, p)).public()

    @r.post("/v1/video-jobs", status_code=202, **_JOB, responses=errors(*UPLOAD_ERRORS, 500),
            openapi_extra=style_rule(model_too=False, fast_pattern=fast_pattern()))
    async def create_video_job(video: UploadFile = File(..., description="mp4, mov, mkv or webm."),
                               form: StyleForm = Depends(style_form(config, ["auto", *VIDEO_METHODS])),
                               consistency: float = Form(0.7, ge=0, lt=1, description="Temporal consistency.")) -> dict:
        """Stylize a video with temporal consistency; the audio is kept. Give ``style`` or ``style_file``."""
        painting = await read_upload(form.style_file, config, optional=True)
        p = await run_in_threadpool(job_params, config, None, form.style, painting, form.method, size=form.size,
                                    allowed=VIDEO_METHODS, what="video")
        path = await run_in_threadpool(_keep_video, await read_upload(video, config), config, results)
        params = {"kind": "video", "video": path, "styles": p["styles"], "style_names": p["style_names"], "method": p["method"],
                  "settings": p["settings"], "consistency": consistency}
        return (await run_in_threadpool(_submit, jobs, params, "video", [path])).public()

    @r.post("/v1/train-jobs", status_code=202, **_JOB, responses=errors(*UPLOAD_ERRORS),
            include_in_schema=config.train_content_dir is not None)  # documented where this server trains
    async def create_train_job(painting: UploadFile = File(..., description="The painting to learn."),
                               minutes: float = Form(5.0, gt=0, description="Training time.",
                                                     json_schema_extra={"maximum": config.train_max_minutes})) -> dict:
        """Train a fast per-style network on an uploaded painting; the result is its .safetensors file."""
        if config.train_content_dir is None:
            raise SettingsError("training is not enabled on this server (start it with --train-content DIR).")
        if minutes > config.train_max_minutes:
            raise SettingsError(f"minutes must be at most {config.train_max_minutes:g}.")
        data = await read_upload(painting, config)
        path, work = await run_in_threadpool(_keep_painting, data, config, results)
        params = {"kind": "train", "painting": path, "work": work, "minutes": minutes, "method": "fast"}
        return (await run_in_threadpool(_submit, jobs, params, "train", [path, work])).public()

    @r.get("/v1/jobs/{job_id}", **_JOB, responses=errors(404))
    def get_job(job_id: str) -> dict:
        """A job's state; finished jobs answer after a restart too, and interrupted ones say so (failed)."""
        return _job(jobs, job_id).public()

    @r.delete("/v1/jobs/{job_id}", **_JOB, responses=errors(404))
    def cancel_job(job_id: str) -> dict:
        """Cancel a queued or running job; a finished one is returned as it is."""
        _job(jobs, job_id)
        job = jobs.cancel(job_id)
        if job is None:  # the job was there a moment ago: its record was pruned in between, so it is gone
            raise StarletteHTTPException(404, f"no job {job_id[:40]!r}.")
        return job.public()

    @r.get("/v1/jobs/{job_id}/result", response_class=Response,
           responses={**binary("The result: a PNG image, an MP4 video, or a trained network (.safetensors).",
                               *dict.fromkeys(RESULT_TYPES.values())), **errors(404, 409)})
    def job_result(job_id: str):
        job = _job(jobs, job_id)
        if job.status != "done" or job.result is None or not job.result.exists():
            return error(404 if job.status == "done" else 409, f"job {job_id} has no result ({job.status}).")
        return FileResponse(job.result, media_type=RESULT_TYPES.get(job.result.suffix, "application/octet-stream"),
                            filename=f"huafeng-{job_id[:8]}{job.result.suffix}")

    return r


def _job(jobs: JobQueue, job_id: str) -> Job:
    job = jobs.get(job_id) if _ID.match(job_id) else None
    if job is None:
        raise StarletteHTTPException(404, f"no job {job_id[:40]!r}.")
    return job


def _submit(jobs: JobQueue, params: dict, kind: str, scratch: list[str]) -> Job:
    """Queue a job that owns scratch files; they go if it cannot be queued (429)."""
    from .store import remove_scratch

    try:
        return jobs.submit(params, kind=kind, scratch=scratch)
    except BaseException:
        remove_scratch(scratch, jobs.results)
        raise


def _keep_video(data: bytes, config: ServiceConfig, results: Path) -> str:
    """Write an uploaded video under a random name (never the client's) and check it against the limits."""
    from ..video import probe

    fd, path = tempfile.mkstemp(suffix=".video", dir=results)
    with open(fd, "wb") as f:
        f.write(data)
    try:
        info = probe(path)
        if info["frames"] > config.max_video_frames or info["width"] * info["height"] > config.max_pixels:
            raise TooLarge(f"the video is over {config.max_video_frames} frames or {config.max_pixels} pixels.")
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    return path


def _keep_painting(data: bytes, config: ServiceConfig, results: Path) -> tuple[str, str]:
    """Check an uploaded painting (a bad one fails now, with a 4xx), write it, and make the run's folder."""
    read_image(data, max_pixels=config.max_pixels)
    fd, path = tempfile.mkstemp(suffix=".png", dir=results)
    with open(fd, "wb") as f:
        f.write(data)
    return path, tempfile.mkdtemp(suffix=".run", dir=results)
