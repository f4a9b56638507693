"""The class report: one self-contained HTML page (``exports/rapport_classe.html``, figures embedded)
plus its PNG figures (``exports/figures/``), written after every grading run and ``--export-only``,
for the teaching team (French).

First screen: how many submissions, mean and median /20, what needs a look (flagged, failed, written
answers to grade), the distribution of totals and the success rate per question. Below: the most
frequent diagnostics per question across the class (what to re-explain), the submissions to look at
with their reasons, the time per submission, pairs of very similar submissions
(:mod:`tpkit.grading.similarity`, side by side, never a penalty) and the grades per student.

Student ids, reasons and code are the students' text: the page shows them as text (control characters
escaped by :func:`tpkit.grading.inert.inert`, then HTML-escaped; the page loads nothing, see :data:`CSP`)
and the figures as plain labels (no mathtext: :func:`plain_label`).

Everything comes from the run's report as refreshed from the gradebook (:func:`tpkit.grading.export.export_all`) and
from the autograded notebooks (diagnostics: what the feedback pages show students, never a hidden
test's source).
"""
from __future__ import annotations

import base64
import collections
import html
import statistics
import time
from pathlib import Path

import nbformat
from nbgrader import utils

from tpkit.grading import similarity
from tpkit.grading.export import fmt, question_names
from tpkit.grading.findings import failure_message
from tpkit.grading.inert import inert
from tpkit.grading.options import Options, course_config, step_folder
from tpkit.grading.results import FAILED, FLAGGED, OK, PARTIAL, RunReport

PAGE = "rapport_classe.html"
FIGURES = "figures"
_UNSAFE = ("tpkit", "verifier", "HIDDEN TESTS", "Traceback")
STATUS_FR = {OK: "ok", PARTIAL: "corrigé avec remarques", FLAGGED: "signalé", FAILED: "non corrigé"}


#: The page's Content-Security-Policy: inline styles and data: images only, nothing fetched, nothing run.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
CODE = "\n\t"  # what code keeps as it is (:func:`text`)


def text(value, keep: str = "") -> str:
    """A value as HTML text: control characters escaped (:func:`inert`), markup escaped."""
    return html.escape(inert(value, keep=keep))


def plain_label(value) -> str:
    """A student's id or a question's name as a matplotlib label: inert, and ``$`` escaped so that no
    mathtext is parsed (``$\\boom$`` in an id would stop the figure)."""
    return inert(value).replace("$", r"\$")


def _is_test(cell) -> bool:
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


def diagnostics(options: Options, run: RunReport) -> dict:
    """{grade id: Counter(French message -> number of students)} from the autograded notebooks'
    failed test cells (the message a student reads in the feedback)."""
    out = collections.defaultdict(collections.Counter)
    cfg = course_config(options)
    for student, r in run.results.items():
        if r.status == FAILED:
            continue
        path = step_folder(cfg, options, "autograded", student) / f"{options.notebook}.ipynb"
        try:
            nb = nbformat.read(str(path), as_version=4)
        except Exception:
            continue
        for cell in nb.cells:
            if not _is_test(cell):
                continue
            for o in cell.get("outputs", []):
                if o.get("output_type") == "error":
                    message = " ".join(failure_message(o).split())[:240]
                    if any(word in message for word in _UNSAFE):
                        message = "erreur dans le test (voir le journal de correction)"
                    out[cell.metadata["nbgrader"]["grade_id"]][message] += 1
                    break
    return out


def written_questions(options: Options) -> set:
    """Grade ids of the answers graded by hand (nbgrader cells that are both answer and graded)."""
    path = options.root / "release" / options.assignment / f"{options.notebook}.ipynb"
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception:
        return set()
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if utils.is_grade(c) and utils.is_solution(c)}


def question_stats(run: RunReport) -> list:
    """[(grade id, points, graded count, success rate or None, mean points or None)], notebook order."""
    rows = []
    graded = [r for r in run.results.values() if r.status != FAILED]
    for gid in run.columns:
        values = [r.scores.get(gid) for r in graded if r.scores.get(gid) is not None]
        pts = float(run.points.get(gid, 0))
        if values:
            rate = sum(1 for v in values if v >= pts - 1e-9) / len(values)
            rows.append((gid, pts, len(values), rate, statistics.fmean(values)))
        else:
            rows.append((gid, pts, 0, None, None))
    return rows


