"""One-off sandboxes (tpkit.grading.sandbox_oneoff): the probe's French message, the cached baseline."""
import json

import pytest

from tpkit.grading import sandbox, sandbox_oneoff


def test_unavailable_message_is_french_and_actionable(monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: "/bin/false")
    error = sandbox_oneoff._probe()
    assert isinstance(error, sandbox.SandboxUnavailable)
    message = str(error)
    for needle in ("Bac à sable indisponible", "kernel.unprivileged_userns_clone=1",
                   "user.max_user_namespaces", "kernel.apparmor_restrict_unprivileged_userns=0",
                   "--sans-bac-a-sable"):
        assert needle in message


def test_the_baseline_is_read_from_its_cache(tmp_path, monkeypatch):
    """Measured once per machine and set of versions: a cached value is used as it is."""
    monkeypatch.setattr(sandbox, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(sandbox_oneoff, "_baseline", None)
    cache = tmp_path / "sandbox" / f"baseline-{sandbox_oneoff._versions_key()}.json"
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({"measured_mb": 1, "baseline_mb": 4321}))
    assert sandbox_oneoff.baseline_mb() == 4321
    assert sandbox_oneoff.limits(memory_mb=100).address_space_bytes() == (4321 + 100) << 20
    with pytest.raises(ValueError):  # a baseline is given, never fetched by the sandbox module itself
        sandbox.Limits(memory_mb=100).address_space_bytes()


def test_the_probe_runs_once_per_process(monkeypatch):
    """The command checks the sandbox before anything is written, the grader again: one probe."""
    calls = []
    monkeypatch.setattr(sandbox_oneoff, "_probed", False)
    monkeypatch.setattr(sandbox_oneoff, "_unavailable", None)
    monkeypatch.setattr(sandbox_oneoff, "_probe", lambda: calls.append("probe"))
    sandbox_oneoff.check_available()
    sandbox_oneoff.check_available()
    assert calls == ["probe"]
