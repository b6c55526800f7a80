"""Where a method's network runs when its settings ask for another runtime than torch.

``onnx`` and ``onnx-int8`` run the method's own export graph (its ``export_graph`` hook) under
onnxruntime, exported, checked against torch and cached on first use by :mod:`huafeng.export`. The
methods call these two functions and never import :mod:`huafeng.export`, which in turn only knows the
methods through :func:`huafeng.methods.export_graph`: the one place where the two meet is here, at
call time (an optional extra, ``huafeng[export]``).
"""
from __future__ import annotations

from typing import Callable

import torch

from .controls import BACKENDS

__all__ = ["BACKENDS", "module_runner", "named_runner"]
Runner = Callable[..., torch.Tensor]


def named_runner(ref: str, backend: str) -> Runner:
    """The checked onnxruntime runner (torch in, torch out) of a model a method's export hook knows
    by ``ref`` (a trained network's name or file), for ``backend`` ``onnx`` or ``onnx-int8``."""
    from .export.runtime import onnx_runner

    return onnx_runner(ref, backend)


def module_runner(net: torch.nn.Module, backend: str, kind: str) -> Runner:
    """The same for an in-memory image-to-image network (keyed by its weights' hash)."""
    from .export.runtime import module_runner as runner

    return runner(net, backend, kind)
