"""Hidden checks of the bonus assignment `tp_soyez_curieux` (section 6 of the statement and a small
convolutional network), registered in the same registry as the main TP's checks.

Each experiment is a function of the student's; the check calls it on a small configuration it draws
itself, receives the trained models as handles and recomputes, on its side, what was asked (layer
sizes, activation, test accuracy, train loss). The repairs put the reference MLP, entrainer and CNN
in place, so that a faulty class or training function costs its own question only.

Each check and repair is named after the grade id of its cell, as in every assignment
(``check_q6_mlp``, ``repair_q6_mlp``); the id carries the section of the statement (``q6_``).
"""
from tpkit.assignments.tp_soyez_curieux.checks import section6_experiences  # noqa: F401
