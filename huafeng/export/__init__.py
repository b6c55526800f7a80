"""Deployment: ONNX export with parity checks against torch, int8 quantization, an onnxruntime
backend, and a standalone in-browser build. Needs ``pip install 'huafeng[export]'`` (onnx, onnxruntime).

- :func:`export_onnx` — a gallery network, a ``.safetensors`` file or ``photoreal`` to ONNX, checked.
- :func:`onnx_runner` — the cached, checked ONNX model of a network as a torch-in, torch-out callable.
- :func:`build_web` — a folder with a page, the model and onnxruntime-web: stylize in the browser.
- :func:`export_pte` — an ExecuTorch program (XNNPACK) for phones, checked by ExecuTorch's runtime
  (:mod:`huafeng.export.mobile`; needs ``pip install 'huafeng[mobile]'``).

Export knows no method: a model reference goes to :func:`huafeng.methods.export_graph`, which asks
each method's ``export_graph`` hook for its graph.
"""
from __future__ import annotations

from .convert import ExportSettings, export_onnx, parity, psnr
from .models import ExportModel, load_model
from .runtime import BACKENDS, OnnxNet, cache_dir, cached_export, check_backend, module_runner, onnx_runner

__all__ = ["BACKENDS", "ExportModel", "ExportSettings", "OnnxNet", "build_web", "cache_dir", "cached_export",
           "check_backend", "export_onnx", "export_pte", "load_model", "module_runner", "onnx_runner", "parity", "psnr"]


def build_web(*args, **kwargs):
    """See :func:`huafeng.export.web.build_web`."""
    from .web import build_web as _build

    return _build(*args, **kwargs)


def export_pte(*args, **kwargs):
    """See :func:`huafeng.export.mobile.export_pte`."""
    from .mobile import export_pte as _export

    return _export(*args, **kwargs)
