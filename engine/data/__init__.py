"""Image data sets: the registry and splits, downloads, the user's own folders, bundled photos.

`from engine import data; data.load("digits")` is the public face of this package.
"""

from engine.data import downloads  # noqa: F401  (registers mnist, fashion_mnist, cifar10 after the bundled sets)
from engine.data.folders import load_folder
from engine.data.photos import load_photo, photo_names
from engine.data.sets import Dataset, DatasetInfo, Split, default_root, info, load, names

__all__ = ["Dataset", "DatasetInfo", "Split", "default_root", "info", "load", "load_folder", "load_photo",
           "names", "photo_names"]
