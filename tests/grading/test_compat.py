"""Every patch of nbgrader/nbconvert/nbclient in one module, applied explicitly, for the pinned versions
only (tpkit/grading/compat.py)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tpkit.grading import compat


def test_the_installed_versions_are_the_pinned_ones():
    assert set(compat.pinned()) == set(compat.PATCHED)
    compat.check_versions()


def test_another_version_is_refused_in_french(tmp_path, monkeypatch):
    req = tmp_path / "requirements.txt"
    req.write_text("nbgrader==0.0.1  # a pin the venv does not have\nnumpy==1.0\n")
    assert compat.pinned(req) == {"nbgrader": "0.0.1"}
    with pytest.raises(compat.IncompatibleVersions, match="nbgrader .* 0.0.1.*make setup"):
        compat.check_versions(req)


def test_patches_are_applied_only_when_asked():
    code = ("from tpkit.grading import converters, compat\n"
            "from nbgrader.nbgraderformat import common\n"
            "import jsonschema\n"
            "before = common.jsonschema is jsonschema\n"
            "compat.apply(); compat.apply()\n"
            "print(before, common.jsonschema.validate is compat.validate_once_compiled)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_the_compiled_validator_gives_nbgrader_s_verdicts():
    import jsonschema
    schema = {"type": "object", "properties": {"points": {"type": "number"}}, "required": ["points"]}
    compat.validate_once_compiled({"points": 1}, schema)
    for bad in ({"points": "x"}, {}):
        with pytest.raises(jsonschema.ValidationError) as mine:
            compat.validate_once_compiled(bad, schema)
        with pytest.raises(jsonschema.ValidationError) as theirs:
            jsonschema.validate(bad, schema)
        assert mine.value.message == theirs.value.message


def test_the_gradebook_class_is_swapped_and_given_back():
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import saveautogrades

    class Mine(Gradebook):
        pass
    with compat.nbgrader_gradebook(Mine):
        with compat.nbgrader_gradebook(Mine):
            assert saveautogrades.Gradebook is Mine
        assert saveautogrades.Gradebook is Mine
    assert saveautogrades.Gradebook is Gradebook


def test_no_other_module_patches_nbgrader_nbconvert_or_nbclient():
    # a module attribute of those packages assigned anywhere else would escape the version check
    here = Path(compat.__file__).parents[1]
    aliases = re.compile(r"^\s*(?:from\s+(nbgrader|nbconvert|nbclient)[\w.]*\s+import\s+(.+)|import\s+((?:nbgrader|nbconvert|nbclient)[\w.]*)(?:\s+as\s+(\w+))?)", re.M)
    offenders = []
    for path in here.rglob("*.py"):
        if path.name == "compat.py":
            continue
        text = path.read_text(encoding="utf-8")
        names = set()
        for m in aliases.finditer(text):
            if m.group(2):
                names |= {n.split(" as ")[-1].strip(" ()") for n in m.group(2).split(",")}
            else:
                names.add(m.group(4) or m.group(3).split(".")[0])
        for name in filter(None, names):
            if re.search(rf"^\s*{re.escape(name)}\.\w+(\.\w+)*\s*=[^=]", text, re.M):
                offenders.append(f"{path.relative_to(here)}: {name}")
    assert offenders == []
