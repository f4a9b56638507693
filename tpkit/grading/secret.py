"""The course's secret (`.grading_secret` at the course root): every bit of it seeds the inputs the
checks draw. Apart from :mod:`tpkit.grading.trusted` so that the coordinator, which only reads it,
does not import torch (1.5 s of CPU at the start of every run, before the first worker)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


SECRET_FILE = ".grading_secret"
SECRET_BITS = 256      # drawn for a new course
MIN_SECRET_BITS = 128  # a shorter secret (the 62 bits of earlier versions) is replaced


def course_salt(root: Path) -> int:
    """The course's secret (created on first use, kept out of git and out of the sandbox): every bit
    of it seeds the inputs the checks draw (`tpkit.checks.common.gen`), so a submission cannot
    recognise them, and the same submission always gets the same inputs. A secret of fewer than
    `MIN_SECRET_BITS` bits (written by an earlier version, or by hand) is replaced by a new one, once:
    a few leaked inputs would pin a short secret offline."""
    path = Path(root) / SECRET_FILE
    if path.is_file():
        text = path.read_text().strip()
        if text.isascii() and text.isdigit() and int(text).bit_length() >= MIN_SECRET_BITS:
            return int(text)
        path.unlink()
    return pin_secret(root, secrets.randbits(SECRET_BITS) | (1 << (SECRET_BITS - 1)))


def pin_secret(root: Path, value: int) -> int:
    """Write the course's secret (readable by its owner only); test courses pin theirs."""
    if int(value) < 0 or int(value).bit_length() < MIN_SECRET_BITS:  # course_salt reads digits only
        raise ValueError(f"a course secret is a positive number of at least {MIN_SECRET_BITS} bits")
    path = Path(root) / SECRET_FILE
    tmp = path.with_name(path.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{int(value)}\n")
    os.replace(tmp, path)
    return int(value)
