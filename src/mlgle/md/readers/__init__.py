"""External trajectories into the project's stores (DESIGN.md, ``md/readers.py``).

Readers for LAMMPS text dumps (``dump custom``), DCD (``dump dcd``), LAMMPS NetCDF dumps (AMBER
convention) and the paper's public meltBR tensors (Sec. 4.2). Every position reader returns
unwrapped bead positions (frames, chains, beads, 3) float32, beads ordered along each chain; the
meltBR reader returns normal modes (frames, chains, modes, 3) float32 in the DCT/(2N) convention
of Eq. (14) (mode 0 the C.o.M). Malformed input raises ``ReaderError`` naming the file, the frame
and the field. ``import_trajectory`` writes a store only through ``store.write_trajectory`` /
``store.write_modes``, which are atomic, so a failed import never leaves a half-written store.

Atom order: atoms are sorted by (mol, id); each molecule is one chain and its beads follow the
atom ids, as in the data files LAMMPS polymer builders write. DCD has no molecule ids: atoms are
taken chain-major in id order (``chains * beads`` atoms).
"""
