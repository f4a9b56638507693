"""Feedback pages for Moodle's "Upload multiple feedback files in a zip"."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Mapping

from tpkit.grading.lms.moodle.ids import PathLike

def submission_prefix(full_name: str, participant_id: str) -> str:
    """``<Full name>_<participant id>_assignsubmission_file_``: the folder names of Moodle's "download
    all submissions", which its "upload multiple feedback files in a zip" reads back (it matches the
    participant id; "_" in names become spaces, as Moodle does)."""
    return f"{' '.join(full_name.replace('_', ' ').split()) or 'Participant'}_{participant_id}_assignsubmission_file_"


def write_feedback_zip(out_path: PathLike, files: Mapping[str, tuple[str, PathLike]]) -> int:
    """Zip of feedback files for Moodle's "Upload multiple feedback files in a zip": ``files`` maps a
    participant id to (full name, file); each file goes in ``<prefix>/<file name>``
    (:func:`submission_prefix`). Written to a temporary name, then moved. Returns the number of files."""
    out_path = Path(out_path)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for pid, (full_name, path) in sorted(files.items()):
            zf.write(path, f"{submission_prefix(full_name, pid)}/{Path(path).name}")
    os.replace(tmp, out_path)
    return len(files)
