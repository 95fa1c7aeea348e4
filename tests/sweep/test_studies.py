"""mlgle.sweep (spec, data, objectives, queue, results) through the stage mlgle.pipeline.sweep:
Optuna ablations on tiny exact-Rouse modes stores: every study kind, storages, workers, resume.

Data: two "temperatures" T = 1 and T = 2 realised as bead frictions ζ = 1/T (kT = 1), 16 chains x
6 beads x 600 frames, Δt = 1, spring 3 (τ_1 ≈ 1.2 Δt). The Rouse C.o.M is exactly Brownian with
D = kT / (N ζ), independent of the internal modes, so the GLE fit (Eq. 27) must give D_GLE ≈ D for
every k >= 1.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest
import scipy.signal
import scipy.stats

from mlgle.config import load_params
from mlgle.errors import ConfigError, SweepError
from mlgle.nar.train import fit_modes
from mlgle.pipeline.sweep import run_study
from mlgle.store import open_modes, temperature_tag
from mlgle.sweep.data import nacf_drop_lag
from mlgle.sweep.queue import open_storage
from mlgle.synthetic import rouse_diffusion

TEMPS = (1.0, 2.0)
CHAINS, BEADS, FRAMES = 16, 6, 600

GRID12 = {  # 4 x 3 GLE grid: cheap trials for the storage and worker tests
    "metric": "d_gle_rel_error",
    "direction": "minimize",
    "sampler": "grid",
    "space": {
        "k": {"type": "int", "low": 1, "high": 4},
        "t_fit": {"type": "categorical", "choices": [100, 200, 300]},
    },
}
GRID44 = {  # 4 x 11 GLE points for the concurrency tests
    **GRID12,
    "space": {
        "k": {"type": "int", "low": 1, "high": 4},
        "t_fit": {"type": "int", "low": 100, "high": 600, "step": 50},
    },
}
STUDIES = {
    "fig10_k": GRID12,
    "grid44": GRID44,
    "fig11_tfit": {
        "metric": "d_gle_sq_error",
        "direction": "minimize",
        "sampler": "grid",
        "space": {"t_fit": {"type": "categorical", "choices": [100, 300, 600]}},
    },
    "fig17_batch": {
        "metric": "best_val_nll",
        "direction": "minimize",
        "sampler": "grid",
        "space": {"batch_size": {"type": "categorical", "choices": [32, 128]}},
        "overrides": {"epochs": 3},
        "modes": 2,
    },
    "history_m": {
        "metric": "best_val_nll",
        "direction": "minimize",
        "sampler": "grid",
        "space": {"history": {"type": "categorical", "choices": [4, 8]}},
        "overrides": {"epochs": 2},
        "modes": 2,
        "generate_frames": 300,
        "generate_trajectories": 8,
    },
    "pruned": {
        "metric": "best_val_nll",
        "direction": "minimize",
        "sampler": "grid",
        "space": {"batch_size": {"type": "categorical", "choices": [64, 128]}},
        "overrides": {"epochs": 3},
        "modes": 1,
        "pruner": {"type": "threshold", "upper": -1.0e9},
    },
    "random3": {
        "metric": "d_gle_rel_error",
        "direction": "minimize",
        "sampler": "random",
        "space": {"k": {"type": "int", "low": 1, "high": 4}},
        "n_trials": 3,
    },
}
TINY = {
    "md": {"temperatures": list(TEMPS)},
    "modes": {"k": 4},
    "gle": {"t_fit": 300},
    "train": {
        "history": 8,
        "t_train": 200,
        "t_val": 100,
        "hidden": [16, 16],
        "latent": 4,
        "epochs": 3,
        "batch_size": 64,
        "patience": 0,
        "threads": 1,
    },
    "generate": {"trajectories": 8, "frames": 300},
    "evaluate": {"d_window": [50, 150]},
    "sweep": {"storage": "", "seed": 3, "studies": STUDIES},
    "tracking": {"experiment": "sweep-tests"},
}


@pytest.fixture(scope="module")
def stores(rouse_stores) -> Path:
    """Modes stores T1.0/ and T2.0/ of exact Rouse chains (ζ = 1/T, kT = 1), modes p = 0..4."""
    return rouse_stores(TEMPS, CHAINS, BEADS, FRAMES, law="inverse_friction", seed=11)


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_params) -> Path:
    """data/params.yaml (tracking into data/mlflow.db)."""
    root = tmp_path_factory.mktemp("sweep")
    path = tiny_params(root, **TINY)
    assert load_params(path).tracking.uri == f"sqlite:///{root.resolve() / 'mlflow.db'}"
    return root


@pytest.fixture()
def params(data, monkeypatch):
    monkeypatch.delenv("MLGLE_TRACKING_URI", raising=False)
    return load_params(data / "params.yaml")


def exact_d(temperature: float) -> float:
    return rouse_diffusion(BEADS, 1.0, 1 / temperature)


def complete(table: pl.DataFrame) -> pl.DataFrame:
    return table.filter(pl.col("state") == "COMPLETE")


def assert_exactly_once(table: pl.DataFrame, names: list[str], grid: int) -> None:
    """Every grid point recorded once: as many trials as points, all COMPLETE, no duplicates."""
    assert table.height == grid
    assert complete(table).height == grid
    assert table.select(names).unique().height == grid


def assert_in_worker_processes(table: pl.DataFrame) -> None:
    """The trials ran in spawned worker processes, not in this one. How they spread over the
    workers depends on start-up timing, so it is not asserted."""
    hosts_pids = [w.rsplit(":", 1) for w in table["worker"]]
    assert all(int(pid) != os.getpid() for _, pid in hosts_pids)


# ------------------------------------------------------------------------------ study kinds


def test_fig10_recovers_the_exact_rouse_diffusion(params, stores, tmp_path):
    table = run_study(params, "fig10_k", stores, tmp_path, tracking=False)
    assert_exactly_once(table, ["k", "t_fit"], 12)
    for temperature in TEMPS:
        tag = temperature_tag(temperature)
        # D_GLE from 16 chains: relative sd 4.2 % at T_fit = 100, 2.1 % at 300 (40 seeds, k = 1
        # and 4, bias < 1.3 %); rtol 0.2 is about 5 sd at the shortest T_fit.
        np.testing.assert_allclose(table[f"d_gle_{tag}"], exact_d(temperature), rtol=0.2)
        # D_MD (Eq. 35) against the exact D within 5 standard errors over chains.
        lo, hi = table[f"d_md_lo_{tag}"][0], table[f"d_md_hi_{tag}"][0]
        stderr = (hi - lo) / (2 * scipy.stats.t.ppf(0.975, CHAINS - 1))
        assert abs(table[f"d_md_{tag}"][0] - exact_d(temperature)) < 5 * stderr
    # The metric is the mean over temperatures of |D_GLE / D_MD - 1|.
    rel = np.mean(
        [
            np.abs(table[f"d_gle_{temperature_tag(t)}"] / table[f"d_md_{temperature_tag(t)}"] - 1)
            for t in TEMPS
        ],
        axis=0,
    )
    np.testing.assert_allclose(table["d_gle_rel_error"], rel, rtol=1e-12)
    assert pl.read_parquet(tmp_path / "fig10_k.parquet").equals(table)
    assert pl.read_csv(tmp_path / "fig10_k.csv").height == 12
    assert (tmp_path / "fig10_k.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "fig10_k.journal").stat().st_size > 0  # the default storage


def test_fig11_mse_and_student_t_interval_over_temperatures(params, stores, tmp_path):
    table = run_study(params, "fig11_tfit", stores, tmp_path, tracking=False)
    assert_exactly_once(table, ["t_fit"], 3)
    assert set(table["k"]) == {4}  # modes.k when k is not swept
    errors = np.stack(
        [
            (table[f"d_md_{temperature_tag(t)}"] - table[f"d_gle_{temperature_tag(t)}"]) ** 2
            for t in TEMPS
        ]
    )
    np.testing.assert_allclose(table["d_gle_sq_error"], errors.mean(axis=0), rtol=1e-12)
    half = scipy.stats.t.ppf(0.975, 1) * errors.std(axis=0, ddof=1) / np.sqrt(2)
    np.testing.assert_allclose(table["d_gle_sq_error_ci95"], half, rtol=1e-12)
    assert (tmp_path / "fig11_tfit.png").exists()


def test_fig17_trains_with_the_stage_core_and_logs_nested_runs(params, stores, tmp_path):
    table = run_study(params, "fig17_batch", stores, tmp_path, tracking=True)
    assert_exactly_once(table, ["batch_size"], 2)
    curves = pl.read_parquet(tmp_path / "fig17_batch_curves.parquet")
    assert curves.height == 2 * 3 * 2  # trials x epochs x modes
    best = curves.group_by(["number", "mode"]).agg(pl.col("val_nll").min())
    best = best.group_by("number").agg(pl.col("val_nll").mean()).sort("number")
    np.testing.assert_allclose(table.sort("number")["best_val_nll"], best["val_nll"], rtol=1e-12)
    # Same numbers as fit_modes called directly, as the train stage does (middle T = 2.0).
    row = table.filter(pl.col("batch_size") == 32).row(0, named=True)
    mapped, _ = open_modes(stores / "T2.0")
    slow = np.asarray(mapped[:300, :, 1:3], dtype=np.float64)
    cfg = dataclasses.replace(params.train, batch_size=32, epochs=3)
    direct = fit_modes(slow, cfg, progress=False)
    best_direct = direct.val_nll[direct.best_epoch, np.arange(2)]
    assert row["best_val_nll"] == pytest.approx(best_direct.mean(), rel=1e-12)
    assert row["temperature"] == 2.0
    # MLflow: one parent run, one nested run per trial with its per-epoch validation NLL.
    from mlgle.tracking import Tracker

    tracker = Tracker(params.tracking)
    parents = tracker.client.search_runs(
        [tracker.experiment_id], filter_string="tags.study = 'fig17_batch' and tags.stage = 'sweep'"
    )
    assert len(parents) == 1
    children = tracker.client.search_runs(
        [tracker.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'",
    )
    assert sorted(int(r.data.tags["trial"]) for r in children) == sorted(table["number"])
    child = next(r for r in children if int(r.data.tags["trial"]) == row["number"])
    history = tracker.client.get_metric_history(child.info.run_id, "val_nll")
    assert [m.step for m in history] == [0, 1, 2]
    assert child.data.metrics["best_val_nll"] == pytest.approx(row["best_val_nll"])


def test_history_study_generates_and_reports_the_nacf_heuristic(params, stores, tmp_path):
    table = run_study(params, "history_m", stores, tmp_path, tracking=False)
    assert_exactly_once(table, ["history"], 2)
    mapped, _ = open_modes(stores / "T2.0")
    assert set(table["nacf20_lag"]) == {nacf_drop_lag(mapped[:, :, 1])}
    # Eq. 13 on the generated modes: the Rouse C.o.M is independent of the modes (β ≈ 0), so
    # D_ML-GLE estimates D_GLE = α²/2; 5 standard errors over the 8 generated trajectories.
    stderr = (table["d_mlgle_hi"] - table["d_mlgle_lo"]) / (2 * scipy.stats.t.ppf(0.975, 7))
    assert ((table["d_mlgle"] - table["d_gle"]).abs() < 5 * stderr).all()
    assert table["d_mlgle_rel_error"].is_finite().all()
    assert table["epochs_run"].to_list() == [2, 2]
    assert (tmp_path / "history_m.png").exists() and (tmp_path / "history_m_curves.csv").exists()


def test_a_diverging_trial_is_pruned_with_its_reason_and_the_study_goes_on(
    params, stores, tmp_path, monkeypatch, capsys
):
    """The model of one grid point diverges in generation (NaN from frame 100, injected): that
    point is PRUNED with the reason as a user attribute and a one-line notice; the others run."""
    import mlgle.nar.generate as generate

    real = generate.generate_modes

    def diverging(model, *args, **kwargs):
        out = real(model, *args, **kwargs)
        if model.history == 4:
            out[100:] = np.nan
        return out

    monkeypatch.setattr(generate, "generate_modes", diverging)
    table = run_study(params, "history_m", stores, tmp_path, tracking=False)
    rows = {r["history"]: r for r in table.to_dicts()}
    assert rows[8]["state"] == "COMPLETE" and rows[4]["state"] == "PRUNED"
    assert "not finite from frame 100" in rows[4]["diverged"]
    err = capsys.readouterr().err
    assert "trial" in err and "history = 4" in err and "not finite from frame 100" in err
    assert "recorded as PRUNED" in err


def test_nacf_drop_lag_of_an_exact_ou_process():
    """AR(1) with φ = exp(-1/20): NACF φ^L < 0.8 first at L = 5 (0.819 at 4, 0.779 at 5).

    100 x 3 series of 1000 frames: Bartlett's variance of an AR(1) sample ACF at lag 5,
    ((1 + φ²)(1 - φ^10) / (1 - φ²) - 10 φ^10) / (3e5), gives a standard error of 0.0025; the
    margins to 0.8 (0.019 and 0.021) are more than 7 standard errors.
    """
    phi = np.exp(-1 / 20)
    noise = np.random.default_rng(5).standard_normal((1000, 100, 3))
    noise[0] /= np.sqrt(1 - phi**2)  # stationary start
    x = scipy.signal.lfilter([1.0], [1.0, -phi], noise, axis=0)
    assert nacf_drop_lag(x) == 5
    assert nacf_drop_lag(x, level=-1.0) is None


def test_pruning_from_the_training_callback(params, stores, tmp_path):
    """A threshold pruner below any NLL prunes every trial right after its first epoch."""
    table = run_study(params, "pruned", stores, tmp_path, tracking=False)
    assert table["state"].to_list() == ["PRUNED", "PRUNED"]
    curves = pl.read_csv(tmp_path / "pruned_curves.csv")
    assert curves["epoch"].unique().to_list() == [0]
    study = optuna.load_study(
        study_name=_study_name(tmp_path / "pruned.journal"),
        storage=open_storage(str(tmp_path / "pruned.journal")),
    )
    for trial in study.trials:
        epoch0 = curves.filter(pl.col("number") == trial.number)["val_nll"].mean()
        assert trial.intermediate_values == {0: pytest.approx(epoch0)}


def test_seeded_random_sampler_is_reproducible(params, stores, tmp_path):
    a = run_study(params, "random3", stores, tmp_path / "a", tracking=False)
    b = run_study(params, "random3", stores, tmp_path / "b", tracking=False)
    assert a.height == 3 and a["k"].to_list() == b["k"].to_list()


# ------------------------------------------------------------------- storages, workers, resume


def _study_name(journal: Path) -> str:
    (summary,) = optuna.get_all_study_summaries(open_storage(str(journal)))
    return summary.study_name


def test_four_workers_on_the_default_journal_storage(params, stores, tmp_path):
    table = run_study(params, "grid44", stores, tmp_path, workers=4, tracking=False)
    assert_exactly_once(table, ["k", "t_fit"], 44)
    assert_in_worker_processes(table)
    assert (tmp_path / "grid44.journal").exists()


def test_interrupted_grid_continues_without_redoing_trials(params, stores, tmp_path):
    first = run_study(params, "fig10_k", stores, tmp_path, n_trials=5, tracking=False)
    assert complete(first).height == 5 and first.height == 5
    journal = tmp_path / "fig10_k.journal"
    storage = open_storage(str(journal))
    study = optuna.load_study(study_name=_study_name(journal), storage=storage)
    # A trial that failed (e.g. Ctrl-C during a run) on a point not yet done: it is retried.
    done = set(first.select(["k", "t_fit"]).iter_rows())
    k, t_fit = next((k, t) for k in range(1, 5) for t in (100, 200, 300) if (k, t) not in done)
    study.enqueue_trial({"k": k, "t_fit": t_fit})
    failed = study.ask()
    assert failed.suggest_int("k", 1, 4) == k
    assert failed.suggest_categorical("t_fit", [100, 200, 300]) == t_fit
    study.tell(failed, state=optuna.trial.TrialState.FAIL)

    second = run_study(params, "fig10_k", stores, tmp_path, tracking=False)
    finished = complete(second)
    assert finished.height == 12 and finished.select(["k", "t_fit"]).unique().height == 12
    assert second.height == 5 + 1 + 7  # the 5 done, the failed one, 7 new: nothing redone
    before = first.select(["number", "k", "t_fit", "d_gle_rel_error"])
    assert second.filter(pl.col("number") < 5).select(before.columns).equals(before)
    assert (second["state"] == "FAIL").sum() == 1


def test_running_trials_are_not_duplicated_unless_requeued(params, stores, tmp_path):
    """A RUNNING trial (a live worker elsewhere, or a killed run) keeps its grid point."""
    run_study(params, "fig10_k", stores, tmp_path, n_trials=0, tracking=False)
    journal = tmp_path / "fig10_k.journal"
    study = optuna.load_study(
        study_name=_study_name(journal), storage=open_storage(str(journal))
    )
    study.enqueue_trial({"k": 2, "t_fit": 200})
    study.ask()  # claimed, never told: RUNNING
    table = run_study(params, "fig10_k", stores, tmp_path, tracking=False)
    assert complete(table).height == 11 and table.height == 12
    assert table.filter(pl.col("state") == "RUNNING").select(["k", "t_fit"]).rows() == [(2, 200)]
    table = run_study(
        params, "fig10_k", stores, tmp_path, tracking=False, requeue_running=True
    )
    assert_exactly_once(complete(table), ["k", "t_fit"], 12)
    assert table["state"].to_list().count("FAIL") == 1 and table.height == 13


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1 (initdb + pg_ctl in a temporary directory)."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    initdb = binaries[-1] if binaries else shutil.which("initdb")
    if initdb is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not installed: "
            "apt-get install -y postgresql"
        )
    bindir = Path(initdb).parent
    driver = _postgres_driver()
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        if shutil.which("runuser") is None or _uid("postgres") is None:
            pytest.skip("running as root without a 'postgres' user and runuser to drop to it")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="mlgle-pg-"))
    if as_user:
        shutil.chown(root, "postgres")
    port = _free_port()
    data_dir, log = root / "data", root / "server.log"

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    try:
        run(str(bindir / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust")
        run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data_dir),
            "-l",
            str(log),
            "-w",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
            "start",
        )
        connection = driver.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres"
        )
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE optuna")
        connection.close()
        # The README's form: no +driver, SQLAlchemy >= 2.1 maps postgresql:// to psycopg 3.
        yield f"postgresql://postgres@127.0.0.1:{port}/optuna"
    finally:
        if (data_dir / "postmaster.pid").exists():
            run(str(bindir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _postgres_driver():
    """psycopg (3, the ``postgres`` extra) or else psycopg2; skip when neither is installed."""
    for name in ("psycopg", "psycopg2"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    pytest.skip("no PostgreSQL driver: pip install -e '.[postgres]'")


def _uid(user: str) -> int | None:
    import pwd

    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_four_workers_on_postgresql(params, stores, tmp_path, postgres_url):
    table = run_study(
        params,
        "grid44",
        stores,
        tmp_path,
        workers=4,
        storage=postgres_url,
        tracking=False,
    )
    assert_exactly_once(table, ["k", "t_fit"], 44)
    assert_in_worker_processes(table)
    assert not list(tmp_path.glob("*.journal"))
    summaries = optuna.get_all_study_summaries(open_storage(postgres_url))
    assert [s.n_trials for s in summaries] == [44]


def test_worker_processes_log_nested_runs_under_one_parent(params, stores, tmp_path):
    table = run_study(
        params, "fig11_tfit", stores, tmp_path, workers=2, tracking=True
    )
    from mlgle.tracking import Tracker

    tracker = Tracker(params.tracking)
    (parent,) = tracker.client.search_runs(
        [tracker.experiment_id],
        filter_string="tags.study = 'fig11_tfit' and tags.stage = 'sweep'",
    )
    assert parent.info.status == "FINISHED" and parent.data.tags["optuna.study"]
    children = tracker.client.search_runs(
        [tracker.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    counts = collections.Counter(int(r.data.tags["trial"]) for r in children)
    assert counts == {n: 1 for n in table["number"]}
    by_trial = {int(r.data.tags["trial"]): r for r in children}
    for row in table.iter_rows(named=True):
        run = by_trial[row["number"]]
        assert run.info.status == "FINISHED"
        assert run.data.params["t_fit"] == str(row["t_fit"])
        assert run.data.metrics["d_gle_sq_error"] == pytest.approx(row["d_gle_sq_error"])


# ------------------------------------------------------------------------------ bad input


def test_bad_runs_name_the_argument_or_file(params, stores, tmp_path):
    with pytest.raises(ConfigError, match="no study 'nope'"):
        run_study(params, "nope", stores, tmp_path)
    with pytest.raises(SweepError, match=r"T1\.0: modes store"):
        run_study(params, "fig11_tfit", tmp_path / "missing", tmp_path, tracking=False)
    with pytest.raises(SweepError, match="workers"):
        run_study(params, "fig11_tfit", stores, tmp_path, workers=0)
    with pytest.raises(SweepError, match="n_trials"):
        run_study(params, "fig11_tfit", stores, tmp_path, n_trials=-1)
