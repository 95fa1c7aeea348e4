"""mlgle.pipeline.wallclock: make repro's time per stage and per part, from dvc repro's output."""

from __future__ import annotations

import json
import sys

from mlgle.pipeline.wallclock import main, part_of, stage_seconds, summary

LOG = """\
Verifying data sources in stage: 'data/x.dvc'
mlgle simulate: finished in 99.0 s
Running stage 'simulate@1.0':
> mlgle simulate --temperature 1.0 --out data/md/T1.0
mlgle simulate: finished in 400.5 s
Running stage 'simulate@1.5':
mlgle simulate: finished in 380.0 s
Stage 'modes@1.0' didn't change, skipping
Running stage 'sweep-train@fig17_batch':
mlgle sweep: finished in 120.0 s
Running stage 'budget-cheap':
mlgle budget cheap: finished in 42.0 s
Running stage 'loto-train@1.25':
mlgle loto train: finished in 260.0 s
Running stage 'report':
some other line: finished in 5 s
mlgle report: finished in 6.5 s
"""


def test_each_finished_line_counts_for_the_stage_running_then_and_items_add_up() -> None:
    """A line before any stage ran counts nowhere; foreach items add; multi-word commands count;
    a line that is not a stage's own report does not."""
    assert stage_seconds(LOG.splitlines()) == {
        "simulate": 780.5,
        "sweep-train": 120.0,
        "budget-cheap": 42.0,
        "loto-train": 260.0,
        "report": 6.5,
    }


def test_stages_are_grouped_into_the_parts_of_the_study() -> None:
    assert [part_of(s) for s in ("simulate", "sweep-gle", "budget-mlgle", "loto-report")] == [
        "default study",
        "sweeps",
        "budget study",
        "leave one temperature out",
    ]
    parts = summary(LOG.splitlines(), 1500, "test")["parts"]
    assert parts == {
        "default study": 787.0,
        "sweeps": 120.0,
        "budget study": 42.0,
        "leave one temperature out": 260.0,
    }


def test_a_run_writes_its_log_and_summary_and_passes_its_exit_status_on(tmp_path) -> None:
    script = (
        "print(\"Running stage 'train@1.0':\"); print('mlgle train: finished in 3.5 s'); "
        "import sys; sys.exit(int(sys.argv[1]))"
    )
    out = tmp_path / "reports" / "repro_wallclock.json"
    assert main(["--out", str(out), "--how", "test", "--", sys.executable, "-c", script, "0"]) == 0
    written = json.loads(out.read_text())
    assert written["stages"] == {"train": 3.5} and written["how"] == "test"
    assert written["seconds"] >= 0
    assert "mlgle train: finished in 3.5 s" in out.with_suffix(".log").read_text()
    out.unlink()
    assert main(["--out", str(out), "--", sys.executable, "-c", script, "3"]) == 3
    assert not out.exists()  # a failed run records no wall-clock


def test_an_earlier_log_is_summarised_and_a_missing_one_is_a_clear_error(tmp_path, capsys) -> None:
    log = tmp_path / "repro.log"
    log.write_text(LOG)
    out = tmp_path / "wallclock.json"
    assert main(["--log", str(log), "--seconds", "4230", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["seconds"] == 4230 and written["stages"]["simulate"] == 780.5
    assert main(["--log", str(tmp_path / "none.log"), "--out", str(out)]) == 2
    assert "none.log: no such file" in capsys.readouterr().err


def test_a_command_that_does_not_exist_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    out = tmp_path / "wallclock.json"
    earlier = out.with_suffix(".log")
    earlier.write_text("an earlier run's output\n")
    assert main(["--out", str(out), "--", "no-such-command-mlgle"]) == 2
    assert capsys.readouterr().err == "wallclock: no-such-command-mlgle: command not found\n"
    assert not out.exists()
    assert earlier.read_text() == "an earlier run's output\n"  # not truncated
