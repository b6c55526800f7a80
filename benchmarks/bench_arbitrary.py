"""Benchmark the arbitrary-style method: warm time at 512/1024 px (square), and 4K peak RSS.

Each case runs in a fresh process, so its peak RSS is its own.

    python benchmarks/bench_arbitrary.py [--weights FILE]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(w: int, h: int, weights: str, repeats: int) -> dict:
    import torch
    import torch.nn.functional as F

    import huafeng
    from huafeng.image import load_image
    from huafeng.styles import BUNDLED, sample_photo

    photo = F.interpolate(load_image(sample_photo("parrots")), size=(h, w), mode="bicubic").clamp(0, 1)
    style = load_image(BUNDLED["starry-night"].path)
    st = huafeng.get_stylizer("arbitrary", weights=weights)
    st.stylize(photo[..., :128, :128], [style])  # warm: weights loaded, allocator primed
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = st.stylize(photo, [style])
        times.append(time.perf_counter() - t0)
    assert torch.isfinite(out).all()
    return {"size": f"{w}x{h}", "median_s": round(sorted(times)[len(times) // 2], 3), "runs": len(times),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
            "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="arbitrary")
    ap.add_argument("--one", nargs=3, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.weights, args.one[2])))
        return
    rows = []
    for w, h, n in [(512, 512, 5), (1024, 1024, 3), (3840, 2160, 1)]:
        r = subprocess.run([sys.executable, __file__, "--weights", args.weights, "--one", str(w), str(h), str(n)],
                           capture_output=True, text=True)
        if r.returncode:
            print(r.stderr[-2000:], file=sys.stderr)
            continue
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print("\n| size | warm time, median (s) | runs | peak RSS of the process (GB) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['median_s']} | {r['runs']} | {r['peak_rss_gb']} |")


if __name__ == "__main__":
    main()
