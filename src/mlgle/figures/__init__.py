"""Figures, one home per figure: ``md`` (C.o.M MSD, Fig. 6), ``paper`` (Figs. 5, 7, 9, 12-16,
18), ``sweeps`` (Figs. 10, 11, 17, history m), ``loto`` (D(T)); ``common`` holds the theme and the
atomic PNG writer. Draws from arrays that :mod:`mlgle.analysis` computed."""
