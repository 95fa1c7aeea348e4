"""params.yaml -> frozen dataclasses: a bad key, type or range is an error naming file and key;
every section is required; the sweep studies and the conditioned section are parsed at load."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml

from mlgle.config import ConditionedConfig, Params, StudySpec, TrainConfig, load_params
from mlgle.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = [f.name for f in dataclasses.fields(Params) if f.name != "source"]
PAPER_STUDIES = ("fig10_k", "fig11_tfit", "fig17_batch", "history_m")


def test_repository_params_load_and_are_frozen():
    params = load_params(ROOT / "params.yaml")
    assert params.md.temperatures == (1.0, 1.25, 1.5)
    assert params.md.frame_dt == pytest.approx(0.2)  # Δt = steps_per_frame · timestep
    assert params.md.frames == params.md.production_steps // params.md.steps_per_frame + 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.train.history = 3  # type: ignore[misc]


def test_every_stochastic_section_has_a_seed():
    params = load_params(ROOT / "params.yaml")
    for section in ("md", "gle", "train", "generate", "evaluate", "sweep", "conditioned"):
        assert isinstance(getattr(params, section).seed, int), section


def test_dataclass_defaults_are_the_repository_params():
    """The defaults of every section are params.yaml's values; the studies are only in the file."""
    params, defaults = load_params(ROOT / "params.yaml"), Params()
    for section in SECTIONS:
        if section != "sweep":
            assert getattr(params, section) == getattr(defaults, section), section
    assert dataclasses.replace(params.sweep, studies={}) == defaults.sweep
    assert defaults.sweep.studies == {} and set(PAPER_STUDIES) <= set(params.sweep.studies)
    assert (TrainConfig().epochs, TrainConfig().patience) == (20, 5)


def test_paper_profile_overlays_base():
    params = load_params(ROOT / "params.yaml", ROOT / "params" / "paper.yaml")
    assert len(params.md.temperatures) == 11
    assert params.md.frames == 100_001  # T_sim = 1e5 Δt plus the frame at t = 0
    assert (params.train.history, params.train.t_train, params.train.t_val) == (128, 1000, 600)
    assert (params.modes.k, params.train.batch_size, params.generate.trajectories) == (12, 128, 300)
    assert params.train.lr == pytest.approx(1e-4)
    # keys the profile does not set are inherited from the base file
    assert params.md.density == load_params(ROOT / "params.yaml").md.density


def test_gle_points_default_to_one_half_and_full_history():
    params = load_params(ROOT / "params.yaml")
    m = params.train.history
    assert params.gle_points() == (1, m // 2, m)


def test_slow_modes_are_modes_k_or_what_a_store_holds(tiny_params, tmp_path):
    params = load_params(tiny_params(tmp_path, modes={"k": 4}))
    assert (params.slow_modes(12), params.slow_modes(4), params.slow_modes(2)) == (4, 4, 2)


@pytest.mark.parametrize(
    ("section", "key", "value", "fragment"),
    [
        ("md", "chains", -5, "'md.chains' must be a finite number > 0"),
        ("md", "chains", 2.5, "'md.chains' must be an integer"),
        ("md", "chains", "many", "'md.chains' must be an integer"),
        ("md", "density", math.inf, "'md.density' must be a finite number > 0, got inf"),
        ("md", "thermostat", "nose", "'md.thermostat' must be one of"),
        ("md", "temperatures", 1.0, "'md.temperatures' must be a list"),
        ("md", "temperatures", [1.0, -1.0], "'md.temperatures' must be a finite number > 0"),
        ("md", "steps_per_frame", 7, "multiple of md.steps_per_frame"),
        ("modes", "k", 0, "'modes.k' must be a finite number > 0"),
        ("train", "history", 1000, "train.history (m = 1000) must be < train.t_train"),
        ("train", "dropout", 1.5, "train.dropout must be in [0, 1)"),
        ("train", "batch_size", 0, "'train.batch_size' must be a finite number > 0"),
        ("train", "hidden", [], "train.hidden must list at least one"),
        ("train", "lr", True, "'train.lr' must be a number"),
        ("evaluate", "d_window", [500, 100], "evaluate.d_window must be [t1, t2]"),
        ("gle", "points", [1, 5000], "gle.points has lag 5000 >= gle.t_fit"),
        ("conditioned", "conditioning", "gru", "'conditioned.conditioning' must be one of"),
        ("conditioned", "leave_out", [1.25, math.inf], "'conditioned.leave_out' must be a finite"),
        ("conditioned", "epochs", 0, "'conditioned.epochs' must be a finite number > 0"),
    ],
)
def test_bad_values_name_file_and_key(tiny_params, tmp_path, section, key, value, fragment):
    path = tiny_params(tmp_path, **{section: {key: value}})
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_unknown_key_is_an_error(tiny_params, tmp_path):
    path = tiny_params(tmp_path, train={"histroy": 64})
    with pytest.raises(ConfigError, match=r"unknown key 'train.histroy'"):
        load_params(path)


def test_unknown_key_of_the_conditioned_section_names_file_and_key(tiny_params, tmp_path):
    path = tiny_params(tmp_path, conditioned={"colour": 1})
    with pytest.raises(ConfigError, match=rf"{path}: unknown key 'conditioned.colour'"):
        load_params(path)


def test_unknown_section_is_an_error(tiny_params, tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'trian'"):
        load_params(tiny_params(tmp_path, trian={"history": 64}))


@pytest.mark.parametrize("section", SECTIONS)
def test_every_section_is_required(tiny_params, tmp_path, section):
    path = tiny_params(tmp_path, drop=(section,))
    with pytest.raises(ConfigError, match=rf"{path}: section '{section}' is missing"):
        load_params(path)


def test_a_profile_needs_no_section_its_base_has(tiny_params, tmp_path):
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({"train": {"epochs": 3}}))
    with pytest.raises(ConfigError, match=rf"{profile}: section 'tracking' is missing"):
        load_params(profile)
    params = load_params(tiny_params(tmp_path), profile)
    assert params.train.epochs == 3 and params.train.history == 8


def test_error_names_the_profile_that_set_the_key(tmp_path):
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({"train": {"history": 5000}}))
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


