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


DESCRIPTION = "Corrige les rendus d'un devoir en une commande (notes, retours en français, exports)."
EPILOG = """exemples :
  python -m tpkit.grading --examples                 # les rendus d'exemple fournis avec le kit
  python -m tpkit.grading                            # tout submitted/<étudiant>/<devoir>/
  python -m tpkit.grading --moodle-zip Z.zip --moodle-worksheet F.csv
  python -m tpkit.grading --export-only              # après la correction à la main (formgrader)
  python -m tpkit.grading --students S1,S2 --force   # recorriger quelques étudiant·es, garder les autres

Une correction est incrémentale : un rendu dont le notebook et le code de correction n'ont pas changé
depuis sa dernière note n'est pas recorrigé (--force le recorrige) ; une correction interrompue
(Ctrl-C) reprend là où elle s'est arrêtée. Les exports couvrent toujours toute la classe du gradebook.

Écrit autograded/, feedback/<étudiant>/<devoir>/<devoir>.html, exports/grades.csv (et
exports/moodle_worksheet.csv, dont la feuille d'origine est retenue dans exports/etat.json pour
--export-only), exports/grading_report.json, exports/rapport_classe.html, exports/logs/<étudiant>.log
(exports/<devoir>/ pour un autre devoir que le principal). Une correction déplace d'abord les exports
précédents dans exports/precedent/ et écrit les nouveaux à la fin.

Code de sortie : 0 correction terminée (les rendus en échec sont signalés, ce ne sont pas des erreurs),
2 impossible de commencer (pas de version étudiante, autre correction en cours, mauvais argument),
130 interrompue (Ctrl-C), 1 erreur interne (trace dans exports/logs/erreurs.log)."""


class FrenchHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's own words of --help in French."""

    def add_usage(self, usage, actions, groups, prefix=None):
        return super().add_usage(usage, actions, groups, "utilisation : " if prefix is None else prefix)


