"""Image paths for the emulator API."""

import os


def image_path(image_dir, name):
    name = os.path.normpath(name)
    if name.startswith("..") or os.path.isabs(name):
        raise ValueError(f"{name} leaves the image directory")
    return os.path.join(image_dir, name)


def config_path(config_dir, name):
    return os.path.join(config_dir, name + ".ini")
