"""Bit widths written as text: one parser for the quantize verb and the walk."""

import pytest

from fastml_lab.exceptions import ConfigError
from fastml_lab.quantize import bits_argument, parse_bits, parse_layer_bits


def test_uniform_widths():
    assert parse_bits("6") == 6 and parse_bits(" 7 ") == 7
    assert parse_bits("6,8") == {"weights": 6, "activations": 8}
    assert parse_bits("6,8,12") == {"weights": 6, "activations": 8, "inputs": 12}


@pytest.mark.parametrize("text", ["", "6,x", "1,2,3,4", "-6"])
def test_bad_uniform_widths_name_the_form(text):
    with pytest.raises(ConfigError, match="N, W,A or W,A,I"):
        parse_bits(text)


def test_per_layer_widths():
    assert parse_layer_bits("") == {}
    assert parse_layer_bits("fc1=8/10; output = 8/12") == {"fc1": {"weights": 8, "activations": 10},
                                                           "output": {"weights": 8, "activations": 12}}


@pytest.mark.parametrize("text, named", [("fc1=8", "'fc1=8'"), ("=8/10", "'=8/10'"), ("fc1=8/10, fc1=6/6", "'fc1' twice")])
def test_bad_per_layer_widths_name_the_item(text, named):
    with pytest.raises(ConfigError, match=named):
        parse_layer_bits(text)


def test_bits_argument_puts_the_uniform_widths_under_default():
    layers = parse_layer_bits("fc1=8/10")
    assert bits_argument(parse_bits("6,8")) == {"weights": 6, "activations": 8}
    assert bits_argument(parse_bits("6,8"), layers) == {**layers, "default": {"weights": 6, "activations": 8}}
    assert bits_argument(parse_bits("6,8,12"), layers) == {**layers, "default": {"weights": 6, "activations": 8},
                                                           "inputs": 12}
    assert bits_argument(6, layers) == {**layers, "default": 6}
    assert bits_argument(None, layers) == layers and bits_argument(None) is None
