"""What a grading run produces: one :class:`StudentResult` per submission, the :class:`RunReport` of
the class, and its JSON file (``exports/grading_report.json``, read back by ``--export-only`` and by
the formgrader's feedback pages)."""
from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional


class Status(enum.StrEnum):
    """ok: graded; partial: graded with remarks (repairs, timeouts); flagged: graded, and the notebook
    tried something against the grader or the system (:mod:`tpkit.grading.traces`); failed: could not
    be graded. A ``str``: written as such in the CSV and the JSON report."""

    OK = "ok"
    PARTIAL = "partial"
    FLAGGED = "flagged"
    FAILED = "failed"


OK, PARTIAL, FLAGGED, FAILED = Status.OK, Status.PARTIAL, Status.FLAGGED, Status.FAILED


@dataclass
class StudentResult:
    student: str
    status: Status = OK
    reasons: list = field(default_factory=list)  # French
    scores: dict = field(default_factory=dict)  # grade id -> points, None = awaiting manual grading
    score: Optional[float] = None  # total points (None: not graded)
    max_score: float = 0.0
    seconds: float = 0.0
    # what this grade was given to (tpkit.grading.incremental): an unchanged pair is not regraded
    submission_hash: str = ""
    grading_hash: str = ""
    import_remarks: list = field(default_factory=list)  # French remarks of the LMS import, kept on regrades

    def __post_init__(self):
        self.status = Status(self.status)

    @property
    def status_text(self) -> str:
        if self.status == OK:
            return OK
        return f"{self.status}: " + "; ".join(self.reasons)

    @property
    def grade20(self) -> Optional[float]:
        if self.score is None or not self.max_score:
            return None
        return round(self.score * 20.0 / self.max_score, 2)

    @property
    def manual_pending(self) -> list:
        return [g for g, v in self.scores.items() if v is None]


@dataclass
class RunReport:
    assignment: str
    columns: list  # graded ids, notebook order
    points: dict  # graded id -> max points
    max_score: float
    results: dict  # student -> StudentResult
    workers: int = 1
    seconds: float = 0.0
    own_cpu_seconds: float = 0.0  # CPU time of the grading process itself (kernels excluded)
    kernels_cpu_seconds: float = 0.0  # CPU time of this run's kernels (tpkit.grading.kernels.CpuMeter)
    sandbox: bool = True  # False: graded with --sans-bac-a-sable (said in the summary)
    isolation: str = ""  # French line: what this host could not isolate between kernels (isolation.isolation_notice)
    graded_now: list = field(default_factory=list)  # students graded by this run (results: the class)
    skipped: list = field(default_factory=list)  # students left as they were (unchanged since their grade)
    left: list = field(default_factory=list)  # students not graded because the run was interrupted
    export_only: bool = False  # written by --export-only (no grading: no duration to report)

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RunReport":
        data = json.loads(text)
        data["results"] = {k: StudentResult(**v) for k, v in data["results"].items()}
        data.pop("export_only", None)
        return cls(**data)


REPORT_NAME = "grading_report.json"
#: Where a run sets the previous run's exports aside (:func:`tpkit.grading.export.set_aside_previous_exports`).
PREVIOUS_EXPORTS = "precedent"


def find_report(exports: Path) -> tuple:
    """(path of the latest grading report, True when it is the previous run's) for ``--export-only``:
    ``exports/grading_report.json``, else the one a later run set aside in ``exports/precedent/``."""
    current = exports / REPORT_NAME
    if current.is_file():
        return current, False
    previous = exports / PREVIOUS_EXPORTS / REPORT_NAME
    if previous.is_file():
        return previous, True
    return current, False  # FileNotFoundError for the caller


def read_report(path: Path) -> Optional[RunReport]:
    """The report at ``path``; None when there is none or it is unreadable."""
    try:
        return RunReport.from_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def latest_report(exports: Path) -> Optional[RunReport]:
    """The class's grading report (see :func:`find_report`), None when there is none or it is unreadable."""
    return read_report(find_report(exports)[0])


def student_remarks(exports: Path, student: str) -> list:
    """French remarks of ``student`` in the latest report (the formgrader's pages say what the kit's say)."""
    for path in (exports / REPORT_NAME, exports / PREVIOUS_EXPORTS / REPORT_NAME):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return [str(r) for r in data["results"][student]["reasons"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return []


def merge_reports(previous: Optional[RunReport], run: RunReport) -> RunReport:
    """The class after this run: the previous report's students, those of this run replaced (grading
    a subset keeps the others' statuses and times). The run's own figures (seconds, workers) stay."""
    if previous is not None and previous.assignment == run.assignment:
        merged = dict(previous.results)
        merged.update(run.results)
        run.results = dict(sorted(merged.items()))
    return run
