"""Kit for the autograded TP "Réseaux de neurones avec PyTorch".

Sub-packages: ``checks`` (hidden grading logic called from test cells),
``grading`` (class grading workflow), plus small helpers (``paths``, ``datasets``).
"""
