"""Class grading workflow: collect -> pre-check -> autograde -> feedback -> exports.

``python -m tpkit.grading`` (``__main__``) runs it; one module per step:

``collect``        submissions from ``submitted/``, the bundled examples or a Moodle zip
``precheck``       file and cell checks against the gradebook, repairs, staging (+ ``RepairGradedCells``)
``pipeline``       the run: parallel grading threads, one gradebook writer at a time, results
``kernels``        warm per-submission kernels (scratch and exchange folders), time and memory limits
``sandbox``        bubblewrap around each kernel: own user and namespaces, no view of the course, limits
``trusted``        hidden checks run here, the kernel answering through the witness protocol
``traces``         flags for submissions that tried something against the grader or the system
``preprocessors``  nbgrader preprocessors of the kit (limited, trusted execution; serialized gradebook
                   access; output byte caps; student-safe feedback outputs)
``converters``     nbgrader's Autograde / GenerateFeedback as the run uses them; ``FeedbackExporter``,
                   the French feedback page of every entry (also the formgrader, via nbgrader_config.py)
``export``         nbgrader export plugins: grades CSV with status, Moodle worksheet
``outputs``        writes the exports of the class (from the gradebook); ``report``: terminal progress
                   (elapsed, time left) and summary
``classreport``    the class report page and figures; ``similarity``: pairs of very similar submissions
``runlock``        one grading or export run at a time on a course
``moodle``         Moodle submissions zip import, grading worksheet export, feedback zip for Moodle
``csvsafe``        CSV text cells that a spreadsheet never runs as formulas.
"""
