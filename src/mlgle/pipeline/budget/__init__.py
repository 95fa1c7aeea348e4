"""`mlgle budget cheap|mlgle|report`: D error against the MD budget (beyond the paper).

``cheap``: D_short and D_GLE over independent segments for every budget and temperature
(seconds); ``mlgle``: one trained ML-GLE at one budget and temperature, through the same train,
fit-gle, generate and evaluate code as the default study; ``report``: the table and figure,
with the default study's own ML-GLE as the point at its T_train.
"""
