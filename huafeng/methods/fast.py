"""Per-style feed-forward networks (Johnson, Alahi & Fei-Fei 2016), sized for CPUs.

One small network per painting, trained with ``huafeng train style`` on a perceptual loss; at
inference it is a single forward pass. Instance normalisation (Ulyanov et al. 2016) in place of
batch norm, and nearest-upsample + conv in place of transposed convs (no checkerboard, Odena et al.
2016); a sigmoid output keeps pixels in range (a linear output made saturated blobs in a trial here).

Slim by default (16/32/64 channels, 3 residual blocks): measured here at ~1/4 of the standard
network's FLOPs (see NOTES in the model cards).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import controls as ctl
from ..errors import SettingsError, WeightsError
from ..image import resize_long_side
from ..weights import WEIGHTS_DIR, load_file

Tensor = torch.Tensor


@dataclass(frozen=True)
class NetConfig:
    """Architecture of a per-style network; stored in each weights file's metadata."""

    channels: tuple[int, int, int] = (16, 32, 64)
    res_blocks: int = 3


class InstanceNorm(nn.Module):
    """Instance normalisation (Ulyanov et al. 2016) whose statistics can be recorded once and reused.

    For tiled inference the statistics of every layer are recorded on the whole (downscaled) picture
    and then applied to every tile, so tiles agree with each other (no seams, no drift).
    """

    def __init__(self, c: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c)), eps
        self.mode, self.stats = "normal", None  # "record" stores stats; "fixed" uses them

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "fixed" and self.stats is not None:
            mu, var = self.stats
        else:
            mu, var = x.mean((2, 3), keepdim=True), x.var((2, 3), keepdim=True, unbiased=False)
            if self.mode == "record":
                self.stats = (mu, var)
        return (x - mu) / torch.sqrt(var + self.eps) * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride))


class _Res(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(c, c, 3), InstanceNorm(c), nn.ReLU(inplace=True),
                                  _conv(c, c, 3), InstanceNorm(c))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    """(B,3,H,W) in [0,1] -> (B,3,H,W) in [0,1]. Down ×2 (stride-2 convs), residual blocks, up ×2."""

    def __init__(self, cfg: NetConfig = NetConfig()) -> None:
        super().__init__()
        a, b, c = cfg.channels
        norm = InstanceNorm
        self.down = nn.Sequential(_conv(3, a, 9), norm(a), nn.ReLU(inplace=True),
                                  _conv(a, b, 3, 2), norm(b), nn.ReLU(inplace=True),
                                  _conv(b, c, 3, 2), norm(c), nn.ReLU(inplace=True))
        self.res = nn.Sequential(*[_Res(c) for _ in range(cfg.res_blocks)])
        self.up1 = nn.Sequential(_conv(c, b, 3), norm(b), nn.ReLU(inplace=True))
        self.up2 = nn.Sequential(_conv(b, a, 3), norm(a), nn.ReLU(inplace=True))
        self.out = _conv(a, 3, 9)

    def norm_mode(self, mode: str) -> None:
        for m in self.modules():
            if isinstance(m, InstanceNorm):
                m.mode = mode
                if mode == "normal":
                    m.stats = None

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4  # two stride-2 steps: pad to a multiple of 4, crop after
        y = F.pad(x, (0, pw, 0, ph), mode="reflect") if (ph or pw) and min(h, w) > 4 else x
        y = self.res(self.down(y))
        y = self.up1(F.interpolate(y, scale_factor=2.0, mode="nearest"))
        y = self.up2(F.interpolate(y, scale_factor=2.0, mode="nearest"))
        y = torch.sigmoid(self.out(y))
        if y.shape[-2:] != (h, w):
            y = y[..., :h, :w] if y.shape[-2] >= h and y.shape[-1] >= w else \
                F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        return y


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
        cfg = NetConfig(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in json.loads(meta.get("net", "{}")).items()})
        net = TransformerNet(cfg)
        net.load_state_dict(tensors)
    except (RuntimeError, TypeError, ValueError, json.JSONDecodeError):
        raise WeightsError(f"{Path(path).name} is not a huafeng per-style network.") from None
    return net.eval().requires_grad_(False)


@dataclass(frozen=True)
class FastSettings:
    size: int | None = None   # long side of the result; None keeps the photo's size
    tile: int = 1024          # larger pictures run in overlapping tiles (bounded memory)
    overlap: int = 64

    def __post_init__(self) -> None:
        if self.size is not None and not 16 <= self.size <= 16384:
            raise SettingsError(f"size must be between 16 and 16384 pixels, got {self.size}.")
        if self.tile < 64 or not 0 <= self.overlap < self.tile // 2:
            raise SettingsError("tile must be at least 64 px and overlap under half a tile.")


class FastStylizer:
    """Runs shipped or user-trained per-style networks; several are blended by weight in image space."""

    method = "fast"
    takes_style_images = False  # the style is a trained network, named like a bundled style

    def __init__(self, settings: FastSettings = FastSettings()) -> None:
        self.settings = settings

    @torch.inference_mode()
    def stylize(self, content: Tensor, styles: list[str], weights: list[float] | None = None,
                controls: ctl.Controls = ctl.Controls(), progress: ctl.ProgressFn | None = None) -> Tensor:
        s = self.settings
        weights = ctl.normalize_weights(weights or [1.0] * len(styles))
        if s.size is not None:
            content = resize_long_side(content, s.size)
        nets = [load_net(str(ref)) for ref in styles]
        outs = []
        for i, net in enumerate(nets):
            outs.append(self._run(net, content))
            if progress:
                progress(ctl.Progress(f"network {i + 1}/{len(nets)}", i + 1, len(nets)))
        masks = ctl.region_masks(controls.mask, len(outs), tuple(content.shape[-2:]))
        if masks is not None and len(outs) == 2:
            out = masks[0] * outs[0] + masks[1] * outs[1]
        else:
            out = sum(w * o for w, o in zip(weights, outs))
        return ctl.apply_after(content, out, controls, len(outs))

    def _run(self, net: TransformerNet, x: Tensor) -> Tensor:
        s = self.settings
        h, w = x.shape[-2:]
        if max(h, w) <= s.tile:
            return net(x)
        try:
            net.norm_mode("record")  # statistics of the whole picture, once (downscaled to one tile)
            net(resize_long_side(x, s.tile))
            net.norm_mode("fixed")
            return ctl.run_tiled(lambda tile, _: net(tile), x, s.tile, s.overlap, align=4)
        finally:
            net.norm_mode("normal")


def net_metadata(cfg: NetConfig, **info) -> dict:
    return {"arch": "huafeng-fast-transformer", "net": json.dumps(asdict(cfg)), **info}
