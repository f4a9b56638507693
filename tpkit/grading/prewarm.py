"""Imported by the workers' fork server only (the last of :data:`tpkit.grading.forkserver.PRELOAD`): fills
the caches every worker would otherwise fill again (:func:`tpkit.grading.forkserver.prewarm`)."""
from tpkit.grading import forkserver

forkserver.prewarm()
