"""One-off sandboxes, each run once per process or machine and cached: the availability probe
(:func:`check_available`), the address space of an idle kernel (:func:`baseline_mb`, the base of every
kernel's ``RLIMIT_AS``) and matplotlib's font list as the sandbox sees it (:func:`mpl_fontlist`). Each
runs a throw-away sandbox (:func:`_run_once`) built by :func:`tpkit.grading.sandbox.command`."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Mapping, Sequence

#: Modules whose import sets the kernel's address-space baseline (see :func:`baseline_mb`).
BASELINE_MODULES = ("torch", "numpy", "matplotlib.pyplot", "ipykernel.kernelapp")
#: Added to the measured baseline: a running kernel has ~10 threads (8 MiB stacks, two malloc
#: arenas) and a few more modules (measured: imports 672 MiB, idle kernel 786, after a cell 827).
BASELINE_MARGIN_MB = 256
#: Used when the baseline cannot be measured.
FALLBACK_BASELINE_MB = 1024


def check_available() -> None:
    """Start one trivial sandbox (once per process) and raise :class:`~tpkit.grading.sandbox.SandboxUnavailable` if it
    fails. The usual cause is a host that forbids unprivileged user namespaces; the message says
    how to allow them, or how to grade without a sandbox on purpose."""
    global _probed, _unavailable
    with _probe_lock:
        if not _probed:
            _unavailable = _probe()
            _probed = True
    if _unavailable is not None:
        raise _unavailable


_probed = False
_unavailable: box.SandboxUnavailable | None = None
_probe_lock = threading.Lock()



def limits(**fields) -> "box.Limits":
    """A kernel's :class:`~tpkit.grading.sandbox.Limits` with ``fields``, the idle kernel's address space
    measured (:func:`baseline_mb`) unless given."""
    fields.setdefault("baseline_mb", baseline_mb())
    return box.Limits(**fields)


def baseline_mb() -> int:
    """Address space (MiB) of an idle kernel: a sandboxed Python that imported torch, numpy,
    matplotlib.pyplot and ipykernel, plus :data:`BASELINE_MARGIN_MB`.

    Measured once per machine and set of versions (about 2 s), cached in ``.cache/sandbox/``;
    :data:`FALLBACK_BASELINE_MB` if it cannot be measured."""
    global _baseline
    with _baseline_lock:
        if _baseline is None:
            cache = box.CACHE_DIR / "sandbox" / f"baseline-{_versions_key()}.json"
            try:
                _baseline = int(json.loads(cache.read_text())["baseline_mb"])
            except (OSError, ValueError, KeyError):
                measured = measure_address_space_mb(BASELINE_MODULES)
                if measured is None:
                    return FALLBACK_BASELINE_MB
                _baseline = measured + BASELINE_MARGIN_MB
                _write_atomic(cache, json.dumps({"measured_mb": measured,
                                                 "baseline_mb": _baseline}) + "\n")
        return _baseline


_baseline: int | None = None
_baseline_lock = threading.Lock()


def measure_address_space_mb(modules: Sequence[str]) -> int | None:
    """VmSize (MiB) of a sandboxed Python after importing ``modules``, or None if it failed."""
    code = ("import importlib, sys\n"
            "for m in sys.argv[1:]: importlib.import_module(m)\n"
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmSize')][0])")
    out = _run_once([sys.executable, "-c", code, *modules],
                    box.Limits(memory_mb=1 << 20, baseline_mb=0, processes=4096), timeout=120)
    try:
        return -(-int(out.split()[-1]) // 1024)  # kB -> MiB, rounded up
    except (AttributeError, ValueError, IndexError):
        return None


def mpl_fontlist() -> Path | None:
    """matplotlib's font list, built once inside a sandbox (so that it lists only the fonts visible
    there) into ``.cache/matplotlib/``; None if matplotlib is missing or the build failed."""
    global _fontlist
    with _fontlist_lock:
        if _fontlist is False:
            _fontlist = None  # the build's own sandbox (same thread, re-entering) goes without
            _fontlist = _build_fontlist()
        return _fontlist


_fontlist: Path | None | bool = False
_fontlist_lock = threading.RLock()



def _write_atomic(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache: not writing it only costs a new measurement next time


def _versions_key() -> str:
    """What the baseline depends on: interpreter, heavy packages, CPU count."""
    from importlib import metadata
    parts = [sys.version.split()[0], f"{os.cpu_count()}cpu"]
    for dist in ("torch", "numpy", "matplotlib", "ipykernel"):
        try:
            parts.append(metadata.version(dist))
        except metadata.PackageNotFoundError:
            parts.append("-")
    return "-".join(p.replace("+", "_") for p in parts)


@contextlib.contextmanager
def _scratch_sandbox():
    """Temporary workdir and exchange directories and a uid, for one-off sandboxed commands."""
    pool = box.UidPool()
    with tempfile.TemporaryDirectory(prefix="tpkit-sandbox-") as tmp, pool.lease() as uid:
        workdir, exchange = Path(tmp, "work"), Path(tmp, "exchange")
        workdir.mkdir()
        exchange.mkdir()
        box.prepare_dirs(workdir, exchange, uid)
        yield workdir, exchange, uid


def _run_once(argv: Sequence[str], limits: box.Limits, timeout: float = 60,
              env_extra: Mapping[str, str] = {}) -> str | None:
    """stdout of ``argv`` run in a throw-away sandbox, or None if it failed."""
    with _scratch_sandbox() as (workdir, exchange, uid):
        cmd = box.command(argv, workdir=workdir, exchange=exchange, limits=limits, uid=uid,
                      env=box.kernel_env(env_extra))
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout if proc.returncode == 0 else None


def _build_fontlist() -> Path | None:
    """Build matplotlib's font list in a sandbox and keep it in .cache/matplotlib/ (once)."""
    try:
        from matplotlib.font_manager import FontManager
    except Exception:
        return None
    target = box.CACHE_DIR / "matplotlib" / f"fontlist-v{FontManager.__version__}.json"
    if target.is_file():
        return target
    # MPLCONFIGDIR in the (writable) workdir: matplotlib writes the list there, we print it
    code = ("import matplotlib, matplotlib.font_manager as fm, pathlib, sys\n"
            "sys.stdout.write(pathlib.Path(matplotlib.get_cachedir(),"
            " f'fontlist-v{fm.FontManager.__version__}.json').read_text())")
    out = _run_once([sys.executable, "-c", code], box.Limits(memory_mb=1 << 20, baseline_mb=0),
                    env_extra={"MPLCONFIGDIR": f"{box.WORKDIR_INSIDE}/mpl"}, timeout=300)
    if not out:
        return None
    _write_atomic(target, out)
    return target if target.is_file() else None


