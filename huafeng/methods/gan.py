"""Domain-level style from a collection: CycleGAN generators (Zhu et al. 2017), sized for CPUs.

A generator trained with ``huafeng train gan`` maps photos into the domain of a set of paintings
("photo → Monet"); no reference painting is needed at inference, one forward pass is the whole
method: ``huafeng stylize photo.jpg --method gan --model NAME_OR_FILE``.

The generator is the paper's ResNet generator (Johnson et al. 2016 layout: c7s1-a, d-b, d-c,
R-c × n, u-b, u-a, c7s1-3) with reflection padding and instance normalisation. Departures from the
paper: slim widths (16/32/64 channels and 5 residual blocks by default, against 64/128/256 and 6–9), nearest
upsample + conv in place of transposed convs (no checkerboard, Odena et al. 2016), affine instance
norm whose statistics can be recorded once for seamless tiles, and a [0,1] image interface (the
paper's [-1,1] range is kept inside: in = 2x−1, out = (tanh+1)/2).

An *identity start* is available (``residual=True``: the last conv predicts a change of
pre-activation, out = tanh(atanh(x) + Δ), initialised to zero) but is off by default: in a 5-minute
trial here (365 steps, photo → 3 Monets) the generators never left the identity. The L1 cycle and
identity terms have a kink at "no change" that holds a zero change in place against the adversarial
pull (D's loss fell to 0.3 while G's adversarial loss rose to 1.1), so the samples were the photos.

The discriminator is the 70×70 PatchGAN (C64-C128-C256-C512, 4×4 kernels, LeakyReLU 0.2,
instance norm except on the first layer), slimmed to 16-32-64-128 channels; the receptive field
stays 70×70.
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from .. import controls as ctl
from ..errors import SettingsError, WeightsError
from ..image import resize_long_side
from ..weights import WEIGHTS_DIR, load_file, read_metadata
from .graphs import ExportModel, card_of
from .norms import InstanceNorm, NormCall, norm_call, set_norm_mode

Tensor = torch.Tensor
ARCH = "huafeng-cyclegan-resnet"


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of a generator; stored in each weights file's metadata (``generator``)."""

    channels: tuple[int, ...] = (16, 32, 64)  # three widths (a file's metadata may give others: then an error)
    res_blocks: int = 5
    residual: bool = False  # predict a change to the photo, starting from "no change" (see the module notes)


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride))


