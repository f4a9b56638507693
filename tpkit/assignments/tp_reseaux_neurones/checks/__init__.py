"""One hidden check per graded question, with the repair that keeps later questions fair.

A check questions the notebook through `ns`, a :class:`tpkit.witness.Witness`: it reads snapshots
of variables (tensors, arrays, numbers, lists), calls the student's functions on inputs it draws
itself, recomputes what decides the grade with its own torch, and raises CheckFailed with a French
diagnostic. It never holds an object of the student's.

Rules every check follows (issue #13):

* **Judge every submission.** For each graded run, what must hold whatever the seed and the path is
  checked always: the imposed values where the statement imposes them (read from the source
  notebook's given lines, :mod:`tpkit.assignments.tp_reseaux_neurones.imposed`), a fresh initialisation as asked, the optimiser
  asked (plain SGD, lr = step), the data it was trained on (the cost of the final parameters on X, Y
  agrees with the last reported cost), reported values equal to recomputed ones. An exact replay of
  the statement's seeded recipe is only an extra that can fail a run, never a gate that lets one
  skip the other conditions.
* **One notion of a value** (:mod:`tpkit.checks.tools`): `as_number` / `require_number` (floats,
  numpy scalars, 0-d and size-1 arrays and tensors of any real dtype), `number_list` (lists of
  those; tensors still attached to the graph refused), `Witness.figure_lines` (line, step, log and
  scatter plots).
* **Repairs never change another question's yardstick.** When a check fails, its *repair* puts
  reference values in place of the faulty variables so that the student's later cells run on sound
  inputs and a mistake costs one question only (the way Gradescope stubs prerequisites). A later
  check therefore compares the student's own values with each other, or with the reference run on
  the student's accepted functions, at a tolerance that every accepted variant meets
  (`thresholds.REPLAY_RTOL`: float32 costs, clamp instead of + 1e-16), so that a repaired value and
  the student's own give the same verdict. Repairs happen only in the hidden part of the tests, which exists only when grading.

The checks of tp_reseaux_neurones, one module per section of the notebook, each named after its
question (``check_q2_pred``, ``repair_q2_pred``) and registered in :mod:`tpkit.checks.registry`;
helpers shared with other sections and assignments are in :mod:`tpkit.checks.common`.
"""
from tpkit.assignments.tp_reseaux_neurones.checks import (section1_data, section2_cost, section3_descent, section4_mlp,  # noqa: F401
                                  section5_minibatch)
