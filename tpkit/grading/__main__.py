"""Grade a class in one command.

    python -m tpkit.grading --examples                 # the example submissions shipped with the kit
    python -m tpkit.grading                            # everything in submitted/<student>/<assignment>/
    python -m tpkit.grading --moodle-zip Z.zip [--moodle-worksheet W.csv]
    python -m tpkit.grading --export-only [--moodle-worksheet W.csv]   # after manual grading
    python -m tpkit.grading --students S1,S2           # regrade some students, keep the others
    python -m tpkit.grading --dask-scheduler tcp://H:8786   # on the machines of a Dask cluster (docs/scale.md)

Exports always cover the whole class of the gradebook: grading a subset updates those students and
keeps the others (grades, statuses, times).

Writes autograded/, feedback/<student>/<assignment>/<assignment>.html, exports/grades.csv (and
exports/moodle_worksheet.csv), exports/grading_report.json, exports/logs/<student>.log (exports/<assignment>/
for an assignment other than the main one); prints a line
per submission and a summary. A grading run first moves the previous exports into exports/precedent/
and writes the new ones at its end: after a run that died, exports/ holds no stale grades.csv. Exit status: 0 when the run completed (failed submissions are reported,
not errors), 2 when it could not start (no release, another run in progress, bad arguments), 1 on an
internal error. A bad argument ends with one French line saying what is wrong and what to do
(exit 2, nothing written); an internal error's traceback goes to exports/logs/erreurs.log.
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import resource
import sys
import traceback
import warnings
import zipfile
from pathlib import Path

# jsonschema (imported by nbformat) builds rfc3987_syntax's IRI grammar when it is installed: 1.3 s of
# CPU at each run's start. Notebooks are validated without format checks (their schema uses none):
# the grading command never needs it.
sys.modules.setdefault("rfc3987_syntax", None)

from tpkit import paths  # noqa: E402
from tpkit.environment import venv_on_path  # noqa: E402
from tpkit.grading import options as defaults  # noqa: E402
from tpkit.grading.inert import inert  # noqa: E402


def limit_own_memory(megabytes: int) -> None:
    """Soft ``RLIMIT_DATA`` of this process (0: unchanged). The hard limit is left as it is, so the
    kernels, started later as child processes, can set their own limit (``--memory-limit``) above it;
    a kernel run with ``--memory-limit 0`` keeps this one."""
    if megabytes <= 0:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    wanted = megabytes * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft == resource.RLIM_INFINITY or wanted < soft:
        resource.setrlimit(resource.RLIMIT_DATA, (wanted, hard))


#: The LMS of ``--moodle-zip`` and ``--moodle-worksheet`` (a key of :data:`tpkit.grading.lms.LMS`).
OPTIONS_LMS = "moodle"


def print_error(line: str) -> None:
    """One line on stderr; the student ids and file names it may quote made inert."""
    print(inert(line), file=sys.stderr)


class UsageError(Exception):
    """A bad argument: its French message is printed on one line, exit status 2, nothing written."""


HELP = "aide : python -m tpkit.grading --help"
_ARGPARSE_FR = [
    (re.compile(r"unrecognized arguments: (.*)"), "option(s) inconnue(s) : {0}"),
    (re.compile(r"argument (\S+): invalid int value: '(.*)'"), "{0} : « {1} » n'est pas un nombre entier"),
    (re.compile(r"argument (\S+): not allowed with argument (\S+)"), "{0} et {1} ne vont pas ensemble : choisissez-en un"),
    (re.compile(r"argument (\S+): expected one argument"), "{0} attend une valeur"),
    (re.compile(r"argument (\S+): ignored explicit argument '(.*)'"), "{0} ne prend pas de valeur (« {1} »)"),
]


class FrenchArgumentParser(argparse.ArgumentParser):
    """argparse's errors as :class:`UsageError` in French (no usage block, no English)."""

    def error(self, message):
        for pattern, french in _ARGPARSE_FR:
            m = pattern.fullmatch(message)
            if m:
                raise UsageError(french.format(*m.groups()) + f" ({HELP})")
        raise UsageError(f"{message} ({HELP})")


