"""One source of truth (issue #9, item 3): the checks follow the imposed values of the source
notebook's given lines, and `make release` grades the source before releasing it."""
import json
import shutil

import pytest

from tpkit import paths, release

MAIN = "tp_reseaux_neurones"  # the course's main assignment


def _copy_source(tmp_path, edit):
    folder = tmp_path / "source" / MAIN
    shutil.copytree(paths.source_dir(MAIN), folder)
    nb_path = folder / paths.notebook_name(MAIN)
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        cell["source"] = edit(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"), src)
    nb_path.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
    return nb_path


@pytest.mark.slow
def test_checks_follow_the_source_and_release_names_a_broken_question(tmp_path):
    """niter = 300 in every given line, and a solution that breaks Q2.2 (B = ones): the release is
    refused naming Q2.2 only. So every other question of the source's own solution earns its points
    with niter = 300 (the checks read it from the source), the blank release earns none, and a
    broken question is named alone. One pregrade (a solution and a blank run) proves what two did
    (a solution run each): Q2.2's check reads `B` only, no imposed value, and its repair puts back
    the solution's `B = 0` for the cells after it (the training cells initialise their own), so
    they run as in the source's own solution."""
    def edit(gid, src):
        src = src.replace("niter = 200", "niter = 300").replace("1, 200)", "1, 300)")
        return src.replace("B = th.zeros(1, p,", "B = th.ones(1, p,") if gid == "r2_B" else src
    problems = release.pregrade(_copy_source(tmp_path, edit))
    assert len(problems) == 1 and "Q2.2" in problems[0] and "solution de l'enseignant" in problems[0], problems


def test_release_refuses_before_writing_anything(tmp_path, monkeypatch, capsys):
    """Cheap: pregrade's verdict stops `generate` before nbgrader runs (nothing written), exit 2."""
    course = tmp_path / "course"
    shutil.copytree(paths.source_dir(MAIN), course / "source" / MAIN)
    monkeypatch.setattr(release, "pregrade",
                        lambda nb: ["la solution de l'enseignant perd des points à la question Q2.2 B"])
    with pytest.raises(SystemExit) as exc:
        release.generate(MAIN, root=course, check=True)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("publication refusée") and "Q2.2 B" in err
    assert not (course / "release").exists()
