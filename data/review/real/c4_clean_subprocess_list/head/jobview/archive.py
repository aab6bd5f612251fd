"""Compress yesterday's job reports."""

import gzip
import logging
import shutil
import subprocess

log = logging.getLogger(__name__)


def compress(path):
    with open(path, "rb") as src, gzip.open(path + ".gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path + ".gz"


def upload(path, bucket):
    """Copy a compressed report to the archive bucket with the storage CLI."""
    try:
        subprocess.run(["/usr/bin/gsutil", "cp", "--", path, f"gs://{bucket}/reports/"],
                       check=True, timeout=300)
    except subprocess.CalledProcessError as exc:
        log.error("upload of %s failed with exit %s", path, exc.returncode)
        raise
