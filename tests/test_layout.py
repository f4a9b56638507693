"""The kit's layout, as the README says.

* The tests mirror the package: each module of ``tpkit/grading/`` has its own
  ``tests/grading/test_<module>.py`` (the command, ``__main__``, has ``test_cli.py`` and
  ``test_cli_errors.py``). A new module without a test file of its name fails here.
* Modules stay small (one concern each, at most 400 lines) and no two of them import each other,
  even through a chain.
* Only an assignment's own package names an assignment (issue 24, item 2): library code takes the
  assignment as an argument and asks the registry (:mod:`tpkit.assignments`) for the rest, so adding
  or renaming an assignment touches its package, never the kit. The scan looks, in every file of
  ``tpkit/`` outside ``tpkit/assignments/<name>/``, for each registered assignment's name and its
  declared aliases (``Assignment.aliases``: the short names its modules use), as whole words in the
  code, its strings and its comments. The command lines are not exempt: their ``--assignment``
  default is the registry's first (:func:`tpkit.assignments.default`), so none needs a name either.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path


from tpkit import assignments, paths

TPKIT = paths.ROOT / "tpkit"
#: modules whose tests live in files of another name
ELSEWHERE = {"__init__": [], "__main__": ["test_cli.py", "test_cli_errors.py"]}
#: words that are not an assignment there, and why
ALLOWED = {
    "tpkit/datasets.py": {"pima": "a data file's name (data/pima.npz), which any assignment may load"},
}


def _words() -> set:
    out = set()
    for a in assignments.registry():
        out |= {a.name, *a.aliases}
    return out


def namings(text: str, words, allowed=()) -> list:
    """(line number, word) for each whole-word occurrence of `words` in `text`, `allowed` excepted."""
    found = []
    pattern = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, sorted(words))) + r")(?![A-Za-z0-9_])")
    for number, line in enumerate(text.splitlines(), 1):
        found += [(number, m.group(1)) for m in pattern.finditer(line) if m.group(1) not in allowed]
    return found


def _in_an_assignment_package(path: Path) -> bool:
    parts = path.relative_to(TPKIT).parts
    return len(parts) > 2 and parts[0] == "assignments"


def test_no_module_outside_its_package_names_an_assignment():
    words = _words()
    offenders = []
    for path in sorted(TPKIT.rglob("*")):
        if not path.is_file() or path.suffix not in (".py", ".j2", ".html", ".txt", ".json") \
                or _in_an_assignment_package(path):
            continue
        rel = str(path.relative_to(paths.ROOT))
        offenders += [f"{rel}:{n}: {w}" for n, w in namings(path.read_text(encoding="utf-8"), words,
                                                            ALLOWED.get(rel, {}))]
    assert not offenders, "assignment named outside its package: " + "; ".join(offenders)


def test_every_assignment_has_its_words_and_the_scan_finds_them():
    words = _words()
    for a in assignments.registry():
        assert a.aliases, f"{a.name}: declare the short names its modules use (aliases)"
        # the scan catches a planted name and alias, as a word only (not inside a longer identifier)
        planted = f"x = {a.name!r}\nfrom tpkit.checks import {a.aliases[0]}\nother_{a.aliases[0]}x = 1\n"
        assert namings(planted, words) == [(1, a.name), (2, a.aliases[0])]


def test_the_registry_module_itself_names_none():
    text = (TPKIT / "assignments" / "__init__.py").read_text(encoding="utf-8")
    assert namings(text, _words()) == []


def test_every_grading_module_has_a_test_file_of_its_name():
    tests = paths.ROOT / "tests" / "grading"
    missing = []
    for module in sorted((paths.ROOT / "tpkit" / "grading").glob("*.py")):
        names = ELSEWHERE.get(module.stem, [f"test_{module.stem}.py"])
        missing += [f"{module.name}: {name}" for name in names if not (tests / name).is_file()]
    assert missing == []


#: The most lines a module of the kit may have (issue 24: one concern per module).
MAX_MODULE_LINES = 400


def test_no_module_is_over_400_lines():
    sizes = {str(p.relative_to(paths.ROOT)): len(p.read_text(encoding="utf-8").splitlines())
             for p in sorted((paths.ROOT / "tpkit").rglob("*.py"))}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def _module_name(path) -> str:
    parts = list(path.relative_to(paths.ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree, deferred: bool):
    """The import statements a module runs when imported (its body, class bodies, ``if``/``try``
    blocks), and with ``deferred`` those inside its functions too."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif deferred or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))


def import_graph(deferred: bool = False) -> dict:
    """{module: the kit's modules it imports}. ``from package import name`` counts as an import of the
    submodule when ``name`` is one, else of the package; importing a module also imports the packages
    above it, except the importer's own (already being imported when it runs)."""
    files = {_module_name(p): p for p in (paths.ROOT / "tpkit").rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = path.name == "__init__.py"
        own = name.split(".") if package else name.split(".")[:-1]
        above = {".".join(own[:k]) for k in range(1, len(own) + 1)}
        edges = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8")), deferred):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from the importer's package up
                    base = ".".join(own[:len(own) - node.level + 1] + ([base] if base else []))
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in files]
                targets = subs + ([base] if len(subs) < len(node.names) else [])
            for target in targets:
                parts = target.split(".")
                edges |= {m for m in (".".join(parts[:k]) for k in range(1, len(parts) + 1))
                          if m in files and m != name and m not in above}
        graph[name] = edges
    return graph


def import_cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


def test_the_cycle_finder_finds_a_cycle():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []
    graph = import_graph()
    assert "tpkit.grading.feedback" in graph["tpkit.grading.feedback_exporter"]  # a module-level import
    assert "tpkit.witness.agent.rerun" in graph["tpkit.witness.agent"]  # a relative one


def test_no_import_cycle_among_the_kit_s_modules():
    """Module-level imports only (what runs when a module is imported)."""
    assert import_cycles(import_graph()) == []


def test_no_import_cycle_even_through_imports_deferred_into_functions():
    """A cycle broken only by importing inside a function is still two modules that need each other."""
    assert import_cycles(import_graph(deferred=True)) == []
