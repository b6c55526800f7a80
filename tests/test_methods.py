"""The one place for the "auto" method choice and the method-name check (CLI, API, service, video, batch)."""
import pytest
import torch

from huafeng.errors import SettingsError
from huafeng.methods import DEFAULT_METHOD, METHODS, choose_method
from huafeng.methods.fast import gallery


def test_auto_picks_the_trained_network_else_the_default():
    trained = next(iter(gallery()), None)
    if trained is None:
        pytest.skip("no trained network is shipped")
    assert choose_method("auto", [trained]) == "fast"
    assert choose_method(None, [f"{trained}:0.5"]) == "fast"
    assert choose_method("auto", [trained, "painting.jpg"]) == DEFAULT_METHOD
    assert choose_method("auto", [torch.rand(1, 3, 8, 8)]) == DEFAULT_METHOD  # a picture has no network
    assert choose_method("auto", [], model="monet") == "gan"
    assert choose_method("auto", []) == DEFAULT_METHOD


@pytest.mark.parametrize("method", list(METHODS))
def test_a_named_method_is_kept(method):
    assert choose_method(method, ["anything.jpg"]) == method


def test_unknown_and_unsupported_methods_are_one_line_errors():
    with pytest.raises(SettingsError) as e:
        choose_method("../optimize")
    assert "choose one of" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SettingsError) as e:
        choose_method("optimize", allowed=("fast", "photoreal"), what="video")
    assert str(e.value).startswith("video works with the fast, photoreal methods")
