"""Every setting of a grading run has one default (tpkit.grading.options), read by the command line,
Options, the executor's traits, the kernels' settings and the sandbox's limits."""
import shutil
import subprocess
import sys

from tpkit import paths
from tpkit.grading import __main__ as cli
from tpkit.grading import kernels, options, sandbox
from tpkit.grading.preprocessors import LimitedExecute


def test_limits_have_one_default():
    args = cli.parse_args([])
    cli.resolve_limits(args, options.Options(workers=1).root)  # the kit's course sets no limit of its own
    run = options.Options(workers=1)
    executor = LimitedExecute()
    settings = kernels.KernelSettings()
    assert args.time_limit == run.time_limit == executor.time_limit == settings.time_limit == options.TIME_LIMIT_S
    assert args.memory_limit == run.memory_mb == executor.memory_limit == settings.memory_mb == options.MEMORY_MB
    # the sandbox's address space beyond the baseline: the same default, also when RLIMIT_DATA is off (0)
    assert (sandbox.Limits().memory_mb == settings.sandbox_limits().memory_mb
            == kernels.KernelSettings(memory_mb=0).sandbox_limits().memory_mb == options.MEMORY_MB)
    assert kernels.KernelSettings(memory_mb=13).sandbox_limits().memory_mb == 13
    assert args.grader_memory_limit == options.GRADER_MEMORY_MB
    assert tuple(executor.preload) == run.preload == settings.preload == options.PRELOAD


def test_a_run_maps_its_settings_to_nbgrader_config(tmp_path):
    run = options.Options(workers=1, cell_timeout=7, time_limit=11, memory_mb=13, sandbox=False)
    cfg = options.load_config(run)
    assert cfg.Execute.timeout == 7
    assert (cfg.LimitedExecute.time_limit, cfg.LimitedExecute.memory_limit) == (11, 13)
    assert cfg.LimitedExecute.sandbox is False
    assert LimitedExecute(config=cfg).time_limit == 11


def test_course_folders_follow_nbgrader_layout():
    run = options.Options(workers=1)
    folder = options.step_folder(None, run, "feedback", "s1")
    assert folder == run.root / "feedback" / "s1" / run.assignment


def test_the_coordinator_reads_its_configuration_without_torch(tmp_path):
    # the coordinator never grades: torch (1.5 s of CPU) is for the workers and their fork server
    shutil.copy(paths.ROOT / "nbgrader_config.py", tmp_path)
    code = ("import sys\n"
            "from tpkit.grading import __main__, pipeline, options\n"
            f"cfg = options.load_config(options.Options(root={str(tmp_path)!r}))\n"
            "assert cfg.LimitedExecute.salt.bit_length() >= 128\n"
            "print(sorted(m for m in ('torch', 'tpkit.witness') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"
