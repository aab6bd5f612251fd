"""Host inventory: facts gathered per host plus the variables in host_vars/<host>.yml."""

import codecs
import logging
import os

import yaml

log = logging.getLogger(__name__)


class Inventory:
    def __init__(self, root):
        self.root = root
        self.hosts = {}

    def update_host(self, name, data):
        self.hosts.setdefault(name, {}).update(data)

    def load_host_vars(self):
        folder = os.path.join(self.root, "host_vars")
        for fname in sorted(os.listdir(folder)):
            path = os.path.join(folder, fname)
            try:
                with codecs.open(path, "r", encoding="utf8") as handle:
                    values = yaml.safe_load(handle)
                self.update_host(fname.rsplit(".", 1)[0], {"hostvars": values})
            except (OSError, yaml.YAMLError) as err:
                log.warning("skipping %s: %s", path, err)
