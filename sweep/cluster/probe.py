"""A Ray actor that answers whether a path exists on its node (the shared-folder check in
sweep/cluster/stores.py). Its own module, importing nothing heavy: every node unpickles it."""

import os


class Probe:
    def sees(self, path: str) -> bool:
        return os.path.exists(path)
