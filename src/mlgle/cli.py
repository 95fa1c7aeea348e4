"""`mlgle <stage>`: parse the command line and params, call the stage in :mod:`mlgle.pipeline`.

Every stage reads params.yaml (or the files given with --params, later ones overlaying earlier
ones) and writes only the paths given on its command line, which dvc.yaml declares as outs. Each
subcommand's handler (``set_defaults(func=...)``) imports its pipeline module and nothing else,
so the code a stage runs is the import closure of its handler (tested against dvc.yaml's deps).
A :class:`~mlgle.errors.MlgleError` (a user's mistake) is one line on stderr and exit code 2;
Ctrl-C is exit code 130.

Before a stage runs, ``main`` refuses an ``--out`` that is the working directory, one of the
command's input paths or (for a stage that replaces ``--out`` whole) contains one, or an existing
path that mlgle may not replace (:func:`mlgle.store.check_output`); it then holds
:func:`mlgle.store.output_lock` on ``--out`` for the whole stage (not ``sweep``, whose workers
share a study storage and whose files are written atomically, one per study).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from mlgle.config import Params, load_params
from mlgle.errors import ConfigError, MlgleError


def _params(args: argparse.Namespace) -> Params:
    """The params named by ``--params`` (default ``params.yaml``), validated."""
    return load_params(*(args.params or [Path("params.yaml")]))


def _simulate(args: argparse.Namespace) -> None:
    from mlgle.pipeline.simulate import simulate

    simulate(_params(args), args.temperature, args.out, args.work_dir, not args.no_progress)


def _import(args: argparse.Namespace) -> None:
    from mlgle.pipeline.import_data import import_data

    import_data(
        args.paths, args.out, args.format, args.dt, args.temperature, args.chains, args.beads,
        args.units,
    )  # fmt: skip


def _modes(args: argparse.Namespace) -> None:
    from mlgle.pipeline.modes import modes

    modes(_params(args), args.trajectory, args.out)


def _analyze_md(args: argparse.Namespace) -> None:
    from mlgle.pipeline.analyze_md import analyze_md

    analyze_md(_params(args), args.modes, args.trajectory, args.out)


def _fit_gle(args: argparse.Namespace) -> None:
    from mlgle.pipeline.fit_gle import fit_gle

    fit_gle(_params(args), args.modes, args.out)


def _train(args: argparse.Namespace) -> None:
    from mlgle.pipeline.train import train

    train(_params(args), args.modes, args.out, not args.no_progress, not args.no_tracking)


def _generate(args: argparse.Namespace) -> None:
    from mlgle.pipeline.generate import generate

    generate(_params(args), args.model, args.modes, args.gle, args.out, not args.no_progress)


def _evaluate(args: argparse.Namespace) -> None:
    from mlgle.pipeline.evaluate import evaluate

    evaluate(_params(args), args.modes, args.generated, args.gle, args.out, not args.no_tracking)


def _linear_ar(args: argparse.Namespace) -> None:
    from mlgle.pipeline.linear_ar import linear_ar

    linear_ar(_params(args), args.modes, args.gle, args.out, not args.no_tracking)


def _report(args: argparse.Namespace) -> None:
    from mlgle.pipeline.report import report

    report(
        _params(args), args.evaluations, args.models, args.md_reports, args.out,
        not args.no_tracking, args.linear,
    )  # fmt: skip


def _reconstruct(args: argparse.Namespace) -> None:
    from mlgle.pipeline.reconstruct import reconstruct

    reconstruct(args.generated, args.beads, args.out, args.every, args.chains)


def _sweep(args: argparse.Namespace) -> None:
    from mlgle.pipeline.sweep import main

    main(_params(args), args)


def _loto_train(args: argparse.Namespace) -> None:
    from mlgle.pipeline.loto.train import train

    params = _params(args)
    train(
        params, params.conditioned, args.modes_dir, args.leave_out, args.out,
        not args.no_progress, not args.no_tracking,
    )  # fmt: skip


def _loto_generate(args: argparse.Namespace) -> None:
    from mlgle.pipeline.loto.generate import generate

    params = _params(args)
    generate(
        params, params.conditioned, args.model, args.modes_dir, args.leave_out, args.out,
        not args.no_progress,
    )  # fmt: skip


def _loto_evaluate(args: argparse.Namespace) -> None:
    from mlgle.pipeline.loto.evaluate import evaluate

    params = _params(args)
    evaluate(
        params, params.conditioned, args.modes_dir, args.generated, args.leave_out, args.out,
        not args.no_tracking,
    )  # fmt: skip


def _loto_report(args: argparse.Namespace) -> None:
    from mlgle.pipeline.loto.report import report

    params = _params(args)
    report(params, params.conditioned, args.loto, args.evaluations, args.out, not args.no_tracking)


def _budget_cheap(args: argparse.Namespace) -> None:
    from mlgle.pipeline.budget.cheap import cheap

    cheap(_params(args), args.modes_dir, args.out, not args.no_tracking)


def _budget_mlgle(args: argparse.Namespace) -> None:
    from mlgle.pipeline.budget.mlgle import mlgle_point

    mlgle_point(_params(args), args.modes, args.t_train, args.out, not args.no_tracking)


def _budget_report(args: argparse.Namespace) -> None:
    from mlgle.pipeline.budget.report import report

    report(
        _params(args), args.cheap, args.mlgle_dir, args.evaluations, args.out,
        not args.no_tracking,
    )  # fmt: skip


def _stage(
    sub: argparse._SubParsersAction,
    name: str,
    func,
    help: str,
    *,
    params: bool = True,
    writes: str = "dir",
    lock: bool = True,
) -> argparse.ArgumentParser:
    """A subcommand; ``writes`` says what its ``--out`` is: "dir" (replaced whole), "file" or
    "into" (a directory it adds named files to); ``lock``: hold the output lock while it runs."""
    p = sub.add_parser(name, help=help, description=help)
    p.set_defaults(func=func, writes=writes, lock=lock)
    if params:
        p.add_argument(
            "--params",
            action="append",
            type=Path,
            default=None,
            help="params file(s); later ones overlay earlier ones (default: params.yaml)",
        )
    return p


def _flags(p: argparse.ArgumentParser, *names: str) -> None:
    helps = {"no-progress": "no progress bar", "no-tracking": "do not log to MLflow"}
    for name in names:
        p.add_argument(f"--{name}", action="store_true", help=helps[name])


def build_parser() -> argparse.ArgumentParser:
    """The ``mlgle`` parser: one subcommand per stage of dvc.yaml (``loto`` has four actions).

    The same thing has the same option everywhere: ``--modes`` a modes store, ``--modes-dir`` a
    directory of ``T<T>/`` modes stores, ``--trajectory`` a trajectory store, ``--out`` what the
    stage writes.
    """
    parser = argparse.ArgumentParser(
        prog="mlgle",
        description="ML-GLE: machine-learning-enhanced GLE for polymer melts. "
        "Each subcommand is one pipeline stage (see dvc.yaml).",
    )
    sub = parser.add_subparsers(dest="stage", required=True, metavar="<stage>")

    p = _stage(sub, "simulate", _simulate, "run the Kremer-Grest melt in LAMMPS at one T")
    p.add_argument("--temperature", type=float, required=True, help="temperature in ε/k_B")
    p.add_argument("--out", type=Path, required=True, help="trajectory store to write")
    p.add_argument("--work-dir", type=Path, default=None, help="restart files (default <out>.work)")
    _flags(p, "no-progress")

    p = _stage(
        sub, "import", _import, "external trajectory (dump, DCD, NetCDF, meltBR) into a store",
        params=False,
    )  # fmt: skip
    p.add_argument("paths", type=Path, nargs="+", help="files of one run, in time order")
    p.add_argument("--out", type=Path, required=True, help="store to write")
    p.add_argument("--format", default="auto", choices=["auto", "dump", "dcd", "netcdf", "meltbr"])
    p.add_argument("--dt", type=float, required=True, help="frame interval Δt in the data's units")
    p.add_argument("--temperature", type=float, required=True)
    p.add_argument("--chains", type=int, default=None)
    p.add_argument("--beads", type=int, default=None)
    p.add_argument("--units", default="lj")

    p = _stage(sub, "modes", _modes, "normal modes (Eq. 15) and C.o.M of a trajectory store")
    p.add_argument("--trajectory", type=Path, required=True, help="trajectory store")
    p.add_argument("--out", type=Path, required=True, help="modes store to write")

    p = _stage(sub, "analyze-md", _analyze_md, "MD reference: MSD, slope, NACF fits, D_MD")
    p.add_argument("--modes", type=Path, required=True, help="modes store")
    p.add_argument("--trajectory", type=Path, default=None, help="trajectory store (Rg, bonds)")
    p.add_argument("--out", type=Path, required=True, help="report directory to write")

    p = _stage(
        sub, "fit-gle", _fit_gle, "fit the GLE (Eqs. 26-27) on the first T_fit frames",
        writes="file",
    )  # fmt: skip
    p.add_argument("--modes", type=Path, required=True, help="modes store")
    p.add_argument("--out", type=Path, required=True, help="GLE parameters (JSON) to write")

    p = _stage(sub, "train", _train, "train the NAR mode models (Secs. 3.1-3.4)")
    p.add_argument("--modes", type=Path, required=True, help="modes store")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    _flags(p, "no-progress", "no-tracking")

    p = _stage(sub, "generate", _generate, "generate mode and C.o.M trajectories (Alg. 1)")
    p.add_argument("--model", type=Path, required=True, help="model directory (mlgle train)")
    p.add_argument("--modes", type=Path, required=True, help="MD modes store (initial windows)")
    p.add_argument("--gle", type=Path, required=True, help="GLE parameters (mlgle fit-gle)")
    p.add_argument("--out", type=Path, required=True, help="directory to write")
    _flags(p, "no-progress")

    p = _stage(sub, "evaluate", _evaluate, "generated vs MD: NACF bands, MSDs, D with CIs")
    p.add_argument("--modes", type=Path, required=True, help="MD modes store")
    p.add_argument("--generated", type=Path, required=True, help="mlgle generate output")
    p.add_argument("--gle", type=Path, required=True, help="GLE parameters (mlgle fit-gle)")
    p.add_argument("--out", type=Path, required=True, help="directory to write")
    _flags(p, "no-tracking")

    p = _stage(sub, "linear-ar", _linear_ar, "linear AR baseline in place of the NAR network")
    p.add_argument("--modes", type=Path, required=True, help="MD modes store")
    p.add_argument("--gle", type=Path, required=True, help="GLE parameters (mlgle fit-gle)")
    p.add_argument("--out", type=Path, required=True, help="directory to write")
    _flags(p, "no-tracking")

    p = _stage(
        sub, "report", _report, "Table 1, reports/metrics.json and the paper's figures",
        writes="into",
    )  # fmt: skip
    p.add_argument("--linear", type=Path, default=None, help="mlgle linear-ar outputs, T<T>/ each")
    p.add_argument("--evaluations", type=Path, required=True, help="holds T<T>/ per temperature")
    p.add_argument("--models", type=Path, required=True, help="holds T<T>/ per temperature")
    p.add_argument("--md-reports", type=Path, default=Path("reports/md"), help="T<T>/ each")
    p.add_argument("--out", type=Path, default=Path("reports"))
    _flags(p, "no-tracking")

    p = _stage(
        sub, "reconstruct", _reconstruct, "generated modes -> bead positions (Eq. 14) as XYZ",
        params=False, writes="file",
    )  # fmt: skip
    p.add_argument("--generated", type=Path, required=True, help="mlgle generate output")
    p.add_argument("--beads", type=int, required=True, help="beads per chain N of Eq. 14")
    p.add_argument("--out", type=Path, required=True, help="XYZ file to write")
    p.add_argument("--every", type=int, default=10, help="keep one frame in this many")
    p.add_argument("--chains", type=int, default=10, help="chains to write")

    p = _stage(
        sub, "sweep", _sweep, "Optuna ablation study (Figs. 10, 11, 17, history m)",
        writes="into", lock=False,
    )  # fmt: skip
    p.add_argument("--study", required=True, help="study name in sweep.studies (e.g. fig10_k)")
    p.add_argument(
        "--n-trials",
        type=int,
        default=None,
        help="grid: points to add to the queue (default all missing, 0: only work "
        "off the queue); tpe/random: trials to run (default 20)",
    )
    p.add_argument(
        "--storage",
        default=None,
        help="RDB URL or journal file (default sweep.storage; '' = <out>/<study>.journal)",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--modes-dir", type=Path, default=Path("data/modes"), help="holds T<T>/ modes stores"
    )
    p.add_argument(
        "--out", type=Path, default=Path("reports/sweeps"), help="tables, figure, default journal"
    )
    p.add_argument(
        "--requeue-running",
        action="store_true",
        help="mark RUNNING trials (of a killed run) FAILED and queue them again",
    )
    _flags(p, "no-tracking")

    budget = sub.add_parser("budget", help="D error against the MD budget (beyond the paper)")
    steps = budget.add_subparsers(dest="action", required=True, metavar="<action>")
    p = _stage(
        steps, "cheap", _budget_cheap, "D_short and D_GLE over independent segments",
        writes="file",
    )  # fmt: skip
    p.add_argument("--modes-dir", type=Path, default=Path("data/modes"), help="holds T<T>/")
    p.add_argument("--out", type=Path, required=True, help="CSV to write")
    _flags(p, "no-tracking")
    p = _stage(steps, "mlgle", _budget_mlgle, "one trained ML-GLE with T_train = T_fit = N")
    p.add_argument("--modes", type=Path, required=True, help="modes store")
    p.add_argument("--t-train", type=int, required=True, help="T_train = T_fit in frames")
    p.add_argument("--out", type=Path, required=True, help="directory to write")
    _flags(p, "no-tracking")
    p = _stage(steps, "report", _budget_report, "the budget table and figure", writes="into")
    p.add_argument("--cheap", type=Path, required=True, help="mlgle budget cheap output")
    p.add_argument("--mlgle-dir", type=Path, required=True, help="holds T<T>/<N>/ points")
    p.add_argument("--evaluations", type=Path, required=True, help="per-temperature T<T>/")
    p.add_argument("--out", type=Path, default=Path("reports/budget"))
    _flags(p, "no-tracking")

    loto = sub.add_parser(
        "loto", help="leave-one-temperature-out: one model conditioned on T, D at an unseen T"
    )
    actions = loto.add_subparsers(dest="action", required=True, metavar="<action>")
    for name, func, help in (
        ("train", _loto_train, "train one conditioned model on all temperatures but T*"),
        ("generate", _loto_generate, "generate modes at T* and the C.o.M for both GLE variants"),
        ("evaluate", _loto_evaluate, "generated vs MD at T*, as mlgle evaluate"),
    ):
        p = _stage(actions, name, func, help)
        p.add_argument("--leave-out", type=float, required=True, help="T* left out")
        p.add_argument("--modes-dir", type=Path, default=Path("data/modes"), help="holds T<T>/")
        if name == "generate":
            p.add_argument("--model", type=Path, required=True, help="loto train output")
        if name == "evaluate":
            p.add_argument("--generated", type=Path, required=True, help="loto generate output")
        p.add_argument("--out", type=Path, required=True, help="directory to write")
        _flags(p, *(("no-progress",) if name != "evaluate" else ()))
        if name != "generate":
            _flags(p, "no-tracking")
    p = _stage(actions, "report", _loto_report, "LOTO table and D(T) figure", writes="into")
    p.add_argument("--loto", type=Path, required=True, help="holds T<T>/ (loto evaluate)")
    p.add_argument("--evaluations", type=Path, required=True, help="per-temperature T<T>/")
    p.add_argument("--out", type=Path, default=Path("reports/loto"))
    _flags(p, "no-tracking")
    return parser


def _inputs(args: argparse.Namespace) -> Iterator[tuple[str, Path]]:
    """(option, path) of every Path-valued argument but --out, params.yaml if implied."""
    for dest, value in vars(args).items():
        if dest == "out":
            continue
        option = "file" if dest == "paths" else f"--{dest.replace('_', '-')}"
        for path in value if isinstance(value, list) else [value]:
            if isinstance(path, Path):
                yield option, path
    if "params" in vars(args) and args.params is None:
        yield "--params", Path("params.yaml")


def _check_out(args: argparse.Namespace) -> None:
    """Refuse an --out that is the working directory (or above it), an input, or (for a stage
    that replaces it whole) contains an input or lies inside one."""
    out = args.out
    target = out.resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise ConfigError(
            f"--out {out}: is the working directory or above it; give the path of a new "
            "directory or file for the output"
        )
    for option, path in _inputs(args):
        source = path.resolve()
        if source == target:
            raise ConfigError(
                f"--out {out}: is also the input {option} {path}; choose another --out"
            )
        if args.writes != "dir":
            continue
        if target in source.parents:
            raise ConfigError(
                f"--out {out}: contains the input {option} {path}, which writing it would "
                "delete; choose another --out"
            )
        if source in target.parents:
            raise ConfigError(
                f"--out {out}: lies inside the input {option} {path}; choose another --out"
            )


@contextlib.contextmanager
def _guard(args: argparse.Namespace) -> Iterator[None]:
    """Check ``--out`` (see the module docstring), then hold its lock while the stage runs."""
    if getattr(args, "out", None) is None:
        yield
        return
    from mlgle.store import check_output, output_lock

    _check_out(args)
    check_output(args.out, writes=args.writes)
    with output_lock(args.out) if args.lock else contextlib.nullcontext():
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Run one stage; 0 on success, 2 on a user's mistake (one line), 130 on Ctrl-C."""
    args = build_parser().parse_args(argv)
    name = f"{args.stage} {args.action}" if hasattr(args, "action") else args.stage
    start = time.perf_counter()
    try:
        with _guard(args):
            args.func(args)
    except MlgleError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        more = " [...]" if len(lines) > 1 else ""  # one line, whatever a library's message holds
        print(f"mlgle {name}: error: {lines[0]}{more}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mlgle {name}: interrupted; outputs already written are intact", file=sys.stderr)
        return 130
    print(f"mlgle {name}: finished in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