def parse_args(argv=None) -> argparse.Namespace:
    p = FrenchArgumentParser(prog="python -m tpkit.grading", description=__doc__.split("\n\n")[0],
                             formatter_class=argparse.RawDescriptionHelpFormatter,
                             epilog=__doc__.split("\n\n", 1)[1])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--examples", action="store_true", help="grade the bundled example submissions "
                     "(copied from examples/submissions/ into submitted/)")
    src.add_argument("--submitted", action="store_true", help="grade submitted/ (the default)")
    src.add_argument("--moodle-zip", type=Path, metavar="ZIP", help="import a Moodle 'download all "
                     "submissions' zip into submitted/ and grade it")
    src.add_argument("--export-only", action="store_true", help="no grading: rewrite the feedback and "
                     "exports from the gradebook (e.g. after manual grading)")
    p.add_argument("--moodle-worksheet", type=Path, metavar="CSV", help="Moodle grading worksheet to "
                   "fill (written to exports/moodle_worksheet.csv)")
    p.add_argument("--provisional", action="store_true", help="fill the Moodle worksheet with provisional "
                   "grades too (written answers not graded yet; said in each comment)")
    p.add_argument("--students", metavar="S1,S2", help="grade only these student ids (the exports keep "
                   "the whole class); with --export-only: rewrite only their feedback")
    p.add_argument("--workers", type=int, default=0, metavar="N", help="parallel kernels (default: cores)")
    p.add_argument("--dask-scheduler", metavar="ADRESSE", help="grade on a Dask cluster: its scheduler's address "
                   "(tcp://host:8786), or local:N for a LocalCluster of N processes (default: "
                   "c.TpkitDask.scheduler or c.TpkitDask.cluster of nbgrader_config.py, else this machine; "
                   "docs/scale.md)")
    p.add_argument("--cell-timeout", type=int, metavar="S", help="seconds per cell (default: "
                   "Execute.timeout of nbgrader_config.py)")
    p.add_argument("--time-limit", type=int, default=defaults.TIME_LIMIT_S, metavar="S",
                   help=f"seconds per notebook (default: {defaults.TIME_LIMIT_S})")
    p.add_argument("--memory-limit", type=int, default=defaults.MEMORY_MB, metavar="MB",
                   help=f"memory per kernel (default: {defaults.MEMORY_MB})")
    # a feedback page or a notebook blown up by a hostile submission stops with MemoryError (that
    # student's grading fails) instead of taking the machine
    p.add_argument("--grader-memory-limit", type=int, default=defaults.GRADER_MEMORY_MB, metavar="MB",
                   help="memory of this grading process itself, kernels excluded: they are processes of "
                   f"their own with --memory-limit (default: {defaults.GRADER_MEMORY_MB}; 0: no limit)")
    p.add_argument("--no-feedback", action="store_true", help="skip the HTML feedback")
    p.add_argument("--sans-bac-a-sable", dest="no_sandbox", action="store_true",
                   help="run the kernels WITHOUT the sandbox (only where user namespaces are forbidden; "
                   "the student's code can then read and change the course's files)")
    p.add_argument("--root", type=Path, default=paths.ROOT, help="course directory (default: this kit)")
    p.add_argument("--assignment", default=paths.ASSIGNMENT)
    return p.parse_args(argv)


def _names(items, limit: int = 8) -> str:
    items = sorted(items)
    return ", ".join(items[:limit]) + (f", … ({len(items)} en tout)" if len(items) > limit else "")


