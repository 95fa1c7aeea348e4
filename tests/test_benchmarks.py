"""The benchmark helpers whose logic the reported numbers rest on: the FLOP count behind the
fraction of the FLOP limit, the break-even T_sim, the LAMMPS loop-time parser, the naive window
baseline, the memory projection and the end-to-end MD plan."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.end_to_end import (
    _md_params,
    _route_params,
    _summary,
    break_even_frames,
    md_frames_same_precision,
    paper_estimate,
    unit_costs,
)
from benchmarks.generation import network_flops, step_flops
from benchmarks.md_cost import loop_times
from benchmarks.memory import project
from benchmarks.windows import concatenated_windows
from mlgle.config import Params
from mlgle.nar.model import ModeNetworks
from mlgle.nar.windows import sliding_windows

# --- FLOP count -----------------------------------------------------------------------------


def test_network_flops_of_the_paper_network():
    # 3m = 384 -> 256 -> 256 -> 12 -> 9: Σ in·out = 98304 + 65536 + 3072 + 108 = 167020.
    assert network_flops(128, (256, 256), 12) == 2 * 167_020


@pytest.mark.parametrize(
    ("k", "m", "hidden", "latent", "n"), [(3, 5, (7, 11), 4, 6), (1, 8, (16,), 2, 1)]
)
def test_step_flops_equal_torch_flop_counter(k, m, hidden, latent, n):
    # An independent count: torch's FlopCounterMode over one forward pass of the real module.
    model = ModeNetworks(k, m, hidden, latent).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(k, n, 3 * m))
    assert step_flops(model, n) == counter.get_total_flops()


@pytest.mark.parametrize(
    ("history", "hidden", "latent"), [(0, (4,), 2), (4, (), 2), (4, (0, 3), 2), (4, (3,), 0)]
)
def test_network_flops_rejects_bad_shapes(history, hidden, latent):
    with pytest.raises(ValueError, match="network_flops"):
        network_flops(history, hidden, latent)


# --- break-even ----------------------------------------------------------------------------


def test_break_even_where_costs_are_equal():
    fixed_ml, g, fixed_md, c = 100.0, 1.0, 10.0, 4.0
    t = break_even_frames(fixed_ml, g, fixed_md, c)
    assert t == pytest.approx(30.0)
    assert fixed_ml + g * t == pytest.approx(fixed_md + c * t)
    # Beyond it ML-GLE is cheaper, before it MD is.
    assert fixed_ml + g * 2 * t < fixed_md + c * 2 * t
    assert fixed_ml + g * t / 2 > fixed_md + c * t / 2


def test_break_even_limits():
    assert break_even_frames(5.0, 1.0, 10.0, 2.0) == 0.0  # ML-GLE never dearer
    assert math.isinf(break_even_frames(20.0, 2.0, 10.0, 2.0))  # MD never dearer
    assert math.isinf(break_even_frames(20.0, 3.0, 10.0, 2.0))


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_break_even_rejects_bad_costs(bad):
    with pytest.raises(ValueError, match="per_frame_md must be finite"):
        break_even_frames(1.0, 1.0, 1.0, bad)


# --- LAMMPS log, MD plan ---------------------------------------------------------------------

LOG = """\
Step Temp E_pair E_mol Press
    0   1   0.5  1.2  5.1
Loop time of 1.25 on 2 procs for 4000 steps with 2000 atoms

Performance: 2764800.000 tau/day, 3200.000 timesteps/s, 6.400 Matom-step/s
61.3% CPU use with 2 MPI tasks x 1 OpenMP threads
  Loop time of 20.5 on 1 procs for 100000 steps with 10000 atoms
