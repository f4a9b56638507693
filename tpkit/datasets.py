"""Load the course datasets (data/*.npz), checked against the checksums in data/SHA256SUMS.

    >>> from tpkit import datasets
    >>> d = datasets.load("digitz")          # {"x", "y", "xt", "yt"} as numpy arrays
    >>> d["x"].shape
    (1050, 784)

The files are built by data/build.py (`make data`), which also writes data/SHA256SUMS: that file is
the one source of truth for the expected checksums. data/README.md documents each dataset.

`load_hidden(name)` reads the hidden evaluation set of a dataset (data/hidden/<name>.npz: `x`, `y`,
examples the students never receive, in the same form as the shipped ones). Only the grader reads
them: they are never copied into source/ (so never released), and the grading sandbox does not
see the course folder.
"""
from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

from tpkit import paths

REBUILD = "make data"
SUMS_FILE = paths.DATA / "SHA256SUMS"

# Dataset name -> the keys its .npz must hold (every dataset: train x/y, test xt/yt).
KEYS = {
    "digitz": ("x", "y", "xt", "yt"),
    "pima": ("x", "y", "xt", "yt", "features"),
    "toy2d": ("x", "y", "xt", "yt"),
}
NAMES = tuple(KEYS)
HIDDEN_DIR = "hidden"
HIDDEN_KEYS = ("x", "y")


class DatasetError(RuntimeError):
    """A dataset file is missing, unreadable or not the one that data/build.py produces."""


def _problem(path: Path, what: str) -> DatasetError:
    return DatasetError(f"dataset file {path}: {what}. "
                        f"Rebuild it with `{REBUILD}` (in {paths.ROOT}).")


def expected_sha256(sums_file: Path | None = None) -> dict[str, str]:
    """{file name: sha256} as recorded in data/SHA256SUMS (`sha256sum` format)."""
    sums_file = Path(sums_file or SUMS_FILE)
    try:
        text = sums_file.read_text()
    except OSError as exc:
        raise _problem(sums_file, f"cannot read the checksum list ({exc.strerror or exc})") from None
    sums = {}
    for line in text.splitlines():
        if line.strip():
            digest, _, fname = line.strip().partition("  ")
            sums[fname.strip()] = digest.strip()
    return sums


def path_of(name: str, data_dir: Path | None = None) -> Path:
    if name not in KEYS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
    return Path(data_dir or paths.DATA) / f"{name}.npz"


def load(name: str, data_dir: Path | None = None) -> dict[str, np.ndarray]:
    """Arrays of dataset `name` ("digitz", "pima" or "toy2d") as a dict of numpy arrays.

    `data_dir` defaults to data/; the checksum is always the one recorded in data/SHA256SUMS.
    Raises DatasetError (naming the file and `make data`) when the file is missing, is not a
    valid .npz, lacks one of the documented keys, or has a different sha256.
    """
    return _load(path_of(name, data_dir), KEYS[name], path_of(name).name)


def hidden_path_of(name: str, data_dir: Path | None = None) -> Path:
    path_of(name)                                         # the name check
    return Path(data_dir or paths.DATA) / HIDDEN_DIR / f"{name}.npz"


def load_hidden(name: str, data_dir: Path | None = None) -> dict[str, np.ndarray]:
    """The hidden evaluation set of dataset `name`: {"x", "y"}, checked like `load` (the checksum
    recorded as hidden/<name>.npz in data/SHA256SUMS). For the grader only."""
    return _load(hidden_path_of(name, data_dir), HIDDEN_KEYS, f"{HIDDEN_DIR}/{name}.npz")


def _load(path: Path, keys, sums_name: str) -> dict[str, np.ndarray]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _problem(path, "not found") from None
    except OSError as exc:
        raise _problem(path, f"cannot be read ({exc.strerror or exc})") from None

    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise _problem(path, "not a valid .npz archive (not a zip file)")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as exc:  # any failure to decode the archive or one of its arrays
        raise _problem(path, f"not a valid .npz archive ({type(exc).__name__}: {exc})") from None

    missing = [key for key in keys if key not in arrays]
    if missing:
        raise _problem(path, f"missing key(s) {', '.join(missing)} (has {', '.join(sorted(arrays)) or 'none'})")

    expected = expected_sha256().get(sums_name)
    if expected is None:
        raise _problem(SUMS_FILE, f"no checksum recorded for {sums_name}")
    got = hashlib.sha256(raw).hexdigest()
    if got != expected:
        raise _problem(path, f"sha256 is {got}, expected {expected} (from {SUMS_FILE.name}): "
                             "the file is corrupted or out of date")
    return arrays
