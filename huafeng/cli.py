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

# CLI flag -> settings field; defaults and help come from the settings dataclass.
_SETTING_FLAGS = {
    "backbone": "feature network: lite0 (fast) or vgg16 (classic look, ~12x slower)",
    "size": "long side of the result in pixels",
    "steps": "optimiser iterations at the coarsest scale (each finer scale gets half)",
    "style_weight": "weight of the style loss against the content loss",
    "content_weight": "weight of the content loss",
    "tv_weight": "total-variation smoothing weight",
    "style_scale": "size of the style image relative to the result (bigger: larger brush strokes)",
    "optimizer": "lbfgs or adam",
    "init": "content, recolor (content in the style's colours) or noise",
    "seed": "random seed, for repeatable results",
}


def _settings_defaults() -> dict:
    from .methods.optimize import DEFAULT_STEPS, OptimizeSettings

    out = {f.name: f.default for f in fields(OptimizeSettings) if f.default is not MISSING}
    out["steps"] = ", ".join(f"{k}: {v}" for k, v in DEFAULT_STEPS.items())
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="huafeng", description="Deep-learning image style transfer, offline on a CPU.")
    p.add_argument("--version", action="version", version=f"huafeng {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("stylize", help="stylize one or more photos",
                       description="Stylize photos with a painting. Example: huafeng stylize photo.jpg --style starry-night",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("content", nargs="+", help="photo file(s), or a bundled sample photo: parrots, cat")
    s.add_argument("-s", "--style", action="append", required=True, metavar="STYLE[:WEIGHT]",
                   help="a bundled style name (see `huafeng styles`) or a painting file, with an optional blend "
                        "weight; repeat to blend several styles")
    s.add_argument("-o", "--output", help="output file (the format follows the extension); with several photos, a "
                   "folder. Default: next to the photo, as NAME_stylized.EXT, never over an existing file")
    s.add_argument("-m", "--method", default="optimize", help="style-transfer method")
    s.add_argument("--strength", type=float, default=1.0, help="0 keeps the photo, 1 is fully stylized")
    s.add_argument("--preserve-color", nargs="?", const="luminance", default="none", metavar="MODE",
                   help="keep the photo's colours: luminance (default when given) or histogram")
    s.add_argument("--mask", help="greyscale mask image: white is stylized (with two styles: white gets the first, "
                   "black the second)")
    s.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    s.add_argument("--max-pixels", type=int, default=None, help="refuse inputs larger than this many pixels "
                   "(default 100 million)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    defaults = _settings_defaults()
    for name, help_text in _SETTING_FLAGS.items():
        default = defaults.get(name)
        typ = type(default) if isinstance(default, (int, float)) and not isinstance(default, bool) else str
        if name == "steps":
            typ = int
        s.add_argument("--" + name.replace("_", "-"), type=typ, default=None,
                       help=f"{help_text} (default: {default})")

    sub.add_parser("styles", help="list the bundled styles")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return {"stylize": _stylize, "styles": _styles}[args.command](args)
    except HuafengError as e:
        print(f"huafeng: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("huafeng: interrupted; nothing was written.", file=sys.stderr)
        return 130


def _styles(args: argparse.Namespace) -> int:
    from .styles import BUNDLED

    width = max(map(len, BUNDLED))
    for st in BUNDLED.values():
        print(f"{st.name:<{width}}  {st.artist}, {st.title} ({st.year})")
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

    if args.method not in METHODS:
        raise SettingsError(f"unknown method {args.method!r}; choose one of: {', '.join(METHODS)}.")
    settings = {k: getattr(args, k) for k in _SETTING_FLAGS if getattr(args, k) is not None}
    contents = [resolve_content(c) for c in args.content]
    outputs = _outputs(contents, args.output)
    protect = contents + [Path(s.rpartition(":")[0] or s) for s in args.style] + ([Path(args.mask)] if args.mask else [])
    failures = 0
    for content, out in zip(contents, outputs):
        bar = _bar(content.name, args.quiet)
        try:
            rgb, alpha = stylize_image(content, args.style, args.method, strength=args.strength,
                                       preserve_color=args.preserve_color, mask=args.mask, progress=bar.update,
                                       max_pixels=args.max_pixels, device=args.device, **settings)
        except HuafengError as e:
            bar.close()
            if len(contents) == 1:
                raise
            print(f"huafeng: error: {e}", file=sys.stderr)
            failures += 1
            continue
        bar.close()
        path = save_image(rgb, out, alpha=alpha, protect=protect)
        print(path)
    return 2 if failures else 0


class _bar:
    """A tqdm bar fed by the library's Progress reports."""

    def __init__(self, name: str, quiet: bool) -> None:
        from tqdm import tqdm

        self.t = None if quiet or not sys.stderr else tqdm(total=1, desc=name, unit="step", file=sys.stderr,
                                                            leave=False, dynamic_ncols=True)

    def update(self, p) -> None:
        if self.t is None:
            return
        self.t.total = p.total
        self.t.n = p.step
        self.t.set_postfix_str(p.stage + (f" loss {p.loss:.3g}" if p.loss is not None else ""), refresh=False)
        self.t.refresh()

    def close(self) -> None:
        if self.t is not None:
            self.t.close()


if __name__ == "__main__":
    sys.exit(main())
