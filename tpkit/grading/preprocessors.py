"""nbgrader preprocessors of the grading workflow (one class, one job, configured like nbgrader's own).

Sanitize side
  :class:`RepairGradedCells` the pre-check's cell repairs, for plain ``nbgrader autograde``.
  :class:`HiddenTestsOverwriteCells` nbgrader's ``OverwriteCells`` that puts back the hidden tests of a
                           pristine test cell without calling it changed (an edited one still is).

Autograde side
  :class:`~tpkit.grading.executor.LimitedExecute` the executor, in a module of its own (named here too,
                           where nbgrader's configuration and the converters find the preprocessors).
  ``Serialized*``          nbgrader's gradebook preprocessors behind one process-wide lock (a
                           worker grades one submission on its private gradebook; the lock costs
                           nothing there and keeps the preprocessors safe in a threaded caller).

Feedback side
  :class:`GetGradesFr`       ``GetGrades`` that also says which answers still await manual grading.
  :class:`StudentSafeOutputs` test cells show the failure *message* only: no traceback (whose lines
                           would quote hidden tests and kit files), no hidden line, no kit path.
"""
from __future__ import annotations

import re
from pathlib import Path

from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import (AssignLatePenalties, GetGrades,
                                    NbGraderPreprocessor, OverwriteCells, SaveAutoGrades)
from traitlets import Integer, Unicode

from tpkit.grading.executor import LimitedExecute  # noqa: F401 (named here by the converters)
from tpkit.grading.findings import failure_message
from tpkit.grading.gradebook import GRADEBOOK_LOCK, load_expected
from tpkit.grading.expected import visible_source
from tpkit.grading.precheck import MAX_MARKDOWN_CHARS, repair_cells
from tpkit.grading.submission_files import format_mo
from tpkit.vocabulary import grade_id, split_hidden


class RepairGradedCells(NbGraderPreprocessor):
    """The pre-check's cell-level repairs (:func:`tpkit.grading.precheck.repair_cells`) as an nbgrader
    sanitize preprocessor, for plain ``nbgrader autograde``: put it first in
    ``Autograde.sanitize_preprocessors``. Findings are logged as warnings."""

    release_directory = Unicode("release", help="Where the release notebooks are (relative to the "
                                                "course root).").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        release = Path(self.release_directory) / info["assignment"] / f"{info['notebook']}.ipynb"
        try:
            with GRADEBOOK_LOCK:  # the converter runs from the course root
                expected = load_expected(info["db_url"], None, info["assignment"], info["notebook"], release)
        except MissingEntry:
            return nb, resources
        for finding in repair_cells(nb, expected):
            self.log.warning("%s: %s", info.get("student"), finding.message)
        return nb, resources


class _Serialized:
    """Mixin: run the preprocessor while holding :data:`GRADEBOOK_LOCK`."""

    def preprocess(self, nb, resources):
        with GRADEBOOK_LOCK:
            return super().preprocess(nb, resources)


class HiddenTestsOverwriteCells(OverwriteCells):
    """``OverwriteCells`` that restores the hidden tests of an unchanged test cell quietly.

    ``nbgrader generate_assignment`` stores in the gradebook each cell's source *with* its hidden tests
    and the checksum of that source (computed before ``ClearHiddenTests``); the release cell has the
    hidden region removed. ``OverwriteCells`` compares the submitted cell's checksum with the
    gradebook's, so every test cell with hidden tests "has changed" in every submission, the blank
    release included (one warning per cell), and the restore that follows is how the hidden tests come
    back. Here a locked cell whose source is exactly its release text gets its gradebook source back
    first: the checksums then agree. A cell whose text differs from the release is left to nbgrader,
    which reports the changed checksum and restores it, as before."""

    def preprocess(self, nb, resources):
        self._full_sources = None  # per notebook: {grade id: (release text, gradebook source)}
        return super().preprocess(nb, resources)

    def _hidden_test_cells(self) -> dict:
        if self._full_sources is None:
            source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
            self._full_sources = {sc.name: (visible_source(sc.source), sc.source)
                                  for sc in source_nb.source_cells if sc.locked}
            self._full_sources = {k: v for k, v in self._full_sources.items() if v[0] != v[1]}
        return self._full_sources

    def preprocess_cell(self, cell, resources, cell_index):
        released, full = self._hidden_test_cells().get(grade_id(cell), (None, None))
        if released is not None and cell.source == released:
            cell.source = full
        return super().preprocess_cell(cell, resources, cell_index)


