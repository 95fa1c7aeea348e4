"""mlgle: machine-learning-enhanced Generalized Langevin Equation for polymer melts.

The paper map: where each numbered equation, the algorithm, each figure and the table of the
paper (``../shared/paper/ml-gle-paper.md``) is implemented. The docstring of the defining symbol
starts with its label ("Eq. 35: ..."); every other mention refers to it. Tested.

==========  ====================================================
Eq. 13      :meth:`mlgle.gle.GLEModel.generate_com`
Eq. 14      :func:`mlgle.modes.positions_from_modes`
Eq. 15      :func:`mlgle.modes.normal_modes`
Eq. 17      :func:`mlgle.nar.frames.rotation_frames`
Eq. 18      :func:`mlgle.nar.frames.to_frame`
Eq. 21      :func:`mlgle.nar.model.gaussian_nll`
Eq. 22      :meth:`mlgle.nar.model.ModeNetworks.forward`
Eq. 23      :func:`mlgle.nar.model.sample_increment`
Eq. 24      :func:`mlgle.nar.frames.from_frame`
Eq. 25      :meth:`mlgle.nar.windows.Standardisation.ratio`
Eq. 26      :meth:`mlgle.gle.GLEModel.msd_model`
Eq. 27      :func:`mlgle.gle.solve_eq27`
Eq. 33      :func:`mlgle.stats.fit_kohlrausch`
Eq. 34      :func:`mlgle.stats.melard_roy_band`
Eq. 35      :func:`mlgle.stats.diffusion_coefficient`
Eq. 36      :func:`mlgle.stats.msd_per_trajectory`
Alg. 1      :func:`mlgle.nar.generate.generate_modes`
Fig. 5      :func:`mlgle.figures.paper.draw_fig05`
Fig. 6      :func:`mlgle.figures.md.nacf_fits`
Fig. 7      :func:`mlgle.figures.paper.draw_fig07`
Fig. 9      :func:`mlgle.figures.paper.draw_fig09`
Fig. 10     :func:`mlgle.figures.sweeps.gle_k`
Fig. 11     :func:`mlgle.figures.sweeps.gle_tfit`
Fig. 12     :func:`mlgle.figures.paper.draw_fig12`
Fig. 13     :func:`mlgle.figures.paper.draw_fig13`
Fig. 14     :func:`mlgle.figures.paper.draw_fig14`
Fig. 15     :func:`mlgle.figures.paper.draw_fig15`
Fig. 16     :func:`mlgle.figures.paper.draw_fig16`
Fig. 17     :func:`mlgle.figures.sweeps.training`
Fig. 18     :func:`mlgle.figures.paper.draw_fig18`
Table 1     :func:`mlgle.analysis.tables.table1`
==========  ====================================================
"""

__version__ = "0.1.0"


def paper_map() -> dict[str, str]:
    """{"Eq. 35": "mlgle.stats.diffusion_coefficient", ...} parsed from this docstring."""
    rows = {}
    for line in (__doc__ or "").splitlines():
        if ":func:`" in line or ":meth:`" in line:
            label, _, ref = line.partition(":")
            rows[label.strip()] = ref.split("`")[1]
    return rows