def test_defaults_are_a_valid_configuration():
    Params().check()


# --- conditioned (mlgle loto) -----------------------------------------------------------------


def test_conditioned_section_is_typed_and_inherits_unset_keys(tiny_params, tmp_path):
    params = load_params(tiny_params(tmp_path, conditioned={"leave_out": []}))
    assert params.conditioned == ConditionedConfig(leave_out=())
    profile = tmp_path / "profile.yaml"
    section = {"conditioning": "concat", "leave_out": [1.5]}
    profile.write_text(yaml.safe_dump({"conditioned": section}))
    given = load_params(tiny_params(tmp_path), profile).conditioned
    assert (given.conditioning, given.leave_out, given.scales) == ("concat", (1.5,), "interpolate")
    config = params.conditioned.train_config(params.train)
    assert (config.epochs, config.patience, config.seed) == (
        params.conditioned.epochs, params.conditioned.patience, params.conditioned.seed
    )  # fmt: skip
    assert dataclasses.replace(config, epochs=0, patience=0, seed=0) == dataclasses.replace(
        params.train, epochs=0, patience=0, seed=0
    )  # every other training setting is the train section's


# --- sweep studies ----------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [(), ("params/paper.yaml",)])
def test_the_repository_studies_parse_and_grid_each_point_once(profile):
    params = load_params(ROOT / "params.yaml", *(ROOT / p for p in profile))
    assert set(PAPER_STUDIES) <= set(params.sweep.studies)
    for name, spec in params.sweep.studies.items():
        assert isinstance(spec, StudySpec) and spec.name == name and params.study(name) is spec
        points = spec.grid_points(1)
        assert len(points) == spec.grid_size == len({tuple(p.items()) for p in points})
        assert spec.grid_points(1) == points
        if name in PAPER_STUDIES:
            assert points != spec.grid_points(2)  # seeded order


def test_unknown_study_names_the_file_and_the_known_studies(tiny_params, tmp_path):
    params = load_params(tiny_params(tmp_path))
    with pytest.raises(ConfigError, match=r"no study 'nope' in sweep.studies \(known: fig10_k"):
        params.study("nope")


def test_sweep_study_needs_metric_and_direction(tiny_params, tmp_path):
    studies = {"broken": {"metric": "x", "space": {}}}
    path = tiny_params(tmp_path, sweep={"studies": studies})
    with pytest.raises(ConfigError, match=r"sweep.studies.broken.direction is missing") as info:
        load_params(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("study", "message"),
    [
        (
            {
                "metric": "x",
                "direction": "minimize",
                "space": {"k": {"type": "int", "low": 1, "high": 2}},
            },
            "sweep.studies.bad.metric",
        ),
        (
            {
                "metric": "best_val_nll",
                "direction": "minimize",
                "space": {"nope": {"type": "categorical", "choices": [1]}},
            },
            "sweep.studies.bad.space",
        ),
        (
            {
                "metric": "d_gle_rel_error",
                "direction": "minimize",
                "sampler": "grid",
                "space": {"k": {"type": "int", "low": 3, "high": 1}},
            },
            "sweep.studies.bad.space.k",
        ),
        (
            {
                "metric": "best_val_nll",
                "direction": "minimize",
                "space": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2}},
                "overrides": {"epoch": 1},
            },
            "sweep.studies.bad.overrides",
        ),
        (
            {
                "metric": "d_mlgle_rel_error",
                "direction": "minimize",
                "space": {"history": {"type": "categorical", "choices": [8]}},
            },
            "generate_frames",
        ),
        (
            {
                "metric": "d_gle_rel_error",
                "direction": "minimize",
                "space": {"k": {"type": "int", "low": 1, "high": 2}},
                "pruner": "hyperband",
            },
            "sweep.studies.bad.pruner",
        ),
    ],
)
def test_bad_study_definitions_name_the_key(tiny_params, tmp_path, study, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        StudySpec.parse("bad", study)
    path = tiny_params(tmp_path, sweep={"studies": {"bad": study}})
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")) as info:
        load_params(path)
    assert str(path) in str(info.value)


def test_a_float_grid_axis_needs_a_step():
    float_grid = {
        "metric": "best_val_nll",
        "direction": "minimize",
        "sampler": "grid",
        "space": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2}},
    }
    with pytest.raises(ConfigError, match="needs 'step'"):
        StudySpec.parse("bad", float_grid).grid_points(0)
