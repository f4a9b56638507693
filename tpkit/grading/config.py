"""Every setting of a grading run, once: :class:`TpkitGrading`, a traitlets ``Configurable`` (as
nbgrader's own), section ``c.TpkitGrading.<name>`` of the course's ``nbgrader_config.py``.

Each setting is one trait: its default, its help, its command-line flag and French help (metadata
``flag``, ``aide``) and its bounds (``floor``, ``ceiling``, ``unit``: refused with a French line, exit
status 2, before anything runs). :func:`build` makes the settings of a run once, with the precedence
*defaults < nbgrader_config.py < the flags actually given*; :func:`check` refuses a value under which
every kernel would fail; :func:`add_arguments` gives the grading command its flags. The kernels' limits
are derived from these settings in one place (:func:`tpkit.grading.kernels.settings_for`).

The names used before (``c.LimitedExecute.time_limit``, ``memory_limit``, ``c.TpkitDask.*``) are
refused with a French line that gives the new one (:data:`RENAMED`): a limit written under an old name
would otherwise be silently ignored. Light to import (traitlets only): the command checks its
arguments before nbgrader and torch load.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

from traitlets import Any, Bool, Integer, List, TraitError, Unicode
from traitlets.config import Config, Configurable

#: Ceilings (a limit in bytes past 2**63 overflows every rlimit: each kernel would fail to start).
MAX_MEGABYTES = 1 << 20
MAX_SECONDS = 7 * 24 * 3600

_SETUP = "chaque notebook serait arrêté pendant le démarrage de son noyau et sa cellule d'initialisation " \
         "(jusqu'à 11 s)"


class TpkitGrading(Configurable):
    """The settings of a grading run (see the module docstring). The floors are measured, not guessed:
    on 2 busy cores, sandboxed warm kernels (forked from the zygote: RLIMIT_DATA counts the imports they
    inherit), each TP's setup cell plus a torch product and a figure fails at 420 MB and runs at 430 MB;
    the reference solution of the course's main assignment runs whole at 500 MB; the setup cell takes 1 s warm,
    8-11 s cold counting the kernel's start-up; the grading process's imports take 315 MB of
    RLIMIT_DATA (docs/threat-model.md)."""

    workers = Integer(0, help="Submissions graded at once, each by a worker process of its own (0: one "
                      "per core).").tag(
        config=True, flag="--workers", metavar="N", floor=0,
        aide="rendus corrigés en parallèle (par défaut : nombre de cœurs)")
    cell_timeout = Integer(None, allow_none=True, help="Seconds per cell (None: nbgrader's "
                           "c.Execute.timeout).").tag(
        config=True, flag="--cell-timeout", metavar="S", floor=5, ceiling=MAX_SECONDS, unit="s",
        what="la cellule d'initialisation (imports de torch, numpy, matplotlib) serait arrêtée",
        aide="secondes par cellule (par défaut : Execute.timeout de nbgrader_config.py)")
    time_limit = Integer(300, help="Seconds for a whole notebook (0: no limit); the sandbox's CPU-time "
                         "limit is derived from it. The reference solution takes 40-56 s.").tag(
        config=True, flag="--time-limit", metavar="S", floor=20, ceiling=MAX_SECONDS, unit="s", what=_SETUP,
        aide="secondes par notebook (par défaut : c.TpkitGrading.time_limit de nbgrader_config.py, sinon {})")
    memory_limit = Integer(4096, help="Memory of each kernel, MB (0: no RLIMIT_DATA): its RLIMIT_DATA, its "
                           "cgroup's memory, its address space beyond an idle kernel's "
                           "(kernels.settings_for).").tag(
        config=True, flag="--memory-limit", metavar="MB", floor=1024, ceiling=MAX_MEGABYTES, unit="Mo",
        negative=True, what="un noyau (torch, numpy, matplotlib importés, puis le TP)",
        aide="mémoire par noyau, en Mo (par défaut : c.TpkitGrading.memory_limit de nbgrader_config.py, "
             "sinon {})")
    # a feedback page or a notebook blown up by a hostile submission then stops with MemoryError (that
    # student's grading fails) instead of taking the machine
    grader_memory_limit = Integer(8192, help="RLIMIT_DATA of the grading run's coordinator, MB (0: none; "
                                  "kernels and workers are processes of their own).").tag(
        config=True, flag="--grader-memory-limit", metavar="MB", floor=1024, ceiling=MAX_MEGABYTES, unit="Mo",
        negative=True, what="le processus de correction (nbgrader, torch)",
        aide="mémoire de ce processus de correction lui-même, en Mo, noyaux non compris (ce sont des "
             "processus à part, limités par --memory-limit) (par défaut : {} ; 0 : sans limite)")
    sandbox = Bool(True, help="Kernels run in the bubblewrap sandbox (False: unsandboxed, said in the "
                   "summary).").tag(
        config=True, flag="--sans-bac-a-sable", negate=True,
        aide="exécuter les noyaux SANS bac à sable (seulement là où les espaces de noms utilisateur sont "
             "interdits ; le code des étudiant·es peut alors lire et modifier les fichiers du cours)")
    preload = List(Unicode(), ["numpy", "torch", "matplotlib.pyplot"],
                   help="Modules a kernel imports before the notebook runs (not bound in its namespace: "
                   "those whose import is slow).").tag(config=True)
    # each submission's worker process (tpkit.grading.worker) is boxed by three limits; past one, that
    # submission alone fails, with the reason in French
    worker_memory_limit = Integer(4096, help="RLIMIT_DATA of a submission's worker, MB (its share of the "
                                  "imported modules included: about 600 MB).").tag(config=True)
    worker_cpu_limit = Integer(120, help="RLIMIT_CPU of a worker, seconds of its own CPU (its kernel's "
                               "excluded: the reference notebook costs a worker about 2 s).").tag(config=True)
    worker_wall_limit = Integer(None, allow_none=True, help="Seconds a worker may run before the coordinator "
                                "kills it (None: time_limit + worker_wall_margin).").tag(config=True)
    worker_wall_margin = Integer(120, help="Kernel start, checks after the last cell, feedback: added to "
                                 "time_limit for worker_wall_limit.").tag(config=True)
    dask_scheduler = Unicode(None, allow_none=True, help="Grade on a Dask cluster: its scheduler's address "
                             "(tcp://host:8786) or local:N (docs/scale.md); None: this machine.").tag(
        config=True, flag="--dask-scheduler", metavar="ADRESSE",
        aide="corriger sur un cluster Dask : l'adresse de son ordonnanceur (tcp://hote:8786), ou local:N pour "
             "un LocalCluster de N processus (par défaut : c.TpkitGrading.dask_scheduler ou "
             "c.TpkitGrading.dask_cluster de nbgrader_config.py, sinon cette machine ; docs/scale.md)")
    dask_cluster = Any(None, allow_none=True, help="A Dask cluster object, or a function that makes one "
                       "(dask-jobqueue's SLURMCluster...), used when dask_scheduler is not set; never sent to "
                       "the workers.").tag(config=True)
    dask_course_root = Unicode(None, allow_none=True, help="The course folder on the cluster's machines "
                               "(None: the same path as here).").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        #: where each setting came from: "flag", "config" (absent: the default); see :func:`source_name`
        self.sources: dict = {}

    # ---------------------------------------------------------------- derived values

    def worker_wall(self) -> int:
        """Seconds a submission's worker may run."""
        return int(self.worker_wall_limit or (self.time_limit + self.worker_wall_margin))

    def kernel_threads(self) -> int:
        """torch/BLAS threads of each kernel: the cores shared by the workers."""
        cores = os.cpu_count() or 1
        return max(1, cores // (self.workers or cores))

    def values(self) -> dict:
        return {name: getattr(self, name) for name in setting_names()}

    def copy(self, **changes) -> "TpkitGrading":
        """These settings with ``changes`` (names checked: a typo is a TraitError, not a new attribute)."""
        unknown = set(changes) - set(setting_names())
        if unknown:
            raise TraitError(f"unknown grading settings: {sorted(unknown)}")
        other = TpkitGrading(**{**self.values(), **changes})
        other.sources = dict(self.sources)
        return other

    def __reduce__(self):
        # what a worker or a cluster machine needs (a cluster object stays with the coordinator)
        values = {k: v for k, v in self.values().items() if k != "dask_cluster"}
        return _restore, (values, dict(self.sources))


def _restore(values: dict, sources: dict) -> TpkitGrading:
    settings = TpkitGrading(**values)
    settings.sources = sources
    return settings


def setting_names() -> list:
    """The settings, in the order of the class (that of the checks and of --help)."""
    return list(TpkitGrading.class_own_traits(config=True))


def flag_names() -> list:
    """The settings the command line can give (their argparse ``dest`` is their name)."""
    return [name for name, t in TpkitGrading.class_own_traits(config=True).items() if t.metadata.get("flag")]


def default(name: str):
    return TpkitGrading.class_own_traits()[name].default()


class SettingError(Exception):
    """A setting that cannot work, or a setting's old name; ``str()`` is one French sentence."""


#: Old names in nbgrader_config.py -> the setting that replaced them.
RENAMED = {("LimitedExecute", "time_limit"): "time_limit", ("LimitedExecute", "memory_limit"): "memory_limit",
           ("LimitedExecute", "preload"): "preload", ("LimitedExecute", "sandbox"): "sandbox",
           ("TpkitDask", "scheduler"): "dask_scheduler", ("TpkitDask", "cluster"): "dask_cluster",
           ("TpkitDask", "course_root"): "dask_course_root"}


def course_config(root) -> Config:
    """The course's nbgrader_config.py as a traitlets ``Config``, rooted at the course folder."""
    from traitlets.config.loader import PyFileConfigLoader
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    cfg.CourseDirectory.root = str(root)
    return cfg


def build(root, given: Optional[Mapping] = None, cfg: Optional[Config] = None) -> TpkitGrading:
    """The settings of a run on the course ``root``: the defaults, over them ``c.TpkitGrading.*`` of its
    nbgrader_config.py (``cfg``: already read), over those the flags given (``given``: name -> value,
    None for a flag not given). :class:`SettingError` (French) for an old name or a value of the wrong
    type; an unreadable configuration gives the defaults (the run then says so itself)."""
    if cfg is None:
        try:
            cfg = course_config(root)
        except Exception:
            cfg = Config()
    for (section, old), new in RENAMED.items():
        if section in cfg and old in cfg[section]:
            raise SettingError(f"c.{section}.{old} dans nbgrader_config.py : ce réglage s'appelle maintenant "
                               f"c.TpkitGrading.{new} : renommez-le")
    configured = dict(cfg.get("TpkitGrading", {}))
    traits = TpkitGrading.class_own_traits(config=True)
    settings = TpkitGrading()
    sources = {}
    for name, value in configured.items():
        if name not in traits:
            raise SettingError(f"c.TpkitGrading.{name} dans nbgrader_config.py : réglage inconnu (réglages : "
                               f"{', '.join(traits)})")
        try:
            if isinstance(value, bool) and isinstance(traits[name], Integer):
                raise TraitError("a bool")  # (True is an int for Python, not a number of seconds)
            setattr(settings, name, value)
        except TraitError:
            kind = "nombre entier" if isinstance(traits[name], Integer) else type(traits[name]).__name__
            raise SettingError(f"c.TpkitGrading.{name} = {value!r} dans nbgrader_config.py : il faut un "
                               f"{kind}") from None
        sources[name] = "config"
    for name, value in (given or {}).items():
        if value is not None:
            setattr(settings, name, value)
            sources[name] = "flag"
    settings.sources = sources
    return settings


def source_name(settings: TpkitGrading, name: str) -> str:
    """How a refusal names a setting: its flag, or its line of nbgrader_config.py."""
    if settings.sources.get(name) == "config":
        return f"c.TpkitGrading.{name} (nbgrader_config.py) ="
    return TpkitGrading.class_own_traits()[name].metadata.get("flag") or f"c.TpkitGrading.{name}"


def check(settings: TpkitGrading, cfg: Optional[Config] = None) -> None:
    """:class:`SettingError` (French) for a value under which every kernel would fail (and zero the
    class), with the unit said (``--memory-limit 10`` meant 10 Go?); ``cfg``: the course's configuration,
    whose per-cell timeout is checked too when no ``cell_timeout`` is given."""
    traits = TpkitGrading.class_own_traits(config=True)
    for name, trait in traits.items():  # negative values first, as argparse would
        value = getattr(settings, name)
        if "floor" in trait.metadata and (name == "workers" or trait.metadata.get("negative")) \
                and value is not None and value < 0:
            raise SettingError(f"{source_name(settings, name)} {value} : il faut un nombre entier ≥ 0")
    for name, trait in traits.items():
        unit, value = trait.metadata.get("unit"), getattr(settings, name)
        if unit == "Mo":
            _megabytes(source_name(settings, name), value, trait.metadata["floor"], trait.metadata["what"])
        elif unit == "s":
            _seconds(source_name(settings, name), value, trait.metadata["floor"], trait.metadata["what"])
    least = traits["cell_timeout"].metadata["floor"]
    timeout = cfg.Execute.timeout if cfg is not None and "timeout" in cfg.get("Execute", {}) else None
    # nbclient: None or -1, no per-cell limit (the notebook's time limit still holds)
    if settings.cell_timeout is None and timeout is not None and timeout != -1 and timeout < least:
        raise SettingError(f"c.Execute.timeout = {timeout} dans nbgrader_config.py : trop court, la cellule "
                           f"d'initialisation serait arrêtée ; il faut au moins {least} s : corrigez-le, ou "
                           "donnez --cell-timeout S")


def _megabytes(name, value, least, what):
    if value and value < least:  # 0: no limit
        hint = f" ; pour {value} Go : {name} {value * 1024}" if least <= value * 1024 <= MAX_MEGABYTES else ""
        raise SettingError(f"{name} {value} : {what} a besoin d'au moins {least} Mo (la valeur est en Mo"
                           f"{hint} ; 0 : sans limite)")
    if value and value > MAX_MEGABYTES:  # (bytes past 2**63: every rlimit would overflow)
        raise SettingError(f"{name} {value} : au plus {MAX_MEGABYTES} Mo (la valeur est en Mo ; 0 : sans limite)")


def _seconds(name, value, least, what):
    if value is not None and value < least:
        hint = f" ; pour {value} min : {name} {value * 60}" if value > 0 and value * 60 >= least else ""
        raise SettingError(f"{name} {value} : trop court, {what} ; il faut au moins {least} s (la valeur est en "
                           f"secondes{hint})")
    if value is not None and value > MAX_SECONDS:
        raise SettingError(f"{name} {value} : au plus {MAX_SECONDS} s (une semaine)")


def add_arguments(parser) -> None:
    """The settings' flags, default None (not given: nbgrader_config.py or the default decides)."""
    for name, trait in TpkitGrading.class_own_traits(config=True).items():
        meta = trait.metadata
        if not meta.get("flag"):
            continue
        aide = meta["aide"].format(trait.default()) if "{}" in meta["aide"] else meta["aide"]
        if meta.get("negate"):
            parser.add_argument(meta["flag"], dest=name, action="store_const", const=not trait.default(),
                                default=None, help=aide)
        elif isinstance(trait, Integer):
            parser.add_argument(meta["flag"], dest=name, type=int, default=None, metavar=meta["metavar"],
                                help=aide)
        else:
            parser.add_argument(meta["flag"], dest=name, default=None, metavar=meta["metavar"], help=aide)


def given_flags(settings: TpkitGrading) -> list:
    """The command-line arguments that give the flags given again (to resume an interrupted run)."""
    out = []
    for name, trait in TpkitGrading.class_own_traits(config=True).items():
        if settings.sources.get(name) != "flag":
            continue
        flag = trait.metadata["flag"]
        out += [flag] if trait.metadata.get("negate") else [flag, str(getattr(settings, name))]
    return out


def dask_target(settings: TpkitGrading, root: Path) -> tuple:
    """(target, course folder on the workers) of a run on a Dask cluster (:mod:`tpkit.grading.cluster`):
    ``dask_scheduler``, else ``dask_cluster``; target None: the workers run on this machine."""
    target = settings.dask_scheduler or settings.dask_cluster or None
    return target, str(settings.dask_course_root or root)
