"""« TP exemple », the worked example of docs/authoring.md: a softmax, a cost on a batch, a few steps of
gradient descent on toy points generated in the notebook, and one written answer.

Not an assignment of this course: its folder is docs/exemple/ (a course of its own: nbgrader_config.py,
source/, release/), so the class's release never changes with it. The commands take it with
``--root docs/exemple``; tests/test_exemple.py releases and grades it in a temporary course."""
from tpkit.assignments import Assignment, Number

ASSIGNMENT = Assignment(
    name="tp_exemple",
    order=90,                       # after the course's own assignments (never the default)
    package=__name__,
    aliases=("exemple_resolu",),   # its modules use no short name; a word no other module writes
    checks=f"{__name__}.checks",
    reference=f"{__name__}.reference",
    thresholds=f"{__name__}.thresholds",
    calibration=f"{__name__}.calibration",
    probes=f"{__name__}.probes",
    mistakes=f"{__name__}.mistakes",
    variants=f"{__name__}.variants",
    experiment_cells=(),
    seeded_cells=("setup",),
    typical=("softmax_colonnes", "descente_gradients_accumules"),
    catalogue_doc="docs/exemple/catalogue.md",
    catalogue_test="tests/test_exemple.py",
    thresholds_doc="docs/authoring.md",
    prerequisites={"e2_descente": ("e1_softmax", "e1_cout")},
    model_answers=(
        Number("cout_final", "e2_descente", "lst_loss[-1]", fmt="{:.3f}"),
        Number("taux_test", "e2_descente", "taux_test", fmt="{:.3f}"),
    ),
)
