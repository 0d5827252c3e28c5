"""The env-info registry (``qlearn.envs.info``): success criteria, action names and grid maps by env id."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from qlearn.envs import make_env
from qlearn.envs.info import (
    DEFAULT_INFO,
    ENV_INFO,
    FROZEN_LAKE_GRID,
    EnvInfo,
    GridInfo,
    base_name,
    env_info,
    grid_map,
    register_env_info,
)
from qlearn.envs.make import success_array, success_of
from qlearn.errors import QlearnError


def prefix_rule(env_id: str, ret, term, trunc):
    """The rule success_of used before the registry (env-name prefixes), kept here as the reference."""
    base = env_id.split("/")[-1]
    term, trunc, ret = np.asarray(term, dtype=bool), np.asarray(trunc, dtype=bool), np.asarray(ret)
    if base.startswith(("FrozenLake", "CliffWalking", "Taxi")):
        return ret > 0
    if base.startswith(("MountainCar", "Acrobot")):
        return term
    if base.startswith("CartPole"):
        return trunc & ~term
    return term & (ret > 0)


@pytest.mark.parametrize("env_id", sorted(gym.registry) + ["ALE/Pong-v5", "ALE/Breakout-v5", "Corridor-v0"])
def test_success_matches_the_old_prefix_rule_on_every_registered_env(env_id):
    rng = np.random.default_rng(0)
    ret = rng.normal(size=64)
    term, trunc = rng.random(64) < 0.5, rng.random(64) < 0.5
    assert success_array(env_id, ret, term, trunc).tolist() == prefix_rule(env_id, ret, term, trunc).tolist()
    assert [success_of(env_id, r, t, u) for r, t, u in zip(ret[:8], term[:8], trunc[:8])] == \
        prefix_rule(env_id, ret[:8], term[:8], trunc[:8]).tolist()


@pytest.mark.parametrize("env_id, family", [
    ("FrozenLake-v1", "FrozenLake"), ("FrozenLake8x8-v1", "FrozenLake8x8"), ("ALE/Pong-v5", "Pong"),
    ("phys2d/CartPole-v1", "CartPole"), ("tests.fixtures.corridor:Corridor-v0", "Corridor"), ("Plain", "Plain"),
    ("pkg.mod:ns/Thing-v12", "Thing"),
])
def test_base_name_drops_module_namespace_and_version(env_id, family):
    assert base_name(env_id) == family


def test_known_families_and_the_default():
    assert env_info("FrozenLake-v1") is env_info("FrozenLake8x8-v1") is ENV_INFO["FrozenLake"]
    assert env_info("FrozenLake-v1").return_is_success and not env_info("Taxi-v4").return_is_success
    assert env_info("phys2d/CartPole-v1").success == "survived"
    assert env_info("MountainCar-v0").action_names == ("push left", "no push", "push right")
    assert env_info("LunarLander-v3") is not DEFAULT_INFO and env_info("LunarLander-v3").success == DEFAULT_INFO.success
    assert env_info("my.pkg:MyEnv-v0") is DEFAULT_INFO and env_info("ALE/Pong-v5") is DEFAULT_INFO
    assert DEFAULT_INFO.success == "positive_termination" and DEFAULT_INFO.grid is FROZEN_LAKE_GRID


def test_env_info_of_an_env_is_that_of_its_id():
    env = make_env("CartPole-v1")
    assert env_info(env) is env_info("CartPole-v1")
    bare = gym.envs.classic_control.CartPoleEnv()  # built without the registry: no spec, so the default
    assert env_info(bare) is DEFAULT_INFO


def test_an_exact_id_entry_wins_over_its_family(monkeypatch):
    special = EnvInfo(success="terminated")
    monkeypatch.setitem(ENV_INFO, "FrozenLake8x8-v1", special)
    assert env_info("FrozenLake8x8-v1") is special and env_info("FrozenLake-v1") is ENV_INFO["FrozenLake"]
    assert success_of("FrozenLake8x8-v1", 0.0, True, False) and not success_of("FrozenLake-v1", 0.0, True, False)


def test_register_env_info_adds_one_entry(monkeypatch):
    monkeypatch.setattr("qlearn.envs.info.ENV_INFO", dict(ENV_INFO))
    register_env_info("Corridor", EnvInfo(success="terminated", action_names=("left", "right")))
    assert success_of("tests.fixtures.corridor:Corridor-v0", -3.0, True, False)
    assert env_info("Corridor-v0").names_for(2) == ("left", "right")
    with pytest.raises(QlearnError):
        register_env_info("Corridor", {"success": "terminated"})


def test_an_unknown_success_kind_is_a_one_line_error():
    with pytest.raises(QlearnError, match="success kind 'sometimes'"):
        EnvInfo(success="sometimes")


def test_action_names_for_table_columns():
    assert env_info("FrozenLake-v1").names_for(4) == ("left", "down", "right", "up")
    assert env_info("CliffWalking-v1").names_for(4) == ("up", "right", "down", "left")
    assert len(env_info("Taxi-v4").names_for(6)) == 6
    assert DEFAULT_INFO.names_for(4) == ("left", "down", "right", "up")  # a grid world's moves, as before
    assert DEFAULT_INFO.names_for(3) is None and env_info("CartPole-v1").names_for(3) is None


def test_grid_map_only_where_the_desc_has_one_tile_per_state():
    lake = grid_map(make_env("FrozenLake-v1"))
    assert lake.shape == (4, 4) and lake[0, 0] == "S" and lake[3, 3] == "G" and lake.dtype.kind == "U"
    assert grid_map(make_env("FrozenLake8x8-v1")).shape == (8, 8)
    for env_id in ("Taxi-v4", "CliffWalking-v1", "CartPole-v1", "MountainCar-v0"):
        assert grid_map(make_env(env_id)) is None, env_id


def test_a_users_grid_env_with_a_desc_is_read_like_frozen_lake():
    if "UserLake-v0" not in gym.registry:
        gym.register("UserLake-v0", entry_point="gymnasium.envs.toy_text.frozen_lake:FrozenLakeEnv",
                     kwargs={"desc": ["SFH", "FFG"], "is_slippery": False}, max_episode_steps=20)
    env = make_env("UserLake-v0")
    assert env_info(env) is DEFAULT_INFO
    np.testing.assert_array_equal(grid_map(env), [["S", "F", "H"], ["F", "F", "G"]])


def test_grid_draws_policies_and_the_player():
    desc = np.array([[b"S", b"F"], [b"H", b"G"]])
    policy = np.array([2, 1, 0, 0])  # right, down, (hole), (goal)
    assert FROZEN_LAKE_GRID.draw(desc, policy) == ["→ ↓", "H G"]
    assert FROZEN_LAKE_GRID.draw(desc, policy, player=1) == ["→ P", "H G"]
    assert FROZEN_LAKE_GRID.draw(desc) == ["S F", "H G"]
    other = GridInfo(moves=((-1, 0), (0, 1), (1, 0), (0, -1)))  # CliffWalking's order: up, right, down, left
    assert other.draw(desc, np.array([1, 2, 0, 0])) == ["→ ↓", "H G"]
    assert other.move_names == ("up", "right", "down", "left") and other.arrows == ("↑", "→", "↓", "←")


def test_grid_moves_and_targets():
    desc = np.zeros((3, 4), dtype=str)
    assert FROZEN_LAKE_GRID.action_of_step((0, 1)) == 2 and FROZEN_LAKE_GRID.action_of_step((1, 1)) is None
    assert FROZEN_LAKE_GRID.target(desc, 5, 0) == 4 and FROZEN_LAKE_GRID.target(desc, 5, 3) == 1
    assert FROZEN_LAKE_GRID.target(desc, 0, 0) == 0 and FROZEN_LAKE_GRID.target(desc, 11, 1) == 11  # edges


def test_parse_map():
    assert FROZEN_LAKE_GRID.parse_map(" SFF; FHF ,FFG,") == ["SFF", "FHF", "FFG"]
    with pytest.raises(QlearnError, match="using S, F, H, G"):
        FROZEN_LAKE_GRID.parse_map("SFX,FFG")
    with pytest.raises(QlearnError, match="using S, F, H, G"):
        FROZEN_LAKE_GRID.parse_map("SFF,FG")
    with pytest.raises(QlearnError, match="exactly one S"):
        FROZEN_LAKE_GRID.parse_map("SFS,FFG")
    with pytest.raises(QlearnError, match="at least one G"):
        FROZEN_LAKE_GRID.parse_map("SFF,FFF")


def test_bad_map_name_gets_the_families_hint():
    with pytest.raises(QlearnError, match=r"FrozenLake maps: 4x4, 8x8"):
        make_env("FrozenLake-v1", map_name="5x5")
