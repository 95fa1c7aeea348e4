"""params.yaml -> frozen dataclasses: a bad key, type or range is an error naming file and key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from mlgle.config import ConfigError, Params, load_params

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, data: dict, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def base() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_repository_params_load_and_are_frozen():
    params = load_params(ROOT / "params.yaml")
    assert params.md.temperatures == (1.0, 1.25, 1.5)
    assert params.md.frame_dt == pytest.approx(1.0)
    assert params.md.frames == params.md.production_steps // params.md.steps_per_frame + 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.train.history = 3  # type: ignore[misc]


def test_every_stochastic_section_has_a_seed():
    params = load_params(ROOT / "params.yaml")
    for section in ("md", "gle", "train", "generate", "evaluate", "sweep"):
        assert isinstance(getattr(params, section).seed, int), section


def test_paper_profile_overlays_base():
    params = load_params(ROOT / "params.yaml", ROOT / "params" / "paper.yaml")
    assert len(params.md.temperatures) == 11
    assert params.md.frames == 100_001  # T_sim = 1e5 Δt plus the frame at t = 0
    assert (params.train.history, params.train.t_train, params.train.t_val) == (128, 1000, 600)
    assert (params.gle.k, params.train.batch_size, params.generate.trajectories) == (12, 128, 300)
    assert params.train.lr == pytest.approx(1e-4)
    # keys the profile does not set are inherited from the base file
    assert params.md.density == load_params(ROOT / "params.yaml").md.density


def test_gle_points_default_to_one_half_and_full_history():
    params = load_params(ROOT / "params.yaml")
    m = params.train.history
    assert params.gle_points() == (1, m // 2, m)


@pytest.mark.parametrize(
    ("section", "key", "value", "fragment"),
    [
        ("md", "chains", -5, "'md.chains' must be > 0"),
        ("md", "chains", 2.5, "'md.chains' must be an integer"),
        ("md", "chains", "many", "'md.chains' must be an integer"),
        ("md", "thermostat", "nose", "'md.thermostat' must be one of"),
        ("md", "temperatures", 1.0, "'md.temperatures' must be a list"),
        ("md", "temperatures", [1.0, -1.0], "'md.temperatures' must be > 0"),
        ("md", "steps_per_frame", 7, "multiple of md.steps_per_frame"),
        ("train", "history", 1000, "train.history (m = 1000) must be < train.t_train"),
        ("train", "dropout", 1.5, "train.dropout must be in [0, 1)"),
        ("train", "batch_size", 0, "'train.batch_size' must be > 0"),
        ("train", "hidden", [], "train.hidden must list at least one"),
        ("train", "lr", True, "'train.lr' must be a number"),
        ("evaluate", "d_window", [500, 100], "evaluate.d_window must be [t1, t2]"),
        ("gle", "points", [1, 5000], "gle.points has lag 5000 >= gle.t_fit"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path, section, key, value, fragment):
    data = base()
    data[section][key] = value
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_unknown_key_is_an_error(tmp_path):
    data = base()
    data["train"]["histroy"] = 64
    path = write(tmp_path, data)
    with pytest.raises(ConfigError, match=r"unknown key 'train.histroy'"):
        load_params(path)


def test_unknown_section_is_an_error(tmp_path):
    data = base()
    data["trian"] = {"history": 64}
    with pytest.raises(ConfigError, match=r"unknown key 'trian'"):
        load_params(write(tmp_path, data))


def test_error_names_the_profile_that_set_the_key(tmp_path):
    profile = write(tmp_path, {"train": {"history": 5000}}, name="profile.yaml")
    with pytest.raises(ConfigError) as info:
        load_params(ROOT / "params.yaml", profile)
    assert "train.history" in str(info.value)


def test_missing_file_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read params file"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("md: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_sweep_study_needs_metric_and_direction(tmp_path):
    data = base()
    data["sweep"]["studies"]["broken"] = {"metric": "x", "space": {}}
    with pytest.raises(ConfigError, match=r"sweep.studies.broken.direction is missing"):
        load_params(write(tmp_path, data))


def test_defaults_are_a_valid_configuration():
    Params().check()
