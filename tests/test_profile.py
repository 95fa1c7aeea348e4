"""A params profile as DVC overrides (mlgle.profile): applying the ``-S`` arguments the way
``dvc exp run`` does gives the same parameters as mlgle's own overlay of the profile."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from dvc.utils.hydra import apply_overrides

from mlgle.config import load_params
from mlgle.profile import hydra_value, main, overrides

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted(p.name for p in (ROOT / "params").glob("*.yaml"))


def as_dict(params) -> dict:
    data = params.to_dict()
    data.pop("source", None)
    return data


@pytest.mark.parametrize("name", PROFILES)
def test_dvc_overrides_give_the_same_params_as_the_overlay(tmp_path, name):
    profile = ROOT / "params" / name
    experiment = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", experiment)
    apply_overrides(experiment, overrides(yaml.safe_load(profile.read_text())))
    assert as_dict(load_params(experiment)) == as_dict(load_params(ROOT / "params.yaml", profile))


def test_the_paper_profile_replaces_the_studies_instead_of_merging(tmp_path):
    experiment = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", experiment)
    apply_overrides(experiment, overrides(yaml.safe_load((ROOT / "params/paper.yaml").read_text())))
    batch = yaml.safe_load(experiment.read_text())["sweep"]["studies"]["fig17_batch"]
    assert batch["overrides"] == {"epochs": 100, "patience": 0}  # not the default's t_train 400


@pytest.mark.parametrize(
    "value",
    ["it's a \\ path", "end \\", "q \\'", "1.0", "", 0.0001, 1e-12, -3, True, None, [1, [2.5]], {}],
)
def test_hydra_values_parse_back_to_themselves(value):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    (parsed,) = OverridesParser.create().parse_overrides([f"key={hydra_value(value)}"])
    assert parsed.value() == value


def test_a_missing_profile_is_one_line_and_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "nope.yaml"), "--print"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.yaml" in err[0]


@pytest.mark.parametrize("name", [None, *PROFILES])
def test_every_gle_study_fits_above_the_largest_regression_lag(name):
    """A T_fit at or below the largest lag of Eq. 27 cannot be fitted: the sweep stops with an
    error at that trial (make smoke-paper found T_fit = 100 beside m = 128 in the paper's
    Fig. 11 space)."""
    params = load_params(ROOT / "params.yaml", *([ROOT / "params" / name] if name else []))
    largest = max(params.gle_points())
    for study in params.sweep.studies.values():
        if study.objective != "gle":
            continue
        for dim in study.space:
            if dim.name == "t_fit":
                low = min(dim.choices) if dim.choices else dim.low
                assert low > largest, f"{name}: {study.name} t_fit {low} <= lag {largest}"
