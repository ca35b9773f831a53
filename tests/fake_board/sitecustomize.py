"""Makes this Python look like a PYNQ-Z2 image: the heavy lab libraries cannot be imported.

Put this folder first on PYTHONPATH; its ``pynq`` package reports one device. Used by
tests/test_tutorials.py to run the tutorials as a board would.
"""

import importlib.abc
import sys

#: Not on the PYNQ board image (TensorFlow, hls4ml, HGQ2) or not relied on there.
ABSENT = {"tensorflow", "keras", "hls4ml", "hgq", "sklearn", "scipy", "pandas", "h5py", "matplotlib",
          "pyarrow"}


class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r} (not on the PYNQ board image)",
                                      name=name)
        return None


sys.meta_path.insert(0, _Absent())
