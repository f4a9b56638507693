"""One kernel's group in the cgroup file system (tpkit.grading.kernel_cgroup), on plain folders standing
for the cgroupfs: the files and values each version gets, the accounting read back, removal, the sweep
of a dead grader's groups. (The limits acting from inside: test_cgroups.py, where the host has cgroups.)"""
import os
import subprocess
from pathlib import Path

from tpkit.grading import kernel_cgroup


def test_v2_group_files_and_oom_reading(tmp_path):
    """cgroup v2 (not mounted with controllers on our machines): a kernel's group gets the v2 files
    and values (equal weight, memory.max, no swap, whole-group OOM kill, pids.max), and an oom_kill
    count in memory.events reads as an out-of-memory stop. (A plain folder stands for the cgroupfs.)"""
    group = kernel_cgroup.Backend(2, {"": str(tmp_path)}).create(512 << 20, 64)
    d = Path(group.dirs[""])
    assert d.parent == tmp_path and d.name.startswith(f"{kernel_cgroup.PREFIX}{os.getpid()}-")
    written = {f.name: f.read_text() for f in d.iterdir()}
    assert written == {"cpu.weight": "100", "memory.max": str(512 << 20), "memory.swap.max": "0",
                       "memory.oom.group": "1", "pids.max": "64"}
    assert group.procs_files == [str(d / "cgroup.procs")]
    assert not group.oom_killed()
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 1\n")
    assert group.oom_killed()


def test_v1_group_files_one_folder_per_hierarchy(tmp_path):
    """cgroup v1 (our machines): a folder per hierarchy, the memory+swap limit only where swap is
    accounted (after the memory limit), accounting read from cpuacct and memory.max_usage_in_bytes."""
    parents = {}
    for controller in ("cpu", "memory", "pids", "cpuacct"):
        parents[controller] = tmp_path / controller
        parents[controller].mkdir()
    (parents["memory"] / "probe").mkdir()
    group = kernel_cgroup.Backend(1, {c: str(p) for c, p in parents.items()}).create(256 << 20, 32)
    dirs = {c: Path(d) for c, d in group.dirs.items()}
    assert {c: d.parent for c, d in dirs.items()} == parents
    assert (dirs["cpu"] / "cpu.shares").read_text() == "1024"
    assert (dirs["memory"] / "memory.limit_in_bytes").read_text() == str(256 << 20)
    assert (dirs["memory"] / "memory.swappiness").read_text() == "0"
    assert not (dirs["memory"] / "memory.memsw.limit_in_bytes").exists()  # swap not accounted here
    assert (dirs["pids"] / "pids.max").read_text() == "32"
    assert len(group.procs_files) == 4 and group.pids() == set()
    assert group.cpu_seconds() is None and group.memory_peak_bytes() is None  # nothing accounted yet
    (dirs["cpuacct"] / "cpuacct.usage").write_text("2500000000\n")
    (dirs["memory"] / "memory.max_usage_in_bytes").write_text("1048576\n")
    assert group.cpu_seconds() == 2.5 and group.memory_peak_bytes() == 1 << 20


def test_an_empty_group_is_removed_and_a_dead_grader_s_groups_swept(tmp_path):
    """destroy() removes an empty group's folders (v1: one per hierarchy; no member to kill); sweep()
    removes the groups named after a grading process that no longer runs, in every hierarchy, and
    leaves a living one's and any other folder."""
    parents = {c: tmp_path / c for c in ("cpu", "memory")}
    for parent in parents.values():
        parent.mkdir()
    name = f"{kernel_cgroup.PREFIX}{os.getpid()}-9"
    group = kernel_cgroup.KernelCgroup(1, {c: str(p / name) for c, p in parents.items()})
    for d in group.dirs.values():
        Path(d).mkdir()
    assert group.destroy() and not any(Path(d).exists() for d in group.dirs.values())
    dead = subprocess.Popen(["true"])
    dead.wait()
    names = {"stale": f"{kernel_cgroup.PREFIX}{dead.pid}-1", "alive": f"{kernel_cgroup.PREFIX}{os.getpid()}-1",
             "other": "system.slice"}
    for parent in parents.values():
        for n in names.values():
            (parent / n).mkdir()
    kernel_cgroup.Backend(1, {c: str(p) for c, p in parents.items()}).sweep()
    for parent in parents.values():
        assert sorted(d.name for d in parent.iterdir()) == sorted([names["alive"], names["other"]])
