"""Mobile export: an ExecuTorch program (``.pte``, XNNPACK delegate) checked against torch on photos
by ExecuTorch's own Python runtime before it is written. Needs ``pip install 'huafeng[mobile]'``.

The program takes pictures of one fixed size (``PteSettings.size``; the app resizes or pads to it):
ExecuTorch 1.5's upper-bound memory planning failed on these networks with dynamic height and width
(a 1024 px bound planned a 2.6 GB buffer and the program did not load), and a fixed size is what
phone apps feed anyway. The graph is the method's own (its ``export_graph`` hook), as for ONNX.

The metadata (the ONNX export's keys: the weights' metadata, huafeng's, the parity rows and the
model card) is a constant method of the program, ``huafeng_metadata``, returning JSON
(:func:`read_pte_metadata`).
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..atomic import atomic_path
from ..controls import Progress, ProgressFn
from ..errors import ExportError, SettingsError
from .convert import CHECK_PHOTOS, CHECK_STYLE, _metadata, output_path, psnr
from .models import ExportModel, load_model

Tensor = torch.Tensor
META_METHOD = "huafeng_metadata"


@dataclass(frozen=True)
class PteSettings:
    """Settings of :func:`export_pte`; the CLI derives its defaults from these."""

    size: tuple[int, int] = (384, 512)       # (height, width) of the image input: 4:3 landscape
    style_size: tuple[int, int] = (512, 512)  # (height, width) of the painting input, for graphs with one
    int8: bool = False                       # XNNPACK int8 (PT2E static quantization, calibrated on photos)
    min_psnr: float = 40.0                   # fp32 against torch, dB
    max_abs_fp32: float = 0.01               # fp32: a wrong border can pass the PSNR bar; not this one
    min_psnr_int8: float = 30.0              # int8 against torch, dB; below it the export is refused
    # the first and last N convolutions stay fp32, as in the ONNX int8 export: with none kept a trained
    # per-style network reached 29.6 dB here (the outer layers are the most sensitive)
    int8_keep_fp32: int = 2
    ns_iters: int = 40                       # Newton–Schulz iterations of graphs that take matrix roots

    def __post_init__(self) -> None:
        for what, hw in (("size", self.size), ("style_size", self.style_size)):
            if len(hw) != 2 or min(hw) < 32 or max(hw) > 4096:
                raise SettingsError(f"{what} is (height, width), each 32 to 4096 px; got {hw}.")
        if self.ns_iters < 1 or self.int8_keep_fp32 < 0:
            raise SettingsError("ns_iters must be at least 1 and int8_keep_fp32 0 or more.")


def require_executorch() -> None:
    try:
        import executorch.runtime  # noqa: F401
    except ImportError:
        raise SettingsError("pte export needs ExecuTorch: pip install 'huafeng[mobile]'.") from None


def _fit(img: Tensor, hw: tuple[int, int]) -> Tensor:
    """The centre of ``img`` at the aspect of ``hw``, resized to ``hw`` (antialiased)."""
    h, w = img.shape[-2:]
    th, tw = hw
    if w * th > h * tw:  # wider than the target: crop the width
        cw = max(1, round(h * tw / th))
        img = img[..., :, (w - cw) // 2:(w - cw) // 2 + cw]
    else:
        ch = max(1, round(w * th / tw))
        img = img[..., (h - ch) // 2:(h - ch) // 2 + ch, :]
    return F.interpolate(img, size=hw, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def check_feeds(model: ExportModel, s: PteSettings) -> list[tuple[str, tuple[Tensor, ...]]]:
    """The bundled photos at the program's size (centre crop, resized); a bundled painting for the style input."""
    from ..image import load_image
    from ..styles import resolve_style, sample_photo

    style = _fit(load_image(resolve_style(CHECK_STYLE)), s.style_size) if "style" in model.inputs else None
    out = []
    for photo in CHECK_PHOTOS:
        feeds = {"image": _fit(load_image(sample_photo(photo)), s.size)}
        if style is not None:  # (None: the model has no style input)
            feeds["style"] = style
        out.append((f"{photo}@{s.size[0]}x{s.size[1]}", tuple(feeds[k] for k in model.inputs)))
    return out


