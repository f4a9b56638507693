"""A run's options: its course, assignment and settings (tpkit.grading.config, each defined once), what
nbgrader's configuration gets of them, the course's folders."""
import shutil
import subprocess
import sys

import pytest
from traitlets import TraitError

from tpkit import paths
from tpkit.grading import options

MAIN = "tp_reseaux_neurones"  # the course's main assignment


def test_options_carry_a_copy_of_the_settings_with_the_changes_given():
    base = options.Options(assignment=MAIN, workers=1).settings
    run = options.Options(assignment=MAIN, settings=base, time_limit=11, memory_limit=13)
    assert (run.settings.time_limit, run.settings.memory_limit, run.settings.workers) == (11, 13, 1)
    assert (base.time_limit, base.memory_limit) == (300, 4096)  # the settings given are left as they were
    with pytest.raises(TraitError):
        options.Options(assignment=MAIN, memory_mb=13)  # an old or mistyped name is refused, not kept aside
    assert options.Options(assignment=MAIN, workers=0).settings.workers >= 1  # 0: one per core


def test_a_run_maps_its_settings_to_nbgrader_config(tmp_path):
    run = options.Options(assignment=MAIN, workers=1, cell_timeout=7, time_limit=11, memory_limit=13, sandbox=False)
    cfg = options.load_config(run)
    assert cfg.Execute.timeout == 7
    # the executor's limits come with its kernel supply, never through nbgrader's configuration
    assert "time_limit" not in cfg.LimitedExecute and "memory_limit" not in cfg.LimitedExecute
    assert cfg.LimitedExecute.trusted_checks is True


def test_course_folders_follow_nbgrader_layout():
    run = options.Options(assignment=MAIN, workers=1)
    folder = options.step_folder(None, run, "feedback", "s1")
    assert folder == run.root / "feedback" / "s1" / run.assignment


def test_the_coordinator_reads_its_configuration_without_torch(tmp_path):
    # the coordinator never grades: torch (1.5 s of CPU) is for the workers and their fork server
    shutil.copy(paths.ROOT / "nbgrader_config.py", tmp_path)
    code = ("import sys\n"
            "from tpkit.grading import __main__, pipeline, options\n"
            f"cfg = options.load_config(options.Options(assignment='tp_reseaux_neurones', root={str(tmp_path)!r}))\n"
            "assert cfg.LimitedExecute.salt.bit_length() >= 128\n"
            "print(sorted(m for m in ('torch', 'tpkit.witness') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"
