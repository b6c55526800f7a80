"""What an exported ONNX file computes, written as torch modules built from the library's own parts.

Two things stop a plain trace of the library's networks from generalising to other picture sizes:
Python branches on the input size (taken once, at trace time) and eigendecompositions (no ONNX op).
So:

- :class:`SizeFree` pads the picture to the network's size multiple and crops the result, in integer
  tensor arithmetic that the trace records as a function of the input's shape. Inside, the network
  then only ever sees sizes where its own padding branch is not taken.
- :class:`PhotorealGraph` is the photoreal method's encoder → WCT → decoder chain with the style
  picture as a second input; its WCT takes covariance square roots by a Newton–Schulz iteration (matmuls
  only, exportable) instead of ``eigh``. The same graph with ``transform="eigh"`` is the torch
  reference the export is checked against.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

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
    if getattr(net, "size_multiple", None):
        return SizeFree(net, int(net.size_multiple), getattr(net, "pad_mode", "reflect"))
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


# ------------------------------------------------------------------------------ WCT by Newton–Schulz
def newton_schulz_sqrt(a: Tensor, iters: int = 40) -> tuple[Tensor, Tensor]:
    r"""``(A^{1/2}, A^{-1/2})`` of a symmetric positive-definite matrix by the coupled Newton–Schulz
    iteration (Higham 2008, eq. 6.35), matrix products only:

    .. math:: Y_0 = A/\|A\|_F,\ Z_0 = I,\quad T_k = \tfrac12(3I - Z_kY_k),\quad Y_{k+1} = Y_kT_k,\
              Z_{k+1} = T_kZ_k;\qquad Y_k\sqrt{\|A\|_F} \to A^{1/2},\ Z_k/\sqrt{\|A\|_F} \to A^{-1/2}.

    An eigenvalue at a fraction p of the norm grows by about 9/4 per step until the quadratic phase,
    so the iteration count sets the smallest eigenvalue that converges: here the covariances' floor is
    their 1e-5 ridge against norms of ~10-100 (p ~ 1e-7), which 30 steps reach in float64 (measured
    relative error 1e-10 against ``eigh``); 40 leaves margin. Run it in float64: in float32 it stalls
    at ~1e-3 relative error.
    """
    n = a.shape[-1]
    eye = torch.eye(n, dtype=a.dtype, device=a.device)
    norm = torch.sqrt((a * a).sum())
    y, z = a / norm, eye
    for _ in range(iters):
        t = 0.5 * (3.0 * eye - z @ y)
        y, z = y @ t, t @ z
    return y * torch.sqrt(norm), z / torch.sqrt(norm)


def stats64(f: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Mean (C,1) and covariance (C,C) in float64 of a (1,C,H,W) feature map; written like
    :func:`huafeng.methods.photoreal.feature_stats` but with a size-dependent count the trace keeps."""
    c = f.shape[1]
    x = f[0].reshape(c, -1).double()
    mu = x.mean(1, keepdim=True)
    d = x - mu
    # HW - 1 without the library's max(., 1): a Python max would freeze the count at trace time, and
    # a feature map of one pixel needs a picture under 8 px, below the library's 16 px minimum
    return mu, d @ d.transpose(0, 1) / (x.shape[1] - 1) + eps * torch.eye(c, dtype=torch.float64)


def wct_newton_schulz(content: Tensor, style: Tensor, iters: int = 40) -> Tensor:
    """The whitening–colouring transform of :func:`huafeng.methods.photoreal.wct` (alpha = 1), with
    matrix square roots by Newton–Schulz; ``content`` and ``style`` are (1,C,H,W) feature maps."""
    mu_c, cov_c = stats64(content)
    mu_s, cov_s = stats64(style)
    _, c_isqrt = newton_schulz_sqrt(cov_c, iters)
    s_sqrt, _ = newton_schulz_sqrt(cov_s, iters)
    t = s_sqrt @ c_isqrt
    c, h, w = content.shape[1], content.shape[2], content.shape[3]
    x = content[0].reshape(c, -1).double()
    return (t @ (x - mu_c) + mu_s).float().reshape(1, c, h, w)


def wct_eigh(content: Tensor, style: Tensor) -> Tensor:
    """The library's own WCT (eigendecomposition): the reference the export is measured against."""
    from ..methods.photoreal import feature_stats, wct

    return wct(content, feature_stats(style))


@dataclass
class PhotorealParts:
    encoder: nn.Module              # huafeng.features.FeatureExtractor (frozen Lite0)
    decoders: dict[str, nn.Module]  # level -> Decoder
    levels: tuple[str, ...]
    layer_of: dict[str, str] = field(default_factory=dict)  # level -> encoder layer name


class PhotorealGraph(nn.Module):
    """(content (1,3,H,W), style (1,3,h,w)) -> (1,3,H,W): multi-level WCT, coarse to fine, as in
    :class:`huafeng.methods.photoreal.PhotorealStylizer` with one style picture, strength 1, no tiling."""

    def __init__(self, parts: PhotorealParts, transform: str = "newton-schulz", iters: int = 40) -> None:
        super().__init__()
        self.encoder = parts.encoder
        self.decoders = nn.ModuleDict({lv: parts.decoders[lv] for lv in parts.levels})
        self.levels, self.layer_of = parts.levels, parts.layer_of
        self.transform: Callable[[Tensor, Tensor], Tensor] = (
            wct_eigh if transform == "eigh" else lambda c, s: wct_newton_schulz(c, s, iters))

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        names = [self.layer_of[lv] for lv in self.levels]
        style_feats = self.encoder(style, names)  # the painting is encoded once for every level
        x = content
        h, w = content.shape[-2], content.shape[-1]
        for lv in self.levels:
            name = self.layer_of[lv]
            f = self.encoder(x, [name])[name]
            # decode without the size argument (a branch on sizes); the decoder's output is at least
            # (h, w) because the encoder rounds sizes up, so a crop restores the size
            x = self.decoders[lv](self.transform(f, style_feats[name]))[..., :h, :w]
        return x
