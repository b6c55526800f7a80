"""Pretrained feature networks: a frozen backbone that returns named layers.

Callers always pass RGB in [0,1], shape (B, 3, H, W); each backbone applies its own input
normalisation inside. Two backbones ship in ``huafeng/weights``:

- ``lite0``: EfficientNet-Lite0 (Tan & Le 2019, the Lite variant: ReLU6, no squeeze-excite),
  ImageNet weights with batch norms folded into the convolutions. Fast.
- ``lite0-aa``: the same weights, anti-aliased (Zhang 2019): a [1 2 1]² blur before every stride-2
  convolution. As a loss network it no longer rewards a 2-px checkerboard (the optimize method's colour
  speckle: periodic score 15.4 → 8.5 dB on 8 held-out photos); its features differ a little from
  ``lite0``'s, so the trained decoders keep the plain one.
- ``vgg16``: the VGG16 trunk (Simonyan & Zisserman 2015) as fine-tuned for edges by HED
  (Xie & Tu 2015). The classic Gatys look; about 12x slower.

Layer names:
- lite0: ``stem``, ``block{i}_expand``, ``block{i}_dw``, ``block{i}`` (i = 0..15, no expand in
  block 0), ``head``, ``logits``. All but ``block{i}`` and ``logits`` are post-ReLU6.
- vgg16: ``conv{b}_{j}``, ``relu{b}_{j}``, ``pool{b}``.
"""
from __future__ import annotations

import threading
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import weights
from .errors import SettingsError

# (kernel, stride, expand ratio, out channels, repeats) per stage of EfficientNet-Lite0.
_LITE0_STAGES = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
                 (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]
_VGG_BLOCKS = [2, 2, 3, 3, 3]


def _same_pad(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """TensorFlow "SAME" padding (the weights were trained with it): asymmetric when strided."""
    h, w = x.shape[-2:]
    # = max((ceil(h / s) - 1) * s + k - h, 0) for k >= s, in integer arithmetic only, so that the ONNX
    # export traces it as a function of the input size (ceil and max would freeze it to one size)
    ph, pw = k - s + (-h) % s, k - s + (-w) % s
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


def blur3(x: torch.Tensor) -> torch.Tensor:
    """The [1 2 1]⊗[1 2 1]/16 low-pass per channel, reflect-padded (same size): before a subsampling."""
    k = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    k = (k[:, None] * k[None]) / 16
    c = x.shape[1]
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k.expand(c, 1, 3, 3), groups=c)


