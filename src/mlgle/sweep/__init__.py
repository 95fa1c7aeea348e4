"""Optuna ablation studies (Secs. 4.4-4.5, Figs. 10, 11, 17, Appendix C): ``mlgle sweep``.

Modules: :mod:`~mlgle.sweep.spec` (samplers, pruners, grid points of a study from
:class:`mlgle.config.StudySpec`), :mod:`~mlgle.sweep.data` (the MD references, D_MD),
:mod:`~mlgle.sweep.objectives` (trial -> metrics), :mod:`~mlgle.sweep.queue` (storage, the grid
queue, worker processes), :mod:`~mlgle.sweep.results` (the trials table). The stage is
:mod:`mlgle.pipeline.sweep`.

Studies are data: ``sweep.studies.<name>`` in params.yaml names the metric, the direction, the
sampler (``grid`` | ``tpe`` | ``random``, seeded with ``sweep.seed``) and the search space
``{param: {type: int|float|categorical, low, high, step, log, choices}}``. Optional keys:

- ``objective``: ``gle`` (space over ``k``, ``t_fit``) or ``train`` (space over ``train.*`` keys);
  inferred from the space when absent.
- ``pruner``: ``none`` (default), ``median`` or ``threshold``, or a mapping
  ``{type: median, n_startup_trials: 2, n_warmup_steps: 1}``; training studies report the
  per-epoch mean validation NLL (``trial.report``) and are pruned from the training callback.
- ``overrides``: ``train.*`` values for this study only (a modest budget, e.g. ``{epochs: 5}``);
  ``modes``: train only the slowest n modes; ``temperature``: the training temperature (default
  the middle of ``md.temperatures``); ``generate_frames`` (0 = skip) and ``generate_trajectories``:
  a generated ensemble per trial for D_ML-GLE; ``n_trials``: default for non-grid samplers.

Objectives call the same core as the stages: ``GLEFit`` (Eq. 27) and ``stats`` (Eq. 35) for the
GLE studies, ``fit_modes`` / ``generate_modes`` for the training studies. D_MD per temperature
(Eq. 35 over ``evaluate.d_window`` of the full MD run, Student-t 95 % CI over chains) is computed
once per study invocation. Each trial's value is the study's metric; every other number goes to
``trial.set_user_attr`` and is a column of the exported table ``<out>/<study>.csv|.parquet``
(one row per trial); training curves also go to ``<study>_curves.csv|.parquet`` (long format).
The figure is ``<out>/<study>.png``.

Budget: a training study trains with ``params.train`` overlaid by its ``overrides``, on its
``modes`` slowest modes. The default params.yaml keeps that small (6 epochs on t_train = 400
frames, 1-2 modes: minutes on 2 cores). For the full budget drop them, e.g.
``dvc exp run -S 'sweep.studies.fig17_batch.overrides={}' -S sweep.studies.fig17_batch.modes=12``,
or give a profile its own ``sweep.studies`` (overlaid as a whole):
``mlgle sweep --study fig17_batch --params params.yaml --params params/paper.yaml``.

Storage. ``sweep.storage: ""`` (or ``--storage ""``) stores the study in an Optuna journal file,
``<out>/<study>.journal`` (``JournalStorage(JournalFileBackend(path))``): an append-only log
guarded by a file lock, so several worker processes on one machine append concurrently without
the "database is locked" failures SQLite gives under concurrent writers. A value with ``://`` is
an RDB URL (``postgresql://user@host/db`` for workers on several hosts, ``sqlite:///file.db`` for
one writer) passed to ``optuna.storages.RDBStorage``; any other value is a journal file path.
Browse any of them with ``optuna-dashboard <journal file or URL>``.

Resuming. The Optuna study name is ``<study>-<fingerprint>``, a hash of the study mapping, the
params it depends on and the modes stores' metadata: rerunning with the same inputs continues the
study (``load_if_exists``), changed inputs start a fresh study beside the old one.

Grid studies run exactly once per grid point. Optuna's GridSampler maps trial number n < grid
size to grid point n, but a worker that keeps asking after the grid is handed out, and every
trial number past the grid size, draws an unfinished point again (duplicates under concurrency),
and a FAILED trial counts as visited and is never redone. So the invoking process enqueues each
grid point that has no COMPLETE, PRUNED, RUNNING or WAITING trial (FAILED points are retried),
in a seeded shuffled order, at most ``n_trials`` of them; workers only pop WAITING trials (an
atomic state change in both storages) and stop when none is left. Further hosts sharing an RDB
storage join with ``--n-trials 0``: they work off the queue without adding to it. RUNNING trials
of a killed run are left alone unless ``--requeue-running`` marks them FAILED and queues them again.
Non-grid studies call ``study.optimize`` with their share of ``n_trials`` per worker (worker i is
seeded ``sweep.seed + i``).

Workers. ``workers=W`` starts W processes ('spawn': no torch or OpenMP state crosses a fork), each
opening its own storage and, with tracking, its own MLflow client. One parent MLflow run per
invocation (``sweep <study>``); every trial is a nested run with its params, metrics and, for
training studies, the per-epoch curves (step = epoch).
"""
