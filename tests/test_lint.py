"""The kit stays clean for ruff (pyproject.toml's [tool.ruff]): unused imports, undefined names,
shadowed definitions fail the fast tier, not a review."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tpkit import paths


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (make setup installs it from requirements.txt)")
    proc = subprocess.run([ruff, "check", "--no-cache", "--output-format", "concise", "."], cwd=paths.ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