class Lite0(nn.Module):
    """EfficientNet-Lite0 as a generator of named activations (BN folded, weights frozen)."""

    name = "lite0"
    antialias = False
    fc_weight: torch.Tensor  # buffers (registered from the weights file), named here for the type checker
    fc_bias: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        sd, _ = weights.load_shipped("lite0")
        self.cfg: list[tuple[int, int, bool, bool]] = []  # (kernel, stride, has_expand, residual)
        cin = 32
        for k, s, e, cout, r in _LITE0_STAGES:
            for j in range(r):
                stride = s if j == 0 else 1
                self.cfg.append((k, stride, e != 1, stride == 1 and cin == cout))
                cin = cout
        for name, t in sd.items():
            self.register_buffer(name.replace(".", "_"), t, persistent=False)

    def _conv(self, x: torch.Tensor, name: str, k: int, s: int, groups: int = 1) -> torch.Tensor:
        w, b = getattr(self, f"{name}_weight"), getattr(self, f"{name}_bias")
        if s > 1 and self.antialias:
            x = blur3(x)
        if k > 1:
            x = _same_pad(x, k, s)
        return F.conv2d(x, w, b, stride=s, groups=groups)

    @staticmethod
    def normalize(x: torch.Tensor) -> torch.Tensor:
        return x * 2.0 - 1.0  # mean = std = 0.5: what these weights were trained with

    def layers(self, x: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
        x = F.relu6(self._conv(self.normalize(x), "stem", 3, 2))
        yield "stem", x
        for i, (k, s, has_expand, residual) in enumerate(self.cfg):
            h = x
            if has_expand:
                h = F.relu6(self._conv(h, f"blocks_{i}_expand", 1, 1))
                yield f"block{i}_expand", h
            h = F.relu6(self._conv(h, f"blocks_{i}_depthwise", k, s, groups=h.shape[1]))
            yield f"block{i}_dw", h
            h = self._conv(h, f"blocks_{i}_project", 1, 1)
            x = h + x if residual else h
            yield f"block{i}", x
        x = F.relu6(self._conv(x, "head", 1, 1))
        yield "head", x
        yield "logits", F.linear(x.mean((2, 3)), self.fc_weight, self.fc_bias)

    def layer_names(self) -> list[str]:
        names = ["stem"]
        for i, (_, _, has_expand, _) in enumerate(self.cfg):
            names += ([f"block{i}_expand"] if has_expand else []) + [f"block{i}_dw", f"block{i}"]
        return names + ["head", "logits"]


class VGG16(nn.Module):
    """The VGG16 conv trunk (HED fine-tune) as a generator of named activations."""

    name = "vgg16"
    # Caffe convention: BGR, 0..255, minus the ImageNet mean (as HED's preprocessing).
    _MEAN_BGR = (103.939, 116.779, 123.68)
    mean: torch.Tensor  # buffers (registered in __init__), named here for the type checker
    fuse_weight: torch.Tensor
    fuse_bias: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        sd, _ = weights.load_shipped("vgg16")
        for name, t in sd.items():
            self.register_buffer(name.replace(".", "_"), t, persistent=False)
        self.register_buffer("mean", torch.tensor(self._MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1) * 255.0 - self.mean.to(x.dtype)

    def layers(self, x: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
        x = self.normalize(x)
        for b, n in enumerate(_VGG_BLOCKS, start=1):
            if b > 1:
                # Keras MaxPooling2D(padding="same") == ceil mode for odd sizes
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
                yield f"pool{b - 1}", x
            for j in range(1, n + 1):
                x = F.conv2d(x, getattr(self, f"conv{b}_{j}_weight"), getattr(self, f"conv{b}_{j}_bias"), padding=1)
                yield f"conv{b}_{j}", x
                x = F.relu(x)
                yield f"relu{b}_{j}", x
        yield "pool5", F.max_pool2d(x, 2, 2, ceil_mode=True)

    def layer_names(self) -> list[str]:
        names = []
        for b, n in enumerate(_VGG_BLOCKS, start=1):
            names += [f"pool{b - 1}"] if b > 1 else []
            for j in range(1, n + 1):
                names += [f"conv{b}_{j}", f"relu{b}_{j}"]
        return names + ["pool5"]

    def hed_edges(self, x: torch.Tensor) -> torch.Tensor:
        """HED's fused edge probability map (B, 1, H, W) in [0,1]: a check that the trunk is intact."""
        h, w = x.shape[-2:]
        taps = {"relu1_2": 1, "relu2_2": 2, "relu3_3": 3, "relu4_3": 4, "relu5_3": 5}
        sides = []
        for name, feat in self.layers(x):
            if name in taps:
                i = taps[name]
                s = F.conv2d(feat, getattr(self, f"dsn{i}_weight"), getattr(self, f"dsn{i}_bias"))
                sides.append(s if i == 1 else F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False))
                if i == 5:
                    break
        return torch.sigmoid(F.conv2d(torch.cat(sides, 1), self.fuse_weight, self.fuse_bias))


class Lite0AA(Lite0):
    """:class:`Lite0` with a blur before each subsampling (see the module docstring)."""

    name = "lite0-aa"
    antialias = True


Backbone = Lite0 | VGG16  # what get_backbone returns (Lite0AA is a Lite0)
BACKBONES: dict[str, type[Backbone]] = {"lite0": Lite0, "lite0-aa": Lite0AA, "vgg16": VGG16}
_cache: dict[str, Backbone] = {}
_cache_lock = threading.Lock()


def get_backbone(name: str) -> Backbone:
    """The shared, frozen instance of a backbone (loaded once per process, also when several threads
    ask for it at once)."""
    if name not in BACKBONES:
        raise SettingsError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}.")
    with _cache_lock:
        if name not in _cache:
            net = BACKBONES[name]().eval()
            net.requires_grad_(False)
            _cache[name] = net
        return _cache[name]


class FeatureExtractor(nn.Module):
    """Returns ``{layer name: activation}`` for the requested layers of a frozen backbone.

    The forward pass stops at the deepest layer asked for. Gradients flow to the input (for
    the optimisation method) but never into the weights. Follows the input's device.
    """

    def __init__(self, backbone: str = "lite0", layers: Sequence[str] = ()) -> None:
        super().__init__()
        self.net = get_backbone(backbone)
        self.backbone = backbone
        valid = self.net.layer_names()
        unknown = [n for n in layers if n not in valid]
        if unknown:
            raise SettingsError(f"unknown {backbone} layer(s) {', '.join(unknown)}; valid: {', '.join(valid)}.")
        self.layers = list(dict.fromkeys(layers))

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        want = set(self.layers if layers is None else layers)
        if next(self.net.buffers()).device != x.device:
            self.net.to(x.device)
        out: dict[str, torch.Tensor] = {}
        for name, feat in self.net.layers(x):
            if name in want:
                out[name] = feat
                if len(out) == len(want):
                    break
        return out
