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
import resource
import sys
import traceback
import warnings
from pathlib import Path

# jsonschema (imported by nbformat) builds rfc3987_syntax's IRI grammar when it is installed: 1.3 s of
# CPU at each run's start. Notebooks are validated without format checks (their schema uses none):
# the grading command never needs it.
sys.modules.setdefault("rfc3987_syntax", None)

from tpkit import assignments, paths  # noqa: E402
from tpkit.environment import venv_on_path  # noqa: E402
from tpkit.grading import config  # noqa: E402
from tpkit.grading.arguments import (OPTIONS_LMS, UsageError, _names, check_arguments,  # noqa: E402
                                     parse_args)
from tpkit.grading.inert import inert  # noqa: E402
from tpkit.grading.options import Options  # noqa: E402


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


def print_error(line: str) -> None:
    """One line on stderr; the student ids and file names it may quote made inert."""
    print(inert(line), file=sys.stderr)


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
    settings = args.settings
    limit_own_memory(settings.grader_memory_limit)
    from tpkit.grading.logs import terminal_log
    terminal_log()  # the kit's warnings on stderr name students: inert
    # nbgrader and the kernels need the virtual environment's executables (alembic, python)
    os.environ.update(venv_on_path())
    # library warnings (sqlalchemy, nbformat) are noise here; per-student logs keep nbgrader's messages
    warnings.simplefilter("ignore")
    local = config.dask_target(settings, args.root)[0] is None  # (a cluster's machines check their sandbox)
    if settings.sandbox and not args.export_only and local:
        from tpkit.grading import sandbox, sandbox_oneoff
        try:
            sandbox_oneoff.check_available()  # before anything is written (once per process: the grader asks again)
        except sandbox.SandboxUnavailable as exc:
            print_error(f"erreur : {exc}")
            return 2
    from tpkit.grading import runlock  # light: a second run is refused before nbgrader and torch load
    try:
        # one run at a time; the labels, rubrics and statement read from this course's notebooks
        with runlock.course_lock(args.root / "exports"), paths.course(args.root):
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
    options = Options(root=args.root, assignment=args.assignment, feedback=not args.no_feedback,
                      settings=args.settings)
    cluster = None
    if not args.export_only:
        cluster = config.dask_target(options.settings, options.root)
        if cluster[0] is None:
            cluster = None
            if args.force or not (options.exports / "grading_report.json").is_file():
                # nothing can be left as it is: the zygote imports torch while this process imports the rest
                # (else the grader starts it, once it knows a submission is to be graded)
                from tpkit.grading import kernels
                kernels.prestart(kernels.settings_for(options))
    from tpkit.grading import classreport, collect, incremental, lms, pipeline, report, results
    from tpkit.grading.export import export_all
    from tpkit.grading.converters import regenerate_feedback

    keep = set(args.students.split(",")) if args.students else None
    try:
        # (the course's run lock is held by main(): one run at a time, refused before nbgrader loads)
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
                label = inert(cluster[0]) if cluster is not None and isinstance(cluster[0], str) else "configuré"
                where = (f"sur le cluster Dask {label}" if cluster is not None else
                         f"avec {min(options.settings.workers, max(1, len(col.students)))} worker(s)")
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
    if args.assignment != assignments.default():
        out += ["--assignment", args.assignment]
    if args.students:
        out += ["--students", args.students]
    out += config.given_flags(args.settings)
    out += [flag for flag, on in (("--provisional", args.provisional), ("--no-feedback", args.no_feedback)) if on]
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