def _calibration(feeds: list[tuple[str, tuple[Tensor, ...]]]) -> list[tuple[Tensor, ...]]:
    """Each photo whole, mirrored and as two crops brought back to size: eight calibration pictures."""
    out = []
    for _, args in feeds:
        img = args[0]
        h, w = img.shape[-2:]
        hw = (h, w)
        for view in (img, img.flip(-1), _fit(img[..., : h * 3 // 4, : w * 3 // 4], hw), _fit(img[..., h // 4:, w // 4:], hw)):
            out.append((view.contiguous(), *args[1:]))
    return out


def _first_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:160]}" if text else type(e).__name__


def _fp32_convs(model: ExportModel, keep: int) -> list[str]:
    """The first and last ``keep`` convolutions of the graph, by module name (definition order), and
    those under the submodules the method keeps in fp32 (``model.int8_keep``)."""
    convs = [name for name, m in model.graph.named_modules() if isinstance(m, torch.nn.Conv2d)]
    kept = set(convs[:keep] + convs[-keep:]) if keep else set()
    kept |= {c for c in convs for p in model.int8_keep if c == p or c.startswith(p + ".")}
    return sorted(kept)


def lower(model: ExportModel, feeds, int8: bool, metadata: dict[str, str] | None = None, keep_fp32: int = 2) -> bytes:
    """``model.graph`` → torch.export (fixed shapes of ``feeds``) → [int8 PT2E] → XNNPACK → program bytes.
    Raises a one-line :class:`ExportError` when the format cannot hold the graph."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from torch.export import export

    args = feeds[0][1]
    stage = "torch.export"
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            # a copy in the default memory format: XNNPACK's layout pass failed on the painting network's
            # channels-last decoder (and the loaded network itself stays as it is, read-only)
            # (torch's stub lacks Module.to's memory_format keyword, which it takes)
            graph = copy.deepcopy(model.graph).to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
            ep = export(graph, args)
            if int8:
                stage = "int8 quantization"
                from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
                    XNNPACKQuantizer, get_symmetric_quantization_config)
                from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
                from torchao.quantization.pt2e.quantizer import get_module_name_filter

                quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
                keep = [get_module_name_filter(name) for name in _fp32_convs(model, keep_fp32)]
                quantizer.set_filter_function(lambda n: not any(f(n) for f in keep))
                prepared = prepare_pt2e(ep.module(), quantizer)
                for calib in _calibration(feeds):
                    prepared(*calib)
                ep = export(convert_pt2e(prepared), args)
            stage = "lowering to XNNPACK"
            consts = {META_METHOD: json.dumps(metadata or {})}
            prog = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()],
                                               constant_methods=consts).to_executorch()
            return prog.buffer
    except (ExportError, SettingsError):
        raise
    except Exception as e:  # the exporters' own errors, of many types: one line that says which step
        raise ExportError(f"the pte format can't hold {model.name}: {stage} failed ({_first_line(e)}); "
                          "nothing was written.") from None


class PteNet:
    """A torch-in, torch-out callable over a ``.pte`` program, run by ExecuTorch's runtime.
    ``threads`` resizes XNNPACK's thread pool, which is the process's: a benchmark's choice, never
    made while another program runs."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        from executorch.runtime import Runtime

        if threads:
            set_threads(threads)
        self.path = Path(path)
        self.program = Runtime.get().load_program(self.path)
        self.method = self.program.load_method("forward")

    def __call__(self, *tensors: Tensor) -> Tensor:
        return self.method.execute([t.detach().cpu().float().contiguous() for t in tensors])[0].clone()


def set_threads(n: int) -> None:
    """XNNPACK's thread pool size (the process's, like torch's thread count; set by the caller)."""
    from executorch.extension.pybindings import portable_lib

    if portable_lib._threadpool_get_thread_count() != n:
        portable_lib._unsafe_reset_threadpool(n)


def read_pte_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata :func:`export_pte` wrote into the program (its ``huafeng_metadata`` method)."""
    from executorch.runtime import Runtime

    prog = Runtime.get().load_program(Path(path))
    if META_METHOD not in prog.method_names:
        return {}
    return json.loads(prog.load_method(META_METHOD).execute([])[0])


def parity_rows(model: ExportModel, net, feeds) -> list[dict]:
    rows = []
    for label, args in feeds:
        with torch.inference_mode():
            ref = model.reference(*args).numpy()
        got = net(*args).numpy()
        if got.shape != ref.shape:
            raise ExportError(f"the pte export of {model.name} gives a {got.shape} result for {label} where torch "
                              f"gives {ref.shape}; the export is wrong and was not written.")
        rows.append({"input": label, "max_abs": round(float(np.abs(got - ref).max()), 6), "psnr": round(psnr(got, ref), 2)})
    return rows


def export_pte(ref: str, out: str | os.PathLike, settings: PteSettings = PteSettings(),
               progress: ProgressFn | None = None, model: ExportModel | None = None) -> dict:
    """Export a model to an ExecuTorch ``.pte`` (XNNPACK), check it against torch on photos with
    ExecuTorch's runtime, and write it to ``out``. Returns the report (as :func:`export_onnx`'s).
    Raises :class:`ExportError` and writes nothing when the format can't hold the graph or the check
    fails (fp32 under ``min_psnr`` dB or off by more than ``max_abs_fp32``; int8 under ``min_psnr_int8``)."""
    require_executorch()
    s = settings
    model = model or load_model(ref, s.ns_iters)
    out = output_path(out, model)
    feeds = check_feeds(model, s)
    precision = "int8" if s.int8 else "fp32"

    def report_step(stage: str, i: int) -> None:
        if progress:
            progress(Progress(stage, i, 3))

    need = s.min_psnr_int8 if s.int8 else s.min_psnr
    report: dict[str, Any] = {"kind": model.kind, "name": model.name, "precision": precision, "format": "pte",
                              "delegate": "XNNPACK", "input_size": list(s.size), "settings": asdict(s)}
    # the metadata goes into the program before the check (a constant method is fixed at lowering), so
    # it states the bars the file passed; the measured rows are in the report
    meta = _metadata(model, {**report, "parity": []})
    del meta["huafeng.parity"]
    meta["huafeng.check"] = (f"{precision} against torch on {len(feeds)} photos ({', '.join(l for l, _ in feeds)}) with "
                             f"ExecuTorch's runtime before writing: PSNR >= {need:g} dB"
                             + ("" if s.int8 else f", max abs difference <= {s.max_abs_fp32:g}"))
    if s.int8:
        meta["huafeng.int8"] = (f"PT2E static, XNNPACK symmetric per-channel config, calibrated on 8 photo views; "
                                f"{len(_fp32_convs(model, s.int8_keep_fp32))} convolutions kept fp32 (the first and "
                                f"last {s.int8_keep_fp32}{', and under ' + ', '.join(model.int8_keep) if model.int8_keep else ''})")
    meta["huafeng.io"] = (f"float32 RGB in [0,1], NCHW, image {s.size[0]}x{s.size[1]} (height x width)"
                          + (f", style {s.style_size[0]}x{s.style_size[1]}" if "style" in model.inputs else "")
                          + "; output the image's size")
    with tempfile.TemporaryDirectory(prefix="huafeng-pte-") as tmp:
        trial = Path(tmp) / "model.pte"
        trial.write_bytes(lower(model, feeds, s.int8, meta, s.int8_keep_fp32))
        report_step("lowered", 1)
        try:
            net = PteNet(trial)
        except RuntimeError as e:  # a delegate that refuses a node at load time (its log names the node)
            raise ExportError(f"the pte format can't hold {model.name}: ExecuTorch's runtime could not load the "
                              f"program ({_first_line(e)}; XNNPACK refused one of its nodes); nothing was written.") from None
        rows = parity_rows(model, net, feeds)
        report_step("checked", 2)
        worst, diff = min(r["psnr"] for r in rows), max(r["max_abs"] for r in rows)
        if not s.int8 and diff > s.max_abs_fp32:
            raise ExportError(f"the fp32 pte export of {model.name} differs from torch by up to {diff:.3g} (PSNR "
                              f"{worst:.1f} dB; allowed {s.max_abs_fp32:g}), so nothing was written; please report it.")
        if worst < need:
            what = "int8 quantization" if s.int8 else "the fp32 pte export"
            hint = "use the fp32 export" if s.int8 else "please report it"
            raise ExportError(f"{what} of {model.name} reaches only {worst:.1f} dB PSNR against torch (needs "
                              f"{need:g} dB), so nothing was written; {hint}.")
        report.update(parity=rows, min_psnr=worst)
        with atomic_path(out) as tmp_out:
            shutil.move(trial, tmp_out)
        report_step("written", 3)
    report.update(path=str(out), bytes=out.stat().st_size)
    return report
