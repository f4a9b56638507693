"""The grading command's arguments (tpkit.grading.arguments): the settings' flags, given or not, and the
run's settings built once from them with the course's configuration. The refusals, through the command
itself, are in test_cli_errors.py."""
import shutil

import pytest

from tpkit import paths
from tpkit.grading import __main__ as cli
from tpkit.grading import config, kernels, options

MAIN = "tp_reseaux_neurones"  # the course's main assignment


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    (root / "release" / "tp_reseaux_neurones").mkdir(parents=True)
    shutil.copy(paths.ROOT / "nbgrader_config.py", root)
    return root


def test_limits_precedence_default_configuration_flag(course):
    """defaults < nbgrader_config.py < the flags given: a limit the instructor writes in the course's
    configuration reaches the kernels (it used to be overwritten by the command's defaults)."""
    def kernel_limits(*argv):
        args = cli.parse_args(["--root", str(course), *argv])
        cli.check_arguments(args)
        settings = kernels.settings_for(options.Options(assignment=MAIN, root=course, workers=1, settings=args.settings))
        return settings.time_limit, settings.memory_mb

    assert kernel_limits() == (300, 4096)
    conf = course / "nbgrader_config.py"
    conf.write_text(conf.read_text(encoding="utf-8")
                    + "\nc.TpkitGrading.time_limit = 120\nc.TpkitGrading.memory_limit = 2048\n", encoding="utf-8")
    assert kernel_limits() == (120, 2048)
    assert kernel_limits("--time-limit", "200") == (200, 2048)
    assert kernel_limits("--memory-limit", "3000", "--time-limit", "90") == (90, 3000)


def test_the_flags_come_from_the_settings_and_default_to_none():
    args = cli.parse_args([])
    assert all(getattr(args, name) is None for name in config.flag_names())
    args = cli.parse_args(["--sans-bac-a-sable", "--workers", "3", "--dask-scheduler", "local:2"])
    assert (args.sandbox, args.workers, args.dask_scheduler) == (False, 3, "local:2")
    settings = config.build(paths.ROOT, {name: getattr(args, name) for name in config.flag_names()})
    assert config.given_flags(settings) == ["--dask-scheduler", "local:2", "--sans-bac-a-sable", "--workers", "3"]
    assert config.dask_target(settings, paths.ROOT) == ("local:2", str(paths.ROOT))


def test_an_interrupted_run_resumes_with_the_flags_given_only(course):
    """The command printed to resume gives the flags given again; a setting of nbgrader_config.py is read
    there again, not frozen into a flag."""
    conf = course / "nbgrader_config.py"
    conf.write_text(conf.read_text(encoding="utf-8") + "\nc.TpkitGrading.time_limit = 120\n", encoding="utf-8")
    args = cli.parse_args(["--root", str(course), "--memory-limit", "2048", "--no-feedback", "--examples"])
    cli.check_arguments(args)
    resume = cli.resume_arguments(args)
    assert "--time-limit" not in resume and resume[-3:] == ["--memory-limit", "2048", "--no-feedback"]
