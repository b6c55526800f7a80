"""Which models can be exported, and how each is turned into an export-ready graph and a torch reference.

A model reference is a gallery name (``starry-night``: ``weights/fast-starry-night.safetensors``),
``photoreal`` (the shipped decoders), or a ``.safetensors`` file of a per-style network, of
photoreal (WCT) decoders, or of a GAN generator; the file's ``arch`` metadata says which.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import SettingsError, WeightsError
from ..weights import WEIGHTS_DIR, read_metadata, sha256_of
from .graphs import PhotorealGraph, PhotorealParts, size_free

Tensor = torch.Tensor


@dataclass
class ExportModel:
    """An export-ready model: ``graph`` is traced (else the first of ``fallbacks`` whose trace gives
    torch's numbers at sizes it was not traced at); ``reference`` is the library's torch path, which
    the ONNX file is checked against; ``inputs`` names the graph's inputs (``image``, ``style``)."""

    kind: str                       # "fast", "gan" or "photoreal"
    name: str
    graph: nn.Module
    reference: Callable[..., Tensor]
    inputs: tuple[str, ...]
    files: tuple[Path, ...]         # the weights it was built from (the cache key hashes these)
    metadata: dict[str, str] = field(default_factory=dict)
    card: str = ""                  # the model card (NAME.md beside the weights), if any
    fallbacks: tuple[Callable[[], nn.Module], ...] = ()  # built only when needed (finding one costs)

    def sha256(self) -> str:
        """Hash of the weights files and of the graph's configuration (levels, WCT): the cache key."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(sha256_of(f).encode())
        h.update(json.dumps([self.kind, self.metadata.get("levels"), self.metadata.get("wct")]).encode())
        return h.hexdigest()


def _card(path: Path) -> str:
    md = path.with_suffix(".md")
    return md.read_text(encoding="utf-8", errors="replace") if md.is_file() else ""


def _gan_module():
    try:
        from ..methods import gan
    except ImportError:
        return None
    return gan


def resolve(ref: str) -> tuple[str, Path]:
    """``(kind, weights file)`` for a model reference; one-line errors for anything else."""
    from ..methods.fast import gallery

    ref = str(ref)
    if ref == "photoreal":
        from ..weights import shipped_path

        return "photoreal", shipped_path("photoreal")
    if ref in gallery():
        return "fast", gallery()[ref]
    gan = _gan_module()
    if gan is not None and hasattr(gan, "gallery") and ref in gan.gallery():
        return "gan", gan.gallery()[ref]
    path = Path(ref).expanduser()
    if path.suffix != ".safetensors":
        names = sorted(set(gallery()) | set(gan.gallery() if gan is not None and hasattr(gan, "gallery") else ()))
        raise SettingsError(f"no model {ref!r} to export; give a .safetensors file, 'photoreal', or a trained "
                            f"network's name ({', '.join(names) or 'none are installed'}).")
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist.")
    meta = read_metadata(path)  # WeightsError (one line) when the file is not safetensors
    arch = meta.get("arch", "")
    if arch.startswith("huafeng-fast"):
        return "fast", path
    if "gan" in arch.lower():
        return "gan", path
    if any(k.startswith(("L1.", "L2.", "L3.", "L4.")) for k in _keys(path)):
        return "photoreal", path
    raise WeightsError(f"{path.name} is not a huafeng per-style network, GAN generator or photoreal "
                       f"decoder file (its metadata names architecture {arch or 'none'!r}).")


def _keys(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return list(f.keys())


def load_model(ref: str, ns_iters: int = 40) -> ExportModel:
    """The export-ready graph and torch reference of a model reference (see the module docstring)."""
    kind, path = resolve(ref)
    meta = read_metadata(path)
    name = path.stem.split("-", 1)[1] if kind in ("fast", "gan") and path.parent == WEIGHTS_DIR else path.stem
    if kind == "photoreal":
        return _photoreal(path, meta, ns_iters)
    if kind == "fast":
        from ..methods.fast import load_net

        net = graph = load_net(str(path))
        if net.palette is not None:  # the exported copy takes its colour transform's roots by matmuls
            graph = copy.deepcopy(net)
            graph.palette.sqrt = "newton-schulz"
    else:
        net = graph = _load_gan(path)
    # The network as it is (its own padding may trace as a function of the size), else wrapped
    return ExportModel(kind, name, graph, net, ("image",), (path,), meta, _card(path),
                       (lambda: size_free(graph).eval(),))


def _load_gan(path: Path) -> nn.Module:
    gan = _gan_module()
    if gan is None:
        raise SettingsError(f"{path.name} is a GAN generator, but this install has no GAN method to load it.")
    net, _ = gan.load_generator(str(path))
    return net


def _photoreal(path: Path, meta: dict[str, str], ns_iters: int) -> ExportModel:
    from ..features import FeatureExtractor
    from ..methods.photoreal import LEVELS, PhotorealSettings, load_decoders
    from ..weights import shipped_path

    decoders = load_decoders(str(path) if path.parent != WEIGHTS_DIR else path.stem)
    levels = PhotorealSettings().levels  # the method's default levels, coarse to fine
    if any(lv not in decoders for lv in levels):
        raise WeightsError(f"{path.name} lacks a decoder for one of the levels {', '.join(levels)}.")
    parts = PhotorealParts(FeatureExtractor("lite0", [LEVELS[lv] for lv in levels]), decoders, levels, dict(LEVELS))
    graph = PhotorealGraph(parts, "newton-schulz", ns_iters).eval()
    reference = PhotorealGraph(parts, "eigh").eval()
    info = {**meta, "levels": json.dumps(list(levels)), "wct": f"Newton-Schulz, {ns_iters} iterations, float64"}
    return ExportModel("photoreal", path.stem, graph, reference, ("image", "style"),
                       (path, shipped_path("lite0")), info, _card(path))
