"""Video benchmark: fps and temporal warping error, frame by frame against consistency, same run.

    python benchmarks/bench_video.py --method fast --style starry-night [--strip docs/video_strip.jpg]

``--strip`` also writes a contact sheet of six consecutive frames: the input, frame by frame, with
consistency, and the change from the previous frame (x4) for both (flicker shows as bright speckle).
"""
from __future__ import annotations

import argparse
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
    ap.add_argument("--strip", help="write a strip of frames (input / frame by frame / consistent) here")
    ap.add_argument("--first", type=int, default=120, help="first frame of the strip (default: 120)")
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
            if args.strip:
                r["frames_kept"] = _frames(out, args.first - 1, 7)
        if args.strip:
            _strip(args, rows)
    src = probe(args.clip)
    print(f"\nclip: {Path(args.clip).name}, {src['width']}x{src['height']}, {src['frames']} frames at {src['fps']} fps, "
          f"audio: {src['audio']}; method {args.method}, style {args.style}\n")
    print("| consistency | throughput (fps, whole pipeline) | warping error | output frames / fps / audio |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['consistency']} | {r['fps']} | {r['warping_error']:.5f} | {r['out_frames']} / {r['out_fps']} / "
              f"{'kept' if r['audio'] else 'missing'} |")
    print(f"\nwarping error ratio (consistency / frame by frame): {rows[1]['warping_error'] / rows[0]['warping_error']:.3f}")


def _frames(path, first: int, n: int) -> list:
    from huafeng.video import read_frames

    return [f for i, f in enumerate(read_frames(path)) if first <= i < first + n]


def _strip(args, rows) -> None:
    from huafeng.sheet import contact_sheet

    src = _frames(args.clip, args.first - 1, 7)
    a, b = rows[0]["frames_kept"], rows[1]["frames_kept"]
    diff = lambda fr: [((fr[i] - fr[i - 1]).abs() * 4).clamp(0, 1) for i in range(1, len(fr))]  # noqa: E731
    grid = [src[1:], a[1:], b[1:], diff(a), diff(b)]
    labels = ["input", "frame by frame", f"consistency {args.consistency}", "change, frame by frame (x4)",
              "change, consistency (x4)"]
    contact_sheet(grid, row_labels=labels, col_labels=[f"frame {args.first + i}" for i in range(6)], cell=256,
                  title=f"{Path(args.clip).name}: {args.method} {args.style}").save(args.strip, quality=88)
    print(f"strip: {args.strip}", file=sys.stderr)


if __name__ == "__main__":
    main()
