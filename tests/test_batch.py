"""Batch over a tree: good files give outputs, bad ones a manifest line; nothing overwritten; kill + resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from huafeng.batch import BatchSettings, read_manifest, run_batch
from huafeng.image import save_image

TINY = {"size": 32, "steps": 2}


def make_tree(root: Path, n_good=4):
    torch.manual_seed(0)
    (root / "a" / "b").mkdir(parents=True)
    goods = []
    for i in range(n_good):
        p = root / ("a" if i % 2 else "a/b") / f"photo{i}.png"
        save_image(torch.rand(1, 3, 24, 32), p)
        goods.append(p)
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (root / "notes.png").write_text("not an image")
    return goods


def test_batch_tree_with_good_and_bad_files(tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    goods = make_tree(src)
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    c = run_batch(BatchSettings(str(src), str(dst), ("udnie",), settings=TINY))
    assert c["done"] == 4 and c["failed"] == 2 and c["skipped"] == 0
    for g in goods:
        assert (dst / g.relative_to(src)).exists()
    m = read_manifest(dst)
    failed = {Path(k).name: v for k, v in m.items() if v["status"] == "failed"}
    assert set(failed) == {"broken.jpg", "notes.png"} and all("\n" not in v["error"] for v in failed.values())
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before   # inputs untouched
    # a rerun skips everything done and keeps the outputs as they are
    stamps = {p: p.stat().st_mtime_ns for p in dst.rglob("*.png")}
    again = run_batch(BatchSettings(str(src), str(dst), ("udnie",), settings=TINY))
    assert again["done"] == 0 and again["skipped"] == 4
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_two_workers_give_the_same_outputs(tmp_path):
    src = tmp_path / "in"
    make_tree(src)
    run_batch(BatchSettings(str(src), str(tmp_path / "one"), ("udnie",), settings=TINY))
    run_batch(BatchSettings(str(src), str(tmp_path / "two"), ("udnie",), workers=2, settings=TINY))
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.png"))
    two = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.png"))
    assert one == two and len(one) == 4


def test_killed_batch_resumes_without_redoing_work(tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    make_tree(src, n_good=8)
    cmd = [sys.executable, "-m", "huafeng.cli", "batch", str(src), str(dst), "--style", "udnie", "-m", "optimize",
           "--size", "40", "--steps", "12", "-q"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until some, but not all, items are done
        done = [r for r in read_manifest(dst).values() if r["status"] == "done"] if dst.exists() else []
        if len(done) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = {k for k, r in read_manifest(dst).items() if r["status"] == "done"}
    assert 2 <= len(first) < 8
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2  # the two bad files are reported as failed
    lines = [json.loads(x) for x in (dst / "manifest.jsonl").read_text().splitlines() if x.strip().startswith("{")]
    done_twice = [x["input"] for x in lines if x["status"] == "done" and x["input"] in first]
    assert len(done_twice) == len(first)  # nothing done before was done again
    assert sum(1 for v in read_manifest(dst).values() if v["status"] == "done") == 8
