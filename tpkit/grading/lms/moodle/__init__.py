"""Moodle: submissions zip import, grading worksheet, feedback zip; the grading calls it through its entry
in :data:`tpkit.grading.lms.LMS`.

``ids``           participant id <-> nbgrader student id (``p<participant id>``), the roster
``zip_import``    "Download all submissions" zip -> ``submitted/<student id>/<assignment>/``
``worksheet``     the grading worksheet's Grade and Feedback comments fields, every other byte kept
``csvbytes``      the byte-span CSV reader the worksheet needs
``feedback_zip``  feedback pages for "Upload multiple feedback files in a zip"
``exports``       the worksheet as an nbgrader export plugin, the French comment, the course's zip
``fixtures``      Moodle-like zips and worksheets for tests and examples
"""
from tpkit.grading.lms.moodle.feedback_zip import submission_prefix, write_feedback_zip
from tpkit.grading.lms.moodle.ids import (ROSTER_FIELDS, ROSTER_NAME, RosterEntry, participant_id_from_student_id,
                                          read_roster, student_id_for)
from tpkit.grading.lms.moodle.worksheet import WorksheetReport, check_worksheet, fill_worksheet, plain_text_to_html
from tpkit.grading.lms.moodle.zip_import import (IgnoredEntry, ImportedSubmission, ImportProblem, MoodleImport,
                                                 import_moodle_zip, zip_participants)

__all__ = ["ROSTER_NAME", "ROSTER_FIELDS", "ImportedSubmission", "ImportProblem", "IgnoredEntry", "MoodleImport",
           "RosterEntry", "WorksheetReport", "import_moodle_zip", "fill_worksheet", "read_roster",
           "student_id_for", "participant_id_from_student_id", "plain_text_to_html", "zip_participants",
           "check_worksheet", "submission_prefix", "write_feedback_zip"]
