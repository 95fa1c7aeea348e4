"""The stages: one module per ``mlgle`` subcommand (``loto/`` one per ``mlgle loto`` action).

Only :mod:`mlgle.cli` calls them. Each writes exactly the outputs it is given (the outs that
dvc.yaml declares), atomically, and reads params through :class:`mlgle.config.Params`.
"""
