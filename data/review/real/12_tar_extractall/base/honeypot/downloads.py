"""Unpack the archives a honeypot captured so the analysis can read the files inside."""

import os
import tarfile


def _inside(directory, target):
    directory = os.path.abspath(directory)
    return os.path.commonpath([directory, os.path.abspath(target)]) == directory


def unpack(archive_path, dest):
    with tarfile.open(archive_path) as tar:
        for member in tar.getmembers():
            if not _inside(dest, os.path.join(dest, member.name)):
                raise ValueError(f"{archive_path}: {member.name} would land outside {dest}")
        tar.extractall(dest)
    return sorted(os.listdir(dest))
