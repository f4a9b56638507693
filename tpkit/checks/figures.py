"""Remember the figures a notebook draws, so a check can see a curve after Jupyter's inline
backend has displayed and closed it. Uses matplotlib's own `figure.hooks` setting, which
pyplot calls on every new figure (pl.plot, pl.figure, pl.subplots, ...)."""
from __future__ import annotations

import numpy as np

_HOOK = "tpkit.checks.figures:record"
_FIGURES: list = []


def install() -> None:
    import matplotlib
    hooks = list(matplotlib.rcParams["figure.hooks"])
    if _HOOK not in hooks:
        matplotlib.rcParams["figure.hooks"] = hooks + [_HOOK]


def record(fig) -> None:
    _FIGURES.append(fig)


def recorded_lines():
    """The y data of every line of every recorded figure, as float arrays."""
    for fig in _FIGURES:
        for ax in fig.axes:
            for line in ax.get_lines():
                try:
                    yield np.asarray(line.get_ydata(), dtype=np.float64).ravel()
                except (TypeError, ValueError):
                    continue
