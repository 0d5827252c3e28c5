"""Config dataclasses: validation, --set parsing, overrides, and the JSON round trip."""

from __future__ import annotations

import json

import pytest

from qlearn.config import (
    DQNConfig,
    TabularConfig,
    TrainConfig,
    from_dict,
    parse_sets,
    to_dict,
    with_overrides,
)
from qlearn.errors import QlearnError


@pytest.mark.parametrize("cls, kwargs, field", [
    (DQNConfig, {"lr": 0}, "lr"),
    (DQNConfig, {"lr": -1e-3}, "lr"),
    (DQNConfig, {"gamma": 1.5}, "gamma"),
    (DQNConfig, {"gamma": -0.1}, "gamma"),
    (DQNConfig, {"gamma": float("nan")}, "gamma"),
    (DQNConfig, {"batch_size": 0}, "batch_size"),
    (DQNConfig, {"batch_size": 64, "buffer_size": 63}, "buffer_size"),
    (DQNConfig, {"loss": "l1"}, "loss"),
    (DQNConfig, {"tau": 0}, "tau"),
    (DQNConfig, {"tau": 1.5}, "tau"),
    (DQNConfig, {"hidden": (64, 0)}, "hidden"),
    (DQNConfig, {"train_freq": 0}, "train_freq"),
    (DQNConfig, {"learning_starts": -1}, "learning_starts"),
    (DQNConfig, {"lr_end": 1.0}, "lr_end"),  # above lr
    (DQNConfig, {"epsilon_start": 1.1}, "epsilon_start"),
    (DQNConfig, {"epsilon_decay_steps": 0}, "epsilon_decay_steps"),
    (DQNConfig, {"max_grad_norm": -1}, "max_grad_norm"),
    (DQNConfig, {"encoding": "binary"}, "encoding"),
    (TabularConfig, {"alpha": 0}, "alpha"),
    (TabularConfig, {"alpha": 1.5}, "alpha"),
    (TabularConfig, {"alpha": 0.1, "alpha_end": 0.2}, "alpha_end"),
    (TabularConfig, {"gamma": 1.5}, "gamma"),
    (TabularConfig, {"epsilon_end": -0.5}, "epsilon_end"),
    (TrainConfig, {"steps": 0}, "steps"),
    (TrainConfig, {"eval_every": 0}, "eval_every"),
    (TrainConfig, {"eval_episodes": 0}, "eval_episodes"),
    (TrainConfig, {"seed": -1}, "seed"),
])
def test_validation_rejects_bad_values_naming_the_field(cls, kwargs, field):
    with pytest.raises(QlearnError) as info:
        cls(**kwargs)
    assert f"{field}=" in str(info.value)


@pytest.mark.parametrize("cls, kwargs", [
    (DQNConfig, {"gamma": 0.0}), (DQNConfig, {"gamma": 1.0}), (DQNConfig, {"tau": 1.0}),
    (DQNConfig, {"batch_size": 32, "buffer_size": 32}), (DQNConfig, {"max_grad_norm": 0}),
    (DQNConfig, {"lr_end": 0.0}), (DQNConfig, {"loss": "huber"}), (TabularConfig, {"alpha": 1.0}),
    (TrainConfig, {"steps": 1}),
])
def test_edge_values_are_accepted(cls, kwargs):
    cfg = cls(**kwargs)
    for key, value in kwargs.items():
        assert getattr(cfg, key) == value


def test_parse_sets_types():
    agent, train = parse_sets(
        ["lr=1e-3", "learning_starts=1e3", "double=false", "hidden=128,128", "loss=huber", "gamma=0.9",
         "steps=20000", "keep_best=no", "lr_end=none"],
        DQNConfig, TrainConfig)
    assert agent == {"lr": 1e-3, "learning_starts": 1000, "double": False, "hidden": (128, 128),
                     "loss": "huber", "gamma": 0.9, "lr_end": None}
    assert type(agent["learning_starts"]) is int
    assert type(agent["lr"]) is float
    assert train == {"steps": 20000, "keep_best": False}
    assert type(train["steps"]) is int
    # The parsed dicts build valid configs.
    cfg = DQNConfig(**agent)
    assert cfg.hidden == (128, 128) and cfg.double is False


