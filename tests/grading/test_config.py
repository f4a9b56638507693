"""The settings of a grading run (tpkit.grading.config): each defined once, built once with the precedence
defaults < nbgrader_config.py < the flags given, their old names refused, a kernel's limits derived in
one place."""
import ast
import pickle
from pathlib import Path

import pytest
from traitlets.config import Config

from tpkit import paths
from tpkit.grading import config, kernels
from tpkit.grading.config import TpkitGrading

MAIN = "tp_reseaux_neurones"  # the course's main assignment

#: Names the settings had before they lived in TpkitGrading (a constant or field named so is a second
#: definition).
OLD_NAMES = {"TIME_LIMIT_S", "MEMORY_MB", "GRADER_MEMORY_MB", "WORKER_MEMORY_MB", "WORKER_CPU_S",
             "WORKER_WALL_MARGIN_S", "MIN_MEMORY_MB", "MIN_TIME_LIMIT_S", "MIN_CELL_TIMEOUT_S",
             "MIN_GRADER_MEMORY_MB", "memory_mb", "worker_memory_mb", "worker_cpu_s", "worker_wall_s"}
#: Same name, another thing: (file, name) -> why.
NOT_A_SETTING = {
    ("tpkit/grading/forkserver.py", "PRELOAD"): "the workers' fork server's modules, not a kernel's",
    ("tpkit/grading/findings.py", "CELL_TIMEOUT"): "the name of nbclient's timeout error",
    # what a run used, as its report records it (the defaults read reports older than the field)
    ("tpkit/grading/results.py", "workers"): "a record", ("tpkit/grading/results.py", "sandbox"): "a record",
}


def second_definitions(source: str, filename: str) -> list:
    """Where ``source`` defines a run setting again: a class attribute or dataclass field with a default
    (a trait, a field's default: a field without one only carries a value), a module constant, an
    argparse option of a setting's flag."""
    names = set(config.setting_names()) | OLD_NAMES
    constants = {n.upper() for n in names} | {n for n in OLD_NAMES if n.isupper()}
    flags = {t.metadata["flag"] for t in TpkitGrading.class_own_traits(config=True).values() if t.metadata.get("flag")}
    found = []

    def reads_the_definition(value) -> bool:  # e.g. field(default_factory=lambda: config.default("x"))
        return "config.default(" in ast.unparse(value)

    tree = ast.parse(source)
    for node in tree.body:  # module constants
        for target in (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []):
            if isinstance(target, ast.Name) and target.id in constants \
                    and (filename, target.id) not in NOT_A_SETTING:
                found.append(f"{filename}:{node.lineno} constant {target.id}")
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for node in cls.body:
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else [])
            for target in targets:
                if isinstance(target, ast.Name) and target.id in names | constants \
                        and (filename, target.id) not in NOT_A_SETTING and not reads_the_definition(node.value):
                    found.append(f"{filename}:{node.lineno} {cls.name}.{target.id}")
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        if isinstance(call.func, ast.Attribute) and call.func.attr == "add_argument":
            given = {a.value for a in call.args if isinstance(a, ast.Constant)}
            if given & flags:
                found.append(f"{filename}:{call.lineno} option {sorted(given & flags)[0]}")
    return found


def test_a_run_setting_is_defined_in_one_place():
    """In the grading package (the other commands' options, e.g. the catalogue's --workers, are theirs)."""
    found = []
    for path in sorted((paths.ROOT / "tpkit" / "grading").rglob("*.py")):
        rel = path.relative_to(paths.ROOT).as_posix()
        if rel != "tpkit/grading/config.py":
            found += second_definitions(path.read_text(encoding="utf-8"), rel)
    assert found == []


@pytest.mark.parametrize("source", [
    "TIME_LIMIT_S = 300\n",
    "WORKERS = 4\n",
    "class LimitedExecute:\n    memory_limit = Integer(4096).tag(config=True)\n",
    "@dataclass\nclass KernelSettings:\n    time_limit: int = 300\n",
    "p.add_argument('--memory-limit', type=int, default=4096)\n",
])
def test_the_scan_finds_a_second_definition(source):
    assert second_definitions(source, "tpkit/x.py")


def test_the_scan_lets_a_carrier_and_a_read_of_the_definition_pass():
    assert second_definitions("@dataclass\nclass K:\n    time_limit: int\n    memory_mb: int = field("
                              "default_factory=lambda: config.default('memory_limit'))\n", "tpkit/x.py") == []


def _course(tmp_path: Path, lines: str = "") -> Path:
    (tmp_path / "nbgrader_config.py").write_text((paths.ROOT / "nbgrader_config.py").read_text(encoding="utf-8")
                                                 + lines, encoding="utf-8")
    return tmp_path


def test_precedence_default_configuration_flag(tmp_path):
    course = _course(tmp_path)
    assert (config.build(course).time_limit, config.build(course).memory_limit) == (300, 4096)
    course = _course(tmp_path, "\nc.TpkitGrading.time_limit = 120\nc.TpkitGrading.memory_limit = 2048\n")
    settings = config.build(course, {"time_limit": None, "memory_limit": None})
    assert (settings.time_limit, settings.memory_limit) == (120, 2048)
    assert settings.sources == {"time_limit": "config", "memory_limit": "config"}
    settings = config.build(course, {"time_limit": 200, "memory_limit": None})
    assert (settings.time_limit, settings.memory_limit) == (200, 2048)
    assert settings.sources["time_limit"] == "flag"


