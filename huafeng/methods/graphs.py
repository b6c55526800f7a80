"""What a method hands to export: :class:`ExportModel` (a graph, its torch reference, its inputs and its
model card), and the graphs themselves, written with matrix products only where the library takes
eigendecompositions (no ONNX or ExecuTorch op computes one).

Each stylizer class offers ``export_graph(ref, ns_iters) -> ExportModel | None`` (None: ``ref`` names
none of its models) and ``export_names()``; :func:`huafeng.methods.export_graph` asks them in turn.
Export never names a method, and nothing here imports :mod:`huafeng.export`.

- :func:`newton_schulz_sqrt`: ``(A^{1/2}, A^{-1/2})`` by the coupled Newton–Schulz iteration.
- :class:`PhotorealGraph`: the photoreal method's encoder → WCT → decoder chain, the painting as a
  second input; with ``transform="eigh"`` it is the torch reference.
- :class:`PaintGraph`: the arbitrary method's painting network on a whole picture, the painting's
  statistics taken inside the graph from the second input.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .. import controls as ctl
from ..losses import mean_std
from ..weights import sha256_of

if TYPE_CHECKING:
    from .paint_net import PaintNet

Tensor = torch.Tensor


@dataclass
class ExportModel:
    """An export-ready model: ``graph`` is traced (else the first of ``fallbacks`` whose trace gives
    torch's numbers at sizes it was not traced at); ``reference`` is the library's torch path, which
    the exported file is checked against; ``inputs`` names the graph's inputs (``image``, ``style``)."""

    kind: str                       # the method's name: "fast", "gan", "photoreal", "arbitrary"
    name: str
    graph: nn.Module
    reference: Callable[..., Tensor]
    inputs: tuple[str, ...]
    files: tuple[Path, ...]         # the weights it was built from (the cache key hashes these)
    metadata: dict[str, str] = field(default_factory=dict)
    card: str = ""                  # the model card (NAME.md beside the weights), if any
    fallbacks: tuple[Callable[[], nn.Module], ...] = ()  # built only when needed (finding one costs)
    # submodules of ``graph`` (by name prefix) that int8 exports keep in fp32: e.g. an encoder whose
    # features are then whitened (dividing by small eigenvalues' roots amplifies quantization noise)
    int8_keep: tuple[str, ...] = ()

    def sha256(self) -> str:
        """Hash of the weights files and of the graph's configuration (levels, WCT): the cache key."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(sha256_of(f).encode())
        h.update(json.dumps([self.kind, self.metadata.get("levels"), self.metadata.get("wct")]).encode())
        return h.hexdigest()


class Exportable(Protocol):
    """The export hook of the stylizer protocol: a stylizer class with these two is exportable."""

    method: str

    @staticmethod
    def export_graph(ref: str, ns_iters: int = 40) -> ExportModel | None:
        """The graph of the model ``ref`` names (a name or a ``.safetensors`` path), or None: not mine."""

    @staticmethod
    def export_names() -> list[str]:
        """The names (besides files) :meth:`export_graph` recognises, for listings and errors."""


def card_of(path: Path) -> str:
    """The model card beside a weights file (``NAME.md``), or ''."""
    md = Path(path).with_suffix(".md")
    return md.read_text(encoding="utf-8", errors="replace") if md.is_file() else ""


# ------------------------------------------------------------------------------ roots by Newton–Schulz
def newton_schulz_sqrt(a: Tensor, iters: int = 40) -> tuple[Tensor, Tensor]:
    r"""``(A^{1/2}, A^{-1/2})`` of a symmetric positive-definite matrix by the coupled Newton–Schulz
    iteration (Higham 2008, eq. 6.35), matrix products only:

    .. math:: Y_0 = A/\|A\|_F,\ Z_0 = I,\quad T_k = \tfrac12(3I - Z_kY_k),\quad Y_{k+1} = Y_kT_k,\
              Z_{k+1} = T_kZ_k;\qquad Y_k\sqrt{\|A\|_F} \to A^{1/2},\ Z_k/\sqrt{\|A\|_F} \to A^{-1/2}.

    An eigenvalue at a fraction p of the norm grows by about 9/4 per step until the quadratic phase,
    so the iteration count sets the smallest eigenvalue that converges: here the covariances' floor is
    their 1e-5 ridge against norms of ~10-100 (p ~ 1e-7), which 30 steps reach in float64 (measured
    relative error 1e-10 against ``eigh``); 40 leaves margin. Run it in float64: in float32 it stalls
    at ~1e-3 relative error. A leading batch dimension of 1 is allowed.
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
    from .photoreal import feature_stats, wct

    return wct(content, feature_stats(style))


@dataclass
class PhotorealParts:
    encoder: nn.Module              # huafeng.features.FeatureExtractor (frozen Lite0)
    decoders: Mapping[str, nn.Module]  # level -> Decoder
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


# ------------------------------------------------------------------------------ the painting network
def _colour_map(x: Tensor, mu_x: Tensor, root: Tensor, inv_root: Tensor, mu_to: Tensor) -> Tensor:
    """``clamp(root @ inv_root @ (x - mu_x) + mu_to)`` on (1,3,H,W) pixels, in float64."""
    b, c, h, w = x.shape
    out = (root @ inv_root) @ (x.double().reshape(b, c, h * w) - mu_x) + mu_to.double()
    return out.reshape(b, c, h, w).to(x.dtype).clamp(0, 1)


def _shrunk_ns(cov: Tensor, shrink: float, iters: int) -> tuple[Tensor, Tensor]:
    """Square root and inverse square root of :func:`huafeng.methods.paint_net.shrunk_power`'s
    shrunk covariance, by Newton–Schulz (the shrinkage bounds its condition number by ~10C)."""
    c = cov.shape[-1]
    eye = torch.eye(c, dtype=cov.dtype, device=cov.device)
    mean_var = (cov * eye).sum((-2, -1), keepdim=True) / c  # the diagonal's mean (diagonal() exports as an If)
    reg = cov + shrink * mean_var * eye + 1e-8 * eye
    return newton_schulz_sqrt(reg, iters)


class PaintGraph(nn.Module):
    """(photo (1,3,H,W), painting (1,3,h,w)) -> (1,3,H,W): the arbitrary method's ``paint`` on one
    picture, untiled: the painting's palette and feature statistics, recolour, a reflected margin up
    to the stride-8 lattice, encode, AdaIN or WCT, decode, the palette map, crop. Every matrix root is
    taken by Newton–Schulz (the library takes them by ``eigh``); the size-dependent pads are tensor
    arithmetic that a trace keeps. Pictures must be larger than ``2 * margin + 8`` pixels each way."""

    def __init__(self, net: PaintNet, margin: int = 16, iters: int = 40) -> None:
        super().__init__()
        from .paint_net import ENCODER_LAYER, SHRINK, STRIDE

        self.encoder, self.decoder, self.transform = net.encoder, net.decoder, net.transform
        self.layer, self.shrink, self.stride = ENCODER_LAYER, SHRINK, STRIDE
        self.margin, self.iters = margin, iters

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x, [self.layer])[self.layer]

    def forward(self, photo: Tensor, painting: Tensor) -> Tensor:
        from .paint_net import _inv_sqrt, feature_moments

        n = self.iters
        mu_p, cov_p = ctl.pixel_stats(painting)                      # the painting's palette (float64)
        p_root = newton_schulz_sqrt(cov_p, n)[0]
        fs = self.encode(painting)                                     # (1,240,h/8,w/8)
        fm, fsd = mean_std(fs)
        # recolour the photo to the palette (controls.recolour), then the reflected margin and lattice
        mu_x, cov_x = ctl.pixel_stats(photo)
        x = _colour_map(photo, mu_x, p_root, newton_schulz_sqrt(cov_x, n)[1], mu_p)
        h, w, m, k = photo.shape[-2], photo.shape[-1], self.margin, self.stride
        ph, pw = (k - (h + 2 * m) % k) % k, (k - (w + 2 * m) % k) % k  # traced as Shape/Mod ops
        x = F.pad(x, (m, m + pw, m, m + ph), mode="reflect")
        f = self.encode(x)
        if self.transform == "wct":
            mu_c, cov_c = feature_moments(f)
            root = _shrunk_ns(feature_moments(fs)[1], self.shrink, n)[0].float()  # as painting_stats keeps it
            t = (root.double() @ _shrunk_ns(cov_c, self.shrink, n)[1]).float()
            shift = fm.flatten(2).float() - t @ mu_c.float()
            b, c, fh, fw = f.shape
            f = torch.baddbmm(shift, t, f.flatten(2).float()).reshape(b, c, fh, fw)
        else:
            mc, sc = mean_std(f)
            f = (f - mc) / sc * fsd + fm
        y = self.decoder(f)
        # the palette map (paint_net.palette_map): the painted picture's own statistics, margin included
        mu_y, cov_y = ctl.pixel_stats(y)
        inv = _inv_sqrt(cov_y + 1e-3 * torch.eye(3, dtype=cov_y.dtype, device=cov_y.device))
        y = _colour_map(y, mu_y, p_root, inv, mu_p)
        return y[..., m:m + h, m:m + w]