class SerializedOverwriteCells(_Serialized, HiddenTestsOverwriteCells):
    pass


class _OneCommit(NbGraderPreprocessor):
    """Inside ``SaveAutoGrades``' open gradebook: its commit after each cell (~70 per notebook, each
    expiring the session's objects and syncing the file) only flushes; the notebook's scores are
    committed once, together (if a cell fails, none is, and the submission is reported). Measured: 33 ms
    of the grading process's CPU less per notebook."""

    def preprocess(self, nb, resources):
        db = self.gradebook.db
        db.commit = db.flush
        try:
            nb, resources = super().preprocess(nb, resources)
        finally:
            del db.commit
        db.commit()
        return nb, resources


class SerializedSaveAutoGrades(_Serialized, SaveAutoGrades, _OneCommit):
    pass


class SerializedAssignLatePenalties(_Serialized, AssignLatePenalties):
    pass


class GetGradesFr(_Serialized, GetGrades):
    """``GetGrades`` + ``needs_manual_grade`` in each graded cell's metadata (for the feedback), and
    nbgrader's automatic comment in French."""

    def _get_comment(self, cell, resources):
        super()._get_comment(cell, resources)
        if cell.metadata.nbgrader.get("comment") == "No response.":
            cell.metadata.nbgrader["comment"] = "Pas de réponse."

    def _get_score(self, cell, resources):
        # GetGrades._get_score (nbgrader 0.9) and the flag, from one query of the grade instead of two
        grade = self.gradebook.find_grade(cell.metadata["nbgrader"]["grade_id"], self.notebook_id,
                                          self.assignment_id, self.student_id)
        cell.metadata.nbgrader["score"] = grade.score
        cell.metadata.nbgrader["points"] = grade.max_score
        cell.metadata.nbgrader["needs_manual_grade"] = bool(grade.needs_manual_grade)


_KIT_PATH = re.compile(r"tpkit|site-packages|File \"|^\s*Traceback", re.I)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class StudentSafeOutputs(NbGraderPreprocessor):
    """Feedback: make test cells safe to show.

    In a grade cell that is not an answer (a test cell): an error output keeps only the failure
    message (no traceback: it would print hidden lines and kit paths); stream lines that mention the kit
    or repeat a hidden line are dropped. In every other code cell, traceback lines mentioning the kit
    are dropped. Run it *before* ``ClearHiddenTests`` (it reads the hidden region to know its lines)."""

    label = Unicode("Échec du test").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        is_test = utils.is_grade(cell) and not utils.is_solution(cell)
        hidden = {line.strip() for line in split_hidden(cell.source)[1] if line.strip()} if is_test else set()
        outputs = []
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                if is_test:
                    out.traceback = [f"\x1b[0;31m{self.label}\x1b[0m : {failure_message(out)}"]
                else:
                    out.traceback = [line for line in out.traceback if "tpkit" not in _ANSI.sub("", line)]
            elif out.output_type == "stream" and is_test:
                kept = [line for line in out.text.split("\n")
                        if not _KIT_PATH.search(line) and line.strip() not in hidden]
                if not any(line.strip() for line in kept):
                    continue
                out.text = "\n".join(kept)
            outputs.append(out)
        cell.outputs = outputs
        return cell, resources


