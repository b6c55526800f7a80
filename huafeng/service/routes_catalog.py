"""What the server offers: the studio pages, health, methods, bundled styles and trained networks."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from .. import __version__
from ..methods import METHODS
from ..styles import BUNDLED
from .jobs import JobQueue
from .schema import Health, MethodInfo, ModelInfo, StyleInfo, binary, error, errors

STATIC = Path(__file__).resolve().parent / "static"
# what the studio's method menu says of each method ("auto" is the library's choice: choose_method)
METHOD_NOTES = {"auto": "a gallery style with a trained network runs it; otherwise photoreal",
                "photoreal": "fast: the picture's colours and tone", "fast": "the style's trained network",
                "arbitrary": "painting network, one pass; in training", "optimize": "painting look, slow",
                "gan": "a trained GAN model: its collection's look, no painting needed"}


def catalog_router(jobs: JobQueue) -> APIRouter:
    r = APIRouter()

    @r.get("/", include_in_schema=False)
    def studio():
        return FileResponse(STATIC / "index.html")

    @r.get("/browser", include_in_schema=False)
    def browser_page():
        """Stylize in the browser with onnxruntime-web: the photo stays on the user's machine."""
        return FileResponse(STATIC / "browser.html")

    @r.get("/v1/health", response_model=Health)
    def health() -> dict:
        return {"status": "ok", "version": __version__, "queued": jobs.waiting, "running": jobs.running,
                "methods": list(METHODS)}

    @r.get("/v1/methods", response_model=list[MethodInfo], response_model_exclude_unset=True)
    def methods() -> list[dict]:
        """Every method, "auto" (the library's choice) first; a GAN method per shipped model."""
        from ..methods import gan

        out = [{"method": "auto", "note": METHOD_NOTES["auto"]}]
        for m in METHODS:
            if m == "gan":
                out += [{"method": m, "model": name, "note": METHOD_NOTES.get(m, "")} for name in gan.gallery()]
            else:
                out.append({"method": m, "note": METHOD_NOTES.get(m, "")})
        return out

    @r.get("/v1/styles", response_model=list[StyleInfo])
    def styles() -> list[dict]:
        """Bundled styles; ``network``: the style has a trained network (the fast method, auto's choice)."""
        from ..methods import fast

        trained = fast.gallery()
        return [{"name": s.name, "title": s.title, "artist": s.artist, "year": s.year, "network": s.name in trained,
                 "thumbnail": f"/v1/styles/{s.name}/thumbnail"} for s in BUNDLED.values()]

    @r.get("/v1/styles/{name}/thumbnail", response_class=Response,
           responses={**binary("The style's picture.", "image/jpeg"), **errors(404)})
    def thumbnail(name: str):
        if name not in BUNDLED:  # a name, never a path
            return error(404, f"no bundled style named {name[:40]!r}.")
        return FileResponse(BUNDLED[name].path, media_type="image/jpeg")

    @r.get("/v1/models", response_model=list[ModelInfo])
    def models() -> list[dict]:
        """Trained networks that run in the browser, each with the URL of its ONNX export."""
        return [{"name": n, "kind": kind, "url": f"/v1/models/{n}.onnx"} for n, kind in web_models().items()]

    @r.get("/v1/models/{name}.onnx", response_class=Response,
           responses={**binary("The network as an ONNX file.", "application/octet-stream"), **errors(404, 422, 500)})
    def model_onnx(name: str):
        """A trained network exported to ONNX (on first request, checked against torch, then cached)."""
        from ..export import cached_export

        if name not in web_models():  # a gallery name, never a path
            return error(404, f"no trained network named {name[:40]!r}.")
        return FileResponse(cached_export(name), media_type="application/octet-stream", filename=f"{name}.onnx")

    return r


def web_models() -> dict[str, str]:
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