def parse_args(argv=None) -> argparse.Namespace:
    p = FrenchArgumentParser(prog="python -m tpkit.grading", description=DESCRIPTION, epilog=EPILOG,
                             formatter_class=FrenchHelpFormatter, add_help=False)
    p._optionals.title = "options"
    p.add_argument("-h", "--help", action="help", help="afficher cette aide et quitter")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--examples", action="store_true", help="corriger les rendus d'exemple du kit "
                     "(copiés de examples/submissions/ dans submitted/)")
    src.add_argument("--submitted", action="store_true", help="corriger submitted/ (par défaut)")
    src.add_argument("--moodle-zip", type=Path, metavar="ARCHIVE.zip", help="importer dans submitted/ l'archive Moodle "
                     "« Télécharger tous les travaux remis » et la corriger")
    src.add_argument("--export-only", action="store_true", help="ne rien corriger : réécrire les retours et "
                     "tous les exports depuis le gradebook (par exemple après la correction à la main)")
    p.add_argument("--moodle-worksheet", type=Path, metavar="FEUILLE.csv", help="feuille de notes Moodle à remplir "
                   "(écrite dans exports/moodle_worksheet.csv ; retenue pour les --export-only suivants)")
    p.add_argument("--provisional", action="store_true", help="remplir aussi la feuille Moodle avec les notes "
                   "provisoires (réponses rédigées pas encore corrigées ; dit dans chaque commentaire)")
    p.add_argument("--students", metavar="ID1,ID2", help="ne corriger que ces identifiants (les exports gardent "
                   "toute la classe) ; avec --export-only : ne réécrire que leurs retours")
    p.add_argument("--force", action="store_true", help="recorriger aussi les rendus inchangés depuis leur "
                   "dernière note (par défaut, ils sont gardés tels quels)")
    p.add_argument("--workers", type=int, default=0, metavar="N", help="rendus corrigés en parallèle "
                   "(par défaut : nombre de cœurs)")
    p.add_argument("--dask-scheduler", metavar="ADRESSE", help="corriger sur un cluster Dask : l'adresse de son "
                   "ordonnanceur (tcp://hote:8786), ou local:N pour un LocalCluster de N processus (par défaut : "
                   "c.TpkitDask.scheduler ou c.TpkitDask.cluster de nbgrader_config.py, sinon cette machine ; "
                   "docs/scale.md)")
    p.add_argument("--cell-timeout", type=int, metavar="S", help="secondes par cellule (par défaut : "
                   "Execute.timeout de nbgrader_config.py)")
    p.add_argument("--time-limit", type=int, metavar="S",
                   help="secondes par notebook (par défaut : c.LimitedExecute.time_limit de nbgrader_config.py, "
                   f"sinon {defaults.TIME_LIMIT_S})")
    p.add_argument("--memory-limit", type=int, metavar="MB",
                   help="mémoire par noyau, en Mo (par défaut : c.LimitedExecute.memory_limit de "
                   f"nbgrader_config.py, sinon {defaults.MEMORY_MB})")
    # a feedback page or a notebook blown up by a hostile submission stops with MemoryError (that
    # student's grading fails) instead of taking the machine
    p.add_argument("--grader-memory-limit", type=int, default=defaults.GRADER_MEMORY_MB, metavar="MB",
                   help="mémoire de ce processus de correction lui-même, en Mo, noyaux non compris (ce sont "
                   f"des processus à part, limités par --memory-limit) (par défaut : {defaults.GRADER_MEMORY_MB} ; "
                   "0 : sans limite)")
    p.add_argument("--no-feedback", action="store_true", help="ne pas écrire les retours HTML")
    p.add_argument("--sans-bac-a-sable", dest="no_sandbox", action="store_true",
                   help="exécuter les noyaux SANS bac à sable (seulement là où les espaces de noms utilisateur "
                   "sont interdits ; le code des étudiant·es peut alors lire et modifier les fichiers du cours)")
    p.add_argument("--root", type=Path, default=paths.ROOT, metavar="DOSSIER",
                   help="dossier du cours (par défaut : ce kit)")
    p.add_argument("--assignment", default=paths.ASSIGNMENT, metavar="DEVOIR", help="devoir à corriger (par défaut : "
                   f"{paths.ASSIGNMENT})")
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
    if args.provisional and args.moodle_worksheet is None:
        from tpkit.grading import incremental
        if incremental.remembered_worksheet(defaults.Options(root=root, assignment=args.assignment, workers=1)) is None:
            raise UsageError("--provisional remplit la feuille de notes Moodle : donnez-la avec "
                             "--moodle-worksheet FEUILLE.csv")
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
    command line does not give one. The time and memory limits are resolved first (:func:`resolve_limits`)."""
    resolve_limits(args, root)

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

    megabytes(args.limit_names["memory_limit"], args.memory_limit, defaults.MIN_MEMORY_MB,
              "un noyau (torch, numpy, matplotlib importés, puis le TP)")
    megabytes("--grader-memory-limit", args.grader_memory_limit, defaults.MIN_GRADER_MEMORY_MB,
              "le processus de correction (nbgrader, torch)")
    seconds(args.limit_names["time_limit"], args.time_limit, defaults.MIN_TIME_LIMIT_S,
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


#: Limits of a run that nbgrader_config.py may set: (attribute of the arguments, its flag, LimitedExecute's
#: trait, default).
CONFIGURABLE_LIMITS = (("time_limit", "--time-limit", "time_limit", defaults.TIME_LIMIT_S),
                       ("memory_limit", "--memory-limit", "memory_limit", defaults.MEMORY_MB))


def resolve_limits(args: argparse.Namespace, root: Path) -> None:
    """Each limit from the flag given, else from the course's nbgrader_config.py
    (``c.LimitedExecute.time_limit``, ``memory_limit``), else the kit's default; ``args.limit_names``
    says where each came from, for the messages that refuse a value."""
    try:
        configured = defaults.course_config(defaults.Options(root=root, workers=1)).get("LimitedExecute", {})
    except Exception:  # an unreadable configuration: the run says so itself
        configured = {}
    args.limit_names = {}
    for attr, flag, trait, default in CONFIGURABLE_LIMITS:
        if getattr(args, attr, None) is not None:
            args.limit_names[attr] = flag
        elif trait in configured:
            value = configured[trait]
            if isinstance(value, bool) or not isinstance(value, int):
                raise UsageError(f"c.LimitedExecute.{trait} = {value!r} dans nbgrader_config.py : il faut un "
                                 "nombre entier")
            setattr(args, attr, int(value))
            args.limit_names[attr] = f"c.LimitedExecute.{trait} (nbgrader_config.py) ="
        else:
            setattr(args, attr, default)
            args.limit_names[attr] = flag


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
    except KeyboardInterrupt:  # Ctrl-C outside the grading itself (imports, exports): nothing half-written
        print_error("interrompu (Ctrl-C) : relancez la même commande pour reprendre")
        return 130
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
        if cluster[0] is None:
            cluster = None
            if args.force or not (options.exports / "grading_report.json").is_file():
                # nothing can be left as it is: the zygote imports torch while this process imports the rest
                from tpkit.grading import kernels
                kernels.prestart(kernels.settings_for(options))
    from tpkit.grading import classreport, collect, incremental, lms, pipeline, report, results
    from tpkit.grading.export import export_all
    from tpkit.grading.converters import regenerate_feedback

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
                run.export_only = True
                if options.feedback:
                    failed = regenerate_feedback(options, run, keep)
                    if failed:
                        lines.append(f"Retours NON réécrits pour {len(failed)} rendu(s) : {_names(failed)} "
                                     "(détails : exports/logs/<étudiant>.feedback.log)")
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
                if args.moodle_worksheet is not None:  # filled at the end of this run, and of the next ones
                    incremental.remember_worksheet(options, OPTIONS_LMS, args.moodle_worksheet)
                skipped = [] if args.force else unchanged_students(options, col)
                if skipped:
                    print(f"{len(skipped)} rendu(s) inchangé(s) depuis leur dernière note (notebook et code de "
                          "correction identiques) : gardé(s) tel(s) quel(s) ; --force pour les recorriger")
                total = len(col.students) + len(col.failures)
                names = lms.full_names(options.root / "submitted")
                if total:
                    if cluster is None:
                        from tpkit.grading import kernels  # (started above unless a grade could be kept)
                        kernels.prestart(kernels.settings_for(options))
                    label = inert(cluster[0]) if cluster is not None and isinstance(cluster[0], str) else "configuré"
                    where = (f"sur le cluster Dask {label}" if cluster is not None else
                             f"avec {min(options.workers, max(1, len(col.students)))} worker(s)")
                    print(f"Correction de {total} rendu(s) {where}…", flush=True)
                    progress = report.Progress(names=names, total=total).start()
                    try:
                        if cluster is not None:
                            from tpkit.grading import cluster as dask_cluster
                            run = dask_cluster.grade(col.students, options, cluster[0], cluster[1], progress=progress,
                                                     preset_failures=col.failures, preset_remarks=col.remarks)
                        else:
                            run = pipeline.grade(col.students, options, progress=progress,
                                                 preset_failures=col.failures, preset_remarks=col.remarks)
                    except pipeline.Interrupted as stop:
                        progress.stop()
                        interrupted(stop.report, args)
                        return 130
                    finally:
                        progress.stop()
                else:
                    run = results.latest_report(options.exports)
                    run.graded_now, run.seconds = [], 0.0
                run.skipped = sorted(skipped)
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


def unchanged_students(options, col) -> list:
    """Students of the collection left as they are (:func:`tpkit.grading.incremental.unchanged`), taken
    out of it: submissions unchanged since their grade by the same grading code, and nothing-to-grade
    failures already reported with the same reason."""
    from tpkit.grading import incremental, results
    from tpkit.grading.options import course_config, step_folder
    previous = results.latest_report(options.exports)
    if previous is None:
        return []
    cfg = course_config(options)
    same = incremental.unchanged(options, col.students, previous, incremental.grading_hash(options),
                                 lambda s: step_folder(cfg, options, "submitted", s))
    for student, reason in col.failures.items():
        r = previous.results.get(student)
        if r is not None and r.status == results.FAILED and r.reasons == [reason]:
            same.append(student)
    col.students = [s for s in col.students if s not in same]
    col.failures = {k: v for k, v in col.failures.items() if k not in same}
    return same


def resume_arguments(args: argparse.Namespace) -> list:
    """The arguments that grade what an interrupted run left, as it would have (an LMS zip is imported
    already: submitted/; the worksheet is remembered)."""
    out = ["--examples"] if args.examples else []
    if Path(args.root).resolve() != paths.ROOT.resolve():
        out += ["--root", str(args.root)]
    if args.assignment != paths.ASSIGNMENT:
        out += ["--assignment", args.assignment]
    if args.students:
        out += ["--students", args.students]
    given = getattr(args, "limit_names", {})
    for flag, value, default in (("--cell-timeout", args.cell_timeout, None),
                                 ("--time-limit", args.time_limit, defaults.TIME_LIMIT_S),
                                 ("--memory-limit", args.memory_limit, defaults.MEMORY_MB),
                                 ("--workers", args.workers, 0)):
        from_config = any(given.get(attr, flag) != flag for attr, f, _, _ in CONFIGURABLE_LIMITS if f == flag)
        if value is not None and value != default and not from_config:
            out += [flag, str(value)]
    out += [flag for flag, on in (("--provisional", args.provisional), ("--no-feedback", args.no_feedback),
                                  ("--sans-bac-a-sable", args.no_sandbox)) if on]
    return out


def interrupted(run, args: argparse.Namespace) -> None:
    """The French summary of a run stopped by Ctrl-C: what was graded, what is left, what to run."""
    from tpkit.grading.report import say
    done, left = len(run.graded_now), len(run.left)
    command = " ".join(["python -m tpkit.grading", *resume_arguments(args)])
    say("")
    say(f"Correction interrompue (Ctrl-C) : {done} rendu(s) corrigé(s) et enregistré(s) (notes, statuts, "
        f"remarques, retours), {left} restant(s)" + (f" : {_names(run.left)}" if left else "") + ".")
    say(f"Pour continuer : {command} (les rendus déjà corrigés ne sont pas recorrigés ; les exports de toute "
        "la classe seront écrits à la fin)")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before main() could take over Ctrl-C (imports)
        print("interrompu (Ctrl-C) : relancez la même commande pour reprendre", file=sys.stderr)
        sys.exit(130)
