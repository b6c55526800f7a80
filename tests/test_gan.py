"""CycleGAN: the networks' shapes, the losses, the trainer (cycle loss falls, resumes), bad input,
the gan method and CLI, and the shipped model (when one is shipped)."""
import json
import random

import pytest
import torch

from huafeng.cli import main
from huafeng.controls import Controls
from huafeng.errors import HuafengError, SettingsError
from huafeng.image import read_image, save_image
from huafeng.losses import cycle_loss, identity_loss, lsgan_loss
from huafeng.methods import METHODS, get_stylizer
from huafeng.methods.gan import (GanSettings, GanStylizer, Generator, GeneratorConfig, PatchDiscriminator, gallery,
                                 generator_metadata, load_generator)
from huafeng.train.common import load_checkpoint
from huafeng.train.gan import GanTrainSettings, HistoryPool, _lr, domain_files, train_gan
from huafeng.weights import save_file

TINY = GeneratorConfig(channels=(4, 8, 8), res_blocks=1)
TINY_RESIDUAL = GeneratorConfig(channels=(4, 8, 8), res_blocks=1, residual=True)


def test_generator_is_fully_convolutional_any_size_in_same_size_out():
    torch.manual_seed(0)
    for cfg in (TINY, TINY_RESIDUAL):
        net = Generator(cfg).eval()
        for h, w in [(64, 64), (37, 53), (5, 9), (1, 1), (130, 7)]:
            with torch.no_grad():
                y = net(torch.rand(2, 3, h, w))
            assert y.shape == (2, 3, h, w) and torch.isfinite(y).all() and 0 <= y.min() and y.max() <= 1


def test_identity_start_returns_the_photo():
    x = torch.rand(1, 3, 24, 40) * 0.9 + 0.05
    with torch.no_grad():
        assert torch.allclose(Generator(TINY_RESIDUAL)(x), x, atol=1e-5)


def test_default_generator_is_cpu_sized_and_patchgan_sees_70px():
    g = Generator()
    assert sum(p.numel() for p in g.parameters()) < 500_000  # under 1 MB in float16
    d = PatchDiscriminator()
    assert d(torch.rand(1, 3, 128, 128)).shape == (1, 1, 14, 14)
    # receptive field (norms aside, which see the whole picture): one score depends on a 70x70 patch
    d.net = torch.nn.Sequential(*[m for m in d.net if not isinstance(m, torch.nn.InstanceNorm2d)])
    x = torch.rand(1, 3, 128, 128, requires_grad=True)
    d(x)[0, 0, 5, 5].backward()  # an interior score (no zero padding in its field)
    ys, xs = torch.nonzero(x.grad.abs().sum(1)[0], as_tuple=True)
    assert ys.max() - ys.min() + 1 == xs.max() - xs.min() + 1 == 70


def test_losses_by_hand():
    s = torch.tensor([[[[0.5, 1.0], [0.0, 2.0]]]])
    assert lsgan_loss(s, True).item() == pytest.approx((0.25 + 0 + 1 + 1) / 4)
    assert lsgan_loss(s, False).item() == pytest.approx((0.25 + 1 + 0 + 4) / 4)
    a, b = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert cycle_loss(b, a).item() == pytest.approx(0.5) and identity_loss(a, b).item() == pytest.approx(0.5)


def test_history_pool_fills_then_mixes_old_fakes():
    pool = HistoryPool(2, random.Random(0))
    first = [torch.full((1, 1, 1, 1), float(i)) for i in range(2)]
    assert [pool.query(f).item() for f in first] == [0.0, 1.0]  # filling: returned as given
    seen = {pool.query(torch.full((1, 1, 1, 1), float(i))).item() for i in range(2, 40)}
    assert seen & {0.0, 1.0} and seen - {0.0, 1.0}  # old fakes come back, new ones pass too
    assert HistoryPool(0, random.Random(0)).query(first[1]) is first[1]


