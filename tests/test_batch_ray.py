"""``huafeng batch --ray``: the same tree on a local Ray gives the same files, byte for byte, as a local run."""
import hashlib
import os

import numpy as np
import pytest
import torch
from PIL import Image

from huafeng.batch import BatchSettings, read_manifest, run_batch
from huafeng.batch_ray import _ship, write_atomic
from huafeng.cli import main
from huafeng.image import save_image
from huafeng.provenance import read_provenance
from test_batch import TINY, make_tree

ray = pytest.importorskip("ray")


def test_local_ray_gives_identical_outputs_and_the_same_manifest(tmp_path, capsys, monkeypatch):
    import huafeng.batch_ray as br

    class Crashy(br.Stylizer):  # a worker process that dies on one file (think: the OOM killer)
        def run(self, name, *args):
            if name.startswith("crash"):
                os._exit(1)
            return super().run(name, *args)

    monkeypatch.setattr(br, "Stylizer", Crashy)
    src = tmp_path / "in"
    goods = make_tree(src)
    save_image(torch.rand(1, 3, 24, 32), src / "crash.png")
    painting = tmp_path / "painting.png"   # a file only the driver has: shipped to the actors as bytes
    torch.manual_seed(1)
    save_image(torch.rand(1, 3, 40, 40), painting)
    # Two local workers and two Ray actors both run one torch thread each, so the arithmetic is the same.
    local = run_batch(BatchSettings(str(src), str(tmp_path / "local"), (str(painting),), workers=2, settings=TINY))
    rc = main(["batch", str(src), str(tmp_path / "ray"), "--style", str(painting), "--method", "optimize",
               "--ray", "--workers", "2", "--size", "32", "--steps", "2", "-q"])
    assert rc == 2 and local["done"] == 5   # the two bad files fail on both
    assert "4 done, 3 failed, 0 skipped" in capsys.readouterr().out  # and the file that killed its worker
    for g in goods:
        a, b = tmp_path / "local" / g.relative_to(src), tmp_path / "ray" / g.relative_to(src)
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
        assert a.read_bytes() == b.read_bytes()
        assert read_provenance(b).styles[0]["sha256"] == hashlib.sha256(painting.read_bytes()).hexdigest()
    one, two = read_manifest(tmp_path / "local"), read_manifest(tmp_path / "ray")
    assert set(one) == set(two)
    crash = two.pop(str((src / "crash.png").resolve()))
    assert crash["status"] == "failed" and "stopped while stylizing crash.png" in crash["error"]
    for k in two:
        assert (one[k]["status"], one[k].get("error")) == (two[k]["status"], two[k].get("error"))
        assert two[k]["output"].startswith(str(tmp_path / "ray"))
    assert not ray.is_initialized()   # the local Ray started for the call is shut down
    assert not list((tmp_path / "ray").rglob("*.tmp"))
    # a rerun has nothing left to do but the failed files (done ones are skipped)
    (src / "a" / "broken.jpg").unlink()
    (src / "notes.png").unlink()
    monkeypatch.setattr(br, "Stylizer", br.Stylizer.__mro__[1])  # no more crashes
    again = run_batch(BatchSettings(str(src), str(tmp_path / "ray"), (str(painting),), workers=2, ray="local",
                                    settings=TINY))
    assert again["done"] == 1 and again["skipped"] == 4 and again["failed"] == 0


def test_driver_only_files_are_shipped_and_names_are_not(tmp_path):
    painting = tmp_path / "wave.jpg"
    painting.write_bytes(b"jpeg bytes")
    weights = tmp_path / "dec.safetensors"
    weights.write_bytes(b"weights")
    styles, settings, shipped = _ship((f"{painting}:0.7", "udnie"), {"weights": str(weights), "size": 64})
    assert styles == ("@0/wave.jpg:0.7", "udnie") and settings == {"weights": "@1/dec.safetensors", "size": 64}
    assert shipped == {"0/wave.jpg": b"jpeg bytes", "1/dec.safetensors": b"weights"}


def test_write_atomic_replaces_whole_files_only(tmp_path):
    out = tmp_path / "a" / "b.png"
    write_atomic(out, b"one")
    write_atomic(out, b"two")
    assert out.read_bytes() == b"two" and [p.name for p in out.parent.iterdir()] == ["b.png"]


def test_an_unreachable_cluster_is_one_line(tmp_path):
    src = tmp_path / "in"
    make_tree(src, n_good=1)
    from huafeng.errors import SettingsError

    with pytest.raises(SettingsError, match="cannot reach the Ray cluster"):
        run_batch(BatchSettings(str(src), str(tmp_path / "out"), ("udnie",), ray="127.0.0.1:1", settings=TINY))
