"""The style-transfer methods, one file each, behind one call: ``stylize(content, styles, weights, controls, progress)``.

A plain dict maps method names to (settings dataclass, stylizer class).
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, cast

from ..errors import SettingsError, WeightsError
from .arbitrary import ArbitrarySettings, ArbitraryStylizer
from .fast import FastSettings, FastStylizer
from .gan import GanSettings, GanStylizer
from .graphs import Exportable, ExportModel
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


def export_graph(ref: str, ns_iters: int = 40) -> ExportModel:
    """The export-ready graph of a model reference: a trained network's name or a ``.safetensors``
    file, which every method with an export hook (``export_graph``, on its stylizer class) is asked
    about in turn, in ``METHODS`` order; the first that recognises it answers. ``ns_iters``: the
    Newton–Schulz steps of graphs that take matrix roots. One-line errors for anything else."""
    ref = str(ref)
    # the classes that have the hook (Exportable: the Protocol of a stylizer class with it)
    hooks = [cast(Exportable, cls) for _, cls in METHODS.values() if hasattr(cls, "export_graph")]
    path = None
    if ref.endswith(".safetensors"):
        from pathlib import Path

        from ..weights import read_metadata

        path = Path(ref).expanduser()
        if not path.is_file():
            raise WeightsError(f"weights file {path} does not exist.")
        arch = read_metadata(path).get("arch", "")  # WeightsError (one line) when the file is not safetensors
        ref = str(path)
    for cls in hooks:
        model = cls.export_graph(ref, ns_iters)
        if model is not None:
            return model
    kinds = ", ".join(cls.method for cls in hooks)
    if path is not None:
        raise WeightsError(f"{path.name} is not a weights file any exportable method takes ({kinds}); its "
                           f"metadata names architecture {arch or 'none'!r}.")
    names = sorted({n for cls in hooks for n in cls.export_names()})
    raise SettingsError(f"no model {ref!r} to export; give a .safetensors file or a trained network's name "
                        f"({', '.join(names) or 'none are installed'}).")


def default_export_ref() -> str:
    """The model ``huafeng bench --backends`` times by default: the first trained per-style network
    in the gallery, else ``photoreal``."""
    from .fast import gallery

    return next(iter(gallery()), "photoreal")


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