def test_learning_rate_is_constant_then_linear_to_zero():
    s = GanTrainSettings(a=("a",), b=("b",), minutes=10, steps=100)
    assert _lr(s, 0, 0) == _lr(s, 0, 50) == s.lr
    assert _lr(s, 0, 75) == pytest.approx(s.lr / 2) and _lr(s, 0, 100) == 0
    assert _lr(s, 450, 0) == pytest.approx(s.lr * 0.5)  # the time budget counts as well


@pytest.fixture()
def data(tmp_path):
    torch.manual_seed(0)
    a, b = tmp_path / "photos", tmp_path / "paintings"
    a.mkdir()
    b.mkdir()
    for i in range(3):  # "photos": smooth gradients; "painting": one larger striped picture
        ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64) * torch.rand(1, 3, 1, 1)
        save_image((ramp + 0.2 * torch.rand(1, 3, 48, 64)).clamp(0, 1), a / f"p{i}.png")
    stripes = torch.zeros(1, 3, 96, 96)
    stripes[:, 0, :, ::6] = 1
    stripes[:, 2, ::6, :] = 0.8
    save_image(stripes, b / "painting.png")
    return a, b


def small(a, b, out, **kw):
    base = dict(a=(str(a),), b=(str(b),), out=str(out), steps=30, crop=32, a_side=64, b_side=96, lr=1e-3,
                channels=(8, 16, 16), res_blocks=2, residual=False, d_channels=8, checkpoint_every=15,
                sample_every=15, minutes=5)
    return GanTrainSettings(**{**base, **kw})


def test_tiny_cyclegan_lowers_cycle_loss_saves_and_resumes(data, tmp_path):
    a, b = data
    run = tmp_path / "run"
    seen = []
    s = small(a, b, run)
    summary = train_gan(s, progress=seen.append)
    rows = json.loads((run / "log.json").read_text())["log"]
    assert summary["steps"] == 30 and len(rows) == 30 and seen[-1].step == 30
    first, last = sum(r["cycle"] for r in rows[:5]), sum(r["cycle"] for r in rows[-5:])
    assert last < 0.8 * first, (first, last)
    assert all(k in rows[-1] for k in ("G", "D", "cycle", "identity", "lr"))
    for f in ("curves.png", "samples.png", "samples/step_000000.png", "samples/step_000030.png", "a2b.safetensors"):
        assert (run / f).stat().st_size > 500, f
    # the checkpoint holds all four networks, both optimisers and the step
    nets = {k.split(".")[0] for k in load_checkpoint(run / "checkpoint.safetensors")[0]}
    assert nets == {"G_AB", "G_BA", "D_A", "D_B"}
    opt = {n: torch.optim.Adam([torch.zeros(1)]) for n in ("G", "D")}
    with pytest.raises(Exception):  # the saved states belong to the real parameter lists
        load_checkpoint(run / "checkpoint.safetensors", opt)
    # "interrupted": a rerun with a larger budget continues from step 30
    more = train_gan(small(a, b, run, steps=34))
    assert more["steps"] == 34
    rows = json.loads((run / "log.json").read_text())["log"]
    assert [r["step"] for r in rows] == list(range(1, 35))
    # the generator works through the gan method, any size, finite
    out = GanStylizer(GanSettings(model=summary["weights"])).stylize(torch.rand(1, 3, 41, 50))
    assert out.shape == (1, 3, 41, 50) and torch.isfinite(out).all()


def test_resuming_with_other_network_sizes_is_a_one_line_error(data, tmp_path):
    a, b = data
    train_gan(small(a, b, tmp_path / "run", steps=2, checkpoint_every=1))
    with pytest.raises(SettingsError, match="other network sizes"):
        train_gan(small(a, b, tmp_path / "run", steps=4, channels=(8, 16, 32)))


