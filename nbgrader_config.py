"""nbgrader configuration of the course (read by every nbgrader command run from this folder)."""
import os

c = get_config()  # noqa: F821 (injected by traitlets)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "rn_pytorch"
c.CourseDirectory.db_assignments = [dict(name=n) for n in ("tp_reseaux_neurones", "tp_pima_jouet", "tp_soyez_curieux")]

# French stubs in the student release.
c.ClearSolutions.code_stub = {"python": "# VOTRE CODE ICI\nraise NotImplementedError(\"cellule à compléter : remplacez cette ligne par votre code\")"}
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
# ... and so are big ones, in bytes (one line can be 300 MB; caps: LimitOutputBytes' traits), right after
# execution, before the grades are saved (tpkit.grading adds it to the feedback too).
c.Autograde.autograde_preprocessors = [
    "nbgrader.preprocessors.Execute",
    "tpkit.grading.preprocessors.LimitOutputBytes",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Grading (tpkit.grading; `python -m tpkit.grading` applies the same repairs in its pre-check).
# Plain `nbgrader autograde` too repairs duplicated, re-labelled, deleted or altered graded cells
# instead of stopping the whole run on a copy-pasted cell (nbgrader #1083), and says so in French.
# plain `nbgrader autograde` and the formgrader's Autograde button would run the checks inside the
# student's kernel: refused before anything is removed or written, with the command that grades in the
# trusted, sandboxed mode (tpkit.grading.converters.TrustedGradingOnly)
c.Autograde.exporter_class = "tpkit.grading.converters.TrustedGradingOnly"

c.Autograde.sanitize_preprocessors = [
    "tpkit.grading.preprocessors.RepairGradedCells",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    # OverwriteCells that restores the hidden tests of a pristine test cell without a "checksum has
    # changed" warning (an edited test cell is still reported and restored)
    "tpkit.grading.preprocessors.HiddenTestsOverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.OverwriteCells.add_missing_cells = True  # read by HiddenTestsOverwriteCells too
c.OverwriteCells.missing_cell_notification = (
    "Cette cellule ({cell_id}) manquait dans le rendu : elle a été rétablie pour la correction.\n\n")

# Feedback: every entry (the kit's grading command, `nbgrader generate_feedback`, the formgrader's
# Generate Feedback button) writes the kit's French page, without the hidden tests' source or
# tracebacks (tpkit.grading.feedback_exporter.FEEDBACK_PREPROCESSORS: same list, checked by a test). The
# exporter imposes the French template (the formgrader asks for nbgrader's own) and the safety.
c.GenerateFeedback.exporter_class = "tpkit.grading.feedback_exporter.FeedbackExporter"
c.GenerateFeedback.preprocessors = [
    "tpkit.grading.preprocessors.GetGradesFr",
    "tpkit.grading.preprocessors.StudentSafeOutputs",
    "nbgrader.preprocessors.ClearHiddenTests",
    "tpkit.grading.preprocessors.LimitOutputBytes",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Formgrader: under each written answer, its model answer and rubric for the grader (tpkit.rubrics).
# Formgrader pages only: the feedback exporter drops it, the students' pages show the criteria alone.
c.HTMLExporter.preprocessors = ["tpkit.rubrics.GraderRubrics"]
