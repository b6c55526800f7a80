"""Run the held-out evaluation of ``huafeng train style`` on finished run folders (e.g. trained with
``--no-eval`` or by ``tools/gpu_sweep.py`` on a GPU machine) and print one table row per run.

    python tools/eval_style_runs.py RUN_DIR [RUN_DIR ...] [--content DIR] [--refs DIR]

Each run's ``log.json`` gives its settings; the held-out photos are taken from ``--content`` (the
shared photos by default: the same sorted list, so the same photos as in training). ``--refs DIR``
shares the optimisation method's cached results between runs of the same painting
(``DIR/PAINTING-STEM/``); they depend on the photo and the painting only. Writes ``eval.json`` and
``eval.png`` into each run folder, as ``huafeng train style`` does.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from huafeng.image import load_image  # noqa: E402
from huafeng.methods.fast import load_net  # noqa: E402
from huafeng.styles import resolve_style  # noqa: E402
from huafeng.train.common import list_images  # noqa: E402
from huafeng.train.style import StyleTrainSettings, split_photos  # noqa: E402
from huafeng.train.style_eval import evaluate_style  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--content", default=str(Path(__file__).resolve().parents[2] / "shared/data/content"))
    ap.add_argument("--refs", help="shared cache of the optimisation results, one folder per painting")
    a = ap.parse_args()
    held_all = list_images(a.content)
    print("| run | steps | style ratio | SSIM ratio | fast style | optimize style | passes |")
    print("|---|---|---|---|---|---|---|")
    for run in map(Path, a.runs):
        log = json.loads((run / "log.json").read_text())
        keep = {f.name for f in fields(StyleTrainSettings)}
        st = {k: tuple(v) if isinstance(v, list) else v for k, v in log["settings"].items() if k in keep}
        painting_path = Path(st["painting"])
        if not painting_path.exists():  # trained elsewhere: the bundled painting of the same name
            painting_path = resolve_style(painting_path.stem)
        st.update(painting=str(painting_path), content_dir=a.content, out=str(run))
        s = StyleTrainSettings(**st)
        _, held = split_photos(held_all, s.holdout)
        if a.refs:
            cache = Path(a.refs) / painting_path.stem
            cache.mkdir(parents=True, exist_ok=True)
            link = run / "eval"
            if not link.exists():
                link.symlink_to(cache.resolve(), target_is_directory=True)
        name = log.get("name") or painting_path.stem
        net = load_net(str(run / f"{name}.safetensors"))
        ev = evaluate_style(net, load_image(painting_path), held, run, s)
        print(f"| {run} | {log['log'][-1]['step'] if log.get('log') else '?'} | {ev['style_ratio']:.2f} | "
              f"{ev['ssim_ratio']:.2f} | {ev['mean']['fast_style']:.3f} | {ev['mean']['optimize_style']:.3f} | "
              f"{ev['passes']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
