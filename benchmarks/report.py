"""``reports/benchmarks.md`` from ``reports/benchmarks.json``: the machine, every measurement as
median (min-max) over repeats, and the issue's targets met or not."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

MARKDOWN = "benchmarks.md"

# (section, description, value getter, comparison, target)
TARGETS: list[tuple[str, str, Callable[[dict], float], str, float]] = [
    (
        "generation",
        "generation vs per-mode MultivariateNormal loop, paper shape",
        lambda r: r["generation"]["speedup_vs_loop"],
        ">=",
        15.0,
    ),
    (
        "generation",
        "1e5 steps, time / FLOP-limit time (issue 16; issue 7 asked <= 1.5)",
        lambda r: r["generation"]["steady_state"]["time_over_flop_limit"]["median"],
        "<=",
        1.3,
    ),
    (
        "training",
        # Wall clock: at the stage's 2 threads the CPU clock also counts OpenMP's spin-waits.
        "training step (batch 128, train.threads), time / FLOP-limit time, wall clock",
        lambda r: r["training"]["time_over_flop_limit"]["wall"]["median"],
        "<=",
        2.0,
    ),
    (
        "md_vs_generation",
        "MD / generation cost per chain per Δt, default melt",
        lambda r: r["md_vs_generation"]["cost_ratio_per_chain_dt"],
        ">=",
        10.0,
    ),
    (
        "end_to_end",
        "MD / ML-GLE route wall-clock, both run, same chain-frames for D (default system)",
        lambda r: r["end_to_end"].get("md_over_mlgle", {}).get("median"),
        ">=",
        5.0,
    ),
]


def _s(summary: dict[str, Any], scale: float = 1.0, digits: int = 3) -> str:
    """'median (min-max, n=repeats)' of a spread() dict."""
    med, lo, hi = (summary[k] * scale for k in ("median", "min", "max"))
    n = f", n={summary['repeats']}" if "repeats" in summary else ""
    return f"{med:.{digits}g} ({lo:.{digits}g}-{hi:.{digits}g}{n})"


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets with the measured values (None where the section did not run)."""
    rows = []
    for section, what, get, op, goal in TARGETS:
        value = get(report) if section in report else None
        met = None if value is None else (value >= goal if op == ">=" else value <= goal)
        rows.append({"target": what, "measured": value, "goal": f"{op} {goal:g}", "met": met})
    return rows


def _target_rows(report: dict[str, Any]) -> list[str]:
    rows = ["| target | measured | goal | met |", "|---|---|---|---|"]
    for t in targets(report):
        if t["measured"] is None:
            rows.append(f"| {t['target']} | not run | {t['goal']} | - |")
        else:
            met = "yes" if t["met"] else "NO"
            rows.append(f"| {t['target']} | {t['measured']:.3g} | {t['goal']} | {met} |")
    return rows


def _machine(m: dict[str, Any]) -> list[str]:
    return [
        f"- CPU: {m['cpu_model']} ({m['cores']} cores, capability {m['cpu_capability']}, "
        f"BLAS {m['blas']})",
        f"- torch threads: {m['torch_threads']}; torch {m['torch']}, numpy {m['numpy']}, "
        f"Python {m['python']}",
        f"- 1-min load average when the run started: {m['load_average_1min']:.2f} "
        "(above ~0.5 means something else was running)",
    ]


