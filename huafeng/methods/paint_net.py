"""The painting network behind the arbitrary-style method: recolour → Lite0 → AdaIN → trained decoder.

One pass, any painting (Huang & Belongie 2017, AdaIN, with a decoder trained for *stylization*):

1. the photo is recoloured to the painting's palette (pixel mean and covariance, a 3×3 linear map);
2. the frozen Lite0 encoder takes it to ``block5_expand`` (stride 8, 240 channels): deep enough to
   carry strokes and shapes rather than colour statistics;
3. AdaIN gives those features the painting's per-channel mean and standard deviation;
4. a decoder (a warm start from the photoreal method's L4 reconstruction decoder, plus a residual
   block that starts at zero) paints the result, trained with a VGG16 style loss the encoder never
   sees (``huafeng train arbitrary``, :mod:`huafeng.train.paint`);
5. the result is mapped onto the painting's palette (:func:`palette_map`): the stride-8 decoder
   alone started from a washed-out blue-brown whatever the painting (measured here at step 0),
   and its colours then had to be learnt painting by painting.

The painting's statistics are computed once per painting (:func:`painting_stats`); the content's
AdaIN statistics may be passed in, computed over the whole picture, so tiles agree (exact tiling).
About 0.72 M trained parameters; no heavy encoder at full resolution (rendering happens at a working
size and is then brought to the photo's size).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .. import controls as ctl
from ..features import FeatureExtractor
from ..losses import mean_std
from .photoreal import DECODER_SHAPES, _conv, upsampling_stages

Tensor = torch.Tensor

ENCODER_LAYER = "block5_expand"
STRIDE = 8
ARCH = "huafeng-paint-adain-lite0-1"
ARCH_WCT = "huafeng-paint-wct-lite0-1"   # the same decoder behind a whitening-colouring transform
ARCHS = {ARCH: "adain", ARCH_WCT: "wct"}
SHRINK = 0.1   # WCT: covariances are shrunk towards their mean variance by this fraction (see wct_features)


class ResBlock(nn.Module):
    """x + conv(relu(conv(x))); the second conv starts at zero, so a new block is the identity."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a, self.b = _conv(c, c), _conv(c, c)
        conv = cast(nn.Conv2d, self.b[1])  # _conv: (pad, conv with a bias)
        assert conv.bias is not None
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.b(F.relu(self.a(x)))


