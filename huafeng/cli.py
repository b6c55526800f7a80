"""The command line: parse, call the library, report. Nothing here knows how styles are made.

Every :class:`~huafeng.errors.HuafengError` becomes one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Sequence

from . import __version__
from .errors import HuafengError, OutputError, SettingsError

# Method settings exposed as flags: name -> (type, help). Defaults come from each method's dataclass.
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
    "optimizer": (str, "lbfgs or adam"),
    "init": (str, "content, recolor (content in the style's colours) or noise"),
    "seed": (int, "random seed, for repeatable results"),
    "weights": (str, "trained weights: a shipped name or a .safetensors file"),
}


def _defaults_text(name: str) -> str:
    """'optimize: 512, arbitrary: 1024' from the methods' settings dataclasses."""
    from .methods import METHODS
    from .methods.optimize import DEFAULT_STEPS

    parts = []
    for method, (cls, _) in METHODS.items():
        for f in fields(cls):
            if f.name == name:
                default = f.default if f.default is not MISSING else "required"
                if method == "optimize" and name == "steps":
                    default = "/".join(f"{k} {v}" for k, v in DEFAULT_STEPS.items())
                parts.append(f"{method}: {default}")
    return ", ".join(parts)


def build_parser() -> argparse.ArgumentParser:
    from .methods import DEFAULT_METHOD, METHODS

    p = argparse.ArgumentParser(prog="huafeng", description="Deep-learning image style transfer, offline on a CPU.")
    p.add_argument("--version", action="version", version=f"huafeng {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("stylize", help="stylize one or more photos",
                       description="Stylize photos with a painting. Example: huafeng stylize photo.jpg --style starry-night")
    s.add_argument("content", nargs="+", help="photo file(s), or a bundled sample photo: parrots, cat")
    s.add_argument("-s", "--style", action="append", required=True, metavar="STYLE[:WEIGHT]",
                   help="a bundled style name (see `huafeng styles`) or a painting file, with an optional blend "
                        "weight; repeat to blend several styles")
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
    for name, (typ, help_text) in _SETTING_FLAGS.items():
        s.add_argument("--" + name.replace("_", "-"), type=typ, default=None,
                       help=f"{help_text} (default: {_defaults_text(name)})")

    sub.add_parser("styles", help="list the bundled styles")

    t = sub.add_parser("train", help="train a network (resumable: rerun the same command to continue)")
    tsub = t.add_subparsers(dest="what", metavar="WHAT", required=True)
    a = tsub.add_parser("arbitrary", help="the arbitrary-style decoders (reconstruction training)")
    a.add_argument("--content", help="folder of photos (default: $HUAFENG_DATA/content or ../shared/data/content)")
    a.add_argument("--styles", help="folder of paintings (default: $HUAFENG_DATA/styles or ../shared/data/styles)")
    a.add_argument("--out", default="runs/arbitrary", help="run folder: checkpoint, log, curves (default: runs/arbitrary)")
    a.add_argument("--minutes", type=float, help="stop after this many minutes of training in all")
    a.add_argument("--steps", type=int, help="stop at this step (default: 100000)")
    a.add_argument("--batch", type=int, help="crops per step (default: 4)")
    a.add_argument("--crop", type=int, help="crop side in pixels (default: 192)")
    a.add_argument("--threads", type=int, help="CPU threads (default: all)")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    st = tsub.add_parser("style", help="a fast per-style network for one painting")
    st.add_argument("painting", help="the painting (an image file, or a bundled style name)")
    st.add_argument("--content", help="folder of photos (default: $HUAFENG_DATA/content or ../shared/data/content)")
    st.add_argument("--out", help="run folder (default: runs/style-NAME)")
    st.add_argument("--name", help="the network's name (default: the painting's file name)")
    st.add_argument("--minutes", type=float, default=15.0, help="training time budget (default: 15)")
    st.add_argument("--steps", type=int, help="stop at this step")
    st.add_argument("--threads", type=int, help="CPU threads (default: all)")
    st.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="methods x photos x styles grid: metrics, contact sheets, HTML report")
    e.add_argument("--methods", help="comma-separated methods (default: every installed method)")
    e.add_argument("--content", help="folder of photos (default: $HUAFENG_DATA/content or ../shared/data/content)")
    e.add_argument("--styles", help="folder of paintings (default: $HUAFENG_DATA/styles or ../shared/data/styles)")
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
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    vid = sub.add_parser("video", help="stylize a video (or a folder of frames) with temporal consistency")
    vid.add_argument("input", help="video file (mp4, mov, mkv, avi, webm) or a folder of frames")
    vid.add_argument("-s", "--style", action="append", required=True, metavar="STYLE[:WEIGHT]",
                     help="a painting, a bundled style, or (with --method fast) a trained network")
    vid.add_argument("-o", "--output", help="output video, or a folder for PNG frames (default: NAME_stylized.mp4)")
    vid.add_argument("-m", "--method", default="auto", help="fast or arbitrary (default: fast when the style "
                     "has a trained network, else arbitrary)")
    vid.add_argument("--consistency", type=float, default=0.7, help="temporal consistency, 0 = frame by frame "
                     "(default: 0.7)")
    vid.add_argument("--strength", type=float, default=1.0, help="0 keeps the video, 1 is fully stylized")
    vid.add_argument("--preserve-color", nargs="?", const="luminance", default="none", metavar="MODE")
    vid.add_argument("--size", type=int, help="stylize at this long side (default: the video's own)")
    vid.add_argument("--weights", help="trained weights for the method (a .safetensors file)")
    vid.add_argument("--report", action="store_true", help="print the temporal warping error of the result")
    vid.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    bt = sub.add_parser("batch", help="stylize a folder tree into a mirrored tree (resumable, with a manifest)")
    bt.add_argument("input", help="folder of photos (walked recursively)")
    bt.add_argument("output", help="output folder (mirrors the input tree; manifest.jsonl records every item)")
    bt.add_argument("-s", "--style", action="append", required=True, metavar="STYLE[:WEIGHT]")
    bt.add_argument("-m", "--method", default="auto", help="style-transfer method (default: as for stylize)")
    bt.add_argument("--workers", type=int, default=1, help="local worker processes, one model each (default: 1)")
    bt.add_argument("--size", type=int, help="long side of each result")
    bt.add_argument("--steps", type=int, help="optimisation steps (optimize)")
    bt.add_argument("--strength", type=float, default=1.0)
    bt.add_argument("--preserve-color", nargs="?", const="luminance", default="none", metavar="MODE")
    bt.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

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
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return {"stylize": _stylize, "styles": _styles, "train": _train, "evaluate": _evaluate,
                "bench": _bench,
                "serve": _serve, "video": _video,
                "batch": _batch}[args.command](args)
    except HuafengError as e:
        print(f"huafeng: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("huafeng: interrupted; nothing was written.", file=sys.stderr)
        return 130


def _styles(args: argparse.Namespace) -> int:
    from .methods.fast import gallery
    from .styles import BUNDLED

    trained = gallery()
    width = max(map(len, BUNDLED))
    for st in BUNDLED.values():
        mark = "  [fast network]" if st.name in trained else ""
        print(f"{st.name:<{width}}  {st.artist}, {st.title} ({st.year}){mark}")
    for name in trained:
        if name not in BUNDLED:
            print(f"{name:<{width}}  trained network (fast)")
    return 0


def _outputs(contents: list[Path], output: str | None) -> list[Path]:
    from .image import default_output_path
    from .styles import ASSETS

    if output is None:
        # next to each photo; bundled sample photos go to the current folder, never into the package
        return [default_output_path(Path.cwd() / c.name if c.is_relative_to(ASSETS) else c) for c in contents]
    out = Path(output)
    if len(contents) == 1 and not out.is_dir():
        return [out]
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; with several photos, -o must be a folder.")
    out.mkdir(parents=True, exist_ok=True)
    return [default_output_path(out / c.name) for c in contents]


def _stylize(args: argparse.Namespace) -> int:
    from .api import stylize_image
    from .image import save_image
    from .methods import METHODS
    from .styles import resolve_content

    if args.method == "auto":
        from .methods import auto_method

        args.method = auto_method(args.style)
    if args.method not in METHODS:
        raise SettingsError(f"unknown method {args.method!r}; choose one of: {', '.join(METHODS)}.")
    settings = {k: getattr(args, k) for k in _SETTING_FLAGS if getattr(args, k) is not None}
    contents = [resolve_content(c) for c in args.content]
    outputs = _outputs(contents, args.output)
    protect = contents + [Path(s.rpartition(":")[0] or s) for s in args.style] + ([Path(args.mask)] if args.mask else [])
    from .image import check_output

    for out in outputs:  # a bad -o fails now, not after minutes of work
        check_output(out, protect)
    failures = 0
    for content, out in zip(contents, outputs):
        try:
            with _bar(content.name, args.quiet) as bar:
                rgb, alpha = stylize_image(content, args.style, args.method, strength=args.strength,
                                           preserve_color=args.preserve_color, mask=args.mask, progress=bar.update,
                                           max_pixels=args.max_pixels, device=args.device, **settings)
        except HuafengError as e:
            if len(contents) == 1:
                raise
            print(f"huafeng: error: {e}", file=sys.stderr)
            failures += 1
            continue
        path = save_image(rgb, out, alpha=alpha, protect=protect)
        print(path)
    return 2 if failures else 0


def _data_dir(given: str | None, sub: str) -> str:
    import os

    if given:
        return given
    for root in [os.environ.get("HUAFENG_DATA"), "../shared/data", "../../shared/data"]:
        if root and Path(root, sub).is_dir():
            return str(Path(root, sub))
    raise SettingsError(f"no {sub} folder given; pass --{sub} DIR (or set HUAFENG_DATA to a folder holding {sub}/).")


def _train(args: argparse.Namespace) -> int:
    import torch

    from .train.arbitrary import ArbitraryTrainSettings, train_arbitrary

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.what == "style":
        return _train_style(args)
    opts = {k: getattr(args, k) for k in ("minutes", "steps", "batch", "crop") if getattr(args, k) is not None}
    settings = ArbitraryTrainSettings(content_dir=_data_dir(args.content, "content"),
                                      style_dir=_data_dir(args.styles, "styles"), out=args.out, **opts)
    with _bar("train arbitrary", args.quiet) as bar:
        summary = train_arbitrary(settings, progress=bar.update)
    print(f"{summary['out']}: {summary['steps']} steps, {summary['minutes']} min; last check: "
          + ", ".join(f"{k} {v}" for k, v in summary["last_eval"].items() if k.endswith("psnr")) + " dB")
    return 0


def _train_style(args: argparse.Namespace) -> int:
    from .styles import resolve_style
    from .train.style import StyleTrainSettings, train_style

    painting = resolve_style(args.painting)
    name = args.name or (args.painting if painting.stem == args.painting else painting.stem)
    opts = {"steps": args.steps} if args.steps else {}
    settings = StyleTrainSettings(painting=str(painting), content_dir=_data_dir(args.content, "content"),
                                  out=args.out or f"runs/style-{name}", name=name, minutes=args.minutes, **opts)
    with _bar(f"train {name}", args.quiet) as bar:
        summary = train_style(settings, progress=bar.update)
    print(f"{summary['weights']}: {summary['steps']} steps, {summary['minutes']} min; "
          f"use it with: huafeng stylize PHOTO --method fast --style {summary['weights']}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import EvaluateSettings, evaluate

    settings = EvaluateSettings(content_dir=_data_dir(args.content, "content"),
                                style_dir=_data_dir(args.styles, "styles"), out=args.output,
                                methods=tuple(m for m in (args.methods or "").split(",") if m),
                                photos=args.n_photos, styles=args.n_styles, size=args.size)
    with _bar("evaluate", args.quiet) as bar:
        result = evaluate(settings, progress=bar.update)
    for method, v in result["summary"].items():
        print(f"{method}: " + ", ".join(f"{k} {v[k]:.4g}" for k in ("ssim", "gram_distance", "seconds", "diversity")))
    print(result["report"])
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .evaluate import bench, bench_table
    from .train.common import write_json

    try:
        sizes = [int(x) for x in args.sizes.split(",")]
        limits = {k: int(v) for k, v in (item.split("=") for item in args.max_size)}
    except ValueError:
        raise SettingsError("--sizes takes numbers like 256,512 and --max-size METHOD=PX.") from None
    with _bar("bench", args.quiet) as bar:
        rows = bench([m for m in (args.methods or "").split(",") if m] or None, sizes, limits, progress=bar.update)
    print(bench_table(rows))
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "bench.json", rows)
        print(out / "bench.json")
    return 0


def _video(args: argparse.Namespace) -> int:
    from . import controls as ctl
    from .api import load_styles, style_refs
    from .methods import auto_method, get_stylizer, make_settings
    from .video import VideoSettings, stylize_video

    method = args.method
    if method == "auto":
        method = "fast" if auto_method(args.style) == "fast" else "arbitrary"
    if method not in ("fast", "arbitrary"):
        raise SettingsError(f"video works with the fast or arbitrary method, not {method!r}.")
    opts = {k: v for k, v in (("size", args.size), ("weights", args.weights)) if v is not None}
    stylizer = get_stylizer(method, make_settings(method, **opts))
    styles, weights = style_refs(args.style) if method == "fast" else load_styles(args.style)
    src = Path(args.input)
    out = Path(args.output) if args.output else src.with_name(src.stem + "_stylized.mp4")
    controls = ctl.Controls(strength=args.strength, preserve_color=args.preserve_color)
    with _bar(src.name, args.quiet) as bar:
        r = stylize_video(src, out, stylizer, styles, weights, controls, VideoSettings(consistency=args.consistency),
                          progress=bar.update, report=args.report)
    extra = f", warping error {r['warping_error']:.5f}" if args.report else ""
    print(f"{r['output']}: {r['frames']} frames, {r['fps']} fps{extra}")
    return 0


def _batch(args: argparse.Namespace) -> int:
    from .batch import BatchSettings, run_batch
    from .methods import auto_method

    method = auto_method(args.style) if args.method == "auto" else args.method
    opts = {k: v for k, v in (("size", args.size), ("steps", args.steps)) if v is not None}
    s = BatchSettings(in_dir=args.input, out_dir=args.output, styles=tuple(args.style), method=method,
                      workers=args.workers, strength=args.strength, preserve_color=args.preserve_color, settings=opts)
    with _bar("batch", args.quiet) as bar:
        c = run_batch(s, progress=bar.update)
    print(f"{args.output}: {c['done']} done, {c['failed']} failed, {c['skipped']} skipped "
          f"({c['items_per_s']} items/s); see manifest.jsonl")
    return 2 if c["failed"] else 0


def _serve(args: argparse.Namespace) -> int:
    from .service import ServiceConfig, serve

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"huafeng: serving on {args.host}: anyone who can reach it can use it.", file=sys.stderr)
    print(f"huafeng studio: http://{args.host}:{args.port}/  (API docs: /docs)", file=sys.stderr)
    serve(ServiceConfig(host=args.host, port=args.port, results_dir=args.results,
                        results_cap_bytes=args.results_cap_mb * 2**20, max_upload_bytes=args.max_upload_mb * 2**20,
                        max_queue=args.max_queue, workers=args.workers, train_content_dir=args.train_content))
    return 0


class _bar:
    """A tqdm bar fed by the library's Progress reports; created at the first report, so errors
    raised before any progress print cleanly. Use as a context manager."""

    def __init__(self, name: str, quiet: bool) -> None:
        self.name, self.quiet, self.t = name, quiet, None

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


if __name__ == "__main__":
    sys.exit(main())