def _generation(g: dict[str, Any]) -> list[str]:
    sh = g["shape"]
    lines = [
        "## 1. Generation (Alg. 1)",
        f"Shape: {sh['trajectories']} trajectories x {sh['modes']} modes, m = {sh['history']}, "
        f"hidden {sh['hidden']}, latent {sh['latent']}, {sh['dtype']}. FLOPs counted: the "
        "network's matmuls, 2·Σ in·out over the layers 3m → hidden → latent → 9, x modes x "
        f"trajectories = {g['flops_per_step'] / 1e9:.4g} GFLOP per step (bias, activations, "
        "frames, rotation and sampling not counted). FLOP limit: the faster float32 backend's "
        f"{g['matmul_peak_size']}³ matmul (MKL `torch.mm`, oneDNN) in the same repeats.",
        "",
        "| clock | `generate_modes` ms/step | per-mode loop ms/step | FLOP limit ms/step "
        "(peak GFLOP/s: best; MKL; oneDNN) | speed-up vs loop | steady-state fraction of "
        "FLOP limit | 1e5 steps / FLOP-limit time |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, c in (("wall", g), ("CPU", g["cpu_time"])):
        by = c["matmul_peak_gflops_by_backend"]
        st = c.get("steady_state", {})
        lines.append(
            f"| {name} | {_s(c['fast_ms_per_step'])} | {_s(c['reference_ms_per_step'])} | "
            f"{_s(c['flop_limit_ms_per_step'])} ({_s(c['matmul_peak_gflops'], digits=3)}; "
            + "; ".join(_s(v) for v in by.values())
            + f") | {_s(c['speedup_vs_loop_spread'])} | "
            f"{_s(st['fraction_of_flop_limit']) if st else '-'} | "
            f"{_s(st['time_over_flop_limit']) if st else '-'} |"
        )
    st = g.get("steady_state")
    lines += [
        "",
        f"- `generate_modes_reference` is the per-mode loop (one single-mode network and one "
        f"`MultivariateNormal` per mode and step), same weights and seed, alternating; "
        f"{sh['steps_per_call']} steps per call. Loop time / FLOP-limit time, the most any "
        f"implementation of this network could gain over it: "
        f"{_s(g['speedup_bound_at_flop_limit'])}.",
    ]
    if st:
        lines.append(
            f"- paper protocol ({st['paper_protocol_steps']:.0e} steps), projected from the "
            f"steady-state rate ({sh['steady_state_steps_per_call']} steps per call): "
            f"{_s(st['projected_seconds'])} s vs FLOP limit {_s(st['flop_limit_seconds'])} s"
        )
    if "network_alone_ms_per_step" in g:
        outside = st.get("outside_network_ms_per_step") if st else None
        lines.append(
            f"- the network alone ({g.get('matmul_backend', '?')} backend, the same steps on a "
            f"fixed input, nothing around it): {_s(g['network_alone_ms_per_step'])} ms per step"
            f" = **{_s(g['network_alone_over_flop_limit'])} x the FLOP-limit time**, the floor "
            "of any loop around this network"
            + (f"; everything else (frames, rotation, sampling, ring buffer, output) "
               f"{_s(outside)} ms per step in the steady state" if outside else "")
        )  # fmt: skip
    issue = g.get("issue_shape")
    if issue:
        lines.append(
            f"- issue's earlier shape ({issue['shape']['trajectories']} trajectories, same "
            f"network): fast {_s(issue['fast_ms_per_step'])} ms, loop "
            f"{_s(issue['reference_ms_per_step'])} ms per step (wall), speed-up "
            f"{_s(issue['speedup_vs_loop_spread'])}, "
            f"{_s(issue['fraction_of_flop_limit_short'])} of the FLOP limit"
        )
    return [*lines, ""]


def _md(r: dict[str, Any]) -> list[str]:
    gen = r["generation_seconds_per_chain_dt"]
    lines = [
        "## 2a. MD vs generation, per chain and Δt (one core each)",
        "| system | MD CPU s per chain per Δt | MD wall core-s | atom-steps per core-s | "
        "MD / generation (CPU; wall) |",
        "|---|---|---|---|---|",
    ]
    for key, ratio_key in (("md_default", "default_melt"), ("md_100_beads", "beads_100")):
        md = r[key]
        lines.append(
            f"| {md['chains']} x {md['beads']} beads, {md['steps_per_dt']} steps per Δt, "
            f"{md['ranks']} rank | {_s(md['cpu_seconds_per_chain_dt'])} | "
            f"{_s(md['core_seconds_per_chain_dt'])} | {_s(md['atom_steps_per_core_second'])} | "
            f"**{r['ratios']['cpu'][ratio_key]:.3g}**; {r['ratios']['wall'][ratio_key]:.3g} |"
        )
    lines += [
        f"| paper system (100 beads, {r['paper_steps_per_dt']} steps per Δt), extrapolated "
        f"| | | | **{r['ratios']['cpu']['paper_system']:.3g}**; "
        f"{r['ratios']['wall']['paper_system']:.3g} |",
        "",
        f"Generation (section 1, steady state, paper shape): {gen['cpu']:.3g} CPU s "
        f"({gen['wall']:.3g} wall core-s) per chain per Δt. Extrapolation: "
        f"{r['paper_extrapolation']}.",
        "",
    ]
    return lines


def _pct(summary: dict[str, Any], sign: str = "+") -> str:
    """'median (min..max)' of a spread() of fractions, in per cent (signed unless sign="")."""
    f = f"{sign}.1%"
    return f"{summary['median']:{f}} ({summary['min']:{f}} .. {summary['max']:{f}})"


def _e2e(e: dict[str, Any]) -> list[str]:
    if "pairs" not in e:  # a run of the benchmark from before both routes ran for real
        return [
            "## 2b. End to end: an earlier run that extrapolated MD; run `make bench-e2e` again",
            "",
        ]
    stages = list(e["pairs"][0]["mlgle"]["stage_seconds"])
    md_stages = list(e["pairs"][0]["md"]["stage_seconds"])

    def cell(p: dict[str, Any], route: str, name: str) -> str:
        return f"{p[route]['stage_seconds'][name]:.3g}"

    head = (
        "| pair (seed, first) | ML-GLE: " + " / ".join(stages) + " | ML-GLE s | MD: "
        + " / ".join(md_stages) + " | MD s | MD / ML-GLE | load before -> after (ML-GLE; MD) |"
    )
    rows = [head, "|---|---|---|---|---|---|---|"]
    for p in e["pairs"]:
        loads = "; ".join(
            f"{p[r]['load_average_1min']['before']:.2f} -> {p[r]['load_average_1min']['after']:.2f}"
            for r in ("mlgle", "md")
        )
        rows.append(
            f"| {p['seed']}, {p['order'][0]} | "
            + " / ".join(cell(p, "mlgle", s) for s in stages)
            + f" | {p['mlgle']['seconds']:.0f} | "
            + " / ".join(cell(p, "md", s) for s in md_stages)
            + f" | {p['md']['seconds']:.0f} | {p['md_over_mlgle']:.3g} | {loads} |"
        )
    quick = " **(--quick: tiny sizes, numbers not meaningful)**" if e.get("quick") else ""
    lines = [
        f"## 2b. End to end, both routes run{quick}, T = {e['temperature']}: ML-GLE (T_train = "
        f"{e['t_train']} + T_val = {e['t_val']} frames of MD, {e['trajectories']} chains x "
        f"{e['generated_frames']} generated frames) vs MD to {e['md_frames']} frames of "
        f"{e['chains']} chains (the same chain-frames for Eq. 35 over lags {e['d_window']}); "
        f"MD {e['md_ranks']} ranks, torch {e['torch_threads']} threads",
        "",
        *rows,
        "",
        f"- **MD / ML-GLE wall-clock: {_s(e['md_over_mlgle'])}** (above 1: ML-GLE is faster); "
        f"break-even T_gen from the medians: {e['break_even_frames']:.4g} frames",
        f"- load: 1-min load average {_s(e['load_average_1min'], digits=2)} over the runs' starts "
        f"and ends; LAMMPS CPU share {_s(e['lammps_cpu_share'], digits=2)} (1 when its ranks "
        "have their cores to themselves)",
    ]
    if e.get("reference"):
        ref, err, ci = e["reference"], e["D_errors"], e["ci95_rel_halfwidth"]
        lines += [
            f"- reference D_MD = {ref['D']:.4g} (95 % CI {ref['ci95'][0]:.4g}-{ref['ci95'][1]:.4g})"
            f" from {ref['frames']} frames x {ref['chains']} chains ({ref['store']}, the "
            "pipeline's own MD: another seed)",
            "- D errors vs the reference, median (range) over the pairs: ML-GLE "
            f"{_pct(err['mlgle'])}, GLE {_pct(err['gle'])}, MD route {_pct(err['md'])}; 95 % CI "
            "half-widths: ML-GLE "
            f"{_pct(ci['mlgle'], '')}, MD {_pct(ci['md'], '')}",
        ]
    est = e.get("paper_estimate")
    if est:
        ml, md = est["mlgle"], est["md"]
        lines += [
            "- **estimate at the paper's sizes** (params/paper.yaml on this machine, each stage "
            "scaled from this run's cost per unit of work: MD bead-steps, network FLOPs, "
            f"chain-frames): ML-GLE {est['mlgle_seconds'] / 3600:.3g} h ("
            + ", ".join(f"{k} {v / 3600:.2g}" for k, v in ml.items())
            + f") vs MD {est['md_seconds'] / 3600:.3g} h to {est['md_frames']} frames ("
            + ", ".join(f"{k} {v / 3600:.2g}" for k, v in md.items())
            + f"): **MD / ML-GLE {est['md_over_mlgle']:.3g}**; MD to the profile's T_sim = "
            f"{est['t_sim_frames']} frames alone: {est['md_to_t_sim_seconds'] / 3600:.3g} h",
        ]
    return [*lines, ""]


def _e2e_history(history: list[dict[str, Any]]) -> list[str]:
    rows = [
        "Earlier end-to-end runs (replaced by the one above):",
        "",
        "| started | MD / ML-GLE | MD was | ML-GLE route s | MD route s (extrapolated: to "
        "T_sim) | load average (extrapolated: at the start; run: the highest) |",
        "|---|---|---|---|---|---|",
    ]

    def num(value: Any, digits: str = ".0f") -> str:
        return "-" if value is None else format(value, digits)

    for h in history:
        ratio = h.get("md_over_mlgle", h.get("speedup_vs_md"))
        md = h.get("md_route_seconds", h.get("md_to_t_sim_seconds"))
        rows.append(
            f"| {h.get('started_at') or '-'} | {num(ratio, '.3g')} | "
            f"{h.get('md_is', 'extrapolated')} | {num(h.get('mlgle_route_seconds'))} | "
            f"{num(md)} | {num(h.get('load_average_1min'), '.2f')} |"
        )
    return [*rows, ""]


def _msd(m: dict[str, Any]) -> list[str]:
    sh = m["shape"]
    return [
        f"## 3. MSD and ACF vs tidynamics ({sh['trajectories']} x {sh['frames']} x 3, "
        f"{sh['dtype']})",
        "| | mlgle s | tidynamics s | speed-up (target >= 1.5x) | max rel. diff |",
        "|---|---|---|---|---|",
        f"| MSD | {_s(m['mlgle_seconds'])} | {_s(m['tidynamics_seconds'])} | "
        f"{_s(m['speedup_spread'])} {_met(m['speedup_spread']['median'] >= 1.5)} | "
        f"{m['max_rel_diff']:.2g} |",
        f"| ACF | {_s(m['acf']['mlgle_seconds'])} | {_s(m['acf']['tidynamics_seconds'])} | "
        f"{_s(m['acf']['speedup_vs_tidynamics'])} "
        f"{_met(m['acf']['speedup_vs_tidynamics']['median'] >= 1.5)} | "
        f"{m['acf']['max_rel_diff']:.2g} (abs {m['acf']['max_abs_diff']:.2g}) |",
        "",
        f"MSD against direct sums at lags {m['direct_check']['lags']}: max rel. error "
        f"{m['direct_check']['mlgle_max_rel_err']:.2g} (mlgle), "
        f"{m['direct_check']['tidynamics_max_rel_err']:.2g} (tidynamics); 1-min load average "
        f"{m['load_average_1min']['start']:.2f} -> {m['load_average_1min']['end']:.2f}.",
        "",
    ]


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _windows(w: dict[str, Any]) -> list[str]:
    sh = w["shape"]
    return [
        f"## 4. Windows ({sh['chains']} chains x {sh['frames']} frames x {sh['modes']} mode, "
        f"m = {sh['history']}; {w['window_bytes'] / 2**20:.0f} MiB of windows)",
        f"- concatenation in a loop: {_s(w['concatenation_seconds'])} s",
        f"- `sliding_windows` view: {_s(w['view_seconds'])} s; made contiguous: "
        f"{_s(w['view_materialised_seconds'])} s",
        f"- speed-up (same contiguous array): **{_s(w['speedup_vs_concatenation'])}**; view "
        f"only: {_s(w['speedup_view_only'])}",
        "",
    ]


def _memory(m: dict[str, Any]) -> list[str]:
    t, g = m["train"], m["generate"]

    def generation(runs: list[dict[str, Any]], p: dict[str, Any], label: str) -> list[str]:
        peaks = "; ".join(f"{r['steps']} steps: {r['peak_bytes'] / 2**20:.0f} MiB" for r in runs)
        return [
            f"- generation {label} ({runs[0]['trajectories']} trajectories, m = "
            f"{runs[0]['history']}): {peaks}; projected for {p['steps']:.0e} steps: "
            f"**{p['projected_peak_bytes'] / 2**30:.2f} GiB** (measured growth "
            f"{p['measured_bytes_per_step'] / 2**10:.1f} KiB per step; the float32 output is "
            f"{p['output_bytes'] / 2**30:.2f} GiB)",
        ]

    lines = [
        f"## 5. Peak memory ({m['method']})",
        f"- training, one epoch ({t['chains']} chains, m = {t['history']}, T_train = "
        f"{t['t_train']}, batch {t['batch_size']}): peak {_s(t['peak_mib'])} MiB, of which the "
        f"process before training {_s(t['baseline_mib'])} MiB",
        *generation(g["runs"], g["paper_protocol"], "in memory (before issue 13)"),
    ]
    if "streamed" in g:
        s = g["streamed"]
        lines += generation(s["runs"], s["paper_protocol"], "streamed to disk (mlgle generate)")
    if "evaluate" in m:
        e = m["evaluate"]
        target = "met" if e["peak_bytes"] <= 1.5 * 2**30 else "not met"
        lines.append(
            f"- evaluation of a generated ensemble {tuple(e['generated_shape'])} against MD "
            f"{tuple(e['md_shape'])}, memory-mapped ({e['file_bytes'] / 2**30:.2f} GiB of "
            f"files; {e['in_memory_float64_bytes'] / 2**30:.2f} GiB as the float64 arrays the "
            f"evaluation held before): measured peak **{e['peak_bytes'] / 2**30:.2f} GiB** "
            f"(1.5 GiB target {target}), of which the process before "
            f"{e['baseline_bytes'] / 2**20:.0f} MiB; {e['seconds']:.0f} s"
        )
    return [*lines, ""]


def _training(t: dict[str, Any]) -> list[str]:
    sh = t["shape"]
    lines = [
        f"## Training throughput ({sh['modes']} modes, m = {sh['history']}, batch {sh['batch']}, "
        f"{sh['threads']} thread(s))",
        f"- batched: {_s(t['batched'])} samples·modes/s; loop over one-mode models: "
        f"{_s(t['loop'])}; speed-up {_s(t['speedup_batched_vs_loop'])}",
    ]
    if "time_over_flop_limit" in t:
        f, r = t["flop_limit"], t["time_over_flop_limit"]
        lines.append(
            f"- batched step (forward, backward, Adam): {_s(f['ms_per_step']['cpu'])} ms CPU "
            f"against a FLOP-limit time of {_s(f['flop_limit_ms_per_step']['cpu'])} ms "
            f"(3 x {f['flops_per_step'] / 3e6:.0f} MFLOP forward at the measured matmul peak): "
            f"**{_s(r['cpu'])}x** the limit by CPU clock, {_s(r['wall'])}x by wall clock "
            "(target <= 2x)"
        )
    if "windows" in t:
        w = t["windows"]
        kept = (
            f"rotated once up front ({w['precomputed_mib']:.0f} MiB, {w['precompute_s']:.2f} s), "
            "as the trainer does"
            if w["precomputed"]
            else "rotated per batch (over the trainer's PRECOMPUTE_BYTES)"
        )
        lines.append(
            f"- data: {w['chains']} chains x {w['frames']} frames, {w['samples']} windows per "
            f"mode, {kept}"
            + (
                f"; the whole step against rotating per batch (same run, alternating): "
                f"**{_s(t['speedup_precomputed_vs_rotating'])}x** faster"
                if "speedup_precomputed_vs_rotating" in t
                else ""
            )
        )
    if "parts_ms_per_step" in t:
        parts = t["parts_ms_per_step"]
        lines.append(
            "- where a step's time goes (wall ms, the same steps phase by phase): "
            + ", ".join(f"{name} {_s(v)}" for name, v in parts.items())
            + "; forward + backward alone are "
            f"**{_s(t['forward_backward_over_flop_limit'])}x** the FLOP-limit time"
        )
    return [*lines, ""]


def render(report: dict[str, Any]) -> str:
    """The Markdown report of a benchmarks.json dict (sections that ran)."""
    lines = ["# Benchmarks", ""]
    if "machine" in report:
        lines += [*_machine(report["machine"]), ""]
    if report.get("quick"):
        lines += ["**--quick run: tiny sizes, numbers not meaningful.**", ""]
    lines += ["## Targets (issues 7 and 16)", *_target_rows(report), ""]
    sections = [
        ("generation", _generation),
        ("md_vs_generation", _md),
        ("end_to_end", _e2e),
        ("msd", _msd),
        ("windows", _windows),
        ("memory", _memory),
        ("training", _training),
    ]
    for key, render_section in sections:
        if key in report:
            lines += render_section(report[key])
        if key == "end_to_end" and report.get("end_to_end_history"):
            lines += _e2e_history(report["end_to_end_history"])
    notes = report.get("notes")
    if notes:
        lines += ["## Notes", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def write_markdown(out: Path, report: dict[str, Any]) -> Path:
    """Write ``out/benchmarks.md`` atomically; return its path. (``report["targets"]`` is
    refreshed by the callers through :func:`targets`.)"""
    path = out / MARKDOWN
    tmp = out / f".{MARKDOWN}.tmp"
    tmp.write_text(render(report))
    os.replace(tmp, path)
    return path