def _block(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(_conv(cin, cout, k, stride), InstanceNorm(cout), nn.ReLU(inplace=True))


class _Res(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_block(c, c, 3), _conv(c, c, 3), InstanceNorm(c))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    """(B,3,H,W) in [0,1] -> (B,3,H,W) in [0,1], any H×W (padded to a multiple of 4 inside, then cropped)."""

    size_multiple, pad_mode = 4, "reflect"  # what forward pads to (read by the ONNX exporter's SizeFree)

    def __init__(self, cfg: GeneratorConfig = GeneratorConfig()) -> None:
        super().__init__()
        a, b, c = cfg.channels
        self.cfg = cfg
        self.down = nn.Sequential(_block(3, a, 7), _block(a, b, 3, 2), _block(b, c, 3, 2))  # (B,c,H/4,W/4)
        self.res = nn.Sequential(*[_Res(c) for _ in range(cfg.res_blocks)])
        self.up1, self.up2 = _block(c, b, 3), _block(b, a, 3)  # each after a 2x nearest upsample
        self.out = _conv(a, 3, 7)
        init_weights(self)
        if cfg.residual:  # identity start: the untrained generator returns its input
            last = cast(nn.Conv2d, self.out[1])  # _conv: (pad, conv with a bias)
            assert last.bias is not None
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def norm_mode(self, mode: str) -> None:
        """``normal``; ``record`` (store each norm's statistics); ``fixed`` (reuse them, for tiles); on the
        modules themselves: for a network you own (training, export); inference uses :func:`norm_call`."""
        set_norm_mode(self, mode)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        # two stride-2 steps: pad to a multiple of 4 (at least 8, for the reflection pads), crop after
        ph, pw = max((-h) % 4, 8 - h), max((-w) % 4, 8 - w)
        y = x * 2 - 1
        if ph or pw:
            y = F.pad(y, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
        y = self.res(self.down(y))
        y = self.up1(F.interpolate(y, scale_factor=2.0, mode="nearest"))
        y = self.up2(F.interpolate(y, scale_factor=2.0, mode="nearest"))
        y = self.out(y)[..., :h, :w]
        if self.cfg.residual:  # a change of pre-activation: tanh(atanh(x) + delta), x in (-1, 1)
            y = y + torch.atanh((x * 2 - 1).clamp(-0.98, 0.98))
        return (torch.tanh(y) + 1) / 2


class PatchDiscriminator(nn.Module):
    """70×70 PatchGAN (Isola et al. 2017): (B,3,H,W) in [0,1] -> (B,1,H/8−2,W/8−2) real/fake scores."""

    def __init__(self, base: int = 16) -> None:
        super().__init__()
        c1, c2, c3, c4 = base, base * 2, base * 4, base * 8
        lrelu = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
        norm = lambda c: nn.InstanceNorm2d(c, affine=False)  # noqa: E731 - as in the paper's code
        self.net = nn.Sequential(
            nn.Conv2d(3, c1, 4, 2, 1), lrelu(),
            nn.Conv2d(c1, c2, 4, 2, 1), norm(c2), lrelu(),
            nn.Conv2d(c2, c3, 4, 2, 1), norm(c3), lrelu(),
            nn.Conv2d(c3, c4, 4, 1, 1), norm(c4), lrelu(),
            nn.Conv2d(c4, 1, 4, 1, 1))
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x * 2 - 1)


def init_weights(net: nn.Module, std: float = 0.02) -> None:
    """Convolution weights ~ N(0, 0.02), biases 0, norms' scale 1: the CycleGAN code's init."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, std)
            assert m.bias is not None  # every convolution of these networks has one
            nn.init.zeros_(m.bias)


# ------------------------------------------------------------------------------------ weights
def gallery() -> dict[str, Path]:
    """Shipped generators: ``gan-NAME.safetensors`` in the weights folder, by NAME."""
    return {p.stem[len("gan-"):]: p for p in sorted(WEIGHTS_DIR.glob("gan-*.safetensors"))}


def generator_metadata(cfg: GeneratorConfig, **info) -> dict:
    return {"arch": ARCH, "generator": json.dumps(asdict(cfg)), **info}


def _resolve(ref: str | None) -> Path:
    shipped = gallery()
    if ref is None:
        if not shipped:
            raise WeightsError("no GAN model is installed; train one with `huafeng train gan --a PHOTOS --b "
                               "PAINTINGS` and pass --model FILE.safetensors.")
        return next(iter(shipped.values()))
    if ref in shipped:
        return shipped[ref]
    if str(ref).endswith(".safetensors"):
        return Path(ref)
    raise SettingsError(f"no GAN model {ref!r}; shipped models: {', '.join(shipped) or 'none'} "
                        "(or pass a .safetensors file from `huafeng train gan`).")


@lru_cache(maxsize=16)
def load_generator(ref: str | None = None) -> tuple[Generator, dict]:
    """A generator (eval, frozen) and its metadata, from a shipped name or a .safetensors file;
    ``None`` takes the first shipped model."""
    path = _resolve(ref)
    tensors, meta = load_file(path)
    if meta.get("arch") != ARCH:
        raise WeightsError(f"{path.name} is not a huafeng GAN generator (arch {meta.get('arch')!r}).")
    try:
        raw = json.loads(meta.get("generator", "{}"))
        config: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        net = Generator(GeneratorConfig(**config))
        net.load_state_dict(tensors)
    except (RuntimeError, TypeError, ValueError):
        raise WeightsError(f"{path.name} does not match its GAN generator config.") from None
    return net.eval().requires_grad_(False), meta


# ------------------------------------------------------------------------------------- method
@dataclass(frozen=True)
class GanSettings:
    model: str | None = None  # shipped name or .safetensors file; None: the first shipped model
    size: int | None = None   # long side of the result; None keeps the photo's size
    tile: int = 1024          # larger pictures run in overlapping tiles (bounded memory)
    overlap: int = 64
    backend: str = "torch"    # torch, onnx or onnx-int8 (onnxruntime, whole picture: huafeng.export)

    def __post_init__(self) -> None:
        ctl.check_output_settings(self.size, self.tile, self.overlap, self.backend)


class GanStylizer:
    """Runs one CycleGAN generator (photo → its training domain); several are blended by weight.

    The style is the model's learned domain, not a painting: style images given to ``stylize`` are
    ignored; style *names* are read as model names when ``settings.model`` is not set.
    """

    method = "gan"
    takes_style_images = False  # the style is a trained generator, named by --model
    fixed_style = True          # evaluate: one domain, whatever painting the grid pairs it with

    @staticmethod
    def export_graph(ref: str, ns_iters: int = 40) -> ExportModel | None:
        """The generator ``ref`` names (a shipped model's name, or a file whose ``arch`` is a GAN
        generator's) ready for export; None when ``ref`` is not one. Graph and reference: the generator."""
        path = gallery().get(ref)
        if path is None and str(ref).endswith(".safetensors"):
            path = Path(ref) if "gan" in read_metadata(ref).get("arch", "").lower() else None
        if path is None:
            return None
        net, _ = load_generator(str(path))
        name = path.stem[len("gan-"):] if path.parent == WEIGHTS_DIR else path.stem
        return ExportModel("gan", name, net, net, ("image",), (path,), read_metadata(path), card_of(path))

    @staticmethod
    def export_names() -> list[str]:
        """The names :meth:`export_graph` takes besides files: the shipped models."""
        return list(gallery())

    def __init__(self, settings: GanSettings = GanSettings()) -> None:
        self.settings = settings
        # a named model is loaded now (a bad name fails at once); with none named, the first shipped one
        self.default = load_generator(settings.model) if settings.model or gallery() else None

    @property
    def domain(self) -> str:
        """The default model's domain B, in file names (from its metadata), or ''."""
        if self.default is None:
            return ""
        try:
            return ", ".join(json.loads(self.default[1].get("domain_b", "[]")))
        except (ValueError, TypeError):
            return ""

    @property
    def ready(self) -> bool:
        """Whether a model is at hand without naming one (evaluate lists the method only then)."""
        return self.default is not None

    @torch.inference_mode()
    def stylize(self, content: Tensor, styles: list | None = None, weights: list[float] | None = None,
                controls: ctl.Controls = ctl.Controls(), progress: ctl.ProgressFn | None = None) -> Tensor:
        s = self.settings
        names = [st for st in (styles or []) if isinstance(st, (str, Path))]
        if s.model is None and names:
            nets = [load_generator(str(n))[0] for n in names]
            weights = ctl.normalize_weights(weights or [1.0] * len(nets))
        elif self.default is not None:
            nets, weights = [self.default[0]], [1.0]
        else:  # none was installed when this stylizer was made: one installed since, or the clear error
            nets, weights = [load_generator(None)[0]], [1.0]
        if s.size is not None:
            content = resize_long_side(content, s.size)
        outs = []
        for i, net in enumerate(nets):
            outs.append(self._run(_on_device(net, content.device), content))
            if progress:
                progress(ctl.Progress(f"generator {i + 1}/{len(nets)}", i + 1, len(nets)))
        assert weights is not None  # set with nets in every branch
        return ctl.blend_results(content, outs, weights, controls)

    def _run(self, net: Generator, x: Tensor) -> Tensor:
        s = self.settings
        if s.backend != "torch":  # onnxruntime runs the whole picture (exported and checked on first use)
            from ..backends import module_runner

            return module_runner(net, s.backend, "gan")(x)
        if max(x.shape[-2:]) <= s.tile:
            return net(x)
        # instance-norm statistics of the whole picture (downscaled to one tile), reused per tile: held
        # by this call, never on the shared generator
        with norm_call(NormCall("record")) as call:
            net(resize_long_side(x, s.tile))
            call.mode = "fixed"
            return ctl.run_tiled(lambda tile, _: net(tile), x, s.tile, s.overlap, align=4)


def _on_device(net: Generator, device: torch.device) -> Generator:
    """The shared generator, or a copy of it on ``device`` (moving the shared one would change it for
    every other caller)."""
    if next(net.parameters()).device == device:
        return net
    return copy.deepcopy(net).to(device)
