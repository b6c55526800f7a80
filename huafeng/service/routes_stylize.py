"""``POST /v1/stylize``: one request, one PNG, for the methods fast enough to answer within it."""
from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ..errors import SettingsError
from .config import ServiceConfig
from .forms import StyleForm, color_field, fast_pattern, strength_field, style_form
from .jobs import JobQueue
from .params import job_params, read_upload
from .schema import UPLOAD_ERRORS, binary, error, errors, style_rule

SYNC_METHODS = ("photoreal", "fast")  # fast enough to answer within one request


def stylize_router(config: ServiceConfig, jobs: JobQueue) -> APIRouter:
    r = APIRouter()

    @r.post("/v1/stylize", response_class=Response,
            responses={**binary("The stylized photo; its job's id is in the X-Job-Id header.", "image/png"),
                       **errors(*UPLOAD_ERRORS, 409, 500, 504)}, openapi_extra=style_rule(model_too=False, fast_pattern=fast_pattern()))
    async def stylize(content: UploadFile = File(..., description="The photo."),
                      form: StyleForm = Depends(style_form(config, ["auto", *SYNC_METHODS])), strength: float = strength_field(),
                      preserve_color: str = color_field()):
        """Synchronous stylization for the fast methods (photoreal, fast); give ``style`` or
        ``style_file``. Slower methods: POST /v1/jobs."""
        photo, painting = await read_upload(content, config), await read_upload(form.style_file, config, optional=True)
        p = await run_in_threadpool(job_params, config, photo, form.style, painting, form.method, strength,
                                    preserve_color, form.size)
        if p["method"] not in SYNC_METHODS:
            raise SettingsError(f"{p['method']} is too slow to answer in one request; POST /v1/jobs instead.")
        job = await run_in_threadpool(jobs.submit, p)
        deadline = time.monotonic() + config.request_timeout
        while job.status in ("queued", "running"):
            if time.monotonic() > deadline:
                await run_in_threadpool(jobs.cancel, job.id)
                return error(504, f"the stylization took over {config.request_timeout:.0f} s and was stopped.")
            await asyncio.sleep(0.02)
        if job.status != "done" or job.result is None:  # a bug is a 500 (its exception's name only); a user's error 422
            status = 500 if job.internal else 422 if job.status == "failed" else 409
            return error(status, job.error or job.status)
        png = await run_in_threadpool(job.result.read_bytes)
        return Response(png, media_type="image/png", headers={"X-Job-Id": job.id})

    return r