def _probe() -> box.SandboxUnavailable | None:
    """Run ``sh -c 'exit 0'`` in a sandbox; the reason why not, as an exception, or None."""
    try:
        bwrap = box.bwrap_path()
    except box.SandboxUnavailable as exc:
        return exc
    try:
        with _scratch_sandbox() as (workdir, exchange, uid):
            cmd = box.command(["/bin/sh", "-c", "exit 0"], workdir=workdir, exchange=exchange,
                          limits=box.Limits(baseline_mb=0), uid=uid, env=box.kernel_env())
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  timeout=60)
        if proc.returncode == 0:
            return None
        detail = (proc.stderr.strip().splitlines() or [f"code de sortie {proc.returncode}"])[-1]
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        detail = str(exc)
    return box.SandboxUnavailable(
        f"Bac à sable indisponible : bubblewrap ({bwrap}) ne démarre pas (« {detail} »), le plus "
        "souvent parce que le système interdit les espaces de noms utilisateur non privilégiés ; "
        "autorisez-les en root avec « sysctl -w kernel.unprivileged_userns_clone=1 » (Debian), "
        "« sysctl -w user.max_user_namespaces=10000 » et, sous Ubuntu 23.10 ou plus récent, "
        "« sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 » (à rendre permanent dans "
        f"/etc/sysctl.d/), {box._HOW_TO_SKIP}")


# last: the sandbox module imports this one first (its names are read at call time)
from tpkit.grading import sandbox as box  # noqa: E402
