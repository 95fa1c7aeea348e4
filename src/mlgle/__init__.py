"""mlgle: machine-learning-enhanced Generalized Langevin Equation for polymer melts."""

__version__ = "0.1.0"
