"""Hidden checks of tp_pima_jouet (Pima and the 2-D toy data), one module per part of the notebook.

Same interface as the main TP's checks: one check per graded cell, registered in the same registry,
questioning the notebook through a :class:`tpkit.witness.Witness`. The student writes functions meant
for any number of classes `p`; each check calls them on inputs it draws itself (other sizes, other
`p`) and recomputes the expected answer. Repairs put reference definitions in the notebook when a
check fails, so that a mistake costs its own question only. Each check and repair is named after the
grade id of its cell (``check_j2_pred``, ``repair_j2_pred``); the id carries the part (``j1_`` … ``j4_``).
"""
from tpkit.assignments.tp_pima_jouet.checks import (section1_data, section2_regression, section3_mlp,  # noqa: F401
                                                    section4_toy)
