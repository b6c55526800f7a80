"""Where weights live, and how they are read and written: safetensors only, never pickle.

Shipped files sit in ``huafeng/weights/`` beside a model card (``NAME.md``) and are listed with
their sha256 in ``huafeng/weights/SHA256SUMS``, checked on first load. Metadata (architecture
config, provenance, licence) travels inside the safetensors header as strings.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as _st_load
from safetensors.torch import save_file as _st_save

from .atomic import atomic_path
from .errors import WeightsError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
_SUMS = "SHA256SUMS"
_lock = threading.Lock()


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _as_str_meta(meta: Mapping[str, object] | None) -> dict[str, str]:
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (meta or {}).items()}


def save_file(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike,
              metadata: Mapping[str, object] | None = None) -> dict:
    """Write ``tensors`` atomically (temp file, then rename) with string ``metadata``.

    Non-string metadata values are stored as JSON. Files written into the shipped folder are
    recorded in its SHA256SUMS. Returns ``{"path", "sha256", "bytes"}``.
    """
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path, 0o644) as tmp:  # 0o644: weights are meant to be shared
        _st_save(tensors, str(tmp), metadata=_as_str_meta(metadata))
    digest = sha256_of(path)
    if path.parent.resolve() == WEIGHTS_DIR:
        _record_sum(path.name, digest)
    return {"path": str(path), "sha256": digest, "bytes": path.stat().st_size}


def _read_sums() -> dict[str, str]:
    f = WEIGHTS_DIR / _SUMS
    if not f.exists():
        return {}
    pairs = (line.split() for line in f.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def _record_sum(name: str, digest: str) -> None:
    with _lock:
        sums = _read_sums()
        sums[name] = digest
        text = "".join(f"{d}  {n}\n" for n, d in sorted(sums.items()))
        (WEIGHTS_DIR / _SUMS).write_text(text)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file, without loading its tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{Path(path).name} is not a readable safetensors file ({e}).") from None


def load_file(path: str | os.PathLike, *, sha256: str | None = None,
              dtype: torch.dtype | None = torch.float32) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load a safetensors file: ``(tensors, metadata)``. Floating tensors are cast to ``dtype``.

    Raises :class:`WeightsError` (one line) when the file is missing, corrupt, not safetensors,
    or does not match ``sha256``.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist.")
    if sha256 is not None and sha256_of(path) != sha256:
        raise WeightsError(f"{path.name} does not match its recorded sha256; reinstall huafeng or retrain the file.")
    meta = read_metadata(path)
    try:
        tensors = _st_load(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise WeightsError(f"{path.name} is corrupt or not a safetensors file ({e}).") from None
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    return tensors, meta


def shipped_path(name: str) -> Path:
    """Path of a shipped weights file, e.g. ``shipped_path("lite0")``."""
    p = WEIGHTS_DIR / f"{name}.safetensors"
    if not p.is_file():
        raise WeightsError(f"the shipped weights {p.name} are missing from this install; reinstall huafeng.")
    return p


@lru_cache(maxsize=None)
def load_shipped(name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load a shipped file once per process, checking its sha256 against SHA256SUMS."""
    p = shipped_path(name)
    return load_file(p, sha256=_read_sums().get(p.name))
