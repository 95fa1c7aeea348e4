"""Copy the default study's results into the README (``make readme-results``), never by hand.

Replaces the block between the ``results`` markers in README.md with Table 1, the MAREs and the
measured wall-clock from reports/, the leave-one-temperature-out table where reports/loto/ exists,
and copies a few figures to docs/figures/ (tracked by git).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import polars as pl

from mlgle.store import write_text

START, END = "<!-- results:start -->", "<!-- results:end -->"
FIGURES = ("fig13_mlgle_msd.png", "fig14_diffusion.png", "fig09_nacf.png")
LOTO_FIGURE = "fig_d_vs_t.png"
BUDGET_FIGURE = "fig_budget.png"


def loto_block(loto_csv: Path) -> str:
    """The LOTO table (``mlgle loto report``'s loto.csv) in a README-wide form: D with 95 % CI
    and the error vs D_MD for the per-temperature and the conditioned model at each unseen T."""
    table = pl.read_csv(loto_csv)

    def d(row: dict, name: str, err: str | None = None) -> str:
        text = f"{row[name]:.5f} {row[name + '_ci95']}"
        return text if err is None else f"{text}, {row[err]:+.1f} %"

    lines = [
        "| T* (trained on) | D_MD | ML-GLE per-T (trained at T*) | conditioned, α β interpolated "
        "| conditioned, α β refit | NACF band per-T / cond. |",
        "|---|---|---|---|---|---|",
    ]
    for row in table.iter_rows(named=True):
        cells = [
            f"{row['T']:g} ({row['trained_on']})",
            d(row, "D_md"),
            d(row, "D_mlgle_per_T", "err_per_T_pct"),
            d(row, "D_mlgle_cond", "err_cond_pct"),
            d(row, "D_mlgle_cond_refit", "err_cond_refit_pct"),
            f"{row['nacf_band_per_T']:.2f} / {row['nacf_band_cond']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def regime_block(metrics: dict) -> str:
    """One line per temperature: MSD/6t over D_MD and the local slope at T_train / 2, and the
    generated NACFs' band share per mode (from metrics.json)."""
    lines = [
        "| T | MSD/(6 t D_MD) at T_train/2 | local slope at T_train/2 "
        "| NACF band share, modes 1..k |",
        "|---|---|---|---|",
    ]
    for temp, row in metrics["temperatures"].items():
        if "msd_over_6Dt_at_half_train" not in row:
            continue
        shares = " ".join(f"{v:.2f}" for v in row.get("nacf_band_fraction_per_mode", []))
        lines.append(
            f"| {float(temp):g} | {row['msd_over_6Dt_at_half_train']:.3f} "
            f"| {row['slope_at_half_train']:.3f} | {shares} |"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


def _optional(path: Path, intro: str) -> list[str]:
    """``intro`` and the markdown table at ``path``, or nothing where that stage did not run."""
    return ["", intro, "", path.read_text().strip()] if path.exists() else []


def results_block(reports: Path) -> str:
    """Markdown for the README from reports/metrics.json, table1.md and repro_wallclock.json."""
    metrics = json.loads((reports / "metrics.json").read_text())
    table = (reports / "table1.md").read_text().strip()
    summary = metrics["summary"]
    mares = [
        f"{label} {100 * summary[key]:.1f} %"
        for key, label in (
            ("mare_short", "model-free D_short"),
            ("mare_gle", "GLE fit"),
            ("mare_linear", "linear AR"),
            ("mare_mlgle", "ML-GLE"),
        )
        if key in summary
    ]
    regime = regime_block(metrics)
    wallclock = reports / "repro_wallclock.json"
    took = "Wall-clock not recorded (run `make repro`)."
    if wallclock.exists():
        timing = json.loads(wallclock.read_text())
        how = timing.get("how", "`make repro`")
        took = (
            f"Wall-clock: {timing['seconds'] / 60:.1f} min ({how})."
            if "seconds" in timing
            else f"Wall-clock not recorded ({how})."
        )
        if timing.get("parts"):
            took += " The stages' own time: " + ", ".join(
                f"{part} {seconds / 60:.1f} min" for part, seconds in timing["parts"].items()
            ) + " (`reports/repro_wallclock.json` has every stage)."
    figures = "\n".join(f"![{name}](docs/figures/{name})" for name in FIGURES)
    loto = []
    if (reports / "loto" / "loto.csv").exists():
        loto = [
            "",
            "Leave one temperature out (`loto-*` stages): one model conditioned on T, trained "
            "without T*, predicts D at T*:",
            "",
            loto_block(reports / "loto" / "loto.csv"),
            "",
            f"![{LOTO_FIGURE}](docs/figures/{LOTO_FIGURE})",
        ]
    return "\n".join(
        [
            START,
            "Produced by `make repro` and copied by `make readme-results` "
            "(D in σ²/τ, reduced LJ units; CIs are 95 %). D_short is the estimate without any "
            "model: Eq. 35 on the training frames alone, lags [T_train/4, T_train/2].",
            "",
            table,
            "",
            f"MARE vs D_MD: {', '.join(mares)}; generated NACFs inside the MD 99 % "
            f"Mélard-Roy band on {100 * summary['nacf_band_fraction_mean']:.0f} % of lags. {took}",
            *(["", "Where the training window ends (the regime evidence):", "", regime]
              if regime else []),
            *_optional(reports / "baselines.md", "What the network buys, mode by mode "
                       "(`reports/baselines.md`: linear AR(m) against ML-GLE):"),
            *_optional(reports / "budget" / "budget.md", "D error against the MD budget "
                       "(`reports/budget/`):"),
            *(["", f"![{BUDGET_FIGURE}](docs/figures/{BUDGET_FIGURE})"]
              if (reports / "budget" / BUDGET_FIGURE).exists() else []),
            "",
            figures,
            *loto,
            END,
        ]
    )


def update_readme(root: Path) -> None:
    readme = root / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme}: the markers {START} and {END} are missing")
    block = results_block(root / "reports")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    (root / "docs" / "figures").mkdir(parents=True, exist_ok=True)
    for name in FIGURES:
        shutil.copy2(root / "reports" / "figures" / name, root / "docs" / "figures" / name)
    for optional in (root / "reports" / "loto" / LOTO_FIGURE,
                     root / "reports" / "budget" / BUDGET_FIGURE):  # fmt: skip
        if optional.exists():
            shutil.copy2(optional, root / "docs" / "figures")
    write_text(readme, head + block + tail)


if __name__ == "__main__":
    update_readme(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
