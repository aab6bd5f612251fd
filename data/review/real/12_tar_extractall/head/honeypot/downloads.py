"""Unpack the archives a honeypot captured so the analysis can read the files inside."""

import os
import tarfile


def unpack(archive_path, dest):
    with tarfile.open(archive_path) as tar:
        tar.extractall(dest)
    return sorted(os.listdir(dest))
