"""nbgrader configuration of the course (read by every nbgrader command run from this folder)."""
import os

c = get_config()  # noqa: F821 (injected by traitlets)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "rn_pytorch"
c.CourseDirectory.db_assignments = [dict(name="tp_reseaux_neurones")]

# French stubs in the student release.
c.ClearSolutions.code_stub = {"python": "# VOTRE CODE ICI\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "VOTRE RÉPONSE ICI"

# Per-cell time limit: the slowest cell of the reference solution takes about 2 s.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True

# A Python/torch warning written to stderr must not zero a correct test cell.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"(?:Warning|warnings\.warn)"

# Long outputs (a print inside a 1000-iteration loop) are cut in autograded notebooks and feedback.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 40
