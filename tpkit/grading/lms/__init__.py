"""Learning management systems the grading exchanges files with; one package per LMS (``moodle``).

An LMS package brings its submissions into ``submitted/`` (``zip_import``), maps its ids to nbgrader
student ids (``ids``) and fills its grade file (``worksheet``, ``exports``); the grading itself knows
nothing of it beyond :mod:`tpkit.grading.collect` and the export step.
"""
