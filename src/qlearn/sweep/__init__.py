"""Sweeps and tuning on Ray Tune: a sweep file (:mod:`qlearn.sweep.spec`), its trials (each a
configuration's seeds in lockstep, :mod:`qlearn.sweep.trial`), the search (:mod:`qlearn.sweep.tuner`,
which imports Ray) and what it writes (:mod:`qlearn.sweep.summary`)."""

from qlearn.sweep.spec import Param, Sweep, load_sweep

__all__ = ["Param", "Sweep", "load_sweep"]
