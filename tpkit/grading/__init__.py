"""Class grading workflow: collect -> pre-check -> autograde -> feedback -> exports.

``moodle``: Moodle submissions zip import and grading worksheet export.
"""
