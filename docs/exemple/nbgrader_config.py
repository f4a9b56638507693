"""nbgrader configuration of the worked example's course (docs/authoring.md): the kit's own
configuration, with this folder as the course and tp_exemple as its only assignment. Every command
takes it with --root docs/exemple (python -m tpkit.release --root docs/exemple)."""
import os

c = get_config()  # noqa: F821 (injected by traitlets)
here = os.path.dirname(os.path.abspath(__file__))
load_subconfig(os.path.join(here, "..", "..", "nbgrader_config.py"))  # noqa: F821 (injected by traitlets)
c.CourseDirectory.root = here
c.CourseDirectory.db_assignments = [dict(name="tp_exemple")]