@pytest.mark.parametrize("word, value", [("true", True), ("Yes", True), ("on", True), ("1", True),
                                         ("FALSE", False), ("no", False), ("off", False), ("0", False)])
def test_parse_sets_bool_words(word, value):
    (agent,) = parse_sets([f"double={word}"], DQNConfig)
    assert agent["double"] is value


def test_parse_sets_single_width_and_x_separator():
    (agent,) = parse_sets(["hidden=32"], DQNConfig)
    assert agent["hidden"] == (32,)
    (agent,) = parse_sets(["hidden=64x32"], DQNConfig)
    assert agent["hidden"] == (64, 32)
    (agent,) = parse_sets(["hidden="], DQNConfig)  # no hidden layer: a linear Q-function
    assert agent["hidden"] == ()


def test_parse_sets_key_goes_to_first_class_declaring_it():
    agent, train = parse_sets(["gamma=0.5", "seed=3"], TabularConfig, TrainConfig)
    assert agent == {"gamma": 0.5} and train == {"seed": 3}


def test_parse_sets_unknown_key_suggests_close_name():
    with pytest.raises(QlearnError) as info:
        parse_sets(["lrr=0.1"], DQNConfig, TrainConfig)
    msg = str(info.value)
    assert "'lrr'" in msg
    assert "did you mean" in msg and "lr" in msg.split("did you mean")[1]


@pytest.mark.parametrize("item, needle", [
    ("lr=abc", "lr"),
    ("batch_size=1.5", "batch_size"),
    ("batch_size=ten", "batch_size"),
    ("double=maybe", "double"),
    ("hidden=a,b", "hidden"),
    ("loss=l1", "loss"),
])
def test_parse_sets_rejects_bad_values(item, needle):
    with pytest.raises(QlearnError) as info:
        parse_sets([item], DQNConfig)
    assert needle in str(info.value)


def test_parse_sets_requires_equals():
    with pytest.raises(QlearnError, match="key=value"):
        parse_sets(["lr"], DQNConfig)


def test_with_overrides_replaces_and_validates():
    base = DQNConfig()
    cfg = with_overrides(base, {"lr": 1e-3}, gamma=0.9)
    assert (cfg.lr, cfg.gamma) == (1e-3, 0.9)
    assert base.lr == 3e-4  # the original is untouched (frozen)
    with pytest.raises(QlearnError, match="lr"):
        with_overrides(base, {"lrr": 1e-3})
    with pytest.raises(QlearnError, match="gamma"):
        with_overrides(base, gamma=2.0)


@pytest.mark.parametrize("cfg", [
    DQNConfig(hidden=(128, 32), lr=1e-3, lr_end=1e-4, double=False, loss="huber", encoding="scalar"),
    DQNConfig(),
    TabularConfig(alpha=0.5, alpha_end=0.05, gamma=0.95),
    TrainConfig(steps=1234, keep_best=False, seed=7),
])
def test_to_dict_from_dict_round_trip_through_json(cfg):
    data = to_dict(cfg)
    assert isinstance(data, dict)
    text = json.dumps(data)
    back = from_dict(type(cfg), json.loads(text))
    assert back == cfg
    if isinstance(cfg, DQNConfig):
        assert data["hidden"] == list(cfg.hidden)
        assert isinstance(back.hidden, tuple)


def test_from_dict_rejects_unknown_and_invalid():
    data = to_dict(DQNConfig())
    with pytest.raises(QlearnError, match="gama"):
        from_dict(DQNConfig, {**data, "gama": 0.9})
    with pytest.raises(QlearnError, match="gamma"):
        from_dict(DQNConfig, {**data, "gamma": 3.0})
