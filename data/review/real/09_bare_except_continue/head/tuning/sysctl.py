"""Apply the system's sysctl configuration files in the order sysctl itself would."""

import logging
import os

log = logging.getLogger(__name__)
SYSCTL_DIRS = ["/run/sysctl.d", "/etc/sysctl.d", "/usr/lib/sysctl.d"]


def collect_files():
    files = {}
    for directory in SYSCTL_DIRS:
        try:
            names = os.listdir(directory)
        except:
            continue
        for name in names:
            if not name.endswith(".conf"):
                continue
            files.setdefault(name, os.path.join(directory, name))
    return [files[name] for name in sorted(files)]