def check_arguments(args: argparse.Namespace) -> None:
    """Every argument checked before anything is written; :class:`UsageError` (French) otherwise."""
    root = Path(args.root)
    if not root.is_dir():
        raise UsageError(f"le dossier du cours « {root} » n'existe pas : donnez avec --root le dossier qui "
                         "contient nbgrader_config.py")
    if not (root / "nbgrader_config.py").is_file():
        raise UsageError(f"« {root} » n'est pas un dossier de cours (pas de nbgrader_config.py) : donnez avec "
                         "--root le dossier qui le contient")
    known = {p.name for step in ("source", "release") if (root / step).is_dir()
             for p in (root / step).iterdir() if p.is_dir()}
    if args.assignment not in known:
        if known:
            raise UsageError(f"devoir inconnu : « {args.assignment} » (devoirs de ce cours : {_names(known)}) : "
                             "corrigez --assignment")
        raise UsageError(f"le devoir {args.assignment} n'a pas de version étudiante dans ce cours : "
                         "générez-la d'abord (make release)")
    for name, value, least in (("--workers", args.workers, 0), ("--memory-limit", args.memory_limit, 0),
                               ("--grader-memory-limit", args.grader_memory_limit, 0)):
        if value is not None and value < least:
            raise UsageError(f"{name} {value} : il faut un nombre entier ≥ {least}")
    check_limits(args, root)
    if args.moodle_zip is not None:
        if not args.moodle_zip.is_file():
            raise UsageError(f"--moodle-zip : fichier introuvable : « {args.moodle_zip} »")
        if not zipfile.is_zipfile(args.moodle_zip):
            raise UsageError(f"--moodle-zip : « {args.moodle_zip} » n'est pas une archive zip : donnez l'archive "
                             "de Moodle « Télécharger tous les travaux remis » (.zip)")
    if args.moodle_worksheet is not None:
        if not args.moodle_worksheet.is_file():
            raise UsageError(f"--moodle-worksheet : fichier introuvable : « {args.moodle_worksheet} »")
        from tpkit.grading.lms import LMS
        try:
            LMS[OPTIONS_LMS].check_worksheet(args.moodle_worksheet)
        except (ValueError, OSError):
            raise UsageError(f"--moodle-worksheet : « {args.moodle_worksheet} » n'est pas une feuille de notes "
                             "Moodle (pas de colonnes Identifiant et Note) : téléchargez-la depuis Moodle "
                             "(devoir → Tous les travaux remis → Télécharger la feuille de notes)") from None
    if args.export_only and not (root / "gradebook.db").is_file() and not server_gradebook(root):
        raise UsageError(f"pas de gradebook.db dans « {root} » : rien à exporter, corrigez d'abord "
                         "(python -m tpkit.grading)")
    if args.students is not None:
        wanted = [s.strip() for s in args.students.split(",") if s.strip()]
        if not wanted:
            raise UsageError("--students est vide : donnez des identifiants séparés par des virgules (s1,s2)")
        if args.export_only:
            from tpkit.grading.gradebook import graded_students
            present, where = graded_students(root, args.assignment), "notés dans le gradebook"
        elif args.moodle_zip is not None:
            from tpkit.grading.lms import LMS
            present, where = LMS[OPTIONS_LMS].participants(args.moodle_zip), "dans l'archive Moodle"
        elif args.examples:
            from tpkit.grading.collect import EXAMPLES
            present, where = {p.name for p in EXAMPLES.iterdir() if (p / args.assignment).is_dir()}, "exemples"
        else:
            from tpkit.grading.collect import from_submitted
            col = from_submitted(root, args.assignment)
            present, where = set(col.students) | set(col.failures), f"dans submitted/ pour {args.assignment}"
        unknown = [s for s in wanted if s not in present]
        if unknown:
            listing = f"{where} : {_names(present)}" if present else f"aucun {where}"
            raise UsageError(f"étudiant(s) inconnu(s) : {', '.join(unknown)} ({listing}) : corrigez --students")
        args.students = ",".join(wanted)


