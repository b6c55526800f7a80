"""The style-transfer methods, one file each, behind one call: ``stylize(content, styles, weights, controls, progress)``.

A plain dict maps method names to (settings dataclass, stylizer class).
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
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


def choose_method(method: str | None = "auto", styles: Sequence[Any] = (), *, model: str | None = None,
                  allowed: Sequence[str] | None = None, what: str = "") -> str:
    """The method to run, checked: ``method`` itself when named, else (``"auto"`` or None) the one
    choice every caller shares (CLI, API, service, studio, video, batch):

    - a GAN model named and no style: ``gan``;
    - every style a name (or ``NAME:WEIGHT``) with a trained network in the gallery: ``fast``;
    - otherwise ``DEFAULT_METHOD`` (a style given as a picture or a file has no trained network).

    ``allowed`` narrows the methods (``what`` names the caller for the error, e.g. ``video``).
    """
    if method in (None, "", "auto"):
        refs = [str(r) for r in styles if isinstance(r, (str, os.PathLike))]
        if model and not styles:
            method = "gan"
        else:
            method = auto_method(refs) if len(refs) == len(styles) else DEFAULT_METHOD
    if method not in METHODS:
        raise SettingsError(f"unknown method {str(method)[:40]!r}; choose one of: {', '.join(METHODS)}.")
    if allowed is not None and method not in allowed:
        raise SettingsError(f"{what or 'this'} works with the {', '.join(allowed)} methods, not {method!r}.")
    return method


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


# The stylizers built last (models stay loaded); a few settings at a time, so that a service answering
# many different settings does not grow without bound. Built under the lock: one instance per settings.
_STYLIZERS_KEPT = 8
_stylizers: OrderedDict[tuple, Any] = OrderedDict()
_stylizers_lock = threading.Lock()


def get_stylizer(method: str = "optimize", settings=None, **overrides: Any):
    """A stylizer for ``method``, built once per settings and kept (models stay loaded; the last
    ``_STYLIZERS_KEPT`` settings). Safe to call from several threads: they get the same instance."""
    settings = settings if settings is not None else make_settings(method, **overrides)
    key = (method, settings)
    with _stylizers_lock:
        if key not in _stylizers:
            _stylizers[key] = METHODS[method][1](settings)
            while len(_stylizers) > _STYLIZERS_KEPT:
                _stylizers.popitem(last=False)
        _stylizers.move_to_end(key)
        return _stylizers[key]
