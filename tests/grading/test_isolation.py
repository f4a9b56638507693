"""The line that says a run's submissions were not isolated from one another (tpkit.grading.isolation)."""
import pytest

from tpkit.grading import cgroups, isolation, quota, seccomp


def test_each_missing_mechanism_is_named_and_an_isolated_host_says_nothing(monkeypatch):
    monkeypatch.setattr(cgroups, "backend", lambda: None)
    monkeypatch.setattr(quota, "available", lambda: False)
    monkeypatch.setattr(seccomp, "program", lambda: None)
    notice = isolation.isolation_notice(True)
    assert notice.startswith("ATTENTION : rendus partiellement isolés les uns des autres : ")
    assert "processeur et mémoire partagés" in notice and "sans limite de taille" in notice \
        and "appels système non filtrés" in notice
    assert isolation.isolation_notice(False) == ""  # without the sandbox, its own warning says more
    monkeypatch.setattr(seccomp, "program", lambda: b"filter")
    notice = isolation.isolation_notice(True)
    assert "processeur" in notice and "appels système" not in notice
    monkeypatch.setattr(cgroups, "backend", lambda: object())
    monkeypatch.setattr(quota, "available", lambda: True)
    assert isolation.isolation_notice(True) == ""


def test_isolated_host_has_no_notice():
    """Where cgroups, root (folder caps) and libseccomp are all there, the summary adds nothing."""
    if cgroups.unavailable_reason() is not None or not quota.available() or seccomp.program() is None:
        pytest.skip("this host does not isolate everything")
    assert isolation.isolation_notice(True) == ""
