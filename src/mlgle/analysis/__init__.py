"""Numbers from trajectories: the MD reference (``md``), generated vs MD (``evaluation``), and the
tables (Table 1, metrics.json, the LOTO table). Computes, never draws."""
