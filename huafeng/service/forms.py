"""The form fields the stylizing routes share, with the schema saying what the server checks: the
style names (a pattern), the methods and colour modes (enums), the size range."""
from __future__ import annotations

from dataclasses import dataclass

from fastapi import File, Form, UploadFile

from ..controls import COLOR_MODES
from .config import ServiceConfig
from .params import method_choices, style_pattern


@dataclass
class StyleForm:
    style: str | None
    style_file: UploadFile | None
    method: str
    size: int | None


def style_form(config: ServiceConfig, methods: list[str] | None = None):
    """A dependency reading the style fields (``Depends(style_form(config))``); ``methods``: those the
    route runs (default: all)."""

    def fields(style: str | None = Form(None, description="A bundled style's name (GET /v1/styles), or several "
                                                          "separated by commas (a blend). Give style or style_file.",
                                        json_schema_extra={"pattern": style_pattern()}),
               style_file: UploadFile | None = File(None, description="A painting to take the style from "
                                                                      "(instead of style)."),
               method: str = Form("auto", description="'auto': the library's choice (a gallery style with a trained "
                                                      "network runs it, as in the CLI); see GET /v1/methods.",
                                  json_schema_extra={"enum": methods or method_choices()}),
               size: int | None = Form(None, description="The long side of the result in pixels (default: the method's).",
                                       json_schema_extra={"minimum": 16, "maximum": config.max_size})) -> StyleForm:
        return StyleForm(style, style_file, method, size)

    return fields


def color_field():
    return Form("none", description="Keep the photo's colours: luminance or histogram matching.",
                json_schema_extra={"enum": list(COLOR_MODES)})


def strength_field():
    return Form(1.0, ge=0, le=1, description="0: the photo, 1: fully stylized.")


def fast_pattern() -> str:
    """The ``style`` values the fast method runs: bundled styles that have a trained network."""
    from ..methods import fast
    from ..styles import BUNDLED

    trained = [n for n in BUNDLED if n in fast.gallery()]
    return style_pattern(trained) if trained else "^$"  # with minLength 1: nothing (fast has no network)
