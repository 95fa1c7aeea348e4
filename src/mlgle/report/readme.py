"""Copy the default study's results into the README (``make readme-results``), never by hand.

Replaces the block between the ``results`` markers in README.md with Table 1, the MAREs and the
measured wall-clock from reports/, and copies a few figures to docs/figures/ (tracked by git).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

START, END = "<!-- results:start -->", "<!-- results:end -->"
FIGURES = ("fig13_mlgle_msd.png", "fig14_diffusion.png", "fig09_nacf.png")


def results_block(reports: Path) -> str:
    """Markdown for the README from reports/metrics.json, table1.md and repro_wallclock.json."""
    metrics = json.loads((reports / "metrics.json").read_text())
    table = (reports / "table1.md").read_text().strip()
    summary = metrics["summary"]
    wallclock = reports / "repro_wallclock.json"
    took = "Wall-clock not recorded (run `make repro`)."
    if wallclock.exists():
        timing = json.loads(wallclock.read_text())
        how = timing.get("how", "`make repro`")
        took = f"Wall-clock: {timing['seconds'] / 60:.1f} min ({how})."
    figures = "\n".join(f"![{name}](docs/figures/{name})" for name in FIGURES)
    return "\n".join(
        [
            START,
            "Produced by `make repro` and copied by `make readme-results` "
            "(D in σ²/τ, reduced LJ units; CIs are 95 %).",
            "",
            table,
            "",
            f"MARE vs D_MD: GLE fit {100 * summary['mare_gle']:.1f} %, "
            f"ML-GLE {100 * summary['mare_mlgle']:.1f} %; generated NACFs inside the MD 99 % "
            f"Mélard-Roy band on {100 * summary['nacf_band_fraction_mean']:.0f} % of lags. {took}",
            "",
            figures,
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
    readme.write_text(head + block + tail)


if __name__ == "__main__":
    update_readme(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
