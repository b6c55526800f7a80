"""The style-transfer methods, one file each, behind one call: ``stylize(content, styles, weights, controls, progress)``.

A plain dict maps method names to (settings dataclass, stylizer class).
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any

from ..errors import SettingsError
from .arbitrary import ArbitrarySettings, ArbitraryStylizer
from .fast import FastSettings, FastStylizer
from .gan import GanSettings, GanStylizer
from .optimize import OptimizeSettings, OptimizeStylizer
from .photoreal import PhotorealSettings, PhotorealStylizer

METHODS: dict[str, tuple[type, type]] = {
    "optimize": (OptimizeSettings, OptimizeStylizer),
    "photoreal": (PhotorealSettings, PhotorealStylizer),
    "arbitrary": (ArbitrarySettings, ArbitraryStylizer),
    "fast": (FastSettings, FastStylizer),
    "gan": (GanSettings, GanStylizer),
}
# The default for a style picture without a trained network: one pass, the photo's detail kept in the
# picture's colours and tone. It stays the default until the painting network wins the quality
# comparison against it; for a painting look today, "optimize" is the quality option.
DEFAULT_METHOD = "photoreal"


def auto_method(style_refs: list[str]) -> str:
    """The method a user gets without ``--method``: ``fast`` when every style named has a trained
    network in the gallery, otherwise ``DEFAULT_METHOD`` (``photoreal``: one pass, the photo in the colours
    and tone of the style picture, its detail kept; not a painting look, for which ``optimize`` is meant)."""
    from .fast import gallery

    names = gallery()
    refs = [r.rpartition(":")[0] if r.rpartition(":")[2].replace(".", "", 1).isdigit() else r for r in style_refs]
    return "fast" if refs and all(r in names for r in refs) else DEFAULT_METHOD


def make_settings(method: str, **overrides: Any):
    """The method's settings dataclass with ``overrides`` applied; unknown names raise one line."""
    if method not in METHODS:
        raise SettingsError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}.")
    cls = METHODS[method][0]
    names = {f.name for f in fields(cls)}
    bad = sorted(set(overrides) - names)
    if bad:
        raise SettingsError(f"{method} has no setting {', '.join(bad)}; its settings are: {', '.join(sorted(names))}.")
    return cls(**overrides)


_stylizers: dict[tuple, Any] = {}


def get_stylizer(method: str = "optimize", settings=None, **overrides: Any):
    """A stylizer for ``method``, built once per settings and kept (models stay loaded)."""
    settings = settings if settings is not None else make_settings(method, **overrides)
    key = (method, settings)
    if key not in _stylizers:
        _stylizers[key] = METHODS[method][1](settings)
    return _stylizers[key]
