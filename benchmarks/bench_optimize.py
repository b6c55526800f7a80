"""Benchmark the optimisation method: wall time to a finished image, seconds per iteration, peak RSS.

Each (backbone, size) runs in a fresh process so that its peak RSS is its own.

    python benchmarks/bench_optimize.py                 # lite0 and vgg16 at 512 and 1024 px
    python benchmarks/bench_optimize.py --sizes 512 --backbones lite0
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


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
    stylizer = huafeng.get_stylizer("optimize", backbone=backbone, size=size)
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
    ap.add_argument("--one", nargs=2, metavar=("BACKBONE", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.square)))
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


if __name__ == "__main__":
    main()
