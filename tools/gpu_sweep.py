"""Train many per-style networks at once on one GPU machine (the device lent to some sessions).

Each job is ``huafeng.train.style.train_style`` in its own process (its own CUDA context), the same
trainer and settings a CPU run uses, with the held-out evaluation skipped (it runs later, on the CPU,
with ``tools/eval_style_runs.py``). Jobs run ``--workers`` at a time in the order given; none starts
after ``--launch-by`` seconds and any still running at ``--kill-at`` seconds is stopped and left out.
Finished runs (weights + log.json + curves.png) are packed into one .tar.gz per config under ``--out``.

    PYTHONPATH=. python3 tools/gpu_sweep.py --content DATA/content --styles huafeng/assets/styles \\
        --configs '{"sw500": {"style_weight": 500}}' --steps 3000 --out $OUT
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

WORKER = """
import json, sys, torch
torch.set_num_threads(1)
from huafeng.train.style import StyleTrainSettings, train_style
s = StyleTrainSettings(**json.loads(sys.argv[1]))
r = train_style(s)
print(json.dumps({k: r[k] for k in ("steps", "minutes", "s_per_step")}))
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--content", required=True)
    ap.add_argument("--styles", required=True, help="folder of paintings, or a comma list of files")
    ap.add_argument("--configs", required=True, help="JSON {name: StyleTrainSettings overrides}, in priority order")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default="/tmp/sweep")
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--launch-by", type=float, default=300)
    ap.add_argument("--kill-at", type=float, default=420)
    a = ap.parse_args()
    styles = (sorted(Path(a.styles).iterdir()) if Path(a.styles).is_dir()
              else [Path(p) for p in a.styles.split(",")])
    configs = json.loads(a.configs)
    jobs = [(c, p) for c in configs for p in styles]  # config-major: every painting gets the first config first
    work, out = Path(a.work), Path(a.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(Path.cwd()), "OMP_NUM_THREADS": "1"}
    t0, running, done, failed = time.time(), [], [], []
    while jobs or running:
        for job in [j for j in running if j[2].poll() is not None]:
            running.remove(job)
            (done if job[2].returncode == 0 else failed).append(job[:2])
            print(f"[{time.time() - t0:6.0f}s] {'done' if job[2].returncode == 0 else 'FAILED'} {job[0]}/{job[1]}",
                  flush=True)
        elapsed = time.time() - t0
        if elapsed > a.kill_at:
            for c, name, proc in running:
                proc.kill()
                print(f"killed {c}/{name}", flush=True)
            break
        while jobs and len(running) < a.workers and elapsed < a.launch_by:
            c, painting = jobs.pop(0)
            name = painting.stem
            run = work / c / f"style-{name}"
            settings = {"painting": str(painting), "content_dir": a.content, "out": str(run), "name": name,
                        "steps": a.steps, "minutes": 60.0, "evaluate": False, "checkpoint_every": 500,
                        **configs[c]}
            run.mkdir(parents=True, exist_ok=True)
            log = open(run / "stdout.txt", "w")
            proc = subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(settings)], env=env,
                                    stdout=log, stderr=subprocess.STDOUT)
            running.append((c, name, proc))
        if elapsed >= a.launch_by:
            jobs.clear()  # none starts late; the loop ends when the running ones do
        time.sleep(1)
    for c in configs:
        with tarfile.open(out / f"{c}.tar.gz", "w:gz") as tar:
            for cc, name in done:
                if cc == c:
                    run = work / c / f"style-{name}"
                    for f in (f"{name}.safetensors", "log.json", "curves.png", "stdout.txt"):
                        if (run / f).exists():
                            tar.add(run / f, arcname=f"{c}/style-{name}/{f}")
    for c, name in failed:
        print(f"--- {c}/{name} stdout tail:\n" + (work / c / f"style-{name}" / "stdout.txt").read_text()[-1500:])
    print(json.dumps({"done": len(done), "failed": len(failed), "seconds": round(time.time() - t0)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
