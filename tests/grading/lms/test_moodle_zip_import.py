"""Moodle's submissions zip laid out for nbgrader (tpkit.grading.lms.moodle.zip_import): both layouts,
names, renamed or ambiguous notebooks, zip-slip, re-imports."""
from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import pytest

from tpkit import paths
from tpkit.grading.lms import moodle
from tpkit.grading.lms.moodle import (
    fill_worksheet,
    import_moodle_zip,
    read_roster,
)
from tpkit.grading.lms.moodle.fixtures import write_moodle_zip
from moodle_sample import ASSIGNMENT, CLASS, NB, NB_A, NB_B, import_zip  # tests/grading/lms/moodle_sample.py


ROOT = paths.ROOT


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("layout", ["folders", "flat"])
@pytest.mark.parametrize("names", ["utf8", "utf8-noflag", "cp437"])
def test_both_layouts_and_name_encodings(tmp_path, layout, names):
    z = write_moodle_zip(tmp_path / "dl.zip", CLASS, layout=layout, names=names)
    if names != "utf8":  # really stored without the UTF-8 flag
        assert all(not i.flag_bits & 0x800 for i in zipfile.ZipFile(z).infolist())
    res = import_zip(z, tmp_path)
    assert res.ok, res.notes()
    assert res.layout == layout
    assert res.mapping == {"1234567": "p1234567", "1234568": "p1234568", "1234569": "p1234569"}
    assert res.participants == {"1234567": "Élodie Lefèvre", "1234568": "Jean-Noël D'Arcy",
                                "1234569": "Zoë van der Berg"}
    sub = tmp_path / "submitted"
    for full_name, (pid, data) in CLASS.items():
        s = res.submissions[f"p{pid}"]
        assert s.full_name == full_name and not s.renamed and s.changed and s.layout == layout
        assert s.dest_path == sub / f"p{pid}" / ASSIGNMENT / NB
        assert s.dest_path.read_bytes() == data
        assert full_name in s.source_entry
        assert (sub / f"p{pid}" / ASSIGNMENT / "timestamp.txt").read_text() == "2024-03-12 14:05:32"
    # nothing else written but the roster
    assert sorted(_tree(sub)) == sorted(
        [f"p{pid}/{ASSIGNMENT}/{f}" for _, (pid, _) in CLASS.items() for f in (NB, "timestamp.txt")]
        + ["moodle_roster.csv"]
    )


def test_timestamp_is_read_by_nbgrader(tmp_path):
    from nbgrader.utils import parse_utc

    z = write_moodle_zip(tmp_path / "dl.zip", CLASS, date_time=(2024, 11, 5, 23, 59, 58))
    res = import_zip(z, tmp_path, timezone="Europe/Paris")
    ts = (tmp_path / "submitted/p1234567" / ASSIGNMENT / "timestamp.txt").read_text()
    assert ts == "2024-11-05 23:59:58 Europe/Paris" == res.submissions["p1234567"].timestamp
    assert str(parse_utc(ts)) == "2024-11-05 22:59:58"


def test_decomposed_accents_from_macos_are_normalized(tmp_path):
    z = write_moodle_zip(tmp_path / "dl.zip", CLASS, nfd=True)
    res = import_zip(z, tmp_path)
    assert res.submissions["p1234567"].full_name == "Élodie Lefèvre"
    assert res.roster_path.read_text(encoding="utf-8").count("Élodie Lefèvre") >= 1


@pytest.mark.parametrize("layout", ["folders", "flat"])
@pytest.mark.parametrize("handed_in", [f"{ASSIGNMENT} (1).ipynb", "TP_Dupont.ipynb", "Untitled.IPYNB"])
def test_single_renamed_notebook_is_imported_under_the_expected_name(tmp_path, layout, handed_in):
    z = write_moodle_zip(tmp_path / "dl.zip", {"Jean-Noël D'Arcy": (1234568, {handed_in: NB_B})}, layout=layout)
    res = import_zip(z, tmp_path)
    s = res.submissions["p1234568"]
    assert s.renamed and s.original_name == handed_in
    assert (tmp_path / "submitted/p1234568" / ASSIGNMENT / NB).read_bytes() == NB_B
    assert not (tmp_path / "submitted/p1234568" / ASSIGNMENT / handed_in).exists()
    assert res.renamed == [s]
    assert f"p1234568 (Jean-Noël D'Arcy) : notebook rendu sous le nom « {handed_in} »" in "\n".join(res.notes())
    assert res.remarks() == {"p1234568": [f"notebook rendu sous le nom « {handed_in} » (corrigé quand même)"]}
    assert read_roster(tmp_path / "submitted")["p1234568"].status == "renamed"


