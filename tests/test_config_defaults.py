"""One config layer: the dataclass defaults are params.yaml's values, and a params file set that
lacks a section is an error naming the files and the section (no silent code defaults)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from mlgle.cli import main
from mlgle.config import Params, load_params
from mlgle.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_dataclass_defaults_equal_params_yaml():
    loaded = load_params(ROOT / "params.yaml")
    defaults = Params()
    for section in dataclasses.fields(Params):
        if section.name in ("source", "sweep"):
            continue
        assert getattr(defaults, section.name) == getattr(loaded, section.name), section.name
    assert (defaults.sweep.storage, defaults.sweep.seed) == (
        loaded.sweep.storage,
        loaded.sweep.seed,
    )
    assert defaults.sweep.studies == {}  # studies come from the params file alone


SECTIONS = [f.name for f in dataclasses.fields(Params) if f.name != "source"]


@pytest.mark.parametrize("section", SECTIONS)
def test_a_missing_section_is_an_error_naming_file_and_section(tmp_path, section):
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    del data[section]
    path = tmp_path / "partial.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=rf"{path}.*section '{section}' is missing"):
        load_params(path)


def test_an_empty_params_file_fails_on_the_command_line_with_one_line(tmp_path, capsys):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    code = main(["fit-gle", "--params", str(path), "--modes", "x", "--out", str(tmp_path / "g")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and str(path) in err and "section 'tracking' is missing" in err


@pytest.mark.parametrize(("key", "value"), [("md.density", "inf"), ("train.lr", "inf")])
def test_non_finite_values_are_refused(tmp_path, key, value):
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    section, name = key.split(".")
    data[section][name] = float(value)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=rf"{path}: '{key}' must be a finite number > 0"):
        load_params(path)
