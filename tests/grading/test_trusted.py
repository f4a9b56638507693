"""tpkit.grading.trusted's plan of a test cell: which lines of a hidden region run on the grader's side,
which go to the kernel, and which make the cell an authoring error. The transport (answers read without
links, FIFOs or oversize files; a kernel that dies or stays silent) and one basic plan are tested in
tests/test_witness.py; the course secret in tests/grading/test_secret.py."""
import os
import stat

import pytest

from tpkit.grading import trusted

BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def cell(*lines):
    return "\n".join(lines)


def test_a_cell_without_hidden_region_runs_in_the_kernel_as_it_is():
    assert trusted.plan("assert pred(X).shape == (3, 10)\n# END HIDDEN TESTS à la fin ?") is None
    assert trusted.plan("") is None


def test_segments_keep_the_cell_s_order_around_several_hidden_regions():
    source = cell("x = pred(X)", BEGIN, "from tpkit.checks import verifier", "verifier(\"q2_pred\", globals())",
                  END, "assert x is not None", BEGIN, "verifier('q2_loss',globals())  # la perte", END,
                  "   ", "assert True")
    assert trusted.plan(source) == [("kernel", "x = pred(X)"), ("check", "q2_pred"),
                                    ("kernel", "assert x is not None"), ("check", "q2_loss"),
                                    ("kernel", "   \nassert True")]


def test_blank_lines_comments_and_the_import_are_allowed_in_a_hidden_region():
    source = cell(BEGIN, "", "# vérifie la prédiction", "    from tpkit.checks import verifier  # import",
                  "  verifier( 'q-2_pred' , globals() )  ", END)
    assert trusted.plan(source) == [("check", "q-2_pred")]


def test_an_empty_hidden_region_plans_nothing_and_blank_kernel_parts_are_dropped():
    assert trusted.plan(cell("", BEGIN, END, "  ")) == []


@pytest.mark.parametrize("line", [
    "import os",
    "print(open('gradebook.db').read())",
    "verifier(qid, globals())",  # the id must be written in the cell
    "verifier('q2_pred', locals())",
    "verifier('q2_pred', globals()); import os",
    "verifier('q2;pred', globals())",
    "verifier('q2_pred', globals(), strict=False)",
    "from tpkit.checks import verifier, tools",
    "from tpkit.checks import *",
    "x = 1  # verifier('q2_pred', globals())",
])
def test_any_other_line_in_a_hidden_region_is_refused_naming_it(line):
    with pytest.raises(trusted.HiddenTestError) as info:
        trusted.plan(cell("assert True", BEGIN, "verifier('q1', globals())", line, END))
    assert "ligne de test caché non reconnue" in str(info.value) and repr(line.strip()) in str(info.value)


def test_validate_hidden_tests_refuses_if_any_cell_is_refused():
    good = cell(BEGIN, "verifier('q1', globals())", END)
    trusted.validate_hidden_tests([good, "x = 1", good])
    with pytest.raises(trusted.HiddenTestError):
        trusted.validate_hidden_tests([good, cell(BEGIN, "import os", END)])


def test_lines_after_an_unclosed_region_are_still_hidden_lines():
    """A missing END marker does not send the rest of the cell to the kernel as visible code."""
    with pytest.raises(trusted.HiddenTestError):
        trusted.plan(cell(BEGIN, "verifier('q1', globals())", "print(secret)"))


def test_the_agent_is_installed_readable_and_its_startup_code_loads_that_copy(tmp_path):
    """Every file of the agent's package is copied, readable by the sandbox's uid; the start-up code
    loads the copy (not the kit's package, which a sandboxed kernel cannot import) as `_tpkit_agent`,
    its parts as its submodules, and writes no bytecode into the exchange folder."""
    import sys
    trusted.install_agent(tmp_path)
    folder = tmp_path / trusted.AGENT_FOLDER
    sources = trusted.agent_files()
    assert {p.name for p in sources} >= {"__init__.py", "rerun.py"}
    assert sorted(p.name for p in folder.iterdir()) == [p.name for p in sources]
    for source in sources:
        assert (folder / source.name).read_bytes() == source.read_bytes()
        assert stat.S_IMODE(os.stat(folder / source.name).st_mode) == 0o644  # the sandbox's uid reads it
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755
    code = trusted.agent_startup(str(tmp_path))
    try:
        exec(code, {})
        agent = sys.modules[trusted.AGENT_MODULE]
        assert callable(agent.session) and callable(agent.serve)
        assert sys.modules[trusted.AGENT_MODULE + ".rerun"].__file__ == str(folder / "rerun.py")
        assert agent.Agent({"n": 3}).handle({"op": "get", "name": "n"}) == {"found": True,
                                                                            "value": {"k": "v", "v": 3}}
        assert not (folder / "__pycache__").exists()
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == trusted.AGENT_MODULE]:
            sys.modules.pop(name)
        mpl = sys.modules.get("matplotlib")
        if mpl is not None:  # the agent hooked matplotlib's figures under its module's name
            mpl.rcParams["figure.hooks"] = [h for h in mpl.rcParams["figure.hooks"]
                                            if not h.startswith(trusted.AGENT_MODULE + ".")]
