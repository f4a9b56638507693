"""The tests mirror the package, as the README says: each module of ``tpkit/grading/`` has its own
``tests/grading/test_<module>.py`` (the command, ``__main__``, has ``test_cli.py`` and
``test_cli_errors.py``). A new module without a test file of its name fails here."""
from tpkit import paths

#: modules whose tests live in files of another name
ELSEWHERE = {"__init__": [], "__main__": ["test_cli.py", "test_cli_errors.py"]}


def test_every_grading_module_has_a_test_file_of_its_name():
    tests = paths.ROOT / "tests" / "grading"
    missing = []
    for module in sorted((paths.ROOT / "tpkit" / "grading").glob("*.py")):
        names = ELSEWHERE.get(module.stem, [f"test_{module.stem}.py"])
        missing += [f"{module.name}: {name}" for name in names if not (tests / name).is_file()]
    assert missing == []
