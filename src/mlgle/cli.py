"""`mlgle <stage>`: parse params, call the core, write exactly the declared outs.

Every stage reads params.yaml (or the files given with --params, later ones overlaying earlier
ones) and writes only the paths given on its command line, which dvc.yaml declares as outs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mlgle.config import add_params_option, params_from_args

STAGES: dict[str, str] = {
    "simulate": "run the Kremer-Grest melt in LAMMPS at one temperature (trajectory store)",
    "import": "bring an external trajectory (LAMMPS dump, DCD, NetCDF, meltBR .pt) into a store",
    "modes": "normal modes (Eq. 15) and C.o.M of a trajectory store",
    "analyze-md": "MD reference statistics: C.o.M MSD, local slope, NACF fits, D_MD (Eq. 35)",
    "fit-gle": "fit the GLE (Eqs. 26-27) on the first T_fit frames: alpha, beta, D_GLE",
    "train": "train the NAR mode models (Secs. 3.1-3.4), best epoch per mode, MLflow-tracked",
    "generate": "generate long mode and C.o.M trajectories (Alg. 1, Eq. 13)",
    "evaluate": "generated vs MD: NACF band share, MSDs, D_MD, D_GLE, D_ML-GLE with CIs",
    "report": "Table 1, reports/metrics.json and the paper's figures over all temperatures",
    "reconstruct": "generated modes -> bead positions (Eq. 14) as XYZ for OVITO/VMD",
    "sweep": "Optuna ablation over m, batch size, T_fit or k (Figs. 10, 11, 17)",
    "loto": "temperature-conditioned model: leave one temperature out, predict D there",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlgle",
        description="ML-GLE: machine-learning-enhanced GLE for polymer melts. "
        "Each subcommand is one pipeline stage (see dvc.yaml).",
    )
    sub = parser.add_subparsers(dest="stage", required=True, metavar="<stage>")

    p = sub.add_parser("simulate", help=STAGES["simulate"])
    add_params_option(p)
    p.add_argument("--temperature", type=float, required=True, help="temperature in ε/k_B")
    p.add_argument("--out", type=Path, required=True, help="trajectory store to write")
    p.add_argument("--work-dir", type=Path, default=None, help="restart files (default <out>.work)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("import", help=STAGES["import"])
    p.add_argument("paths", type=Path, nargs="+", help="files of one run, in time order")
    p.add_argument("--out", type=Path, required=True, help="store to write")
    p.add_argument("--format", default="auto", choices=["auto", "dump", "dcd", "netcdf", "meltbr"])
    p.add_argument("--dt", type=float, required=True, help="frame interval Δt in the data's units")
    p.add_argument("--temperature", type=float, required=True)
    p.add_argument("--chains", type=int, default=None)
    p.add_argument("--beads", type=int, default=None)
    p.add_argument("--units", default="lj")

    p = sub.add_parser("modes", help=STAGES["modes"])
    add_params_option(p)
    p.add_argument("--input", type=Path, required=True, help="trajectory store")
    p.add_argument("--out", type=Path, required=True, help="modes store to write")

    p = sub.add_parser("analyze-md", help=STAGES["analyze-md"])
    add_params_option(p)
    p.add_argument("--modes", type=Path, required=True, help="modes store")
    p.add_argument("--trajectory", type=Path, default=None, help="trajectory store (Rg, bonds)")
    p.add_argument("--out", type=Path, required=True, help="report directory to write")

    p = sub.add_parser("fit-gle", help=STAGES["fit-gle"])
    add_params_option(p)
    p.add_argument("--modes", type=Path, required=True, help="modes store")
    p.add_argument("--out", type=Path, required=True, help="GLE parameters (JSON) to write")

    p = sub.add_parser("train", help=STAGES["train"])
    add_params_option(p)
    p.add_argument("--modes", type=Path, required=True, help="modes store")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")

    p = sub.add_parser("generate", help=STAGES["generate"])
    add_params_option(p)
    p.add_argument("--model", type=Path, required=True, help="model directory (mlgle train)")
    p.add_argument("--modes", type=Path, required=True, help="MD modes store (initial windows)")
    p.add_argument("--gle", type=Path, required=True, help="GLE parameters (mlgle fit-gle)")
    p.add_argument("--out", type=Path, required=True, help="directory to write")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("evaluate", help=STAGES["evaluate"])
    add_params_option(p)
    p.add_argument("--modes", type=Path, required=True, help="MD modes store")
    p.add_argument("--generated", type=Path, required=True, help="mlgle generate output")
    p.add_argument("--gle", type=Path, required=True, help="GLE parameters (mlgle fit-gle)")
    p.add_argument("--out", type=Path, required=True, help="directory to write")
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")

    p = sub.add_parser("report", help=STAGES["report"])
    add_params_option(p)
    p.add_argument("--evaluations", type=Path, required=True, help="holds T<T>/ per temperature")
    p.add_argument("--models", type=Path, required=True, help="holds T<T>/ per temperature")
    p.add_argument("--md-reports", type=Path, default=Path("reports/md"), help="T<T>/ each")
    p.add_argument("--out", type=Path, default=Path("reports"))
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")

    p = sub.add_parser("reconstruct", help=STAGES["reconstruct"])
    p.add_argument("--generated", type=Path, required=True, help="mlgle generate output")
    p.add_argument("--beads", type=int, required=True, help="beads per chain N of Eq. 14")
    p.add_argument("--out", type=Path, required=True, help="XYZ file to write")
    p.add_argument("--every", type=int, default=10, help="keep one frame in this many")
    p.add_argument("--chains", type=int, default=10, help="chains to write")

    from mlgle.sweep import add_sweep_parser

    add_sweep_parser(sub)

    from mlgle.loto import add_loto_parser

    add_loto_parser(sub)
    return parser


def _dispatch(args: argparse.Namespace) -> None:
    from mlgle import stages
    from mlgle.loto import main_loto
    from mlgle.sweep import main_sweep

    handlers: dict[str, Callable[[], object]] = {
        "simulate": lambda: stages.simulate(
            params_from_args(args), args.temperature, args.out, args.work_dir, not args.no_progress
        ),
        "import": lambda: stages.import_data(
            args.paths,
            args.out,
            args.format,
            args.dt,
            args.temperature,
            args.chains,
            args.beads,
            args.units,
        ),
        "modes": lambda: stages.modes(params_from_args(args), args.input, args.out),
        "analyze-md": lambda: stages.analyze_md(
            params_from_args(args), args.modes, args.trajectory, args.out
        ),
        "fit-gle": lambda: stages.fit_gle(params_from_args(args), args.modes, args.out),
        "train": lambda: stages.train(
            params_from_args(args), args.modes, args.out, not args.no_progress, not args.no_tracking
        ),
        "generate": lambda: stages.generate(
            params_from_args(args), args.model, args.modes, args.gle, args.out, not args.no_progress
        ),
        "evaluate": lambda: stages.evaluate(
            params_from_args(args),
            args.modes,
            args.generated,
            args.gle,
            args.out,
            not args.no_tracking,
        ),
        "report": lambda: stages.report(
            params_from_args(args),
            args.evaluations,
            args.models,
            args.md_reports,
            args.out,
            not args.no_tracking,
        ),
        "reconstruct": lambda: stages.reconstruct(
            args.generated, args.beads, args.out, args.every, args.chains
        ),
        "sweep": lambda: main_sweep(args),
        "loto": lambda: main_loto(args),
    }
    handlers[args.stage]()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mlgle.config import ConfigError
    from mlgle.store import StoreError

    start = time.perf_counter()
    try:
        _dispatch(args)
    except (ConfigError, StoreError) as exc:
        print(f"mlgle {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    print(f"mlgle {args.stage}: finished in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
