"""What the API answers, said once: the JSON bodies, every error status, binary media types, and the
rules a form's fields must follow together. Routers take their ``responses=`` from here, and
:func:`install_errors` turns every exception into the documented JSON error body.
"""
from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from ..errors import HuafengError
from .jobs import QueueFull


class ErrorBody(BaseModel):
    """Every error the service answers, whatever its status."""

    error: str = Field(description="One sentence: what was wrong and what to do.")


class JobInfo(BaseModel):
    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    stage: str
    error: str | None = Field(description="Why the job failed or was cancelled (a restart interrupts a job too).")
    method: str | None = Field(description="The method that runs (or ran): the library's choice when 'auto' was asked.")
    result: str | None = Field(None, description="Where to GET the result; only once the job is done.")
    seconds: float | None = Field(None, description="Running time so far, or in all once finished.")


class MethodInfo(BaseModel):
    method: str = Field(description="A value for the forms' method field ('auto': the library's choice).")
    model: str | None = Field(None, description="For the gan method: a shipped model, the forms' model field.")
    note: str


class StyleInfo(BaseModel):
    name: str
    title: str
    artist: str
    year: str
    network: bool = Field(description="The style has a trained network: 'auto' runs it (the fast method).")
    thumbnail: str


class ModelInfo(BaseModel):
    name: str
    kind: Literal["fast", "gan"]
    url: str


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    queued: int
    running: int
    methods: list[str]


class TooLarge(Exception):
    """An upload over the byte, pixel or frame limit (413)."""


ERRORS: dict[int, str] = {
    400: "A malformed request body (not multipart form data).",
    404: "No such job, style, network or result (a result evicted by the results folder's size cap is gone too).",
    409: "The job is not done (queued, running, failed or cancelled), so it has no result.",
    413: "An upload over the size, pixel or frame limit.",
    415: "An upload that is not a readable image or video.",
    422: "An invalid field, or fields that do not go together: for instance neither style nor style_file "
         "(nor, for a GAN, model), or a method that cannot run this style.",
    429: "The queue is full; Retry-After says when to try again.",
    500: "The server's own weights are missing or broken, or an internal error (a bug; the body names only its exception).",
    504: "The stylization ran past the request timeout and was stopped.",
}
BINARY = {"schema": {"type": "string", "format": "binary"}}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for these error statuses, each with the :class:`ErrorBody` model."""
    out: dict[int | str, dict[str, Any]] = {c: {"model": ErrorBody, "description": ERRORS[c]} for c in codes}
    if 429 in out:
        out[429]["headers"] = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
    return out


def binary(description: str, *media: str) -> dict[int | str, dict[str, Any]]:
    """A 200 whose body is a file of one of these media types (use with ``response_class=Response``)."""
    return {200: {"description": description, "content": {m: BINARY for m in media}}}


UPLOAD_ERRORS = (400, 413, 415, 422, 429)  # what every form that takes an upload can answer


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def install_errors(app: FastAPI, retry_after: int) -> None:
    """Every exception the routes raise becomes ``{"error": ...}`` with its documented status."""

    @app.exception_handler(HuafengError)
    async def _huafeng_error(_: Request, e: HuafengError):
        return error(e.http_status, str(e))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ())[1:]) or "request"
        return error(422, f"invalid {where}: {first.get('msg', 'bad value')}.")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        headers = dict(e.headers or {})
        if e.status_code == 405:  # Starlette names the first matching route's methods only; name them all
            headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
            headers["Allow"] = _allowed(request) or (e.headers or {}).get("Allow", "")
        return error(e.status_code, str(e.detail), headers or None)

    @app.exception_handler(Exception)
    async def _internal(_: Request, e: Exception):  # a bug: still the documented body (and logged by Starlette)
        return error(500, f"internal error: {type(e).__name__}.")

    @app.exception_handler(TooLarge)
    async def _too_large(_: Request, e: TooLarge):
        return error(413, str(e))

    @app.exception_handler(QueueFull)
    async def _full(_: Request, e: QueueFull):
        return error(429, "the queue is full; try again shortly.", {"Retry-After": str(retry_after)})


def _allowed(request: Request) -> str:
    """The methods the request's path answers (for a 405's Allow header), asked of the router itself.
    Mounts (the static files) answer every method here and refuse in their own 405: left out."""
    found = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        scope = {**request.scope, "method": method}
        if any(not isinstance(r, Mount) and r.matches(scope)[0] == Match.FULL for r in request.app.router.routes):
            found.append(method)
    return ", ".join(found)


def style_rule(model_too: bool, fast_pattern: str | None = None) -> dict[str, Any]:
    """The rules no single field can say, added to the form's schema by :func:`custom_openapi`:
    a style by name, or a painting (or, with ``model_too``, a GAN model with the method auto or gan);
    and, with ``fast_pattern``, the fast method takes only styles that have a trained network."""
    rule: dict[str, Any] = {"anyOf": [{"required": ["style"], "properties": {"style": {"minLength": 1}}},
                                      {"required": ["style_file"]}]}
    if model_too:
        rule["anyOf"].append({"required": ["model"], "properties": {"model": {"minLength": 1},
                                                                    "method": {"enum": ["auto", "gan"]}}})
    if fast_pattern is not None:
        rule["allOf"] = [{"if": {"required": ["method"], "properties": {"method": {"const": "fast"}}},
                          "then": {"required": ["style"], "properties": {"style": {"minLength": 1,
                                                                                   "pattern": fast_pattern}}}}]
    return {"x-huafeng-form-rule": rule}


UPLOAD_TYPES = {"content": "image/*", "style_file": "image/*", "painting": "image/*", "video": "video/*"}


def _plain_form(form: dict[str, Any], body: dict[str, Any]) -> None:
    """A form field is sent or left out; it cannot be null (a part saying "null" is the text "null",
    and a file part is never text), so ``X | None`` is documented as ``X``, optional. File parts say
    which media they take."""
    for name, prop in body.get("properties", {}).items():
        branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
        if "anyOf" in prop and len(branches) == 1:
            del prop["anyOf"]
            prop.update(branches[0])
        if name in UPLOAD_TYPES and prop.get("contentMediaType"):
            form.setdefault("encoding", {})[name] = {"contentType": UPLOAD_TYPES[name]}


def custom_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, plus what its generator cannot say: the forms' ``anyOf`` rules (from
    :func:`style_rule`), and validation errors in the service's own :class:`ErrorBody`."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = doc.get("components", {}).get("schemas", {})
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            form = op.get("requestBody", {}).get("content", {}).get("multipart/form-data")
            if form is not None:
                body = schemas[form["schema"]["$ref"].rsplit("/", 1)[1]]
                _plain_form(form, body)
                rule = op.pop("x-huafeng-form-rule", None)
                if rule is not None:
                    body.update(rule)
            responses = op.get("responses", {})
            if "HTTPValidationError" in str(responses.get("422")):
                if "requestBody" in op:  # the form's fields are validated: the error is the service's own
                    responses["422"] = {"description": ERRORS[422],
                                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
                else:  # plain string path parameters: nothing to refuse, FastAPI's 422 is never answered
                    del responses["422"]
    for name in ("HTTPValidationError", "ValidationError"):
        if name not in str(doc.get("paths")):
            schemas.pop(name, None)
    app.openapi_schema = doc
    return doc
