"""The ``mlgle`` command line (mlgle.cli): its options, and any MlgleError as one line with exit
code 2 naming the stage."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from mlgle.cli import build_parser, main


def test_bad_params_exit_with_a_named_key(tiny_params, tmp_path, capsys):
    bad = tiny_params(tmp_path, train={"history": -1})
    assert main(["fit-gle", "--params", str(bad), "--modes", "x", "--out", "y"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("mlgle fit-gle: error: ") and "train.history" in line


def test_a_partial_params_file_is_one_line_naming_the_missing_section(tmp_path, capsys):
    partial = tmp_path / "params.yaml"
    partial.write_text("train:\n  history: 8\n")
    assert main(["fit-gle", "--params", str(partial), "--modes", "x", "--out", "y"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"mlgle fit-gle: error: {partial}: section 'tracking' is missing")


def test_a_missing_store_is_one_line_naming_the_file(tiny_params, tmp_path, capsys):
    params = tiny_params(tmp_path)
    missing = tmp_path / "data" / "md" / "T1.0"
    argv = ["modes", "--params", str(params), "--trajectory", str(missing), "--out", "m"]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("mlgle modes: error: ") and str(missing / "meta.json") in line
    assert not (tmp_path / "m").exists()


def test_store_options_have_one_name_everywhere(capsys):
    parser = build_parser()
    args = parser.parse_args(["modes", "--trajectory", "t", "--out", "m"])
    assert (args.trajectory, args.out) == (Path("t"), Path("m"))
    with pytest.raises(SystemExit):
        parser.parse_args(["modes", "--input", "t", "--out", "m"])
    assert "required: --trajectory" in capsys.readouterr().err
    args = parser.parse_args(["sweep", "--study", "fig10_k", "--modes-dir", "d"])
    assert (args.modes_dir, args.out) == (Path("d"), Path("reports/sweeps"))
    args = parser.parse_args(["loto", "train", "--leave-out", "1.25", "--out", "o"])
    assert (args.modes_dir, args.leave_out, args.params) == (Path("data/modes"), 1.25, None)


FIG11 = {
    "metric": "d_gle_sq_error",
    "direction": "minimize",
    "sampler": "grid",
    "space": {"t_fit": {"type": "categorical", "choices": [100, 300, 600]}},
}


def test_cli_runs_a_study(tiny_params, rouse_stores, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLGLE_TRACKING_URI", raising=False)
    stores = rouse_stores((1.0, 2.0), 16, 6, 600, law="inverse_friction", seed=11)
    params = tiny_params(
        tmp_path,
        md={"temperatures": [1.0, 2.0]},
        gle={"t_fit": 300},
        evaluate={"d_window": [50, 150]},
        sweep={"storage": "", "seed": 3, "studies": {"fig11_tfit": FIG11}},
    )
    out = tmp_path / "sweeps"
    argv = ["sweep", "--study", "fig11_tfit", "--params", str(params), "--modes-dir", str(stores),
            "--out", str(out), "--no-tracking", "--n-trials", "2"]  # fmt: skip
    assert main(argv) == 0
    assert "fig11_tfit: 2 of 2 trials complete" in capsys.readouterr().out
    assert pl.read_csv(out / "fig11_tfit.csv").height == 2
