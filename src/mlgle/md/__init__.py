"""Reference MD: the Kremer-Grest melt in LAMMPS (``melt``, ``lammps_input``) and the readers
that bring external trajectories into the same store (``readers``: dump, DCD, NetCDF, meltBR)."""
