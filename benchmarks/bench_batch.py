"""Batch throughput: images/s over N photos with 1 and 2 local workers and on a local Ray.

    python benchmarks/bench_batch.py [--photos 200] [--size 512] [--method photoreal] [--style udnie]
                                     [--ray-address ADDRESS] [-o bench_batch.json]

The photos are the first N (sorted) under ../shared/data/content (or --content), linked into a temporary
tree. Every run starts from an empty output folder, and its wall time counts everything a user waits
for: worker start-up, model loading and (for Ray) starting the local Ray. "steady" is the rate between
the first and the last finished file, which is what a long batch tends to.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

from huafeng.batch import BatchSettings, run_batch
from huafeng.image import IMAGE_EXTENSIONS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def link_photos(content: Path, n: int, into: Path) -> int:
    files = sorted(p for p in content.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())[:n]
    for i, p in enumerate(files):
        os.symlink(p.resolve(), into / f"{i:04d}_{p.parent.name}_{p.name}")
    return len(files)


def steady_rate(out: Path) -> float | None:
    """Files per second between the first and the last output written (start-up excluded)."""
    times = sorted(p.stat().st_mtime for p in out.rglob("*") if p.is_file() and p.name != "manifest.jsonl")
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 2 and times[-1] > times[0] else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--content", default=str(SHARED / "content"))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--method", default="photoreal")
    ap.add_argument("--style", default="udnie")
    ap.add_argument("--runs", default="1,2,ray", help="comma-separated: worker counts, and ray (local, 2 actors)")
    ap.add_argument("--ray-address", default="local", help="with ray in --runs: local, or a cluster's address")
    ap.add_argument("-o", "--output", help="write the rows as JSON here")
    args = ap.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="huafeng-bench-batch-") as tmp:
        src = Path(tmp, "in")
        src.mkdir()
        n = link_photos(Path(args.content), args.photos, src)
        for run in args.runs.split(","):
            ray = args.ray_address if run == "ray" else None
            workers = 2 if run == "ray" else int(run)
            out = Path(tmp, f"out-{run}")
            t0 = time.time()
            c = run_batch(BatchSettings(str(src), str(out), (args.style,), method=args.method, workers=workers,
                                        ray=ray, settings={"size": args.size}))
            wall = time.time() - t0
            steady = steady_rate(out)
            rows.append({"run": f"Ray ({args.ray_address}, {workers} actors)" if ray else f"{workers} local worker(s)",
                         "photos": n, "done": c["done"], "failed": c["failed"], "wall_s": round(wall, 1),
                         "images_per_s": round(n / wall, 3), "steady_images_per_s": round(steady, 3) if steady else None})
            print(json.dumps(rows[-1]), flush=True)
    meta = {"date": datetime.now().isoformat(timespec="minutes"), "method": args.method, "size": args.size,
            "style": args.style, "cpus": os.cpu_count(), "load_avg_1m_at_end": round(os.getloadavg()[0], 2)}
    print(f"\n{n} photos, {args.method} at {args.size} px, style {args.style}, {meta['cpus']} CPUs "
          f"(load average at the end: {meta['load_avg_1m_at_end']})\n")
    print("| run | wall (s) | images/s | steady images/s | failed |\n|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['run']} | {r['wall_s']} | {r['images_per_s']} | {r['steady_images_per_s']} | {r['failed']} |")
    if args.output:
        Path(args.output).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