def test_a_configured_limit_reaches_the_kernel_and_the_executor(tmp_path):
    """It used to be overwritten by the command's defaults: now the kernel's settings, which the executor
    reads its limits from, are the configuration's."""
    from tpkit.grading import __main__ as cli
    from tpkit.grading.options import Options, load_config
    from tpkit.grading.preprocessors import LimitedExecute
    course = _course(tmp_path, "\nc.TpkitGrading.time_limit = 120\nc.TpkitGrading.memory_limit = 2048\n")
    (course / "release" / "tp_reseaux_neurones").mkdir(parents=True)
    args = cli.parse_args(["--root", str(course), "--workers", "1"])
    cli.check_arguments(args)
    run = Options(assignment=MAIN, root=course, settings=args.settings)
    kernel = kernels.settings_for(run)
    assert (kernel.time_limit, kernel.memory_mb, kernel.sandbox_limits().memory_mb) == (120, 2048, 2048)
    supply = kernels.KernelSupply(kernel)
    assert LimitedExecute(config=load_config(run), supply=supply)._supply() == (supply, False)
    # plain `nbgrader autograde` (no supply): the course's own c.TpkitGrading
    own, closed_at_end = LimitedExecute(config=load_config(run))._supply()
    assert closed_at_end and (own.settings.time_limit, own.settings.memory_mb) == (120, 2048)


def test_old_names_are_refused_with_the_new_one(tmp_path):
    for line, new in (("c.LimitedExecute.memory_limit = 2048", "c.TpkitGrading.memory_limit"),
                      ("c.TpkitDask.scheduler = 'tcp://h:8786'", "c.TpkitGrading.dask_scheduler")):
        course = _course(tmp_path, f"\n{line}\n")
        with pytest.raises(config.SettingError, match=f"{line.split(' =')[0]} dans nbgrader_config.py : ce réglage "
                           f"s'appelle maintenant {new} : renommez-le"):
            config.build(course)


@pytest.mark.parametrize("line, words", [
    ("c.TpkitGrading.time_limit = 'long'", "c.TpkitGrading.time_limit = 'long' dans nbgrader_config.py : il faut un nombre entier"),
    ("c.TpkitGrading.time_limit = True", "il faut un nombre entier"),
    ("c.TpkitGrading.tiem_limit = 10", "c.TpkitGrading.tiem_limit dans nbgrader_config.py : réglage inconnu"),
])
def test_a_configured_value_of_the_wrong_type_or_name_is_refused(tmp_path, line, words):
    with pytest.raises(config.SettingError, match=words.replace("(", r"\(")):
        config.build(_course(tmp_path, f"\n{line}\n"))


def test_check_names_where_a_refused_value_came_from(tmp_path):
    course = _course(tmp_path, "\nc.TpkitGrading.memory_limit = 10\n")
    with pytest.raises(config.SettingError, match=r"c.TpkitGrading.memory_limit \(nbgrader_config.py\) = 10 :"):
        config.check(config.build(course))
    with pytest.raises(config.SettingError, match="--memory-limit 10 :"):
        config.check(config.build(_course(tmp_path), {"memory_limit": 10}))
    with pytest.raises(config.SettingError, match="c.Execute.timeout = 3"):
        config.check(TpkitGrading(), Config({"Execute": {"timeout": 3}}))
    config.check(TpkitGrading(cell_timeout=5), Config({"Execute": {"timeout": 3}}))  # the flag given wins
    config.check(config.build(paths.ROOT), config.course_config(paths.ROOT))  # the defaults and the kit's course pass


def test_the_floors_lie_below_the_defaults():
    for name, trait in TpkitGrading.class_own_traits(config=True).items():
        if "unit" in trait.metadata and trait.default() is not None:
            assert trait.metadata["floor"] <= trait.default() <= trait.metadata["ceiling"], name


def test_a_kernel_s_limits_are_derived_in_one_place():
    settings = TpkitGrading(workers=1, memory_limit=2000, time_limit=100)
    kernel = kernels.settings_for(settings)
    assert (kernel.memory_mb, kernel.time_limit) == (2000, 100)
    assert kernel.resident_mb == 2000 + kernels.RESIDENT_MARGIN_MB  # the watchdog's backstop
    limits = kernel.sandbox_limits()
    assert limits.memory_mb == 2000 and limits.cpu_seconds == 300
    # no RLIMIT_DATA (0): no backstop, the address space and the cgroup bounded at the default
    unlimited = kernels.settings_for(settings.copy(memory_limit=0))
    assert unlimited.resident_mb == 0 and unlimited.sandbox_limits().memory_mb == config.default("memory_limit")


def test_settings_travel_to_a_worker_without_the_cluster_object():
    settings = TpkitGrading(time_limit=99, dask_cluster=lambda: None)
    settings.sources = {"time_limit": "flag"}
    copy = pickle.loads(pickle.dumps(settings))
    assert copy.time_limit == 99 and copy.dask_cluster is None and copy.sources == {"time_limit": "flag"}