def test_notebook_in_a_subfolder_is_moved_to_the_top(tmp_path):
    files = {f"TP/rendu/{NB}": NB_A, "TP/rendu/donnees.csv": b"1,2\n"}
    z = write_moodle_zip(tmp_path / "dl.zip", {"Élodie Lefèvre": (1234567, files)})
    res = import_zip(z, tmp_path)
    s = res.submissions["p1234567"]
    assert s.renamed and s.original_name == f"TP/rendu/{NB}"
    assert (tmp_path / "submitted/p1234567" / ASSIGNMENT / NB).read_bytes() == NB_A
    assert [i.reason for i in res.ignored] == ["not a notebook"]


def test_several_notebooks_prefer_the_expected_name(tmp_path):
    files = {"brouillon.ipynb": NB_B, NB: NB_A, f"{ASSIGNMENT} (1).ipynb": NB_B}
    z = write_moodle_zip(tmp_path / "dl.zip", {"Élodie Lefèvre": (1234567, files)})
    res = import_zip(z, tmp_path)
    assert res.ok
    s = res.submissions["p1234567"]
    assert not s.renamed and s.dest_path.read_bytes() == NB_A


def test_several_notebooks_case_insensitive_match(tmp_path):
    files = {"brouillon.ipynb": NB_B, "TP_Reseaux_Neurones.ipynb": NB_A}
    z = write_moodle_zip(tmp_path / "dl.zip", {"Élodie Lefèvre": (1234567, files)})
    s = import_zip(z, tmp_path).submissions["p1234567"]
    assert s.renamed and s.original_name == "TP_Reseaux_Neurones.ipynb" and s.dest_path.read_bytes() == NB_A


@pytest.mark.parametrize("files", [
    {"version1.ipynb": NB_A, "version2.ipynb": NB_B},
    {NB: NB_A, f"sauvegarde/{NB}": NB_B},
])
def test_several_notebooks_without_a_clear_choice_are_flagged(tmp_path, files):
    z = write_moodle_zip(tmp_path / "dl.zip", {"Zoë van der Berg": (1234569, files), "Élodie Lefèvre": (1234567, NB_A)})
    res = import_zip(z, tmp_path)
    assert list(res.submissions) == ["p1234567"]  # the other student is unaffected
    [p] = res.problems
    assert p.kind == "ambiguous" and p.participant_id == "1234569" and p.student_id == "p1234569"
    assert p.full_name == "Zoë van der Berg" and len(p.entries) == 2
    assert not (tmp_path / "submitted/p1234569").exists()
    assert read_roster(tmp_path / "submitted")["p1234569"].status == "ambiguous"
    assert ("p1234569 (Zoë van der Berg) : plusieurs notebooks rendus sur Moodle, aucun ne porte le nom attendu"
            in "\n".join(res.notes()))
    assert res.failures()["p1234569"].startswith("plusieurs notebooks rendus sur Moodle")


def test_no_notebook_and_other_files(tmp_path):
    subs = {
        "Jean-Noël D'Arcy": (1234568, {"rapport.pdf": b"%PDF-1.4", "code.py": b"print(1)\n"}),
        "Élodie Lefèvre": (1234567, {NB: NB_A, "figure.png": b"\x89PNG", "data/x.npz": b"PK"}),
    }
    z = write_moodle_zip(tmp_path / "dl.zip", subs)
    res = import_zip(z, tmp_path)
    assert list(res.submissions) == ["p1234567"]
    [p] = res.problems
    assert p.kind == "no_notebook" and p.participant_id == "1234568" and len(p.entries) == 2
    assert sorted(i.entry.rsplit("/", 1)[-1] for i in res.ignored) == ["code.py", "figure.png", "rapport.pdf", "x.npz"]
    # other files are not copied next to the notebook
    assert sorted(p.name for p in (tmp_path / "submitted/p1234567" / ASSIGNMENT).iterdir()) == ["timestamp.txt", NB]


