"""The suite's dispatch plan (tests/conftest.py's PLAN) names tests that exist: a renamed or moved
test would silently leave its unit and run wherever (possibly waiting on the other worker)."""
import re

from conftest import PLAN

from tpkit import paths


def test_plan_names_existing_tests_once():
    seen = []
    for _, prefixes in PLAN:
        for prefix in prefixes:
            file, _, name = prefix.partition("::")
            path = paths.ROOT / file
            assert path.is_file(), prefix
            if name:
                assert re.search(rf"^def {re.escape(name)}\(", path.read_text(encoding="utf-8"), re.M), prefix
            seen.append(prefix)
    assert len(seen) == len(set(seen))
    assert len({unit for unit, _ in PLAN}) == len(PLAN)


def test_the_fidelity_test_finds_the_catalogue_test():
    """It reads the sample's run only when the session runs the catalogue test, found by node id."""
    from test_catalogue import CATALOGUE_TEST
    assert dict(PLAN)["catalogue"] == [CATALOGUE_TEST]
