"""What the run's summary and class report say when the submissions of a run are not isolated from
one another: CPU and memory (no cgroup), disk (no folder caps without root), system calls (no seccomp).

Apart from each of those mechanisms (:mod:`tpkit.grading.cgroups`, :mod:`tpkit.grading.quota`,
:mod:`tpkit.grading.seccomp`) because it speaks of all three, to people.
"""
from __future__ import annotations


def isolation_notice(sandbox: bool = True) -> str:
    """One French line for the run's summary and class report when the submissions of this run
    are not isolated from one another in CPU, memory, disk or system calls; "" when they are (and
    without the sandbox, whose own warning says more)."""
    if not sandbox:
        return ""
    from tpkit.grading import cgroups, quota, seccomp
    from tpkit.grading.watchdog import CPU_HOG_WINDOW_S
    missing = []
    if cgroups.backend() is None:
        missing.append("processeur et mémoire partagés entre les rendus (pas de cgroup utilisable ; "
                       f"un noyau qui dépasse sa part du processeur plus de {CPU_HOG_WINDOW_S:g} s "
                       "est arrêté)")
    if not quota.available():
        missing.append("dossiers de travail sans limite de taille ni de nombre de fichiers (correction "
                       "lancée sans les droits root)")
    if seccomp.program() is None:
        missing.append("appels système non filtrés (libseccomp ou pyseccomp absent)")
    if not missing:
        return ""
    return "ATTENTION : rendus partiellement isolés les uns des autres : " + " ; ".join(missing) + "."