def _figures(folder: Path, run: RunReport, qstats: list, names: dict, written: set) -> dict:
    """PNG figures (matplotlib, Agg): {name: path}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    totals = [r.grade20 for r in run.results.values() if r.status != FAILED and r.grade20 is not None]

    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=100)
    ax.hist(totals, bins=range(0, 22), color="#3b6ea5", edgecolor="white", align="left")
    ax.set_xlim(-0.8, 20.8)
    ax.set_xticks(range(0, 21, 2))
    ax.set_xlabel("note /20")
    ax.set_ylabel("rendus")
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_title(f"Distribution des notes ({len(totals)} rendus corrigés)")
    fig.tight_layout()
    out["distribution"] = folder / "distribution.png"
    fig.savefig(out["distribution"])
    plt.close(fig)

    shown = [q for q in qstats if q[3] is not None and q[0] not in written]
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.19 * len(shown) + 1)), dpi=100)
    labels = [plain_label(names.get(q[0], q[0])) for q in shown][::-1]
    rates = [100 * q[3] for q in shown][::-1]
    # positions, not categories: labels are text only (two ids never merge into one bar)
    ax.barh(range(len(rates)), rates, color=["#c0392b" if r < 50 else "#e6a23c" if r < 80 else "#3c8d40"
                                             for r in rates])
    ax.set_yticks(range(len(labels)), labels=labels)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% de réussite (points complets)")
    ax.set_title("Réussite par question (correction automatique)")
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    out["questions"] = folder / "questions.png"
    fig.savefig(out["questions"])
    plt.close(fig)

    timed = sorted(((r.seconds, s) for s, r in run.results.items() if r.seconds), reverse=True)[:60]  # slowest
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.25 * len(timed) + 1)), dpi=100)
    ax.barh(range(len(timed)), [t for t, _ in timed][::-1], color="#6c5b7b")
    ax.set_yticks(range(len(timed)), labels=[plain_label(s) for _, s in timed][::-1])
    ax.set_xlabel("secondes")
    ax.set_title("Temps de correction par rendu" + (" (les 60 plus longs)" if len(timed) == 60 else ""))
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    out["durees"] = folder / "durees.png"
    fig.savefig(out["durees"])
    plt.close(fig)
    return out


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img class="figure" data-file="{FIGURES}/{path.name}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _pairs(options: Options, run: RunReport) -> tuple:
    release_nb = options.root / "release" / options.assignment / f"{options.notebook}.ipynb"
    try:
        skeleton, kept = similarity.release_skeleton(release_nb)
    except Exception:
        skeleton, kept = {}, frozenset()
    subs = {}
    cfg = course_config(options)
    for student, r in run.results.items():
        if r.status == FAILED:
            continue
        # the autograded copy: the student's answer cells under the expected name, whatever the
        # submitted file was called (a renamed notebook), duplicated cells already resolved
        sub = similarity.load(student, step_folder(cfg, options, "autograded", student)
                              / f"{options.notebook}.ipynb", skeleton, kept)
        if sub is not None:
            subs[student] = sub
    return similarity.similar_pairs(list(subs.values())), subs


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.2em 2em; color: #222; max-width: 1250px; }
h1 { font-size: 1.5em; margin: 0 0 .2em 0; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.muted { color: #666; font-size: .9em; }
.cards { display: flex; gap: .8em; flex-wrap: wrap; margin: .8em 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .5em .9em; min-width: 8em; background: #fafafa; }
.card b { display: block; font-size: 1.5em; } .card.warn { border-color: #e6a23c; background: #fff8ec; }
p.warn { border-left: 4px solid #e6a23c; background: #fff8ec; padding: .4em .8em; }
.figs { display: flex; gap: 1em; flex-wrap: wrap; align-items: flex-start; } .figure { width: calc(50% - 1em); min-width: 420px; border: 1px solid #eee; }
table { border-collapse: collapse; margin: .5em 0; font-size: .92em; }
td, th { border: 1px solid #ddd; padding: .25em .55em; vertical-align: top; text-align: left; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.side { display: flex; gap: .6em; } .side pre { flex: 1; background: #f7f7f7; padding: .5em; overflow-x: auto; font-size: .82em; margin: .2em 0; }
details { margin: .4em 0; } summary { cursor: pointer; }
"""


