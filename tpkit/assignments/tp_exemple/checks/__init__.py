"""Hidden checks of the worked example, one module per section of its notebook; importing this package
registers them (and their repairs) in :mod:`tpkit.checks.registry`."""
from tpkit.assignments.tp_exemple.checks import section1_softmax, section2_descente  # noqa: F401
