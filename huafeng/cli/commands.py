"""The command handlers of the CLI: each turns parsed arguments into one library call and a report."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import HuafengError, OutputError, SettingsError
from . import _SETTING_FLAGS, _bar

def _styles(args: argparse.Namespace) -> int:
    from ..methods.fast import gallery
    from ..styles import BUNDLED

    trained = gallery()
    width = max(map(len, BUNDLED))
    for st in BUNDLED.values():
        mark = "  [fast network]" if st.name in trained else ""
        print(f"{st.name:<{width}}  {st.artist}, {st.title} ({st.year}){mark}")
    for name in trained:
        if name not in BUNDLED:
            print(f"{name:<{width}}  trained network (fast)")
    from ..methods.gan import gallery as gan_gallery

    for name in gan_gallery():
        print(f"{name:<{width}}  GAN domain model (use: --method gan --model {name})")
    return 0


def _outputs(contents: list[Path], output: str | None) -> list[Path]:
    from ..image import default_output_path
    from ..styles import ASSETS

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
    from ..api import stylize_image
    from ..image import save_image
    from ..methods import choose_method
    from ..styles import resolve_content

    args.method = choose_method(args.method, args.style or [], model=args.model)
    if not args.style and args.method != "gan":
        raise SettingsError("no style given; pass --style NAME_OR_FILE (or --method gan --model NAME_OR_FILE).")
    settings = {k: getattr(args, k) for k in _SETTING_FLAGS if getattr(args, k) is not None}
    contents = [resolve_content(c) for c in args.content]
    outputs = _outputs(contents, args.output)
    protect = contents + [Path(s.rpartition(":")[0] or s) for s in args.style or []] + ([Path(args.mask)] if args.mask else [])
    from ..image import check_output

    for out in outputs:  # a bad -o fails now, not after minutes of work
        check_output(out, protect)
    failures, record = 0, None
    for content, out in zip(contents, outputs):
        try:
            with _bar(content.name, args.quiet) as bar:
                rgb, alpha = stylize_image(content, args.style or [], args.method, strength=args.strength,
                                           preserve_color=args.preserve_color, mask=args.mask, progress=bar.update,
                                           max_pixels=args.max_pixels, device=args.device, **settings)
        except HuafengError as e:
            if len(contents) == 1:
                raise
            print(f"huafeng: error: {e}", file=sys.stderr)
            failures += 1
            continue
        if args.metadata and record is None:  # the same for every photo; built once the first one worked
            from ..provenance import describe

            record = describe(args.method, args.style or [], settings, strength=args.strength,
                              preserve_color=args.preserve_color, mask=args.mask)
        path = save_image(rgb, out, alpha=alpha, protect=protect, provenance=record)
        print(path)
    return 2 if failures else 0


def _data_dir(given: str | None, sub: str) -> str:
    import os

    if given:
        return given
    root = os.environ.get("HUAFENG_DATA")
    if root:
        if Path(root, sub).is_dir():
            return str(Path(root, sub))
        raise SettingsError(f"HUAFENG_DATA={root} holds no {sub}/ folder; pass --{sub} DIR or fix HUAFENG_DATA.")
    # what ships inside the package: the Kodak 24 photos (512 px) and the bundled sample paintings
    return str(Path(__file__).resolve().parents[1] / "assets" / ("train_photos" if sub == "content" else "styles"))


def _train(args: argparse.Namespace) -> int:
    import torch

    if args.nproc and args.nproc > 1 and "WORLD_SIZE" not in os.environ:  # relaunch under torchrun
        from ..train.distributed import launch

        return launch(args.argv[args.argv.index("train") + 1:], args.nproc)
    if args.threads:
        torch.set_num_threads(args.threads)
    if int(os.environ.get("RANK", "0")) > 0:  # under torchrun, rank 0 alone reports
        args.quiet = True
        sys.stdout = open(os.devnull, "w")
    trainers = {"photoreal": _train_photoreal, "arbitrary": _train_arbitrary, "style": _train_style, "gan": _train_gan}
    return trainers[args.what](args)


def _train_photoreal(args: argparse.Namespace) -> int:
    from ..train.photoreal import PhotorealTrainSettings, train_photoreal

    opts = {k: getattr(args, k) for k in ("minutes", "steps", "batch", "crop", "decay_from") if getattr(args, k) is not None}
    settings = PhotorealTrainSettings(content_dir=_data_dir(args.content, "content"),
                                      style_dir=_data_dir(args.styles, "styles"), out=args.out, **opts)
    with _bar("train photoreal", args.quiet) as bar:
        summary = train_photoreal(settings, progress=bar.update)
    print(f"{summary['out']}: {summary['steps']} steps, {summary['minutes']} min; last check: "
          + ", ".join(f"{k} {v}" for k, v in summary["last_eval"].items() if k.endswith("psnr")) + " dB")
    return 0


def _train_arbitrary(args: argparse.Namespace) -> int:
    from ..train.paint import PaintTrainSettings, train_paint

    styles = args.styles
    if not styles:
        styles = [_data_dir(None, "styles")]
        more = Path(styles[0]).with_name("styles_more")  # $HUAFENG_DATA/styles_more, when there is one
        styles += [str(more)] if more.is_dir() else []
    opts = {k: getattr(args, k) for k in ("minutes", "steps", "batch", "crop") if getattr(args, k) is not None}
    settings = PaintTrainSettings(content_dir=_data_dir(args.content, "content"), style_dirs=tuple(styles),
                                  out=args.out, **opts)
    summary = train_paint(settings, log=(lambda *a, **k: None) if args.quiet else print)
    ev = summary["last_eval"]
    print(f"{summary['out']}: {summary['steps']} steps, {summary['minutes']} min; held-out check: "
          + ", ".join(f"{k} {ev[k]}" for k in ("eval_content", "eval_ms", "eval_gram") if k in ev))
    return 0


def _train_style(args: argparse.Namespace) -> int:
    from ..styles import resolve_style
    from ..train.style import StyleTrainSettings, train_style

    painting = resolve_style(args.painting)
    name = args.name or (args.painting if painting.stem == args.painting else painting.stem)
    opts = {k: getattr(args, k) for k in ("minutes", "steps", "batch", "content_weight", "style_weight", "tv_weight",
                                          "adversarial") if getattr(args, k) is not None}
    settings = StyleTrainSettings(painting=str(painting), content_dir=_data_dir(args.content, "content"),
                                  out=args.out or f"runs/style-{name}", name=name, evaluate=not args.no_eval,
                                  conditioned=args.conditioned, **opts)
    with _bar(f"train {name}", args.quiet) as bar:
        summary = train_style(settings, progress=bar.update)
    print(f"{summary['weights']}: {summary['steps']} steps, {summary['minutes']} min "
          f"({summary['s_per_step']} s/step, {summary['crops_per_s']} crops/s); "
          f"use it with: huafeng stylize PHOTO --method fast --style {summary['weights']}")
    ev = summary.get("eval")
    if ev:
        print(f"held-out check ({ev['photos']} photos, {ev['size']} px): style distance x{ev['style_ratio']:.2f} and "
              f"SSIM x{ev['ssim_ratio']:.2f} of the optimize method's; bar (≤ x{ev['bar']['style_ratio_max']}, "
              f"≥ x{ev['bar']['ssim_ratio_min']}) {'met' if ev['passes'] else 'not met'}; see {summary['out']}/eval.png")
    return 0


def _train_gan(args: argparse.Namespace) -> int:
    from ..train.gan import GanTrainSettings, train_gan

    opts = {k: getattr(args, k) for k in ("minutes", "steps", "batch", "crop") if getattr(args, k) is not None}
    settings = GanTrainSettings(a=tuple(args.a), b=tuple(args.b), out=args.out, **opts)
    with _bar("train gan", args.quiet) as bar:
        r = train_gan(settings, progress=bar.update)
    last = r["last"]
    print(f"{r['weights']}: {r['steps']} steps, {r['minutes']} min ({r['seconds_per_step']} s/step); last losses: "
          + ", ".join(f"{k} {last[k]:.3g}" for k in ("G", "D", "cycle", "identity") if k in last)
          + f"; samples: {r['samples']}; use it with: huafeng stylize PHOTO --method gan --model {r['weights']}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ..evaluate import EvaluateSettings, evaluate

    settings = EvaluateSettings(content_dir=_data_dir(args.content, "content"),
                                style_dir=_data_dir(args.styles, "styles"), out=args.output,
                                methods=tuple(m for m in (args.methods or "").split(",") if m),
                                photos=args.n_photos, styles=args.n_styles, size=args.size,
                                gallery=tuple(g for g in (args.gallery or "").split(",") if g))
    with _bar("evaluate", args.quiet) as bar:
        result = evaluate(settings, progress=bar.update)
    for method, v in result["summary"].items():
        periodic = "" if v.get("periodic_db") is None else (f", periodic {v['periodic_db']:.1f} dB (max "
                                                            f"{v['periodic_max_db']:.1f}, {v['periodic_period_px']:.1f} px)")
        print(f"{method}: " + ", ".join(f"{k} {v[k]:.4g}" for k in ("ssim", "gram_distance", "seconds", "diversity"))
              + periodic)
    for note in result["skipped"].values():
        print(note)
    print(result["report"])
    return 0


def _bench(args: argparse.Namespace) -> int:
    from ..evaluate import bench, bench_table
    from ..train.common import write_json

    if args.backends:
        return _bench_backends(args)

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


def _bench_backends(args: argparse.Namespace) -> int:
    from ..export.bench import backends_table, bench_backends
    from ..train.common import write_json

    try:
        sizes = [int(x) for x in args.sizes.split(",")] if args.sizes != "256,512,1024,2048,4096" else [512, 1024]
    except ValueError:
        raise SettingsError("--sizes takes numbers like 512,1024.") from None
    with _bar("bench", args.quiet) as bar:
        rows = bench_backends(args.bench_model, [b for b in args.backends.split(",") if b], sizes, progress=bar.update)
    print(f"{rows[0]['model']} ({rows[0]['kind']})")
    print(backends_table(rows))
    if args.output:
        Path(args.output).mkdir(parents=True, exist_ok=True)
        write_json(Path(args.output) / "bench_backends.json", rows)
    return 0


def _pte_settings(args: argparse.Namespace):
    from ..export.mobile import PteSettings

    if args.web:
        raise SettingsError("--web builds an ONNX page; leave out --format pte.")
    if not args.size:
        return PteSettings(int8=args.int8)
    try:
        h, w = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise SettingsError(f"--size takes height x width, like 384x512; got {args.size!r}.") from None
    return PteSettings(size=(h, w), int8=args.int8)


def _export(args: argparse.Namespace) -> int:
    from ..export import ExportSettings, build_web, export_onnx

    if args.size and args.format != "pte":
        raise SettingsError("--size is for --format pte (an ONNX export takes any size).")
    stem = Path(args.model).stem if args.model.endswith(".safetensors") else args.model
    out = Path(args.output or f"{stem}{'.int8' if args.int8 else ''}.{args.format}")
    with _bar(f"export {Path(args.model).stem}", args.quiet) as bar:
        if args.format == "pte":
            from ..export.mobile import export_pte

            r = export_pte(args.model, out, _pte_settings(args), progress=bar.update)
        elif args.web:
            r = build_web(args.model, args.web, ExportSettings(int8=args.int8, exporter=args.exporter), progress=bar.update)
        else:
            r = export_onnx(args.model, out, ExportSettings(int8=args.int8, exporter=args.exporter), progress=bar.update)
    worst = min(r["parity"], key=lambda row: row["psnr"])
    print(f"{r.get('web') or r['path']}: {r['kind']} {r['name']}, {r['precision']}, {r['bytes'] / 2**20:.2f} MB; "
          f"against torch on {len(r['parity'])} photos: PSNR >= {worst['psnr']:.1f} dB, max abs difference "
          f"{max(row['max_abs'] for row in r['parity']):.2g}")
    return 0


def _video(args: argparse.Namespace) -> int:
    from .. import controls as ctl
    from ..api import load_styles, style_refs
    from ..methods import choose_method, get_stylizer, make_settings
    from ..video import VIDEO_METHODS, VideoSettings, stylize_video

    method = choose_method(args.method, args.style, allowed=VIDEO_METHODS, what="video")
    opts = {k: v for k, v in (("size", args.size), ("weights", args.weights), ("backend", args.backend))
            if v is not None}
    settings = make_settings(method, **opts)
    stylizer = get_stylizer(method, settings)
    styles, weights = style_refs(args.style) if method == "fast" else load_styles(args.style)
    record = None
    if args.metadata:
        from ..provenance import describe

        record = describe(method, args.style, settings, strength=args.strength, preserve_color=args.preserve_color)
    src = Path(args.input)
    out = Path(args.output) if args.output else src.with_name(src.stem + "_stylized.mp4")
    controls = ctl.Controls(strength=args.strength, preserve_color=args.preserve_color)
    with _bar(src.name, args.quiet) as bar:
        r = stylize_video(src, out, stylizer, styles, weights, controls, VideoSettings(consistency=args.consistency),
                          progress=bar.update, report=args.report, provenance=record)
    extra = f", warping error {r['warping_error']:.5f}" if args.report else ""
    print(f"{r['output']}: {r['frames']} frames, {r['fps']} fps{extra}")
    return 0


def _batch(args: argparse.Namespace) -> int:
    from ..batch import BatchSettings, run_batch
    from ..methods import choose_method

    method = choose_method(args.method, args.style)
    opts = {k: v for k, v in (("size", args.size), ("steps", args.steps)) if v is not None}
    s = BatchSettings(in_dir=args.input, out_dir=args.output, styles=tuple(args.style), method=method,
                      workers=args.workers if args.workers is not None else (0 if args.ray else 1), ray=args.ray,
                      strength=args.strength, preserve_color=args.preserve_color, settings=opts,
                      metadata=args.metadata)
    with _bar("batch", args.quiet) as bar:
        c = run_batch(s, progress=bar.update)
    print(f"{args.output}: {c['done']} done, {c['failed']} failed, {c['skipped']} skipped "
          f"({c['items_per_s']} items/s); see manifest.jsonl")
    return 2 if c["failed"] else 0


def _info(args: argparse.Namespace) -> int:
    from ..provenance import read_provenance

    record = read_provenance(args.file)
    if args.json:
        print(record.to_json())
        return 0
    d = record.to_dict()

    def ref(r: dict) -> str:
        return r.get("name") or f"sha256 {r.get('sha256')}" + (" (pixels)" if r.get("of") == "pixels" else "")

    print(f"{d['software']} {d['version']}")
    print(f"method: {d['method']}")
    for st in d["styles"]:
        print(f"style: {ref(st)}" + (f", weight {st['weight']:g}" if "weight" in st else "") if "more" not in st
              else f"style: and {st['more']} more")
    for m in d["models"]:
        print(f"model: {m.get('name', 'user file')}, sha256 {m.get('sha256')}")
    print("settings: " + ", ".join(f"{k}={v}" for k, v in d["settings"].items()))
    print("controls: " + ", ".join(f"{k}={v if not isinstance(v, dict) else ref(v)}" for k, v in d["controls"].items()))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ..service import ServiceConfig, serve

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"huafeng: serving on {args.host}: anyone who can reach it can use it.", file=sys.stderr)
    print(f"huafeng studio: http://{args.host}:{args.port}/  (API docs: /docs)", file=sys.stderr)
    serve(ServiceConfig(host=args.host, port=args.port, results_dir=args.results,
                        results_cap_bytes=args.results_cap_mb * 2**20, max_upload_bytes=args.max_upload_mb * 2**20,
                        max_queue=args.max_queue, workers=args.workers, train_content_dir=args.train_content))
    return 0


