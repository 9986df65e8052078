import dataclasses
from typing import Literal, Optional

import pytest

from importlib.metadata import EntryPoint

import rayneas.config
from rayneas.config import ENTRY_POINT_GROUP, ConfigError, apply_overrides, from_dict, load_run, spec, to_dict
from rayneas.tenas import search


@dataclasses.dataclass
class Inner:
    num_actors: int = spec(0, ge=0)
    fraction: float = spec(0.5, gt=0, le=1)


@dataclasses.dataclass
class Outer:
    seed: int = 0
    name: str = "x"
    mode: Literal["paper", "reference"] = "paper"
    widths: list[int] = dataclasses.field(default_factory=lambda: [1, 2])
    root: Optional[str] = None
    inner: Inner = dataclasses.field(default_factory=Inner)


def test_valid_nested_config_round_trips():
    cfg = from_dict(Outer, {"seed": 3, "mode": "reference", "widths": [4, 8], "inner": {"fraction": 1}})
    assert cfg.inner.fraction == 1.0 and cfg.widths == [4, 8]
    assert from_dict(Outer, to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    "data, message",
    [
        ({"sed": 1}, "<root>: unknown key 'sed'; allowed keys are inner, mode, name, root, seed, widths"),
        ({"inner": {"num_actor": 2}}, "inner: unknown key 'num_actor'; allowed keys are fraction, num_actors"),
        ({"seed": "one"}, "seed: expected an integer, got 'one'"),
        ({"seed": True}, "seed: expected an integer, got True"),
        ({"mode": "fast"}, "mode: 'fast' is not allowed; choose one of 'paper', 'reference'"),
        ({"inner": {"num_actors": -1}}, "inner.num_actors: -1 is out of range; it must be >= 0"),
        ({"inner": {"fraction": 1.5}}, "inner.fraction: 1.5 is out of range; it must be <= 1"),
        ({"widths": [1, "a"]}, "widths[1]: expected an integer, got 'a'"),
        ({"inner": 3}, "inner: expected a mapping of keys, got 3"),
    ],
)
def test_bad_values_name_key_value_and_allowed(data, message):
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, data)
    assert message in str(err.value)


def test_overrides_parse_yaml_values_and_reject_bad_form():
    data = apply_overrides({"inner": {"num_actors": 1}}, ["seed=7", "inner.fraction=0.25", "widths=[3, 4]"])
    assert data == {"seed": 7, "inner": {"num_actors": 1, "fraction": 0.25}, "widths": [3, 4]}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["seed"])
    with pytest.raises(ConfigError, match="seed is not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_load_run_checks_kind_and_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("kind: tenas\nseed: 2\nscoring:\n  num_actors: 1\n")
    kind, cfg = load_run(path, ["seed=5"])
    assert kind is search.RUN_KIND and cfg.seed == 5 and cfg.scoring.num_actors == 1
    path.write_text("kind: nope\n")
    with pytest.raises(ConfigError, match="kind: 'nope' is not a known run kind; choose one of"):
        load_run(path)
    path.write_text("seed: 2\n")
    with pytest.raises(ConfigError, match="no top-level 'kind' key, so it is not a run config; .*known kinds: .*"):
        load_run(path)
    path.write_text("kind: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_run(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_run(tmp_path / "missing.yaml")


def test_run_kinds_come_from_entry_points_and_a_wrong_one_is_named(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("kind: broken\n")
    broken = EntryPoint(name="broken", value="rayneas.config:spec", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(rayneas.config, "_run_kinds", lambda: {"broken": broken})
    with pytest.raises(ConfigError, match="entry point 'rayneas.config:spec' for kind 'broken' is not a RunKind"):
        load_run(path)