def test_empty_or_missing_domains_are_one_line_errors(data, tmp_path):
    a, b = data
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    cases = [(empty, b, "domain A"), (a, empty, "domain B"), (tmp_path / "missing", b, "domain A"),
             (a, str(tmp_path / "*.jpg"), "domain B")]
    for da, db, side in cases:
        with pytest.raises(SettingsError, match=side) as e:
            train_gan(small(da, db, tmp_path / "never"))
        assert "\n" not in str(e.value)
    with pytest.raises(SettingsError):
        GanTrainSettings(a=(), b=(str(b),))
    assert not (tmp_path / "never").exists()  # nothing is written before the data is checked


def test_domain_b_takes_files_and_globs(data, tmp_path):
    a, b = data
    assert domain_files((str(b / "painting.png"),), "B") == [b / "painting.png"]
    assert len(domain_files((str(a / "p*.png"), str(a)), "A")) == 3  # deduplicated


def save_tiny(path, seed=0):
    torch.manual_seed(seed)
    net = Generator(TINY)
    save_file(net.state_dict(), path, generator_metadata(TINY, steps=0))
    return net


def test_a_saved_model_runs_through_method_gan_with_the_controls(tmp_path):
    path = tmp_path / "m.safetensors"
    save_tiny(path)
    assert "gan" in METHODS
    x = torch.rand(1, 3, 30, 44)
    st = get_stylizer("gan", model=str(path))
    y = st.stylize(x, [])
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert torch.allclose(st.stylize(x, [], controls=Controls(strength=0.0)), x)
    kept = st.stylize(x, [], controls=Controls(preserve_color="luminance"))
    assert torch.isfinite(kept).all() and kept.shape == x.shape
    # a style *image* (as the evaluation grid passes) is ignored: the style is the model's domain
    assert torch.allclose(st.stylize(x, [torch.rand(1, 3, 16, 16)]), y)
    # model names given as styles (no --model): blended by weight
    two = GanStylizer(GanSettings()).stylize(x, [str(path), str(path)], [0.3, 0.7])
    assert torch.allclose(two, y, atol=1e-5)


def test_tiles_match_the_untiled_result(tmp_path):
    path = tmp_path / "m.safetensors"
    save_tiny(path)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 10, 14), size=(120, 170), mode="bicubic").clamp(0, 1)
    tiled = GanStylizer(GanSettings(model=str(path), tile=96, overlap=40)).stylize(x)
    from huafeng.image import resize_long_side

    net, _ = load_generator(str(path))
    with torch.no_grad():
        net.norm_mode("record")
        net(resize_long_side(x, 96))
        net.norm_mode("fixed")
        whole = net(x)
        net.norm_mode("normal")
    d = (whole - tiled).abs()
    assert d.mean() < 0.01 and d.max() < 0.1, (d.mean().item(), d.max().item())


def test_a_model_installed_after_the_stylizer_was_made_is_used(tmp_path, monkeypatch):
    from huafeng.errors import WeightsError
    from huafeng.methods import gan

    monkeypatch.setattr(gan, "WEIGHTS_DIR", tmp_path)  # nothing installed
    load_generator.cache_clear()  # (it caches the first shipped model under None)
    try:
        st = GanStylizer(GanSettings())
        assert not st.ready
        x = torch.rand(1, 3, 20, 24)
        with pytest.raises(WeightsError, match="no GAN model is installed"):
            st.stylize(x)
        save_tiny(tmp_path / "gan-late.safetensors")  # installed since: used (was an UnboundLocalError)
        y = st.stylize(x)
        assert y.shape == x.shape and torch.allclose(y, GanStylizer(GanSettings(model="late")).stylize(x))
    finally:
        load_generator.cache_clear()  # no other test gets this folder's model for None


def test_bad_models_are_one_line_errors(tmp_path):
    with pytest.raises(HuafengError, match="no GAN model"):
        GanStylizer(GanSettings(model="no-such-model"))
    bad = tmp_path / "fast.safetensors"
    save_file({"w": torch.zeros(2)}, bad, {"arch": "something-else"})
    with pytest.raises(HuafengError, match="not a huafeng GAN generator"):
        load_generator(str(bad))
    with pytest.raises(SettingsError):
        GanSettings(tile=10)