def render(options: Options, run: RunReport, figures: dict, qstats: list, diags: dict, pairs: list,
           subs: dict, names: dict, written: set, people: dict | None = None) -> str:
    e = text
    people = people or {}

    def who(student: str) -> str:
        """A student as the teacher knows them: the full name (an LMS's) and the id."""
        name = people.get(student)
        return f"{e(name)} <span class=\"muted\">({e(student)})</span>" if name else e(student)

    def cell_name(gid: str) -> str:
        """An answer cell by its question (« Q2.4 lignes »), never its internal id alone."""
        if gid in names and names[gid] != gid:
            return names[gid]
        from tpkit.grading.feedback import question_label
        return question_label(gid, run.assignment)
    results = list(run.results.values())
    graded = [r for r in results if r.status != FAILED and r.grade20 is not None]
    totals = [r.grade20 for r in graded]
    look = [r for r in results if r.status != OK]  # every one with a reason: remarks, flags, failures
    pending = [r for r in results if r.status != FAILED and r.manual_pending]
    mean = fmt(statistics.fmean(totals)) if totals else "-"
    median = fmt(statistics.median(totals)) if totals else "-"
    # what this host could not isolate between the kernels (tpkit.grading.isolation.isolation_notice)
    isolation = f'<p class="warn" id="isolation">{e(run.isolation)}</p>\n' if run.isolation else ""
    parts = [f"""<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}"><title>Rapport de classe — {e(run.assignment)}</title>
<style>{STYLE}</style></head><body>
<h1>Rapport de classe — {e(run.assignment)}</h1>
<div class="muted">Écrit le {time.strftime('%Y-%m-%d %H:%M')} depuis le gradebook ; notes sur 20.</div>
{isolation}<div class="cards">
<div class="card"><b id="n-rendus">{len(results)}</b>rendus</div>
<div class="card"><b id="n-corriges">{len(graded)}</b>corrigés automatiquement</div>
<div class="card"><b id="moyenne">{mean}</b>moyenne /20</div>
<div class="card"><b id="mediane">{median}</b>médiane /20</div>
<div class="card{' warn' if look else ''}"><b id="n-a-regarder">{len(look)}</b>à regarder (remarques, signalés, non corrigés)</div>
<div class="card{' warn' if pending else ''}"><b id="n-manuels">{len(pending)}</b>avec réponses rédigées à noter</div>
<div class="card{' warn' if pairs else ''}"><b id="n-paires">{len(pairs)}</b>paires très semblables</div>
</div>
<div class="figs">{_img(figures['distribution'], 'Distribution des notes /20')}
{_img(figures['questions'], 'Taux de réussite par question')}</div>
"""]
    # questions: success and diagnostics
    parts.append('<h2>Questions (ordre du notebook)</h2><table id="questions"><tr><th>question</th>'
                 '<th>points</th><th>rendus notés</th><th>réussite</th><th>moyenne</th>'
                 '<th>diagnostics les plus fréquents (nombre d\'étudiants)</th></tr>')
    for gid, pts, n, rate, avg in qstats:
        top = diags.get(gid, collections.Counter()).most_common(3)
        diag = "<br>".join(f"{e(m)} <b>({c})</b>" for m, c in top)
        rate_text = f"{100 * rate:.0f} %" if rate is not None else "—"
        kind = " <i>(rédigée, notée à la main)</i>" if gid in written else ""
        parts.append(f'<tr data-question="{e(gid)}" data-success="{"" if rate is None else round(rate, 4)}" '
                     f'data-graded="{n}"><td>{e(names.get(gid, gid))}{kind}</td><td class="num">{fmt(pts)}</td>'
                     f'<td class="num">{n}</td><td class="num">{rate_text}</td>'
                     f'<td class="num">{fmt(avg) if avg is not None else "—"}</td><td>{diag}</td></tr>')
    parts.append("</table>")
    # submissions to look at
    parts.append('<h2>Rendus à regarder</h2>')
    if look:
        parts.append('<table id="a-regarder"><tr><th>étudiant</th><th>statut</th><th>raisons</th></tr>')
        order = {FAILED: 0, FLAGGED: 1, PARTIAL: 2}
        for r in sorted(look, key=lambda r: (order.get(r.status, 3), r.student)):
            reasons = "<br>".join(e(x) for x in r.reasons) or "(aucune raison enregistrée)"
            parts.append(f'<tr data-student="{e(r.student)}" data-status="{e(r.status)}"><td>{who(r.student)}</td>'
                         f'<td>{STATUS_FR[r.status]}</td><td>{reasons}</td></tr>')
        parts.append("</table>")
    else:
        parts.append("<p>Aucun rendu signalé ni en échec.</p>")
    # time
    times = [r.seconds for r in results if r.seconds]
    parts.append("<h2>Temps de correction par rendu</h2>")
    if times:
        parts.append(f'<p class="muted">médiane {statistics.median(times):.1f} s, maximum {max(times):.1f} s '
                     f"(temps mesuré lors de la dernière correction de chaque rendu)</p>")
        parts.append(f'<div class="figs">{_img(figures["durees"], "Temps de correction par rendu")}</div>')
    # similar pairs
    parts.append("<h2>Rendus très semblables</h2><p class=\"muted\">Cellules de réponse comparées après "
                 "normalisation (noms choisis par l'étudiant·e, espaces, commentaires ; le squelette donné "
                 f"ignoré), seuil {similarity.THRESHOLD:.0%}. À regarder, jamais une pénalité : deux "
                 "solutions justes et courtes peuvent se ressembler.</p>")
    if pairs:
        # one row per pair (listed once); its cells side by side under each student's name, the 20 first
        parts.append('<table id="paires"><tr><th>paire</th><th>similarité</th></tr>')
        for k, p in enumerate(pairs):
            detail = ""
            if k < 20:
                side = [f'<details><summary>cellules semblables</summary><div class="side"><b>{who(p.a)}</b>'
                        f'<b>{who(p.b)}</b></div>']
                for gid, ratio in p.cells[:6]:
                    a, b = subs[p.a].cells.get(gid, ""), subs[p.b].cells.get(gid, "")
                    side.append(f'<div class="muted">{e(cell_name(gid))} — {100 * ratio:.0f} %</div>'
                                f'<div class="side"><pre>{text(a, CODE)}</pre><pre>{text(b, CODE)}</pre></div>')
                detail = "".join(side) + "</details>"
            parts.append(f'<tr data-pair="{e(p.a)}|{e(p.b)}"><td>{who(p.a)} — {who(p.b)}{detail}</td>'
                         f'<td class="num">{100 * p.score:.0f} %</td></tr>')
        parts.append("</table>")
    else:
        parts.append("<p>Aucune paire au-dessus du seuil.</p>")
    # grades per student
    parts.append('<h2>Notes par étudiant</h2><table id="notes"><tr><th>étudiant</th><th>note /20</th>'
                 '<th>statut</th><th>réponses rédigées à noter</th><th>temps</th></tr>')
    for r in results:
        total = "" if r.status == FAILED or r.grade20 is None else fmt(r.grade20)
        parts.append(f'<tr data-student="{e(r.student)}" data-total="{total}"><td>{who(r.student)}</td>'
                     f'<td class="num">{total or "—"}</td><td>{STATUS_FR[r.status]}</td>'
                     f'<td class="num">{len(r.manual_pending) if r.status != FAILED else ""}</td>'
                     f'<td class="num">{f"{r.seconds:.1f} s" if r.seconds else ""}</td></tr>')
    parts.append("</table></body></html>\n")
    return "".join(parts)


def write(options: Options, run: RunReport) -> list:
    """Write the page and its figures next to the exports; French lines saying where."""
    names = question_names(run.columns, options.root / "source" / options.assignment / f"{options.notebook}.ipynb"
                           if (options.root / "source" / options.assignment / f"{options.notebook}.ipynb").is_file()
                           else None)
    qstats = question_stats(run)
    written = written_questions(options)
    figures = _figures(options.exports / FIGURES, run, qstats, names, written)
    pairs, subs = _pairs(options, run)
    from tpkit.grading.lms import full_names
    try:
        people = full_names(options.root / "submitted")
    except Exception:  # a roster that cannot be read: ids only
        people = {}
    page = render(options, run, figures, qstats, diagnostics(options, run), pairs, subs, names, written, people)
    out = options.exports / PAGE
    out.write_text(page, encoding="utf-8")
    return [f"Rapport de classe : {out.relative_to(options.root)} (figures dans "
            f"{(options.exports / FIGURES).relative_to(options.root)}/)"]
