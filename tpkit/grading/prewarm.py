"""Imported by the workers' fork server only (the last of :data:`tpkit.grading.worker.PRELOAD`): fills
the caches every worker would otherwise fill again (:func:`tpkit.grading.worker.prewarm`)."""
from tpkit.grading import worker

worker.prewarm()