def test_cli_trains_then_stylizes_with_the_model(data, tmp_path, capsys):
    a, b = data
    run = tmp_path / "cli-run"
    assert main(["train", "gan", "--a", str(a), "--b", str(b / "*.png"), "--steps", "3", "--crop", "32",
                 "--out", str(run), "--threads", "1", "-q"]) == 0
    model = run / "a2b.safetensors"
    assert str(model) in capsys.readouterr().out
    out = tmp_path / "result.png"
    assert main(["stylize", str(a / "p0.png"), "--model", str(model), "-o", str(out), "-q"]) == 0
    img, _ = read_image(out)
    assert img.shape == (1, 3, 48, 64) and torch.isfinite(img).all()
    assert main(["stylize", str(a / "p0.png"), "-o", str(tmp_path / "x.png"), "-q"]) == 2  # no style, no model
    assert "no style given" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "gan", "--a", str(a), "--b", str(empty), "-q"]) == 2
    err = capsys.readouterr().err
    assert "domain B" in err and err.count("\n") == 1


SHIPPED = sorted(gallery()) or [pytest.param(None, marks=pytest.mark.skip("no GAN model is shipped"))]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_and_gives_finite_output(name):
    from huafeng.image import load_image
    from huafeng.styles import sample_photo

    net, meta = load_generator(name)
    assert json.loads(meta["generator"])
    photo = load_image(sample_photo("parrots"), size=256)
    out = GanStylizer(GanSettings(model=name)).stylize(photo)
    assert out.shape == photo.shape and torch.isfinite(out).all()
    assert (out - photo).abs().mean() > 0.01  # it does something


def test_evaluate_includes_gan_with_an_honest_note(tmp_path):
    from huafeng.evaluate import EvaluateSettings, evaluate

    torch.manual_seed(0)
    photos, paintings = tmp_path / "photos", tmp_path / "paintings"
    photos.mkdir()
    paintings.mkdir()
    for i in range(2):
        save_image(torch.rand(1, 3, 24, 32), photos / f"photo{i}.png")
        save_image(torch.rand(1, 3, 32, 32) * (0.3 + 0.5 * i), paintings / f"style{i}.png")
    model = tmp_path / "m.safetensors"
    save_tiny(model)
    out = tmp_path / "report"
    r = evaluate(EvaluateSettings(content_dir=str(photos), style_dir=str(paintings), out=str(out), methods=("gan",),
                                  photos=2, styles=2, size=32, overrides={"gan": {"model": str(model)}}))
    gan = r["summary"]["gan"]
    assert gan["cells"] == 4 and gan["gram_distance"] > 0 and gan["diversity"] < 1e-6
    assert "ignores the painting" in gan["note"] and "ignores the painting" in (out / "index.html").read_text()


def test_style_training_with_an_adversarial_term_logs_it_and_resumes(data, tmp_path):
    from huafeng.train.style import StyleTrainSettings, train_style

    a, b = data
    for i in range(3, 5):  # the style trainer holds one photo in four out
        save_image(torch.rand(1, 3, 48, 64), a / f"p{i}.png")
    s = StyleTrainSettings(painting=str(b / "painting.png"), content_dir=str(a), out=str(tmp_path / "st"), steps=6,
                           batch=2, crop=32, checkpoint_every=3, minutes=5, holdout=0, adversarial=5.0)
    train_style(s)
    rows = json.loads((tmp_path / "st" / "log.json").read_text())["log"]
    assert len(rows) == 6 and all("adv" in r and "critic" in r for r in rows)
    assert load_checkpoint(tmp_path / "st" / "critic.safetensors")[1] == 6
    assert train_style(StyleTrainSettings(**{**s.__dict__, "steps": 8}))["steps"] == 8
    assert load_checkpoint(tmp_path / "st" / "critic.safetensors")[1] == 8
    with pytest.raises(SettingsError):
        StyleTrainSettings(painting="p", content_dir="c", adversarial=-1)
