"""Image paths for the emulator API."""

import os


def _inside(directory, name):
    """`name` joined to `directory`, refused when it would leave it (`..`, an absolute path, a symlink out)."""
    base = os.path.realpath(directory)
    target = os.path.realpath(os.path.join(base, os.path.normpath(name)))
    if os.path.commonpath([base, target]) != base:
        raise ValueError(f"{name} leaves {directory}")
    return target


def image_path(image_dir, name):
    return _inside(image_dir, name)


def config_path(config_dir, name):
    return _inside(config_dir, name + ".ini")
