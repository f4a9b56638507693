"""Grading kernels' start-up line (tpkit.grading.kernels), checked without starting a kernel (the kernels
themselves: test_kernels.py, where a sandbox can run)."""
from tpkit.grading import kernels


def test_kernel_startup_line_binds_nothing(tmp_path):
    """The start-up line loads the witness agent from the exchange folder as `_tpkit_agent` and leaves
    nothing in the student's namespace."""
    import sys

    from tpkit.grading import trusted
    trusted.install_agent(tmp_path)
    line = kernels.default_settings(preload=("math",), memory_mb=0).startup_line(str(tmp_path))
    ns = {}
    try:
        exec(line, ns)
        assert set(ns) <= {"__builtins__"}
        assert hasattr(sys.modules["_tpkit_agent"], "serve")
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "_tpkit_agent"]:  # the package, its parts
            sys.modules.pop(name)
        # the agent hooked matplotlib's figures under its module's name: unhook it for later tests
        mpl = sys.modules.get("matplotlib")
        if mpl is not None:
            mpl.rcParams["figure.hooks"] = [h for h in mpl.rcParams["figure.hooks"]
                                            if not h.startswith("_tpkit_agent.")]
