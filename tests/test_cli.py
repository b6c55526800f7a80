"""The command line, end to end: tiny stylizations, one-line errors, and inputs left untouched."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from huafeng.cli import main
from huafeng.image import read_image, save_image
from huafeng.styles import BUNDLED

from corpus import make_corpus

TINY = ["--method", "optimize", "--size", "32", "--steps", "2", "-q"]


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture()
def photo(tmp_path):
    torch.manual_seed(0)
    p = tmp_path / "photo.png"
    save_image(torch.rand(1, 3, 24, 40), p)
    return p


def test_stylize_tiny_end_to_end(photo, tmp_path, capsys):
    out = tmp_path / "out.jpg"
    assert main(["stylize", str(photo), "--style", "starry-night", "-o", str(out), *TINY]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    rgb, _ = read_image(out)
    assert rgb.shape == (1, 3, 19, 32)  # long side 32, aspect kept


def test_a_style_picture_without_a_network_uses_the_photoreal_method_by_default(photo, tmp_path):
    from huafeng.methods import DEFAULT_METHOD, auto_method

    painting = tmp_path / "painting.png"
    save_image(torch.rand(1, 3, 48, 48), painting)
    assert auto_method([str(painting)]) == DEFAULT_METHOD == "photoreal"
    out = tmp_path / "out.png"
    # --work-size is a setting of the photoreal method only: without --method it must be accepted
    assert main(["stylize", str(photo), "--style", str(painting), "-o", str(out), "--size", "32",
                 "--work-size", "64", "-q"]) == 0
    assert read_image(out)[0].shape == (1, 3, 19, 32)


def test_default_output_goes_next_to_the_input_and_never_over_a_file(photo, capsys):
    before = digest(photo)
    assert main(["stylize", str(photo), "--style", "udnie", *TINY]) == 0
    assert main(["stylize", str(photo), "--style", "udnie", *TINY]) == 0
    outs = capsys.readouterr().out.split()
    assert [Path(o).name for o in outs] == ["photo_stylized.png", "photo_stylized-1.png"]
    assert digest(photo) == before


def test_refuses_to_write_over_the_input(photo, capsys):
    before = digest(photo)
    assert main(["stylize", str(photo), "--style", "udnie", "-o", str(photo), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "overwrite" in err
    assert digest(photo) == before


def test_blend_mask_strength_and_colour_flags(photo, tmp_path, capsys):
    mask = tmp_path / "mask.png"
    m = torch.zeros(1, 3, 24, 40)
    m[..., 20:] = 1
    save_image(m, mask)
    out = tmp_path / "blend.png"
    args = ["stylize", str(photo), "--style", "great-wave:0.7", "--style", "the-scream:0.3", "--preserve-color",
            "--strength", "0.8", "--mask", str(mask), "--seed", "3", "-o", str(out), *TINY]
    assert main(args) == 0, capsys.readouterr().err
    assert out.exists()


def test_several_contents_into_a_folder(photo, tmp_path, capsys):
    second = tmp_path / "second.jpg"
    save_image(torch.rand(1, 3, 30, 20), second)
    outdir = tmp_path / "outs"
    assert main(["stylize", str(photo), str(second), "--style", "mondrian", "-o", str(outdir), *TINY]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["photo_stylized.png", "second_stylized.jpg"]


@pytest.mark.parametrize("args, needle", [
    (["--style", "no-such-style"], "starry-night"),   # lists the bundled styles
    (["--style", "udnie", "--method", "magic"], "optimize"),  # lists the methods
    (["--style", "udnie", "--backbone", "resnet"], "lite0"),
    (["--style", "udnie", "--strength", "2"], "strength"),
    (["--style", "udnie", "--preserve-color", "sepia"], "luminance"),
])
def test_bad_settings_are_one_line_errors(photo, capsys, args, needle):
    assert main(["stylize", str(photo), *TINY, *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_styles_lists_every_bundled_style(capsys):
    assert main(["styles"]) == 0
    out = capsys.readouterr().out
    assert len(BUNDLED) >= 8 and all(name in out for name in BUNDLED)


def test_every_corpus_file_gives_a_result_or_one_line_error(tmp_path, capsys):
    cases = make_corpus(tmp_path / "corpus")
    assert len(cases) >= 25
    outdir = tmp_path / "out"
    outdir.mkdir()
    for path, expected in cases:
        before = digest(path) if path.is_file() else None
        out = outdir / (path.stem + ".png")
        code = main(["stylize", str(path), "--style", "udnie", "-o", str(out), *TINY])
        cap = capsys.readouterr()
        assert code in (0, 2), path.name
        if expected == "ok":
            assert code == 0, (path.name, cap.err)
            assert read_image(out)[0].shape[1] == 3
        else:
            assert code == 2 and not out.exists(), path.name
            assert cap.err.count("\n") == 1 and cap.err.startswith("huafeng: error: "), (path.name, cap.err)
        assert "Traceback" not in cap.err
        if before is not None:
            assert digest(path) == before, path.name


def test_alpha_is_reattached(tmp_path, capsys):
    src = tmp_path / "logo.png"
    alpha = torch.zeros(1, 1, 20, 20)
    alpha[..., 5:15, 5:15] = 1
    save_image(torch.rand(1, 3, 20, 20), src, alpha=alpha)
    out = tmp_path / "logo_out.png"
    assert main(["stylize", str(src), "--style", "udnie", "-o", str(out), *TINY]) == 0
    _, a = read_image(out)
    assert a is not None and a.shape[-2:] == (32, 32)  # resized with the picture
    assert a[0, 0, 2, 2] == 0 and a[0, 0, 29, 29] == 0 and a[0, 0, 16, 16] == 1


def test_console_script_prints_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a picture")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    r = subprocess.run([sys.executable, "-m", "huafeng.cli", "stylize", str(bad), "--style", "udnie", *TINY],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "notes.jpg" in r.stderr and "Traceback" not in r.stderr
    assert bad.read_text() == "this is not a picture"


@pytest.mark.parametrize("args", [
    ["evaluate", "--content", "/no/such/folder", "--styles", "/no/such/folder"],
    ["train", "photoreal", "--content", "/no/such/folder", "--styles", "/no/such/folder"],
    ["bench", "--sizes", "big"],
    ["stylize", "parrots", "--style", "udnie", "--method", "photoreal", "--weights", "/no/such.safetensors"],
])
def test_other_commands_give_one_line_errors(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("huafeng: error: ")
