"""Data-parallel training: 2 gloo processes follow the 1-process loss curve (same global batch) and resume."""
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from huafeng.image import save_image
from huafeng.train.common import load_checkpoint
from huafeng.train.distributed import Dist, launch
from huafeng.train.photoreal import PhotorealTrainSettings, train_photoreal

ROOT = Path(__file__).resolve().parents[1]
WORKER = """
import json, sys, torch
torch.set_num_threads(1)
from huafeng.train.photoreal import PhotorealTrainSettings, train_photoreal
from huafeng.train.gan import GanTrainSettings, train_gan
from huafeng.train.style import StyleTrainSettings, train_style
cls, fn = {"photoreal": (PhotorealTrainSettings, train_photoreal), "style": (StyleTrainSettings, train_style),
           "gan": (GanTrainSettings, train_gan)}[sys.argv[1]]
fn(cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(sys.argv[2]).items()}))
"""


def data(tmp_path):
    torch.manual_seed(0)
    photos, paintings = tmp_path / "photos", tmp_path / "paintings"
    photos.mkdir()
    paintings.mkdir()
    for i in range(6):
        yy, xx = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 48), indexing="ij")
        save_image(torch.stack([yy, xx, (yy + xx) / 2 * (i / 5)])[None] * 0.7 + 0.3 * torch.rand(1, 3, 48, 48),
                   photos / f"p{i}.png")
    save_image(torch.rand(1, 3, 48, 48), paintings / "s.png")
    return photos, paintings


def torchrun(tmp_path, s, trainer: str = "photoreal") -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), trainer, json.dumps(asdict(s))]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if r.returncode != 0 and "terminate called without an active exception" in r.stderr:
        # A C++ abort seen once in CI at a gloo process's exit (rank 1, no Python error). The run is
        # resumable, so the same command is run once more; a second failure fails the test.
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


def curve(run: Path, key: str) -> list[float]:
    return [r[key] for r in json.loads((run / "log.json").read_text())["log"]]


def test_two_gloo_processes_match_one_and_resume(tmp_path):
    photos, paintings = data(tmp_path)
    base = dict(content_dir=str(photos), style_dir=str(paintings), levels=("L1",), batch=4, crop=32, lr=3e-3,
                eval_photos=2, eval_every=1000, checkpoint_every=1000)
    torch.set_num_threads(1)
    one = PhotorealTrainSettings(out=str(tmp_path / "one"), steps=4, **base)
    two = PhotorealTrainSettings(out=str(tmp_path / "two"), steps=4, **base)
    train_photoreal(one)
    torchrun(tmp_path, two)
    for key in ("L1_pix", "L1_feat"):
        a, b = curve(tmp_path / "one", key), curve(tmp_path / "two", key)
        assert len(a) == len(b) == 4 and a[0] != a[-1]   # the loss moves, and both runs move alike
        assert all(abs(x - y) <= 0.01 * abs(x) for x, y in zip(a, b)), (key, a, b)
    # rank 0 wrote one checkpoint; both runs resume from step 4 and continue to step 6 alike
    assert load_checkpoint(tmp_path / "two" / "checkpoint.safetensors")[1] == 4
    train_photoreal(PhotorealTrainSettings(**{**asdict(one), "levels": ("L1",), "held_out_styles": (), "steps": 6}))
    torchrun(tmp_path, PhotorealTrainSettings(**{**asdict(two), "levels": ("L1",), "held_out_styles": (), "steps": 6}))
    rows = json.loads((tmp_path / "two" / "log.json").read_text())["log"]
    assert [r["step"] for r in rows] == list(range(1, 7))
    a, b = curve(tmp_path / "one", "L1_pix"), curve(tmp_path / "two", "L1_pix")
    assert all(abs(x - y) <= 0.01 * abs(x) for x, y in zip(a, b)), (a, b)
    ma, mb = (load_checkpoint(tmp_path / r / "checkpoint.safetensors")[0] for r in ("one", "two"))
    assert all(torch.allclose(ma[k], mb[k], rtol=1e-3, atol=1e-4) for k in ma)


def test_shard_splits_the_global_batch_evenly():
    x = torch.arange(8.0)[:, None]
    assert Dist(rank=1, world=2).shard(x).flatten().tolist() == [4, 5, 6, 7]
    assert Dist().shard(x).shape == (8, 1)
    from huafeng.errors import SettingsError

    with pytest.raises(SettingsError, match="multiple of the number of processes"):
        Dist(rank=0, world=3).shard(x)
    with pytest.raises(SettingsError):
        launch(["photoreal"], 0)


@pytest.mark.slow
def test_cli_nproc_launches_torchrun(tmp_path):
    photos, paintings = data(tmp_path)
    for i in range(6, 12):  # the CLI holds 8 photos out for its check: give it a few to train on
        save_image(torch.rand(1, 3, 48, 48), photos / f"p{i}.png")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "huafeng.cli", "train", "photoreal", "--content", str(photos), "--styles",
           str(paintings), "--out", str(tmp_path / "run"), "--steps", "2", "--batch", "2", "--crop", "32",
           "--nproc", "2", "-q"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("2 steps") == 1   # rank 0 alone reports
    assert load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")[1] == 2


@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["style", "gan"])
def test_style_and_gan_trainers_match_one_process_too(tmp_path, trainer):
    from huafeng.train.gan import GanTrainSettings, train_gan
    from huafeng.train.style import StyleTrainSettings, train_style

    photos, paintings = data(tmp_path)
    if trainer == "style":
        make, train, keys = StyleTrainSettings, train_style, ("content", "style", "tv", "total", "adv", "critic")
        base = dict(painting=str(paintings / "s.png"), content_dir=str(photos), minutes=60.0, steps=3, batch=4,
                    crop=32, holdout=0, checkpoint_every=1000, adversarial=0.5)  # with the PatchGAN critic
    else:  # the pools (50 fakes) are not full yet: the runs are the same computation
        make, train, keys = GanTrainSettings, train_gan, ("G", "D", "cycle", "identity")
        base = dict(a=(str(photos),), b=(str(paintings),), minutes=60.0, steps=3, batch=2, crop=32,
                    channels=(8, 16, 16), res_blocks=1, d_channels=8, sample_every=1000, samples=2)
    torch.set_num_threads(1)
    train(make(out=str(tmp_path / "one"), **base))
    torchrun(tmp_path, make(out=str(tmp_path / "two"), **base), trainer)
    for key in keys:
        a, b = curve(tmp_path / "one", key), curve(tmp_path / "two", key)
        assert len(a) == len(b) == 3
        assert all(abs(x - y) <= 0.01 * abs(x) + 1e-6 for x, y in zip(a, b)), (key, a, b)
    assert load_checkpoint(tmp_path / "two" / "checkpoint.safetensors")[1] == 3
