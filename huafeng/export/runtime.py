"""The onnxruntime backend: models exported on first use into a cache folder, then run on the CPU.

Cache: ``$HUAFENG_CACHE/onnx`` if set, else ``$XDG_CACHE_HOME/huafeng/onnx``, else
``~/.cache/huafeng/onnx``; files are named by the sha256 of the weights they came from, the
precision and the huafeng version, so new weights or a new release export again. An export only
lands in the cache after passing its parity check (see :func:`huafeng.export.export_onnx`).
"""
from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..controls import ProgressFn
from ..errors import SettingsError

BACKENDS = ("torch", "onnx", "onnx-int8")
_lock = threading.Lock()


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise SettingsError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}.")


def cache_dir() -> Path:
    """The folder exported models are cached in (created on first export, not on import)."""
    root = os.environ.get("HUAFENG_CACHE")
    if root:
        return Path(root).expanduser() / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huafeng" / "onnx"


def session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime CPU session; ``threads`` defaults to torch's thread count (shared machines)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # warnings about unused initialisers are not the user's business
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def cached_export(ref: str, int8: bool = False, progress: ProgressFn | None = None) -> Path:
    """The ONNX file of a model reference, exported (and checked) into the cache on first use."""
    from .convert import ExportSettings, export_onnx
    from .models import load_model

    model = load_model(str(ref))
    path = cache_dir() / f"{model.kind}-{model.name}-{model.sha256()[:16]}-{'int8' if int8 else 'fp32'}-{__version__}.onnx"
    with _lock:  # two threads of one service do not export the same model twice
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            export_onnx(str(ref), path, ExportSettings(int8=int8), progress=progress, model=model)
    return path


class OnnxNet:
    """A torch-in, torch-out callable over an ONNX file: ``net(image)`` or ``net(image, style)``."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.path = Path(path)
        self.session = session(path, threads)
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, *tensors: torch.Tensor) -> torch.Tensor:
        feeds = {name: np.ascontiguousarray(t.detach().cpu().float().numpy()) for name, t in zip(self.inputs, tensors)}
        out = torch.from_numpy(self.session.run(None, feeds)[0])
        return out.to(tensors[0].device)


def module_runner(net: torch.nn.Module, backend: str = "onnx", kind: str = "gan") -> OnnxNet:
    """The ONNX runner of an in-memory image-to-image network (its weights' hash is the cache key)."""
    check_backend(backend)
    return _module_runner(net, backend, kind)


@lru_cache(maxsize=16)
def _module_runner(net: torch.nn.Module, backend: str, kind: str) -> OnnxNet:
    import hashlib

    from .convert import ExportSettings, export_onnx
    from .graphs import size_free
    from .models import ExportModel

    h = hashlib.sha256(type(net).__qualname__.encode())
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    int8 = backend == "onnx-int8"
    path = cache_dir() / f"{kind}-{h.hexdigest()[:16]}-{'int8' if int8 else 'fp32'}-{__version__}.onnx"
    with _lock:
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            model = ExportModel(kind, type(net).__name__, net, net, ("image",), (),
                                fallbacks=(lambda: size_free(net).eval(),))
            export_onnx("", path, ExportSettings(int8=int8), model=model)
    return OnnxNet(path)


@lru_cache(maxsize=16)
def onnx_runner(ref: str, backend: str = "onnx") -> OnnxNet:
    """The ONNX runner of a model for ``backend`` (``onnx`` or ``onnx-int8``), kept once loaded."""
    check_backend(backend)
    if backend == "torch":
        raise SettingsError("onnx_runner is for the onnx backends; the torch backend loads the network itself.")
    return OnnxNet(cached_export(ref, int8=backend == "onnx-int8"))