class PaintDecoder(nn.Module):
    """AdaIN features (240 ch, stride 8) → RGB in [0,1].

    conv(240→128) · res(128) · [up · conv(→64) · conv] · [up · conv(→32) · conv] · [up · conv(→16) · conv] · conv(→3) · sigmoid

    Parameter names match the photoreal method's L4 decoder (plus ``res``), so it loads as a warm start.
    """

    def __init__(self) -> None:
        super().__init__()
        cin, first, widths = DECODER_SHAPES["L4"]  # the photoreal L4 decoder's shape: it is the warm start
        self.inp = _conv(cin, first)
        self.res = ResBlock(first)
        self.stages = upsampling_stages(first, widths)
        self.out = _conv(widths[-1], 3)

    def forward(self, f: Tensor) -> Tensor:
        x = self.res(F.relu(self.inp(f)))
        for stage in self.stages:
            x = stage(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        return torch.sigmoid(self.out(x))


@dataclass(frozen=True)
class PaintingStats:
    """What the network needs of a painting: its palette and its encoder features' mean/std."""

    palette_mean: Tensor   # (B, 3, 1) float64
    palette_cov: Tensor    # (B, 3, 3) float64
    feat_mean: Tensor      # (B, 240, 1, 1)
    feat_std: Tensor       # (B, 240, 1, 1)
    feat_root: Tensor | None = None   # (B, 240, 240): the shrunk feature covariance's square root (WCT only)


def weighted_sum(parts: list[PaintingStats], weights: list[float]) -> PaintingStats:
    """A blend of several paintings: every statistic mixed linearly with ``weights``."""
    def mix(name: str) -> Tensor:
        return sum(w * getattr(p, name) for p, w in zip(parts, weights))  # type: ignore[return-value]

    root = mix("feat_root") if parts[0].feat_root is not None else None
    return PaintingStats(mix("palette_mean"), mix("palette_cov"), mix("feat_mean"), mix("feat_std"), root)


def feature_moments(f: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample mean (B,C,1) and biased covariance (B,C,C) of features (B,C,H,W), in float64."""
    x = f.flatten(2).float()
    mu = x.mean(2, keepdim=True)
    d = x - mu
    return mu.double(), (d @ d.transpose(1, 2)).double() / d.shape[2]


def shrunk_power(cov: Tensor, p: float, shrink: float = SHRINK) -> Tensor:
    r"""(Σ + λ·tr(Σ)/C·I)^p of (B,C,C) covariances, by eigendecomposition (no gradient is needed: the
    encoder is frozen). The shrinkage keeps a covariance taken over few positions (a 128-px training crop
    has 16×16 of them for 240 channels) from whitening noise up to unit variance."""
    c = cov.shape[-1]
    eye = torch.eye(c, dtype=cov.dtype, device=cov.device)
    reg = cov + shrink * cov.diagonal(dim1=-2, dim2=-1).mean(-1)[..., None, None] * eye + 1e-8 * eye
    e, v = torch.linalg.eigh(reg)
    return v @ torch.diag_embed(e.clamp_min(1e-10).pow(p)) @ v.transpose(-1, -2)


def wct_features(f: Tensor, st: PaintingStats, moments: tuple[Tensor, Tensor] | None = None) -> Tensor:
    r"""Whitening–colouring transform (Li et al. 2017) of the encoder features, with shrunk covariances:

    .. math:: t = \Sigma_s^{1/2}\,(\Sigma_c + \lambda\bar\sigma_c^2 I)^{-1/2}\,(f - \mu_c) + \mu_s

    where Σ_s^{1/2} (``st.feat_root``) is itself taken of the painting's shrunk covariance. Unlike AdaIN
    it carries how the painting's feature channels vary together, not only each one's spread.
    ``moments`` (mean, covariance) may be those of a whole picture (tiles)."""
    mu, cov = moments if moments is not None else feature_moments(f)
    t = (st.feat_root.double() @ shrunk_power(cov, -0.5)).float()  # type: ignore[union-attr]
    shift = st.feat_mean.flatten(2).float() - t @ mu.float()
    b, c, h, w = f.shape
    return torch.baddbmm(shift, t, f.flatten(2).float()).reshape(b, c, h, w).to(f.dtype)


class PaintNet(nn.Module):
    """The whole network: ``forward(photo, painting_stats)`` → painted picture of the same size.

    The photo's height and width should be multiples of 8 (:func:`pad_to_lattice`).
    """

    def __init__(self, decoder: PaintDecoder | None = None, transform: str = "adain") -> None:
        super().__init__()
        if transform not in ARCHS.values():
            raise ValueError(f"transform must be one of {sorted(ARCHS.values())}, got {transform!r}")
        self.transform = transform
        self.decoder = decoder if decoder is not None else PaintDecoder()
        self.encoder = FeatureExtractor("lite0", [ENCODER_LAYER])

    @property
    def arch(self) -> str:
        return next(a for a, t in ARCHS.items() if t == self.transform)

    def painting_stats(self, painting: Tensor) -> PaintingStats:
        """Statistics of a painting (B,3,H,W) in [0,1], at the size given (that size sets the strokes)."""
        mu, cov = ctl.pixel_stats(painting)
        f = self.encode(painting)
        fm, fs = mean_std(f)
        root = shrunk_power(feature_moments(f)[1], 0.5).float() if self.transform == "wct" else None
        return PaintingStats(mu, cov, fm, fs, root)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x, [ENCODER_LAYER])[ENCODER_LAYER]

    def recolour(self, photo: Tensor, st: PaintingStats) -> Tensor:
        return ctl.recolour(photo, st.palette_mean, st.palette_cov)

    def content_stats(self, recoloured: Tensor) -> tuple[Tensor, Tensor]:
        """What the transform needs of the content: mean/std (AdaIN) or mean/covariance (WCT)."""
        f = self.encode(recoloured)
        return feature_moments(f) if self.transform == "wct" else mean_std(f)

    def forward(self, photo: Tensor, st: PaintingStats, recoloured: Tensor | None = None,
                content_stats: tuple[Tensor, Tensor] | None = None, alpha: float = 1.0,
                palette: bool = True) -> Tensor:
        """Paint ``photo``. ``recoloured`` (the photo already recoloured, e.g. for the whole picture)
        and ``content_stats`` (the AdaIN statistics of the whole picture) may be given, for tiles;
        ``alpha`` blends the features towards the photo's own; ``palette=False`` leaves out the final
        palette map (tiles: it is applied once to the assembled picture)."""
        y = self.decoder(self.stylized_features(photo, st, recoloured, content_stats, alpha))
        return palette_map(y, st) if palette else y

    def stylized_features(self, photo: Tensor, st: PaintingStats, recoloured: Tensor | None = None,
                          content_stats: tuple[Tensor, Tensor] | None = None, alpha: float = 1.0) -> Tensor:
        """The decoder's input: the (recoloured) photo's encoder features given the painting's statistics
        (AdaIN or WCT), blended towards the photo's own by ``alpha``."""
        x = recoloured if recoloured is not None else self.recolour(photo, st)
        f = self.encode(x)
        if self.transform == "wct":
            t = wct_features(f, st, content_stats)
        else:
            mc, sc = content_stats if content_stats is not None else mean_std(f)
            t = (f - mc) / sc * st.feat_std + st.feat_mean
        return alpha * t + (1 - alpha) * f if alpha < 1 else t


def _inv_sqrt(a: Tensor, iters: int = 24) -> Tensor:
    """A^{-1/2} of symmetric positive (B,3,3) matrices by coupled Newton–Schulz iterations: differentiable
    and stable where eigenvalues repeat (the gradient of an eigendecomposition is not: a grey picture
    has two equal colour variances)."""
    norm = a.flatten(1).norm(dim=1).view(-1, 1, 1)
    eye = torch.eye(3, dtype=a.dtype, device=a.device).expand_as(a)
    y, z = a / norm, eye
    for _ in range(iters):
        t = 0.5 * (3 * eye - z @ y)
        y, z = y @ t, t @ z
    return z / norm.sqrt()


def palette_map(y: Tensor, st: PaintingStats, eps: float = 1e-5, floor: float = 1e-3) -> Tensor:
    r"""Give the painted picture the painting's palette exactly: the linear colour map of
    :func:`huafeng.controls.recolour`, differentiable through the picture's own statistics.

    .. math:: y' = \operatorname{clamp}\big(T\,(y - \mu_y) + \mu_p\big), \quad
              T = \Sigma_p^{1/2}\,(\Sigma_y + f I)^{-1/2}

    The floor f (a standard deviation of 0.03) keeps a flat picture from being blown up into noise.
    Measured here on a tiny run (30 steps, 2 paintings, held-out photos, 1 and 2 threads): holding T
    constant in the backward pass (a straight-through map) made training wander (held-out loss 5.9 →
    6.8 / 5.0); with the gradient through T it fell every time (5.3 → 3.7 / 3.2).
    """
    mu_y, cov_y = ctl.pixel_stats(y, eps)
    inv = _inv_sqrt(cov_y + floor * torch.eye(3, dtype=cov_y.dtype, device=cov_y.device))
    with torch.no_grad():
        e, v = torch.linalg.eigh(st.palette_cov.double())
        root = v @ torch.diag_embed(e.clamp_min(eps).sqrt()) @ v.transpose(1, 2)
    t = root @ inv
    b, c, h, w = y.shape
    out = t @ (y.double().reshape(b, c, h * w) - mu_y) + st.palette_mean.double()
    return out.reshape(b, c, h, w).to(y.dtype).clamp(0, 1)


def pad_to_lattice(x: Tensor, margin: int = 0) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Reflect-pad by ``margin`` and then up to multiples of the stride; returns the pads (l, r, t, b)."""
    h, w = x.shape[-2:]
    ph, pw = (-(h + 2 * margin)) % STRIDE, (-(w + 2 * margin)) % STRIDE
    pads = (margin, margin + pw, margin, margin + ph)
    if any(pads):
        mode = "reflect" if min(h, w) > max(pads) else "replicate"
        x = F.pad(x, pads, mode=mode)
    return x, pads


def unpad(x: Tensor, pads: tuple[int, int, int, int]) -> Tensor:
    l, r, t, b = pads
    return x[..., t: x.shape[-2] - b, l: x.shape[-1] - r]
