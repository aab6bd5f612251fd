"""Terminal display of a batch queue: the visible part of a long report is cut out with tail and head."""

import subprocess
import tempfile


class PartialView:
    def __init__(self, save_dir):
        self.save_dir = save_dir

    def cut(self, report_path, first, count):
        """Lines first..first+count of the report, written to a temporary file whose name is returned."""
        out = tempfile.NamedTemporaryFile(delete=False, suffix=".out", dir=self.save_dir)
        command = "(tail -n+%s %s | head -n%s) > %s" % (first, report_path, count, out.name)
        subprocess.call(command,
                        stdout=subprocess.DEVNULL,
                        shell=True)
        return out.name