def test_macosx_checkpoints_and_hidden_files_are_ignored(tmp_path):
    prefix = "Élodie Lefèvre_1234567_assignsubmission_file_"
    extra = {
        f"__MACOSX/{prefix}/._{NB}": b"\x00\x05\x16\x07",
        f"{prefix}/.ipynb_checkpoints/{ASSIGNMENT}-checkpoint.ipynb": NB_B,
        f"{prefix}/.DS_Store": b"\x00",
        ".DS_Store": b"\x00",
    }
    z = write_moodle_zip(tmp_path / "dl.zip", {"Élodie Lefèvre": (1234567, NB_A)}, extra_entries=extra)
    res = import_zip(z, tmp_path)
    assert res.ok, res.notes()  # the checkpoint does not make the submission ambiguous
    assert res.submissions["p1234567"].dest_path.read_bytes() == NB_A
    assert sorted(i.reason for i in res.ignored) == [
        "hidden or cache file (.DS_Store)", "hidden or cache file (.DS_Store)", "macOS metadata",
        "notebook checkpoint"]


def test_unattributable_entries_are_reported(tmp_path):
    extra = {
        "lisez-moi.txt": b"x",
        "Sans Identifiant_assignsubmission_file_/tp.ipynb": NB_A,
        "Dupont Jean/tp_reseaux_neurones.ipynb": NB_A,
        "Élodie Lefèvre_1234567_onlinetext_/onlinetext.html": b"<p>x</p>",
    }
    z = write_moodle_zip(tmp_path / "dl.zip", CLASS, extra_entries=extra)
    res = import_zip(z, tmp_path)
    assert len(res.submissions) == 3
    kinds = sorted((p.kind, p.entries[0]) for p in res.problems)
    assert [k for k, _ in kinds] == ["no_participant_id"] * 4
    assert {e for _, e in kinds} == set(extra)
    assert "lisez-moi.txt" in "\n".join(res.notes())


def test_online_text_submission_is_ignored(tmp_path):
    extra = {"Élodie Lefèvre_1234567_assignsubmission_onlinetext_onlinetext.html": b"<p>x</p>"}
    z = write_moodle_zip(tmp_path / "dl.zip", {"Élodie Lefèvre": (1234567, NB_A)}, extra_entries=extra)
    res = import_zip(z, tmp_path)
    assert res.ok and [i.reason for i in res.ignored] == ["not a file submission (assignsubmission_onlinetext)"]


def test_zip_slip_is_rejected(tmp_path):
    prefix = "Élodie Lefèvre_1234567_assignsubmission_file_"
    extra = {
        "../../evil.ipynb": b"evil",
        "/tmp/abs_evil.ipynb": b"evil",
        f"{prefix}/../../../evil2.ipynb": b"evil",
        f"..\\{prefix}\\evil3.ipynb": b"evil",
        "C:/evil4.ipynb": b"evil",
    }
    z = write_moodle_zip(tmp_path / "dl.zip", {"Jean-Noël D'Arcy": (1234568, NB_B)}, extra_entries=extra)
    assert {i.filename for i in zipfile.ZipFile(z).infolist()} >= set(extra)  # really in the zip
    work = tmp_path / "course"
    res = import_moodle_zip(z, work / "submitted", ASSIGNMENT, NB)
    assert sorted(p.entries[0] for p in res.problems if p.kind == "unsafe_path") == sorted(extra)
    assert list(res.submissions) == ["p1234568"]
    assert not (tmp_path / "evil.ipynb").exists() and not Path("/tmp/abs_evil.ipynb").exists()
    assert all(b"evil" != d for d in _tree(tmp_path).values() if d != z.read_bytes())
    assert sorted(_tree(work)) == sorted([f"submitted/p1234568/{ASSIGNMENT}/{NB}",
                                          f"submitted/p1234568/{ASSIGNMENT}/timestamp.txt",
                                          "submitted/moodle_roster.csv"])


@pytest.mark.parametrize("bad", [("../x", NB), ("a/b", NB), (ASSIGNMENT, "../x.ipynb"), (ASSIGNMENT, "x.txt")])
def test_bad_arguments(tmp_path, bad):
    z = write_moodle_zip(tmp_path / "dl.zip", CLASS)
    with pytest.raises(ValueError):
        import_moodle_zip(z, tmp_path / "submitted", *bad)


def test_rezipped_in_an_extra_top_folder(tmp_path):
    inner = write_moodle_zip(tmp_path / "in.zip", CLASS, layout="folders")
    z = tmp_path / "dl.zip"
    with zipfile.ZipFile(inner) as src, zipfile.ZipFile(z, "w") as dst:
        for info in src.infolist():
            dst.writestr("TP réseaux - Rendu/" + info.filename, src.read(info))
    res = import_zip(z, tmp_path)
    assert res.ok and len(res.submissions) == 3


