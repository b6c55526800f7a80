"""Benchmark the optimisation method: wall time to a finished image, seconds per iteration, peak RSS.

Each (backbone, size) runs in a fresh process so that its peak RSS is its own.

    python benchmarks/bench_optimize.py                 # lite0 and vgg16 at 512 and 1024 px
    python benchmarks/bench_optimize.py --sizes 512 --backbones lite0
    python benchmarks/bench_optimize.py --sizes 512 --backbones lite0,lite0-plain --periodic 8

``lite0-plain`` is the lite0 setting with the loss network's anti-aliasing taken out (what shipped before):
for comparison only. ``--periodic N`` also stylizes the N held-out photos (HUAFENG_DATA or ../shared/data)
and prints the periodic-artifact score of the results (≤ 10 dB: no fixed-period pattern).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _backbone(backbone: str) -> str:
    if backbone == "lite0-plain":  # the un-anti-aliased loss network, for comparison
        from huafeng.methods import optimize
        optimize.EXTRACTORS["lite0"] = "lite0"
        return "lite0"
    return backbone


def periodic(backbone: str, size: int, n: int) -> dict:
    import os
    from pathlib import Path

    import huafeng
    from huafeng.image import load_image
    from huafeng.metrics import periodic_score
    from huafeng.styles import BUNDLED
    from huafeng.train.common import split_photos

    data = Path(os.environ.get("HUAFENG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    photos, _ = split_photos(data / "content", n)
    stylizer = huafeng.get_stylizer("optimize", backbone=_backbone(backbone), size=size)
    style = load_image(BUNDLED["starry-night"].path)
    outs, times = [], []
    for p in photos:
        t0 = time.perf_counter()
        outs.append(stylizer.stylize(load_image(p), [style]))
        times.append(time.perf_counter() - t0)
    score, period, angle = periodic_score(outs)
    return {"backbone": backbone, "size": size, "photos": n, "periodic_db": round(score, 1), "period_px": round(period, 2),
            "angle": round(angle), "median_s": round(sorted(times)[len(times) // 2], 1)}


def one(backbone: str, size: int, square: bool = False) -> dict:
    import torch

    import huafeng
    from huafeng.image import load_image
    from huafeng.styles import BUNDLED, sample_photo

    content = load_image(sample_photo("parrots"))
    if square:  # the worst case for memory at a given long side
        h, w = content.shape[-2:]
        content = content[..., :, (w - h) // 2:(w - h) // 2 + h]
    style = load_image(BUNDLED["starry-night"].path)
    stylizer = huafeng.get_stylizer("optimize", backbone=_backbone(backbone), size=size)
    evals = []  # (time, Progress): one report per function evaluation, plus one at each scale's end
    t0 = time.perf_counter()
    out = stylizer.stylize(content, [style], progress=lambda p: evals.append((time.perf_counter(), p)))
    wall = time.perf_counter() - t0
    n = sum(1 for _, p in evals if p.loss is not None)
    last = [t for t, p in evals if p.loss is not None and p.stage == evals[-1][1].stage]
    final = (last[-1] - last[0]) / max(len(last) - 1, 1)
    return {"backbone": backbone, "size": size, "out": list(out.shape[-2:]), "wall_s": round(wall, 1),
            "evals": n, "s_per_eval": round(wall / max(n, 1), 3), "s_per_eval_final": round(final, 3), "threads": torch.get_num_threads(),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", default="lite0,vgg16")
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("--square", action="store_true", help="a square crop of the photo (more pixels per long side)")
    ap.add_argument("--periodic", type=int, default=0, metavar="N", help="also score N held-out photos for patterns")
    ap.add_argument("--one", nargs=2, metavar=("BACKBONE", "SIZE"), help=argparse.SUPPRESS)
    ap.add_argument("--one-periodic", nargs=3, metavar=("BACKBONE", "SIZE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.square)))
        return
    if args.one_periodic:
        print(json.dumps(periodic(args.one_periodic[0], int(args.one_periodic[1]), int(args.one_periodic[2]))))
        return
    rows = []
    for size in map(int, args.sizes.split(",")):
        for backbone in args.backbones.split(","):
            cmd = [sys.executable, __file__, "--one", backbone, str(size)] + (["--square"] if args.square else [])
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                print(r.stderr, file=sys.stderr)
                continue
            rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print("\n| backbone | size (px) | result | wall to image (s) | evaluations | s / evaluation (mean) "
          "| s / evaluation (final scale) | peak RSS (GB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backbone']} | {r['size']} | {r['out'][1]}x{r['out'][0]} | {r['wall_s']} | {r['evals']} | "
              f"{r['s_per_eval']} | {r.get('s_per_eval_final', '')} | {r['peak_rss_gb']} |")
    if not args.periodic:
        return
    prow = []
    for size in map(int, args.sizes.split(",")):
        for backbone in args.backbones.split(","):
            r = subprocess.run([sys.executable, __file__, "--one-periodic", backbone, str(size), str(args.periodic)],
                               capture_output=True, text=True)
            if r.returncode:
                print(r.stderr, file=sys.stderr)
                continue
            prow.append(json.loads(r.stdout.strip().splitlines()[-1]))
            print(json.dumps(prow[-1]), file=sys.stderr, flush=True)
    print("\n| backbone | size (px) | held-out photos | periodic score (dB) | peak period (px) | angle | median s / photo |")
    print("|---|---|---|---|---|---|---|")
    for r in prow:
        print(f"| {r['backbone']} | {r['size']} | {r['photos']} | {r['periodic_db']} | {r['period_px']} | {r['angle']} | {r['median_s']} |")


if __name__ == "__main__":
    main()
