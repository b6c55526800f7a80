"""From a form's fields to a job's parameters, checked: the library's one method choice, styles by
bundled name only, uploads decoded in memory, and the stylizer built (so bad settings fail now, with
a 4xx, and the model is loaded before the job starts).

:func:`read_upload` is the only coroutine here; everything else is plain CPU work that the routes run
in a worker thread (``run_in_threadpool``), never on the event loop.
"""
from __future__ import annotations

import re
from typing import Any, Literal, overload

from fastapi import UploadFile

from ..controls import COLOR_MODES
from ..errors import SettingsError
from ..image import read_image
from ..methods import METHODS, choose_method, get_stylizer, make_settings
from ..styles import BUNDLED
from .config import ServiceConfig
from .schema import TooLarge

STYLE_MISSING = "give a style name (style) or a painting (style_file)."


def style_pattern(styles=None) -> str:
    """The ``style`` field: one bundled style name (or one of ``styles``), or several separated by
    commas (a blend). The same regular expression is the schema's ``pattern`` and the server's check."""
    names = "|".join(BUNDLED if styles is None else styles)
    assert re.fullmatch(r"[a-z0-9|-]+", names), "style names are plain words (the pattern stays portable)"
    return rf"^(?: *(?:{names}) *(?:, *(?:{names}) *)*)?$"


def method_choices() -> list[str]:
    return ["auto", *METHODS]


@overload
async def read_upload(upload: UploadFile, config: ServiceConfig, optional: Literal[False] = False) -> bytes: ...
@overload
async def read_upload(upload: UploadFile | None, config: ServiceConfig, optional: bool = False) -> bytes | None: ...
async def read_upload(upload: UploadFile | None, config: ServiceConfig, optional: bool = False) -> bytes | None:
    """The upload's bytes (``optional``: None for a field left empty); over the limit: :class:`TooLarge` (413)."""
    if upload is None or (optional and not upload.filename):
        return None
    data = await upload.read(config.max_upload_bytes + 1)
    if len(data) > config.max_upload_bytes:
        raise TooLarge(f"{upload.filename or 'the upload'} is over {config.max_upload_bytes // 2**20} MB.")
    return data


def job_params(config: ServiceConfig, content: bytes | None, style: str | None, style_file: bytes | None,
               method: str, strength: float = 1.0, preserve_color: str = "none", size: int | None = None,
               model: str | None = None, allowed: tuple[str, ...] | None = None, what: str = "") -> dict[str, Any]:
    """The parameters of an image job (``content`` None: everything but the photo, for a video job).
    CPU work (decoding, building the model): call it off the event loop."""
    from ..methods import fast, gan  # at call time: tests swap the galleries

    if size is not None and not 16 <= size <= config.max_size:
        raise SettingsError(f"size must be between 16 and {config.max_size}.")
    if preserve_color not in COLOR_MODES:  # checked now, not when the job runs: a bad field is a 422
        raise SettingsError(f"preserve_color must be one of {', '.join(COLOR_MODES)}, got {preserve_color[:40]!r}.")
    if model and model not in gan.gallery():  # a shipped name, never a path
        raise SettingsError(f"no GAN model {model[:40]!r}; shipped models: {', '.join(gan.gallery()) or 'none'}.")
    names: list[str] = []
    if style_file is not None:
        styles: list = [read_image(style_file, max_pixels=config.max_pixels)[0]]
    elif style:
        names = [s.strip() for s in style.split(",")]
        if not re.fullmatch(style_pattern(), style) or not all(names):
            bad = next((n for n in names if n not in BUNDLED), style)
            raise SettingsError(f"unknown style {bad[:40]!r}; choose one of: {', '.join(BUNDLED)}.")
        styles = names
    elif not (model and method in ("auto", "gan")):
        raise SettingsError(STYLE_MISSING)
    else:
        styles = []
    method = choose_method(method, styles, model=model, allowed=allowed, what=what)  # the library's choice
    settings: dict[str, Any] = {"size": size} if size is not None else {}
    if method == "gan" and model:
        settings["model"] = model
    if getattr(METHODS[method][1], "takes_style_images", True):
        styles = [read_image(BUNDLED[n].path)[0] for n in names] if names else styles
    elif method == "fast":  # a trained network per style, by its gallery name
        if not names or any(n not in fast.gallery() for n in names):
            raise SettingsError(f"the fast method runs trained networks; pick a style that has one: "
                                f"{', '.join(fast.gallery())}.")
    else:
        styles = []  # gan: the model is the style
    if content is None:
        return {"styles": styles, "style_names": names, "method": method, "settings": settings}
    rgb, alpha = read_image(content, max_pixels=config.max_pixels)
    build_stylizer(config, method, settings)
    return {"content": rgb if alpha is None else _with_alpha(rgb, alpha), "styles": styles, "style_names": names,
            "method": method,
            "strength": strength, "preserve_color": preserve_color, "settings": settings}


def build_stylizer(config: ServiceConfig, method: str, settings: dict[str, Any]):
    """The (cached) stylizer a job will use, with the server's per-method defaults under the job's settings."""
    return get_stylizer(method, make_settings(method, **{**config.method_defaults.get(method, {}), **settings}))


def _with_alpha(rgb, alpha):
    """Keep the alpha with the content through the job (re-attached on save)."""
    import torch

    return torch.cat([rgb, alpha], 1)