Loop time of x on 1 procs for 5 steps with 5 atoms
99.0% CPU use with 1 MPI tasks x 1 OpenMP threads
"""


def test_loop_times_reads_every_run():
    first, second = loop_times(LOG)
    assert first == (1.25, 2, 4000, 2000, pytest.approx(0.613))
    # The second run's CPU line is missing; the one after the malformed run is not its own.
    assert second[:4] == (20.5, 1, 100000, 10000)
    assert math.isnan(second.cpu_share)
    assert loop_times("no runs here\n") == []


def test_route_runs_t_train_plus_t_val_frames_of_the_pairs_melt():
    params = Params()
    route = _route_params(params, 5)
    route.md.check("route")
    assert route.md.frames - 1 == params.train.t_train + params.train.t_val
    assert route.md.seed == 5 and route.generate == params.generate
    unchanged = ("chains", "beads", "ranks", "restart_every", "equilibration_steps")
    assert all(getattr(route.md, a) == getattr(params.md, a) for a in unchanged)
    assert route.train == params.train and route.gle == params.gle
    # A GLE fit over more frames than training and validation: the route's MD runs T_fit.
    longer_fit = dataclasses.replace(params, gle=dataclasses.replace(params.gle, t_fit=2000))
    assert _route_params(longer_fit, 5).md.frames - 1 == 2000


def test_md_route_gives_eq35_the_chain_frames_of_the_generated_run():
    params = Params()
    md = _md_params(params, 5).md
    md.check("md route")
    frames = md.frames - 1
    assert frames * params.md.chains == params.generate.frames * params.generate.trajectories
    assert md.seed == 5
    # 3 generated chains per MD chain: 3x the frames; a fraction of a frame rounds up.
    more = dataclasses.replace(
        params, generate=dataclasses.replace(params.generate, trajectories=300, frames=1001)
    )
    assert md_frames_same_precision(more) == 3003
    fewer = dataclasses.replace(more, md=dataclasses.replace(more.md, chains=7))
    assert md_frames_same_precision(fewer) == math.ceil(1001 * 300 / 7)


def _measured(params: Params) -> tuple[dict, dict]:
    """Fake measurements of both routes of ``params`` (stage seconds 1..9, all epochs run)."""
    md_frames = md_frames_same_precision(params)
    mlgle = {
        "stage_seconds": {"md": 9.0, "modes": 2.0, "gle_fit": 3.0, "train": 5.0,
                          "generate": 7.0, "evaluate": 1.5},
        "epochs_run": params.train.epochs,
    }  # fmt: skip
    md = {
        "stage_seconds": {"md": 40.0, "modes": 4.0, "evaluate": 0.5},
        "md": {
            "equilibration_seconds": 6.0,
            "production_seconds": 30.0,
            "production_steps": md_frames * params.md.steps_per_frame,
        },
        "production_frames": md_frames,
    }
    return mlgle, md


def test_paper_estimate_at_the_measured_sizes_gives_back_the_measured_stages():
    params = Params()
    mlgle, md = _measured(params)
    est = paper_estimate(unit_costs(params, mlgle, md), params)
    for name in ("gle_fit", "train", "generate", "evaluate"):
        assert est["mlgle"][name] == pytest.approx(mlgle["stage_seconds"][name], rel=1e-12)
    # Equilibration 6 s + production 30 s + gathering the frames into the store 4 s.
    assert est["md"]["md"] == pytest.approx(md["stage_seconds"]["md"], rel=1e-12)
    for name in ("modes", "evaluate"):
        assert est["md"][name] == pytest.approx(md["stage_seconds"][name], rel=1e-12)
    assert est["md_over_mlgle"] == pytest.approx(est["md_seconds"] / est["mlgle_seconds"])


def test_paper_estimate_scales_each_stage_with_its_work():
    params = Params()
    costs = unit_costs(params, *_measured(params))
    base = paper_estimate(costs, params)
    longer = paper_estimate(
        costs,
        dataclasses.replace(
            params, generate=dataclasses.replace(params.generate, frames=2 * params.generate.frames)
        ),
    )
    # Twice the generated frames: generation, its evaluation and the MD route's production double.
    for name in ("generate", "evaluate"):
        assert longer["mlgle"][name] == pytest.approx(2 * base["mlgle"][name])
    assert longer["mlgle"]["train"] == base["mlgle"]["train"]
    assert longer["md_frames"] == 2 * base["md_frames"]
    # Twice the beads: both MDs' cost per frame doubles (per bead-step), the networks' do not.
    beads = paper_estimate(
        costs, dataclasses.replace(params, md=dataclasses.replace(params.md, beads=40))
    )
    assert beads["md"]["md"] == pytest.approx(2 * base["md"]["md"])
    assert beads["mlgle"]["generate"] == base["mlgle"]["generate"]


def test_summary_keeps_designs_names_and_takes_medians_over_the_pairs():
    params = Params()
    pairs = []
    for ratio in (2.0, 4.0, 9.0):
        mlgle, md = _measured(params)
        for route in (mlgle, md):
            route["seconds"] = sum(route["stage_seconds"].values())
            route["load_average_1min"] = {"before": 0.1, "after": 0.3}
            route.setdefault("md", {})["lammps_cpu_share"] = 1.0
        md["seconds"] = ratio * mlgle["seconds"]
        md["md"]["equilibration_seconds"] = 0.0
        pairs.append({"mlgle": mlgle, "md": md, "md_over_mlgle": ratio})
    summary = _summary(params, pairs, None)
    assert summary["speedup_vs_md"] == 4.0 == summary["md_over_mlgle"]["median"]
    assert (summary["md_over_mlgle"]["min"], summary["md_over_mlgle"]["max"]) == (2.0, 9.0)
    assert summary["D_error_mlgle"] is None  # no reference store
    # Fixed ML-GLE cost 27.5 - (7 + 1.5) = 19 s; per frame (7 + 1.5) / T_gen against the median
    # MD's 4 x 27.5 s / T_md (no equilibration here), T_gen = T_md = 25000 frames.
    assert summary["break_even_frames"] == pytest.approx(19 * 25_000 / (110 - 8.5))
    assert summary["load_average_1min"]["max"] == 0.3


# --- windows baseline, memory projection ----------------------------------------------------


def test_concatenation_baseline_equals_sliding_windows():
    z = np.random.default_rng(0).normal(size=(20, 3, 2, 3))
    windows, targets = sliding_windows(z, 5)
    naive_windows, naive_targets = concatenated_windows(z, 5)
    np.testing.assert_array_equal(naive_windows, windows)
    np.testing.assert_array_equal(naive_targets, targets)


def _run(steps: int, peak: float, history: int = 4, per_frame: int = 100) -> dict:
    return {
        "steps": steps,
        "history": history,
        "peak_bytes": peak,
        "output_bytes": per_frame * (steps + history),
    }


def test_projection_uses_the_larger_growth():
    # Measured growth 50 B/step < 100 B/frame of output: the output's size wins.
    low = project([_run(10, 1000.0), _run(30, 2000.0)], 130)
    assert low["measured_bytes_per_step"] == pytest.approx(50.0)
    assert low["projected_peak_bytes"] == pytest.approx(2000.0 + 100 * 100)
    assert low["output_bytes"] == pytest.approx(100 * 134)
    # Measured growth 300 B/step > 100 B/frame: the measurement wins.
    high = project([_run(10, 1000.0), _run(30, 7000.0)], 130)
    assert high["projected_peak_bytes"] == pytest.approx(7000.0 + 300 * 100)


def test_streamed_projection_counts_only_the_measured_growth():
    # Written to disk: a flat peak stays flat (the output's own bytes are not resident) and a
    # measured growth still counts; a negative fitted slope (noise) does not shrink the peak.
    flat = project([_run(10, 1000.0), _run(30, 1000.0)], 130, written=False)
    assert flat["projected_peak_bytes"] == pytest.approx(1000.0)
    grows = project([_run(10, 1000.0), _run(30, 1200.0)], 130, written=False)
    assert grows["projected_peak_bytes"] == pytest.approx(1200.0 + 100 * 10)
    shrinks = project([_run(10, 1100.0), _run(30, 1000.0)], 130, written=False)
    assert shrinks["projected_peak_bytes"] == pytest.approx(1000.0)