def check_limits(args: argparse.Namespace, root: Path) -> None:
    """Limits that would make every kernel fail (and zero the class) refused: below the floors of
    :mod:`tpkit.grading.options` (what an empty kernel and the setup cell need), with the unit said
    (``--memory-limit 10`` meant 10 Go?). The per-cell timeout of nbgrader_config.py too, when the
    command line does not give one."""
    def megabytes(name, value, least, what):
        if value and value < least:  # 0: no limit
            hint = f" ; pour {value} Go : {name} {value * 1024}" if least <= value * 1024 <= 1024 * 1024 else ""
            raise UsageError(f"{name} {value} : {what} a besoin d'au moins {least} Mo (la valeur est en Mo"
                             f"{hint} ; 0 : sans limite)")
        if value and value > defaults.MAX_MEMORY_MB:  # (bytes past 2**63: every rlimit would overflow)
            raise UsageError(f"{name} {value} : au plus {defaults.MAX_MEMORY_MB} Mo (la valeur est en Mo ; "
                             "0 : sans limite)")

    def seconds(name, value, least, what):
        if value is not None and value < least:
            hint = f" ; pour {value} min : {name} {value * 60}" if value > 0 and value * 60 >= least else ""
            raise UsageError(f"{name} {value} : trop court, {what} ; il faut au moins {least} s (la valeur est en "
                             f"secondes{hint})")
        if value is not None and value > defaults.MAX_SECONDS:
            raise UsageError(f"{name} {value} : au plus {defaults.MAX_SECONDS} s (une semaine)")

    megabytes("--memory-limit", args.memory_limit, defaults.MIN_MEMORY_MB,
              "un noyau (torch, numpy, matplotlib importés, puis le TP)")
    megabytes("--grader-memory-limit", args.grader_memory_limit, defaults.MIN_GRADER_MEMORY_MB,
              "le processus de correction (nbgrader, torch)")
    seconds("--time-limit", args.time_limit, defaults.MIN_TIME_LIMIT_S,
            "chaque notebook serait arrêté pendant le démarrage de son noyau et sa cellule d'initialisation "
            "(jusqu'à 11 s)")
    seconds("--cell-timeout", args.cell_timeout, defaults.MIN_CELL_TIMEOUT_S,
            "la cellule d'initialisation (imports de torch, numpy, matplotlib) serait arrêtée")
    if args.cell_timeout is None and not args.export_only:
        timeout = configured_cell_timeout(root)
        # nbclient: None or -1, no per-cell limit (the notebook's time limit still holds)
        if timeout is not None and timeout != -1 and timeout < defaults.MIN_CELL_TIMEOUT_S:
            raise UsageError(f"c.Execute.timeout = {timeout} dans nbgrader_config.py : trop court, la cellule "
                             "d'initialisation serait arrêtée ; il faut au moins "
                             f"{defaults.MIN_CELL_TIMEOUT_S} s : corrigez-le, ou donnez --cell-timeout S")


def on_cluster(args: argparse.Namespace) -> bool:
    """The submissions are graded on a Dask cluster (``--dask-scheduler`` or nbgrader_config.py)."""
    try:
        return defaults.dask_target(defaults.Options(root=args.root, workers=1), args.dask_scheduler)[0] is not None
    except Exception:  # an unreadable configuration: the run says so itself
        return False


def server_gradebook(root: Path) -> bool:
    """The course's ``db_url`` names a server database (PostgreSQL), not a sqlite file."""
    return defaults.server_db_url(root) is not None


def configured_cell_timeout(root: Path):
    """``Execute.timeout`` of the course's nbgrader_config.py (None: not set, or the file is unreadable:
    the run then says so itself)."""
    try:
        cfg = defaults.course_config(defaults.Options(root=root, workers=1))
        return cfg.Execute.timeout if "timeout" in cfg.Execute else None
    except Exception:
        return None


def log_internal_error(root: Path) -> str:
    """The traceback of an internal error, appended to exports/logs/erreurs.log (or a temporary file
    when the course folder is not usable); returns where it went."""
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    text = f"--- {stamp}\n" + inert(traceback.format_exc(), keep="\n")  # messages can quote a student's file
    try:
        logdir = Path(root) / "exports" / "logs"
        logdir.mkdir(parents=True, exist_ok=True)
        path = logdir / "erreurs.log"
    except OSError:
        import tempfile
        path = Path(tempfile.gettempdir()) / "tpkit-grading-erreurs.log"
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
    return str(path)


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
        args.root = Path(args.root).resolve() if Path(args.root).exists() else Path(args.root)
        check_arguments(args)
    except UsageError as exc:
        print_error(f"erreur : {exc}")
        return 2
    limit_own_memory(args.grader_memory_limit)
    from tpkit.grading.logs import terminal_log
    terminal_log()  # the kit's warnings on stderr name students: inert
    # nbgrader and the kernels need the virtual environment's executables (alembic, python)
    os.environ.update(venv_on_path())
    # library warnings (sqlalchemy, nbformat) are noise here; per-student logs keep nbgrader's messages
    warnings.simplefilter("ignore")
    if not args.no_sandbox and not args.export_only and not on_cluster(args):  # (a cluster's machines check theirs)
        from tpkit.grading import sandbox
        try:
            sandbox.check_available()  # before anything is written
        except sandbox.SandboxUnavailable as exc:
            print_error(f"erreur : {exc}")
            return 2
    from tpkit.grading import runlock  # light: a second run is refused before nbgrader and torch load
    try:
        with runlock.course_lock(args.root / "exports"):  # grading and exports: one run at a time
            return grade_or_export(args)
    except runlock.RunInProgress as exc:
        print_error(f"erreur : {exc}")
        return 2
    except Exception as exc:  # a bug or an unusable course file: one line, the traceback in the log
        where = log_internal_error(args.root)
        first = (str(exc).strip().split("\n") or [""])[0][:200]
        print_error(f"erreur interne : {type(exc).__name__} : {first} (détails : {where})")
        return 1


