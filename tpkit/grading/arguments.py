"""The grading command's arguments: parsed (:func:`parse_args`, French errors and help) and checked
(:func:`check_arguments`) before anything is written; the run's settings built once from them
(``args.settings``: :func:`tpkit.grading.config.build`, defaults < nbgrader_config.py < the flags given).
A bad argument is a :class:`UsageError`: one French line, exit status 2, nothing written."""
from __future__ import annotations

import argparse
import re
import zipfile
from pathlib import Path

from tpkit import assignments, paths
from tpkit.grading import config

#: The LMS of ``--moodle-zip`` and ``--moodle-worksheet`` (a key of :data:`tpkit.grading.lms.LMS`).
OPTIONS_LMS = "moodle"


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
    config.add_arguments(p)  # the run's settings (tpkit.grading.config: flag, help, default)
    p.add_argument("--no-feedback", action="store_true", help="ne pas écrire les retours HTML")
    p.add_argument("--root", type=Path, default=paths.ROOT, metavar="DOSSIER",
                   help="dossier du cours (par défaut : ce kit)")
    p.add_argument("--assignment", default=assignments.default(), metavar="DEVOIR",
                   help=f"devoir à corriger (par défaut : {assignments.default()}, le premier du cours)")
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
    try:  # the run's settings, once: defaults < nbgrader_config.py < the flags given
        try:
            cfg = config.course_config(root)
        except Exception:  # an unreadable configuration: the run says so itself
            cfg = None
        args.settings = config.build(root, {name: getattr(args, name) for name in config.flag_names()},
                                     cfg if cfg is not None else config.Config())
        config.check(args.settings, None if args.export_only else cfg)
    except config.SettingError as exc:
        raise UsageError(str(exc)) from None
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
        from tpkit.grading.options import Options
        if incremental.remembered_worksheet(Options(root=root, assignment=args.assignment, workers=1)) is None:
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


def server_gradebook(root: Path) -> bool:
    """The course's ``db_url`` names a server database (PostgreSQL), not a sqlite file."""
    from tpkit.grading.options import server_db_url
    return server_db_url(root) is not None