def test_invalid_notebook_is_copied_as_is(tmp_path):
    # Deciding what to do with broken JSON is the pre-check's job, not the import's.
    z = write_moodle_zip(tmp_path / "dl.zip", {"Élodie Lefèvre": (1234567, b'{"cells": [')})
    res = import_zip(z, tmp_path)
    assert res.submissions["p1234567"].dest_path.read_bytes() == b'{"cells": ['


def test_not_a_zip(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(zipfile.BadZipFile):
        import_zip(tmp_path / "x.zip", tmp_path)


def test_reimport_is_idempotent(tmp_path):
    subs = dict(CLASS)
    subs["Mathéo Núñez"] = (1234570, {"a.ipynb": NB_A, "b.ipynb": NB_B})  # ambiguous
    z = write_moodle_zip(tmp_path / "dl.zip", subs, extra_entries={"stray.txt": b"x"})
    first = import_zip(z, tmp_path)
    before = _tree(tmp_path / "submitted")
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "submitted").rglob("*") if p.is_file()}
    second = import_zip(z, tmp_path)
    assert _tree(tmp_path / "submitted") == before
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "submitted").rglob("*") if p.is_file()} == mtimes
    assert not any(s.changed for s in second.submissions.values())
    assert second.problems == first.problems and second.ignored == first.ignored
    assert second.mapping == first.mapping


def test_new_download_updates_a_resubmitted_notebook(tmp_path):
    import_zip(write_moodle_zip(tmp_path / "a.zip", CLASS), tmp_path)
    subs = dict(CLASS)
    subs["Élodie Lefèvre"] = (1234567, NB_B, (2024, 3, 13, 9, 0, 0))
    res = import_zip(write_moodle_zip(tmp_path / "b.zip", subs), tmp_path)
    assert res.submissions["p1234567"].changed and not res.submissions["p1234568"].changed
    d = tmp_path / "submitted/p1234567" / ASSIGNMENT
    assert (d / NB).read_bytes() == NB_B and (d / "timestamp.txt").read_text() == "2024-03-13 09:00:00"


def test_example_script_round_trip(tmp_path):
    spec = importlib.util.spec_from_file_location("make_example", ROOT / "examples/moodle/make_example.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    files = mod.make_example([NB_A, NB_B], tmp_path / "ex")
    again = mod.make_example([NB_A, NB_B], tmp_path / "ex2")
    assert all(files[k].read_bytes() == again[k].read_bytes() for k in files)  # deterministic
    for kind in ("zip", "zip_flat"):
        res = import_moodle_zip(files[kind], tmp_path / kind / "submitted", ASSIGNMENT, NB)
        assert res.ok and len(res.submissions) == len(mod.CLASS) and len(res.renamed) == 1
    results = {pid: (10.0, "Exemple") for pid in res.mapping}
    rep = fill_worksheet(files["worksheet"], results, tmp_path / "filled.csv")
    assert len(rep.updated) == len(mod.CLASS) and not rep.missing_rows and not rep.ungraded


def test_zip_participants_and_worksheet_check(tmp_path):
    z = tmp_path / "travaux.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("Élodie Lefèvre_1234567_assignsubmission_file_/tp.ipynb", "{}")
        zf.writestr("Zoë_0042_assignsubmission_file_notes.txt", "x")
        zf.writestr("__MACOSX/._x", "")
    assert moodle.zip_participants(z) == {"p1234567", "p42"}
    sheet = tmp_path / "feuille.csv"
    sheet.write_text("Identifiant,Nom complet,Note,Note maximale\nParticipant 1,A,,20,00\n", encoding="utf-8")
    moodle.check_worksheet(sheet)
    grades = tmp_path / "grades.csv"
    grades.write_text("student_id,q1,total_20,status\na,1,20,ok\n", encoding="utf-8")
    with pytest.raises(ValueError):
        moodle.check_worksheet(grades)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feuille.csv", "grades.csv", "travaux.zip"]


def test_a_file_beside_the_notebook_is_named_not_dropped_silently(tmp_path):
    """Only the notebook is graded; the teacher reads which other files were left out, per student."""
    files = {NB: NB_A, "donnees.csv": b"1,2\n", "brouillon.py": b"x = 1\n"}
    z = write_moodle_zip(tmp_path / "dl.zip", {"Élodie Lefèvre": (1234567, files),
                                              "Jean-Noël D'Arcy": (1234568, {NB: NB_B})})
    notes = "\n".join(import_zip(z, tmp_path).notes())
    assert "p1234567 (Élodie Lefèvre) : fichier(s) non importé(s) (pas un notebook) : brouillon.py, donnees.csv" in notes
    assert "p1234568" not in notes
