"""What an exported ONNX file computes, written as torch modules built from the library's own parts.

Two things stop a plain trace of the library's networks from generalising to other picture sizes:
Python branches on the input size (taken once, at trace time) and eigendecompositions (no ONNX op).
So:

- :class:`SizeFree` pads the picture to the network's size multiple and crops the result, in integer
  tensor arithmetic that the trace records as a function of the input's shape. Inside, the network
  then only ever sees sizes where its own padding branch is not taken.
- The graphs with eigendecompositions replaced by Newton–Schulz iterations (:class:`PhotorealGraph`,
  :class:`PaintGraph`) are the methods' own (:mod:`huafeng.methods.graphs`: a method hands export its
  graph); they are named here too, for callers of this module.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..methods.graphs import (PaintGraph, PhotorealGraph, PhotorealParts, newton_schulz_sqrt, stats64, wct_eigh,
                              wct_newton_schulz)

__all__ = ["PaintGraph", "PhotorealGraph", "PhotorealParts", "SizeFree", "newton_schulz_sqrt", "size_free", "stats64",
           "wct_eigh", "wct_newton_schulz"]
Tensor = torch.Tensor


class SizeFree(nn.Module):
    """(B,3,H,W) -> (B,3,H,W) for any H, W: pad to a multiple (as the network itself would), run the
    network, crop back."""

    def __init__(self, net: nn.Module, multiple: int, mode: str = "reflect") -> None:
        super().__init__()
        self.net, self.multiple, self.mode = net, multiple, mode

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2], x.shape[-1]
        m = self.multiple
        ph, pw = (m - h % m) % m, (m - w % m) % m  # traced as Shape/Mod ops, not constants
        y = self.net(F.pad(x, (0, pw, 0, ph), mode=self.mode))
        return y[..., :h, :w]


def size_free(net: nn.Module) -> SizeFree:
    """Wrap a network in :class:`SizeFree` with the multiple and padding its own forward uses.

    From its ``size_multiple`` and ``pad_mode`` attributes when it has them; otherwise found by
    trying: the first (multiple, mode) whose wrapped output equals the network's own on odd sizes.
    (A wrong pick that still matches in eager mode, e.g. a multiple too small with replicate
    padding, is caught by the parity check after export: the export then fails, nothing is written.)
    """
    multiple = getattr(net, "size_multiple", None)
    if multiple:
        return SizeFree(net, int(multiple), getattr(net, "pad_mode", "reflect"))
    g = torch.Generator().manual_seed(0)
    probes = [torch.rand(1, 3, 33, 49, generator=g), torch.rand(1, 3, 42, 37, generator=g)]
    with torch.no_grad():
        refs = [net(x) for x in probes]
        for m in (4, 8, 2, 16, 32):
            for mode in ("reflect", "replicate", "constant"):
                cand = SizeFree(net, m, mode)
                if all((cand(x) - r).abs().max() < 1e-5 for x, r in zip(probes, refs)):
                    return cand
    return SizeFree(net, 4, "reflect")
