"""The figures a notebook drew: matplotlib's ``figure.hooks`` call :func:`record` for every new
figure (the inline backend closes them after display), so that the agent can read their curves and
panels (``op_figures``, ``op_figure_axes``) and a re-run can forget the ones it drew.
"""
#: Matplotlib collections that fill a region of the plane (contourf, pcolormesh, tricontourf).
AREA_KINDS = ("QuadContourSet", "ContourSet", "TriContourSet", "QuadMesh", "PolyQuadMesh")

#: Figures created since the agent was installed (matplotlib's ``figure.hooks`` calls `record`).
FIGURES = []


def record(fig):
    FIGURES.append(fig)


def install_figure_hook():
    """Remember every new matplotlib figure (the inline backend closes them after display)."""
    import matplotlib
    hook = f"{__name__}:record"
    hooks = list(matplotlib.rcParams["figure.hooks"])
    if hook not in hooks:
        matplotlib.rcParams["figure.hooks"] = hooks + [hook]