class LimitOutputBytes(NbGraderPreprocessor):
    """Cap the size of the outputs, in bytes (nbgrader's ``LimitOutput`` counts lines, and one line
    can be 300 MB): run it right after execution (autograded notebook) and in the feedback.

    An output over :attr:`max_output_bytes` is cut to that size with a French note
    ``[sortie tronquée : N Mo]`` (N: its size before the cut); a rich output (image, HTML…) that is too
    big is replaced by its text form, cut. Once the notebook's outputs reach :attr:`max_notebook_bytes`,
    each later cell keeps only the first output of each kind (stdout, stderr, error, display, result),
    cut to :attr:`truncated_bytes`, and a note. Grading is unchanged: an error or stderr output is never
    removed (its message is cut), so a failed test cell still fails."""

    max_output_bytes = Integer(1024 * 1024, help="Bytes kept of one output (0: no limit).").tag(config=True)
    max_notebook_bytes = Integer(8 * 1024 * 1024, help="Bytes of output kept in the whole notebook before "
                                                       "the later outputs are cut short (0: no limit).").tag(config=True)
    truncated_bytes = Integer(2000, help="Bytes kept of an output once the notebook's budget is spent.").tag(config=True)
    max_name_chars = Integer(200, help="Characters kept of an error's name.").tag(config=True)
    max_markdown_chars = Integer(MAX_MARKDOWN_CHARS, help="Characters of a text/markdown output rendered as "
                                 "Markdown; a longer one is shown as its text (the feedback's Markdown "
                                 "renderer is quadratic on some input) (0: no limit).").tag(config=True)

    @staticmethod
    def nbytes(value) -> int:
        """UTF-8 size of the strings of an output (keys included), recursively."""
        if isinstance(value, str):
            return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
        if isinstance(value, dict):
            return sum(len(str(k)) + LimitOutputBytes.nbytes(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return sum(LimitOutputBytes.nbytes(v) for v in value)
        return 8

    @staticmethod
    def note(nbytes: int) -> str:
        return f"[sortie tronquée : {format_mo(nbytes)}]"

    @staticmethod
    def cut(text, limit: int) -> str:
        """The first ``limit`` UTF-8 bytes of ``text`` (a string or nbformat's list of lines)."""
        if isinstance(text, list):
            text = "".join(str(t) for t in text)
        text = str(text)
        head = text[:limit]
        if len(head) != limit or not head.isascii():
            head = head.encode("utf-8", "surrogatepass")[:limit].decode("utf-8", "ignore")
        return head

    def shrink(self, out: NotebookNode, limit: int) -> NotebookNode:
        """``out`` cut to at most ``limit`` bytes (note included, so that cutting again changes
        nothing), same output type and stream name."""
        size = self.nbytes(out)
        if size <= limit:
            return out
        note = self.note(size)
        kind = out.get("output_type")
        if kind == "stream":
            text, out.text = out.get("text", ""), ""
            room = limit - self.nbytes(out) - self.nbytes(note) - 2
            out.text = self.cut(text, max(0, room)) + f"\n{note}\n"
        elif kind == "error":
            out.ename = self.cut(out.get("ename", ""), self.max_name_chars)
            out.evalue = self.cut(out.get("evalue", ""), limit // 2)
            traceback, out.traceback = out.get("traceback", []), [note]
            room = limit - self.nbytes(out) - 8
            kept = []
            for line in traceback:
                line = str(line)
                room -= self.nbytes(line) + 8
                if room < 0:
                    kept.append(self.cut(line, max(0, room + self.nbytes(line))))
                    break
                kept.append(line)
            out.traceback = kept + [note]
        elif kind in ("display_data", "execute_result"):
            text = out.get("data", {}).get("text/plain", "")
            out.data, out.metadata = {"text/plain": note}, {}
            room = limit - self.nbytes(out) - 1
            if text:
                out.data["text/plain"] = self.cut(text, max(0, room)) + "\n" + note
        return out

    def plain_markdown(self, out: NotebookNode) -> None:
        """A ``text/markdown`` output longer than :attr:`max_markdown_chars` loses that form: shown as
        text, never rendered (the same cap as a Markdown cell at staging)."""
        data = out.get("data")
        markdown = data.get("text/markdown") if isinstance(data, dict) else None
        if markdown is None or not self.max_markdown_chars:
            return
        text = "".join(str(t) for t in markdown) if isinstance(markdown, list) else str(markdown)
        if len(text) > self.max_markdown_chars:
            del data["text/markdown"]
            data.setdefault("text/plain", text)

    def preprocess(self, nb, resources):
        self._used = 0
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.get("outputs"):
            return cell, resources
        outputs, seen, dropped, dropped_bytes = [], set(), 0, 0
        for out in cell.outputs:
            self.plain_markdown(out)
            size = self.nbytes(out)
            spent = self.max_notebook_bytes and self._used + min(size, self.max_output_bytes or size) \
                > self.max_notebook_bytes
            if spent:
                kind = (out.get("output_type"), out.get("name"))
                is_note = kind == ("stream", "stdout") and str(out.get("text", "")).startswith("[sortie tronquée")
                if kind in seen and not is_note:
                    dropped, dropped_bytes = dropped + 1, dropped_bytes + size
                    continue
                seen.add(kind)
                out = self.shrink(out, self.truncated_bytes)
            elif self.max_output_bytes:
                out = self.shrink(out, self.max_output_bytes)
            self._used += self.nbytes(out)
            outputs.append(out)
        if dropped:
            outputs.append(NotebookNode(output_type="stream", name="stdout",
                                        text=f"{self.note(dropped_bytes)} ({dropped} sortie(s) de plus)\n"))
        cell.outputs = outputs
        return cell, resources

