"""Video benchmark: fps and temporal warping error, frame by frame against consistency, same run.

    python benchmarks/bench_video.py --method fast --style starry-night [--frames 240]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import huafeng
from huafeng.api import load_styles, style_refs
from huafeng.video import VideoSettings, probe, stylize_video

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "cutBunny.mp4"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default=str(CLIP))
    ap.add_argument("--method", default="fast")
    ap.add_argument("--style", default="starry-night")
    ap.add_argument("--weights", help="weights file for the method")
    ap.add_argument("--consistency", type=float, default=0.7)
    args = ap.parse_args()
    opts = {"weights": args.weights} if args.weights else {}
    st = huafeng.get_stylizer(args.method, **opts)
    styles, weights = style_refs(args.style) if args.method == "fast" else load_styles(args.style)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in (0.0, args.consistency):
            out = Path(tmp) / f"k{k}.mp4"
            r = stylize_video(args.clip, out, st, styles, weights, settings=VideoSettings(consistency=k), report=True)
            info = probe(out)
            r.update(consistency=k, audio=info["audio"], out_fps=info["fps"], out_frames=info["frames"])
            rows.append(r)
            print(r, file=sys.stderr, flush=True)
    src = probe(args.clip)
    print(f"\nclip: {Path(args.clip).name}, {src['width']}x{src['height']}, {src['frames']} frames at {src['fps']} fps, "
          f"audio: {src['audio']}; method {args.method}, style {args.style}\n")
    print("| consistency | throughput (fps, whole pipeline) | warping error | output frames / fps / audio |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['consistency']} | {r['fps']} | {r['warping_error']:.5f} | {r['out_frames']} / {r['out_fps']} / "
              f"{'kept' if r['audio'] else 'missing'} |")
    print(f"\nwarping error ratio (consistency / frame by frame): {rows[1]['warping_error'] / rows[0]['warping_error']:.3f}")


if __name__ == "__main__":
    main()