def grade_or_export(args: argparse.Namespace) -> int:
    """The grading run or the export, arguments checked and the course's lock held."""
    options = defaults.Options(root=args.root, assignment=args.assignment, workers=args.workers,
                               cell_timeout=args.cell_timeout, time_limit=args.time_limit,
                               memory_mb=args.memory_limit, feedback=not args.no_feedback,
                               sandbox=not args.no_sandbox)
    cluster = None
    if not args.export_only:
        cluster = defaults.dask_target(options, args.dask_scheduler)
        if cluster[0] is None:  # the zygote imports torch while this process imports nbgrader and torch
            cluster = None
            from tpkit.grading import kernels
            kernels.prestart(kernels.settings_for(options))
    from tpkit.grading import classreport, collect, lms, pipeline, report, results
    from tpkit.grading.export import export_all
    from tpkit.grading.feedback import regenerate_feedback

    keep = set(args.students.split(",")) if args.students else None
    try:
        with pipeline.run_lock(options):  # reentrant: the command holds it already
            if args.export_only:
                report_path, previous = results.find_report(options.exports)
                run = results.latest_report(options.exports)
                if run is not None and previous:
                    print(f"rapport de correction : {report_path.relative_to(options.root)} (celui de la "
                          "correction précédente : la dernière correction ne s'est pas terminée)")
                run, lines = export_all(options, run, worksheet=args.moodle_worksheet, provisional=args.provisional,
                                        lms=OPTIONS_LMS)
                if options.feedback:
                    regenerate_feedback(options, run, keep)
            else:
                if args.examples:
                    col = collect.from_examples(options.root, options.assignment)
                elif args.moodle_zip:
                    col = collect.from_lms_zip(options.root, options.assignment, args.moodle_zip, OPTIONS_LMS)
                else:
                    col = collect.from_submitted(options.root, options.assignment)
                if keep is not None:
                    col.students = [s for s in col.students if s in keep]
                    col.failures = {k: v for k, v in col.failures.items() if k in keep}
                for line in col.notes:  # they name student folders and files
                    print(inert(line))
                if not col.students and not col.failures:
                    print("aucun rendu à corriger")
                    return 0
                names = lms.full_names(options.root / "submitted")
                label = inert(cluster[0]) if cluster is not None and isinstance(cluster[0], str) else "configuré"
                where = (f"sur le cluster Dask {label}" if cluster is not None else
                         f"avec {min(options.workers, max(1, len(col.students)))} worker(s)")
                print(f"Correction de {len(col.students) + len(col.failures)} rendu(s) {where}…", flush=True)
                progress = report.Progress(names=names, total=len(col.students) + len(col.failures)).start()
                try:
                    if cluster is not None:
                        from tpkit.grading import cluster as dask_cluster
                        run = dask_cluster.grade(col.students, options, cluster[0], cluster[1], progress=progress,
                                                 preset_failures=col.failures, preset_remarks=col.remarks)
                    else:
                        run = pipeline.grade(col.students, options, progress=progress,
                                             preset_failures=col.failures, preset_remarks=col.remarks)
                finally:
                    progress.stop()
                run, lines = export_all(options, run, worksheet=args.moodle_worksheet, provisional=args.provisional,
                                        lms=OPTIONS_LMS)
            if options.feedback:
                lines += lms.feedback_zips(options, run)
            try:  # the grades are written: a failing report must not turn the run into an error
                lines += classreport.write(options, run)
            except Exception as exc:
                lines.append(f"Rapport de classe non écrit : {type(exc).__name__} (détails : "
                             f"{log_internal_error(options.root)})")
        report.summary(run, names=lms.full_names(options.root / "submitted"), exports=lines)
        return 0
    except pipeline.GradingError as exc:
        print_error(f"erreur : {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
