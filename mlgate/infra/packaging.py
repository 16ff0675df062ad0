"""Packages a product's code the way each AWS service loads it, byte-for-byte deterministic.

ETL: the one zip Glue loads through --extra-py-files.
CDK uploads file assets under content-hash names, so a .py file given to Glue as an extra
Python file arrives as `<hash>.py` and `import transform` fails. A zip keeps module names
inside it, and Glue adds the zip itself to sys.path:
https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-python-libraries.html
Training (script mode): the sourcedir.tar.gz SageMaker's framework containers download from
`sagemaker_submit_directory` and open as gzip'd tar.

Sorted entries and fixed timestamps keep the bytes, and so the asset hashes, unchanged while the
product's code is: a synth of unchanged code changes nothing.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

FIXED_TIME = (2020, 1, 1, 0, 0, 0)
SKIPPED_PARTS = {"__pycache__", ".pytest_cache", "tests"}


def python_files(folder: Path) -> list[Path]:
    """The product's modules under `folder`, sorted, tests and caches left out."""
    return sorted(
        p
        for p in folder.rglob("*.py")
        if not SKIPPED_PARTS.intersection(p.relative_to(folder).parts)
    )


def build_zip(folder: Path, out: Path) -> Path:
    """Zip every module under `folder` at the zip's root (sub-packages keep their folders)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in python_files(folder):
            info = zipfile.ZipInfo(str(path.relative_to(folder)), date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return out


def build_tar_gz(files: dict[str, Path], out: Path) -> Path:
    """A gzip'd tar of `files` (name in the archive -> file), with fixed times and owners."""
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(files):
            data = files[name].read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1577836800
            archive.addfile(info, io.BytesIO(data))
    out.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    return out
