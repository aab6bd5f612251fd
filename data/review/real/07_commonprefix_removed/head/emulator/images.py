"""Where an emulator image lives: a name is looked up in the image directory and its sub-directories."""

import logging
import os

from emulator.errors import ImageMissing, NodeError

log = logging.getLogger(__name__)


class ImageStore:
    def __init__(self, image_dir, search_dirs=()):
        self.image_dir = os.path.abspath(image_dir)
        self.search_dirs = list(search_dirs)

    def find(self, name):
        """The absolute path of image `name`, searched in the configured directories, then the image directory."""
        if not name:
            return ""
        orig = os.path.normpath(name)
        for directory in self.search_dirs:
            log.debug("looking for %s in %s", orig, directory)
            found = self._search(directory, orig)
            if found:
                return found
        requested = os.path.join(self.image_dir, orig)
        if os.path.exists(requested):
            return requested
        raise ImageMissing(orig)

    def _search(self, directory, name):
        for root, _dirs, files in os.walk(directory):
            if os.path.basename(name) in files:
                return os.path.join(root, os.path.basename(name))
        return None
