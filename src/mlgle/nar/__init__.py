"""The NAR mode models of Secs. 3.1-3.4 and Alg. 1: ``frames`` (the rotated frame of a window),
``windows`` (sliding windows of m + 1 frames), ``model`` (the MLP) and ``gru``, ``train``
(batched k-mode training), ``bundle`` (model files), ``device`` (cpu | cuda), ``generate``
(Alg. 1), ``linear`` (the linear AR(m) baseline), ``conditioned`` (one model conditioned on T,
beyond the paper)."""
