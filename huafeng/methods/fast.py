"""Per-style feed-forward networks (Johnson, Alahi & Fei-Fei 2016), re-shaped for CPUs.

One small network per painting, trained with ``huafeng train style`` on a perceptual loss; at
inference it is a single forward pass. Departures from the paper, each for CPU speed or a measured
artifact:

- Space-to-depth input (``pixel_unshuffle``) instead of a 9x9 full-resolution conv: no conv ever
  runs at full resolution, where few channels make convs slow (measured ~12 GFLOP/s there against
  ~70 at 48 channels).
- Residual blocks at 1/4 resolution; bilinear upsample + conv (no transposed conv, no checkerboard,
  Odena et al. 2016) with a skip from the 1/2-resolution stem; a sub-pixel head (``pixel_shuffle``,
  Shi et al. 2016) back to full resolution.
- An identity start: the network predicts a *change of logit*, ``y = sigmoid(logit(x) + delta)``,
  with the head initialised to zero, so an untrained network returns the photo and training only
  learns the stylisation (the content is kept from step 0; a sigmoid keeps pixels in range).
- A mirrored margin around the picture, cropped after (16 px in training, 32 at inference): zero
  padding had drawn a light frame, and a 16-px margin left a dark band along the right border.
- Palette transfer: the output is mapped onto the painting's colour mean and covariance, stored in the
  network (:class:`Palette`; applied in inference, not trained through).
- Instance normalisation (Ulyanov et al. 2016, :mod:`.norms`) whose statistics can be recorded on the
  whole picture and reused per tile (per call: a loaded network is shared and only read); each tile also runs with its receptive field of real context around
  it, so a tiled high-resolution result equals the untiled one to rounding.

About 0.14 M parameters and 21.6 GFLOP at 1024x1024 (the slim Johnson net: 0.42 M, 89 GFLOP).
The forward pass branches in Python on the picture's size only where an ONNX trace may freeze it (the
mirrored margin, in pads of at most 16 px), so it exports to ONNX.
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import controls as ctl
from ..errors import SettingsError, WeightsError
from ..image import resize_long_side
from ..weights import WEIGHTS_DIR, load_file, read_metadata
from .graphs import ExportModel, card_of, newton_schulz_sqrt
from .norms import InstanceNorm, NormCall, RecordsStats, call_strength, norm_call, set_norm_mode

Tensor = torch.Tensor
ARCH = "huafeng-fast-s2d-1"
# Inference margin: with the training margin (16 px) the networks drew a dark band 3-6 px wide along the
# right border (mean luminance 0.16-0.22 there against 0.38 inside, The Scream, 10 photos); from 32 px
# on the border columns look like the interior. 6% more pixels at 1024 px.
INFER_MARGIN = 32


HEADS = ("shuffle", "bilinear")


@dataclass(frozen=True)
class NetConfig:
    """Architecture of a per-style network; stored in each weights file's metadata.

    channels: (width at 1/2 resolution, width at 1/4 resolution); res_blocks: at 1/4 resolution.
    """

    channels: tuple[int, ...] = (16, 48)  # two widths (checked below: settings and files may give others)
    res_blocks: int = 3
    palette: bool = False  # map the output onto the painting's colour statistics (stored in the network)
    conditioned: bool = False  # strength-conditioned: every instance norm's affine is a function of strength
    # "shuffle": a sub-pixel head (12 channels at 1/2 resolution, pixel_shuffle); "bilinear": 3 channels at
    # 1/2 resolution, upsampled bilinearly (no fixed 2x2 sub-pixel layout for the training to fill in)
    head: str = "shuffle"

    def __post_init__(self) -> None:
        if len(self.channels) != 2 or min(self.channels) < 1 or self.res_blocks < 0:
            raise SettingsError(f"bad network config {self}: two positive widths and res_blocks >= 0.")
        if self.head not in HEADS:
            raise SettingsError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}.")


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    # Zero padding: reflection padding cost 15-40% more time here and the identity start already
    # keeps borders clean (the output is the photo plus a change).
    return nn.Conv2d(cin, cout, k, stride, k // 2)


def _block(cin: int, cout: int, stride: int = 1, cond: bool = False) -> nn.Sequential:
    return nn.Sequential(_conv(cin, cout, 3, stride), InstanceNorm(cout, conditioned=cond), nn.ReLU(inplace=True))


class _Res(nn.Module):
    def __init__(self, c: int, cond: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(c, c), InstanceNorm(c, conditioned=cond), nn.ReLU(inplace=True), _conv(c, c),
                                  InstanceNorm(c, conditioned=cond))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    """(B,3,H,W) in [0,1] -> (B,3,H,W) in [0,1]; any H, W (padded, then cropped back)."""

    def __init__(self, cfg: NetConfig = NetConfig()) -> None:
        super().__init__()
        a, c = cfg.channels
        k = cfg.conditioned
        self.conditioned, self.strength = k, 1.0
        self.stem = _block(12, a, cond=k)                               # 1/2 res, from pixel_unshuffle
        self.down = _block(a, c, stride=2, cond=k)                      # 1/4 res
        self.res = nn.Sequential(*[_Res(c, k) for _ in range(cfg.res_blocks)])
        self.reduce = nn.Conv2d(c, a, 1)                                # narrow before upsampling (cheaper)
        self.up = _block(a, a, cond=k)                                  # 1/2 res, after upsample + skip
        self.shuffle = cfg.head == "shuffle"
        self.head = _conv(a, 12 if self.shuffle else 3)                 # 12 = 3 colours x 2x2 sub-pixels
        assert self.head.bias is not None                               # (_conv makes a bias)
        nn.init.zeros_(self.head.weight)                                # identity start: delta = 0
        nn.init.zeros_(self.head.bias)
        # receptive-field radius in pixels (rounded up to a multiple of 4): 2 px per 3x3 conv at 1/2
        # resolution, 4 per conv at 1/4, and the upsampling; tiles are run with this much context
        self.context = 4 * (2 * cfg.res_blocks + 1) + 12
        # mirrored border, cropped after: 16 px in training (cheap on small crops); load_net sets
        # INFER_MARGIN, so that the pixels kept never see the convs' zero padding at the edges
        self.margin = 16
        self.palette = Palette() if cfg.palette else None

    def norm_mode(self, mode: str) -> None:
        """On the modules themselves: for a network you own (training, export); inference: :func:`norm_call`."""
        set_norm_mode(self, mode)

    def set_strength(self, strength: float) -> None:
        """The strength a conditioned network renders at (0: the photo, 1: the full style), on the
        modules themselves: for training; inference passes it per call (:class:`NormCall`)."""
        self.strength = float(strength)
        for m in self.modules():
            if isinstance(m, InstanceNorm):
                m.strength = float(strength)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        # a mirrored margin, cropped after, keeps the convs' zero padding out of the picture (a light
        # frame along the borders in a trial); then a multiple of 4 and at least 8 px (instance norm
        # needs more than one position at 1/4 resolution)
        # (in mirrors of at most 16 px each: an ONNX trace freezes each pad's width, and one reflect pad
        # must be narrower than the picture)
        xm, m = x, 0
        while m < self.margin:
            k = min(16, self.margin - m, xm.shape[-2] - 1, xm.shape[-1] - 1)
            if k < 1:
                break
            xm, m = F.pad(xm, (k, k, k, k), mode="reflect"), m + k
        hm, wm = h + 2 * m, w + 2 * m
        x4 = F.pad(xm, (0, max(8 - wm, (-wm) % 4), 0, max(8 - hm, (-hm) % 4)), mode="replicate")  # (B,3,H4,W4)
        f = self.stem(F.pixel_unshuffle(x4, 2))                         # (B,a,H4/2,W4/2)
        r = self.reduce(self.res(self.down(f)))                         # (B,a,H4/4,W4/4)
        u = self.up(F.interpolate(r, scale_factor=2.0, mode="bilinear", align_corners=False) + f)
        d = self.head(u)
        delta = (F.pixel_shuffle(d, 2) if self.shuffle                  # (B,3,H4,W4): change of logit
                 else F.interpolate(d, scale_factor=2.0, mode="bilinear", align_corners=False))
        p = xm[..., m:m + h, m:m + w].clamp(1e-3, 1 - 1e-3)
        y = torch.sigmoid(torch.logit(p) + delta[..., m:m + h, m:m + w])
        if self.palette is None or self.training:
            return y
        strength = call_strength(self)
        if self.conditioned and strength < 1:  # the palette, too, at the rendered strength
            return y + strength * (self.palette(y) - y)
        return self.palette(y)


class Palette(RecordsStats):
    r"""Maps a picture onto a painting's colour statistics: a whitening-colouring transform of the RGB
    pixels (Li et al. 2017 on colours; the linear colour transfer of Reinhard et al. 2001 with covariance),

    .. math:: y' = \Sigma_s^{1/2}\,\Sigma_y^{-1/2}\,(y - \mu_y) + \mu_s

    :math:`\mu, \Sigma` the RGB mean and 3x3 covariance (stored for the painting, measured on the picture).
    Like :class:`InstanceNorm` its picture statistics can be recorded once on the whole picture and
    reused on every tile. ``sqrt`` is ``"eigh"`` or ``"newton-schulz"`` (matmuls only, for ONNX).
    """

    EPS = 1e-4  # floor of the covariances' eigenvalues (a grey picture has near-zero chroma variance)
    mu: Tensor  # buffers (registered in __init__), named here for the type checker
    cov: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mu", torch.full((3, 1), 0.5))
        self.register_buffer("cov", torch.eye(3) * 0.05)
        self.sqrt = "eigh"  # set on an exported copy only

    @torch.no_grad()
    def set_target(self, painting: Tensor) -> None:
        mu, cov = _colour_stats(painting.to(self.mu.device))
        self.mu.copy_(mu)
        self.cov.copy_(cov)

    def forward(self, y: Tensor) -> Tensor:
        outs, mode = [], self.call_mode()
        for img in y.unbind(0):
            stats = self.recorded()
            if mode == "fixed" and stats is not None:
                mu, cov = stats
            else:
                mu, cov = _colour_stats(img[None])
                if mode == "record":
                    self.record((mu, cov))
            t = self._pow(self.cov, 0.5) @ self._pow(cov, -0.5)
            outs.append(torch.addmm(self.mu - t @ mu, t, img.reshape(3, -1)).reshape(img.shape).clamp(0, 1))
        return torch.stack(outs)

    def _pow(self, c: Tensor, p: float) -> Tensor:
        """c^p for p = ±1/2, in float64 (the photoreal method's roots, or the export's Newton-Schulz)."""
        c = c.double() + self.EPS * torch.eye(3, dtype=torch.float64, device=c.device)
        if self.sqrt == "newton-schulz":
            return newton_schulz_sqrt(c, 40)[0 if p > 0 else 1].float()
        from .photoreal import sym_pow

        return sym_pow(c, p, self.EPS).float()


def _colour_stats(img: Tensor) -> tuple[Tensor, Tensor]:
    """RGB mean (3,1) and covariance (3,3) over the pixels of one picture (1,3,H,W)."""
    x = img[0].reshape(3, -1).float()
    mu = x.mean(1, keepdim=True)
    d = x - mu
    return mu, d @ d.T / d.shape[1]  # over N, not N - 1: no special case to freeze in an ONNX trace


def gallery() -> dict[str, Path]:
    """Shipped per-style networks: ``fast-NAME.safetensors`` in the weights folder, by NAME."""
    return {p.stem[len("fast-"):]: p for p in sorted(WEIGHTS_DIR.glob("fast-*.safetensors"))}


@lru_cache(maxsize=32)
def load_net(ref: str) -> TransformerNet:
    """A per-style network from a gallery name or a .safetensors path (loaded once, frozen)."""
    path = gallery().get(ref) or (Path(ref) if str(ref).endswith(".safetensors") else None)
    if path is None:
        names = ", ".join(gallery()) or "none are installed"
        raise SettingsError(f"no trained network for style {ref!r}; trained styles: {names} "
                            "(train one with `huafeng train style PAINTING`).")
    tensors, meta = load_file(path)
    try:
        if meta.get("arch") != ARCH:
            raise ValueError(meta.get("arch"))
        config: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in json.loads(meta.get("net", "{}")).items()}
        cfg = NetConfig(**config)
        net = TransformerNet(cfg)
        net.load_state_dict(tensors)
    except (RuntimeError, TypeError, ValueError, SettingsError, json.JSONDecodeError):
        raise WeightsError(f"{Path(path).name} is not a huafeng per-style network of this version "
                           "(retrain it with `huafeng train style`).") from None
    net.margin = INFER_MARGIN
    return net.eval().requires_grad_(False)


@dataclass(frozen=True)
class FastSettings:
    size: int | None = None   # long side of the result; None keeps the photo's size
    tile: int = 1024          # larger pictures run in overlapping tiles (bounded memory)
    overlap: int = 64
    backend: str = "torch"    # torch, onnx or onnx-int8 (onnxruntime, whole picture: huafeng.export)

    def __post_init__(self) -> None:
        ctl.check_output_settings(self.size, self.tile, self.overlap, self.backend)


def _network(ref: str, backend: str):
    """The torch network, or its ONNX export run by onnxruntime (exported and checked on first use)."""
    if backend == "torch":
        return load_net(ref)
    from ..backends import named_runner

    load_net(ref)  # an unknown name or a bad file fails here, with the usual one-line error
    return named_runner(ref, backend)


def export_graph(ref: str, ns_iters: int = 40) -> ExportModel | None:
    """The per-style network ``ref`` names (a gallery name, or a file whose ``arch`` is a per-style
    network's) ready for export; None when ``ref`` is not one. The graph is the network itself (its
    palette's roots by Newton-Schulz, on a copy); the reference, the network as the method runs it."""
    path = gallery().get(ref)
    if path is None and str(ref).endswith(".safetensors"):
        path = Path(ref) if read_metadata(ref).get("arch", "").startswith("huafeng-fast") else None
    if path is None:
        return None
    net = graph = load_net(str(path))
    if net.palette is not None:  # the exported copy takes its colour transform's roots by matmuls
        graph = copy.deepcopy(net)
        assert graph.palette is not None  # a copy of net, which has one
        graph.palette.sqrt = "newton-schulz"
    name = path.stem[len("fast-"):] if path.parent == WEIGHTS_DIR else path.stem
    return ExportModel("fast", name, graph, net, ("image",), (path,), read_metadata(path), card_of(path))


class FastStylizer:
    """Runs shipped or user-trained per-style networks; several are blended by weight in image space."""

    method = "fast"
    takes_style_images = False  # the style is a trained network, named like a bundled style
    export_graph = staticmethod(export_graph)  # the export hook (huafeng.methods.export_graph)

    def __init__(self, settings: FastSettings = FastSettings()) -> None:
        self.settings = settings

    @staticmethod
    def export_names() -> list[str]:
        """The names :meth:`export_graph` takes besides files: the gallery."""
        return list(gallery())

    @torch.inference_mode()
    def stylize(self, content: Tensor, styles: list[str], weights: list[float] | None = None,
                controls: ctl.Controls = ctl.Controls(), progress: ctl.ProgressFn | None = None) -> Tensor:
        s = self.settings
        weights = ctl.normalize_weights(weights or [1.0] * len(styles))
        if s.size is not None:
            content = resize_long_side(content, s.size)
        nets = [_network(str(ref), s.backend) for ref in styles]
        # a strength-conditioned network renders the strength itself; the others are blended with the photo
        inner = any(getattr(net, "conditioned", False) for net in nets)
        outs = []
        for i, net in enumerate(nets):
            if getattr(net, "conditioned", False):  # the strength travels with the call, not on the network
                outs.append(self._run(net, content, controls.strength))
            else:
                out = self._run(net, content)
                outs.append(ctl.blend_strength(content, out, controls.strength) if inner else out)
            if progress:
                progress(ctl.Progress(f"network {i + 1}/{len(nets)}", i + 1, len(nets)))
        return ctl.blend_results(content, outs, weights, replace(controls, strength=1.0) if inner else controls)

    def _run(self, net: TransformerNet, x: Tensor, strength: float | None = None) -> Tensor:
        s = self.settings
        h, w = x.shape[-2:]
        if not isinstance(net, TransformerNet):  # onnxruntime: the whole picture
            return net(x)
        if max(h, w) <= s.tile:
            with norm_call(NormCall(strength=strength)):
                return net(x)
        # the call's own state (the shared network is only read): statistics of the whole picture,
        # recorded once (downscaled to one tile), then reused on every tile
        with norm_call(NormCall("record", strength)) as call:
            net(resize_long_side(x, s.tile))
            call.mode = "fixed"
            return ctl.run_tiled(lambda _, box: _with_context(net, x, box), x, s.tile, s.overlap, align=4)


def _with_context(net: TransformerNet, x: Tensor, box: tuple[slice, slice]) -> Tensor:
    """The network on one tile, run with ``net.context`` extra pixels of the picture around it and
    cropped back, so the tile's pixels see what they would in the whole picture (no padding seams)."""
    ys, xs = box
    m = net.context
    y0, x0 = max(0, ys.start - m), max(0, xs.start - m)  # multiples of 4 stay multiples of 4
    out = net(x[..., y0:ys.stop + m, x0:xs.stop + m])
    return out[..., ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]


def net_metadata(cfg: NetConfig, **info) -> dict:
    return {"arch": ARCH, "net": json.dumps(asdict(cfg)), **info}
