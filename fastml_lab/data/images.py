"""Jet images in (eta, phi): an offline generator, a reader of the Zenodo HDF5 files, and the loader.

An image is the transverse momentum (GeV) a calorimeter-like grid records around the jet axis:
``size x size`` pixels of 0.1 x 0.1 in (eta, phi) (16 x 16 covers +-0.8, a large-radius jet), one
channel, stored as ``(n, size, size, 1)`` float32 (channels last, the order hls4ml's firmware reads).

How a synthetic jet image is built
----------------------------------
The five classes are those of the jet features (:data:`~fastml_lab.data.schema.CLASSES`) and the
jet mass comes from the same spectra as :mod:`~fastml_lab.data.synthetic`. A jet of transverse
momentum ``pt`` (log-normal around 700 GeV) has *prongs*: hard subjets whose separation follows the
two-body rule ``dR = m / (pt * sqrt(z (1 - z)))``, i.e. ``2 m / pt`` for an even split ``z = 1/2``:

* q and g: one hard prong and a soft splitting (``z`` 3-15%) that makes the jet's small mass;
  gluons radiate more and wider than quarks.
* W and Z: two prongs (``z`` 20-80%) ``~2 m / pt`` apart, so the Z's prongs are 13% further
  apart than the W's: the hard pair of classes, as with the features.
* top: a b prong and a W that splits again, three prongs; 15% lose the b (two prongs at the W mass).
* 8% of the W, Z and top jets lose a prong to grooming and look like q/g jets.

Each prong is a few hard particles close to its axis; soft radiation spreads around the prongs
(class-dependent amount and width). The images are rotated as the usual preprocessing does (the
two leading prongs along eta, with a small error) and centred on the pT-weighted centroid. The
detector smears positions, gives each pixel a calorimeter resolution (100%/sqrt(E) + 5%), adds
pileup (about 8 soft deposits per image) and keeps pixels above 1 GeV. Classes are balanced and
the images are reproducible for a seed. numpy only, generated in chunks (100,000 images: 100 MB).

Scaling
-------
The prepared data set divides every pixel by one number, chosen so that the largest training pixel
becomes :data:`PIXEL_RANGE` (a :class:`~fastml_lab.scaler.Scaler` with mean 0 and that scale for
each pixel): empty pixels stay exactly zero, every value fits ``ap_fixed<16,6>``, and the overlay
applies the same scaler to raw images.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..exceptions import ConfigError, DataError
from ..scaler import Scaler
from .prepare import JetDataset
from .schema import CLASSES, one_hot
from .synthetic import _draw_mass, _per_class

__all__ = ["IMAGE_SIZE", "PIXEL", "JetImageDataset", "make_jet_images", "read_jet_images", "load_jet_images",
           "image_sources", "IMAGE_SOURCES"]

#: Pixels per side of the default image.
IMAGE_SIZE = 16
#: Pixel width in eta and in phi.
PIXEL = 0.1
#: Images generated when the synthetic source is used without ``n_events``.
DEFAULT_IMAGE_EVENTS = 50_000
#: The training images' largest pixel after scaling: values in [0, 16] fit ap_fixed<16,6> (+-32).
PIXEL_RANGE = 16.0
#: The folder (under the cache folder) that ``source="auto"`` reads real images from.
CACHE_SUBDIR = "jet_images"
SOURCES = ("auto", "synthetic")
#: Command-line spellings of image data: the synthetic images, the cached real ones, or a file.
IMAGE_SOURCES = ("synthetic-images", "images", "images:PATH")
_CHUNK = 4096
_SUFFIXES = (".h5", ".hdf5")

log = logging.getLogger("fastml_lab.data")

# The constants below set the difficulty of the synthetic images.
_PT_MEDIAN, _PT_WIDTH = 700.0, 0.15
#: (number of soft particles, share of the jet's pT, angular width) of the soft radiation.
_SOFT = {"g": (30, 0.22, 0.20), "q": (18, 0.14, 0.14), "t": (16, 0.10, 0.11), "w": (10, 0.07, 0.09),
         "z": (10, 0.07, 0.09)}
_HARD_SLOTS, _SOFT_SLOTS, _PRONGS = 6, 48, 3
_CORE_WIDTH = 0.02
_POSITION_SMEAR = 0.015
_PILEUP_MEAN, _PILEUP_GEV = 8.0, 1.5
_THRESHOLD_GEV = 1.0


# --------------------------------------------------------------------------------------- generator
def make_jet_images(n_events: int, seed: int = 0, size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``n_events`` synthetic jet images, float32 ``(n, size, size, 1)`` in GeV, and int64 labels 0..4."""
    _check_count(n_events, "n_events", 1)
    _check_count(seed, "seed", 0)
    _check_count(size, "size", 4)
    rng = np.random.default_rng(int(seed))
    n = int(n_events)
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    images = np.empty((n, size, size, 1), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        images[start:stop, :, :, 0] = _chunk(rng, labels[start:stop], size)
    return images, labels


def _check_count(value, name: str, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ConfigError(f"{name} must be an integer >= {least}; got {value!r}.")


def _split_angle(mass, pt, z):
    """The two-body opening angle ``m / (pt sqrt(z (1 - z)))``, at most 1.2."""
    return np.minimum(mass / (pt * np.sqrt(z * (1.0 - z))), 1.2)


def _prongs(rng, names: np.ndarray, mass: np.ndarray, pt: np.ndarray):
    """Prong positions ``(n, 3, 2)`` and pT shares ``(n, 3)`` (unused prongs have share 0)."""
    n = names.size
    share = np.zeros((n, _PRONGS))
    where = np.zeros((n, _PRONGS, 2))
    qcd = np.isin(names, ("g", "q"))
    top = names == "t"
    lost_b = top & (rng.random(n) < 0.15)
    groomed = ~qcd & (rng.random(n) < 0.08)
    one = qcd | groomed
    three = top & ~lost_b & ~groomed
    z = np.where(one, rng.uniform(0.03, 0.15, n), rng.uniform(0.2, 0.8, n))
    m_first = np.where(lost_b, 80.4 + 6.0 * rng.standard_normal(n), mass)
    m_first = np.where(one, np.minimum(mass, 60.0), np.maximum(m_first, 5.0))
    z_b = rng.uniform(0.2, 0.6, n)
    # the first splitting: two prongs (for tops: b and W)
    first = np.where(three, z_b, z)
    angle = _split_angle(m_first, pt, first)
    share[:, 0], share[:, 1] = 1.0 - first, first
    where[:, 1, 0] = angle
    # a top's W splits again into two prongs around its own axis
    z_w = rng.uniform(0.2, 0.8, n)
    w_pt = pt * z_b
    w_angle = _split_angle(np.full(n, 80.4), w_pt, z_w)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    w_axis = where[three, 1]
    direction = np.stack([np.cos(phi), np.sin(phi)], 1)[three]
    where[three, 1] = w_axis + (z_w * w_angle)[three, None] * direction
    where[three, 2] = w_axis - ((1 - z_w) * w_angle)[three, None] * direction
    share[three, 1] = (z_b * (1 - z_w))[three]
    share[three, 2] = (z_b * z_w)[three]
    # the usual preprocessing: leading prongs along eta (small error, either sign), centroid at 0
    theta = rng.normal(0.0, 0.25, n) + np.pi * (rng.random(n) < 0.5)
    rotation = np.stack([np.stack([np.cos(theta), -np.sin(theta)], -1),
                         np.stack([np.sin(theta), np.cos(theta)], -1)], -2)
    where = np.einsum("nij,npj->npi", rotation, where)
    where -= np.einsum("np,npi->ni", share, where)[:, None, :]
    return where, share


def _chunk(rng, labels: np.ndarray, size: int) -> np.ndarray:
    names = np.asarray(CLASSES)[labels]
    n = names.size
    pt = _PT_MEDIAN * np.exp(rng.normal(0.0, _PT_WIDTH, n))
    mass = _draw_mass(rng, names)
    axes, share = _prongs(rng, names, mass, pt)
    n_soft, soft_share, soft_width = (_per_class(names, {c: v[k] for c, v in _SOFT.items()}) for k in range(3))

    # hard particles: a few per prong, close to its axis
    n_hard = 1 + np.minimum(rng.poisson(2.5, (n, _PRONGS)), _HARD_SLOTS - 1)
    w = rng.gamma(0.7, 1.0, (n, _PRONGS, _HARD_SLOTS)) * (np.arange(_HARD_SLOTS) < n_hard[..., None])
    w /= w.sum(-1, keepdims=True)
    hard_pt = (pt * (1 - soft_share))[:, None, None] * share[..., None] * w
    hard_at = axes[:, :, None, :] + rng.normal(0.0, _CORE_WIDTH, (n, _PRONGS, _HARD_SLOTS, 2))
    # soft radiation around the prongs, in proportion to their pT
    count = np.minimum(rng.poisson(n_soft), _SOFT_SLOTS)
    soft_w = rng.exponential(1.0, (n, _SOFT_SLOTS)) * (np.arange(_SOFT_SLOTS) < count[:, None])
    soft_w /= np.maximum(soft_w.sum(-1, keepdims=True), 1e-12)
    soft_pt = (pt * soft_share)[:, None] * soft_w
    cumulative = np.cumsum(share, axis=1)
    parent = (rng.random((n, _SOFT_SLOTS, 1)) * cumulative[:, None, -1:] > cumulative[:, None, :]).sum(-1)
    parent = np.minimum(parent, _PRONGS - 1)
    soft_at = np.take_along_axis(axes, parent[..., None], axis=1) + \
        rng.normal(0.0, 1.0, (n, _SOFT_SLOTS, 2)) * soft_width[:, None, None]
    # pileup: soft deposits anywhere in the image
    half = size * PIXEL / 2
    pileup = np.arange(_SOFT_SLOTS) < np.minimum(rng.poisson(_PILEUP_MEAN, n), _SOFT_SLOTS)[:, None]
    pileup_pt = rng.exponential(_PILEUP_GEV, (n, _SOFT_SLOTS)) * pileup
    pileup_at = rng.uniform(-half, half, (n, _SOFT_SLOTS, 2))

    momenta = np.concatenate([hard_pt.reshape(n, -1), soft_pt, pileup_pt], axis=1)
    at = np.concatenate([hard_at.reshape(n, -1, 2), soft_at, pileup_at], axis=1)
    at = at + rng.normal(0.0, _POSITION_SMEAR, at.shape)
    image = _pixelate(momenta, at, size)
    # calorimeter resolution, then the readout threshold
    energy = np.maximum(image, 1e-9)
    sigma = np.sqrt(1.0 / energy + 0.05 ** 2) * image
    image = np.maximum(image + sigma * rng.standard_normal(image.shape), 0.0)
    image[image < _THRESHOLD_GEV] = 0.0
    return image.astype(np.float32)


def _pixelate(momenta: np.ndarray, at: np.ndarray, size: int) -> np.ndarray:
    """Sum each jet's particle pT into its ``size x size`` grid (eta down the rows, phi across)."""
    n = momenta.shape[0]
    cell = np.floor(at / PIXEL + size / 2).astype(np.int64)
    inside = (cell >= 0).all(-1) & (cell < size).all(-1) & (momenta > 0)
    jet = np.broadcast_to(np.arange(n)[:, None], momenta.shape)
    flat = (jet * size + cell[..., 0]) * size + cell[..., 1]
    image = np.bincount(flat[inside], weights=momenta[inside], minlength=n * size * size)
    return image.reshape(n, size, size)


# ------------------------------------------------------------------------------------------ files
def read_jet_images(path, size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, size, size, 1)`` float32 and int64 labels from a Zenodo HDF5 file or a folder of them.

    The hls4ml LHC jet files (Zenodo, 10,000 jets a file) hold ``jetImage`` ``(n, H, W)`` (pT per
    pixel) beside ``jets`` and ``jetFeatureNames``, whose one-hot columns j_g, j_q, j_w, j_z, j_t give
    the labels (reordered to g, q, t, w, z). Larger images are cropped about their centre to a
    multiple of ``size`` and summed in blocks down to ``size x size``.
    """
    _check_count(size, "size", 4)
    path = Path(path).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _SUFFIXES)
        if not files:
            raise DataError(f"'{path}': the folder holds no .h5/.hdf5 jet image files.")
        parts = [read_jet_images(p, size) for p in files]
        return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])
    if not path.is_file():
        raise DataError(f"'{path}': no such file or folder; expected a Zenodo jet .h5 file (with 'jetImage') "
                        "or a folder of them.")
    if path.suffix.lower() not in _SUFFIXES:
        raise DataError(f"'{path}': unsupported file type '{path.suffix or path.name}'; jet images are read "
                        f"from HDF5 files ({', '.join(_SUFFIXES)}).")
    from .._deps import require
    from .files import ZENODO_LABELS

    h5py = require("h5py", "read jet image files")
    try:
        with h5py.File(path, "r") as handle:
            missing = [key for key in ("jetImage", "jets", "jetFeatureNames") if key not in handle]
            if missing:
                raise DataError(f"'{path}': HDF5 file without {missing} (found {sorted(handle.keys())}); expected "
                                "the Zenodo hls4ml LHC jet format with 'jetImage'.")
            raw = np.asarray(handle["jetImage"][()], dtype=np.float64)
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in handle["jetFeatureNames"][()]]
            jets = np.asarray(handle["jets"][()])
    except OSError as exc:
        raise DataError(f"'{path}': not a readable HDF5 file ({exc}).") from None
    if raw.ndim == 4 and raw.shape[-1] == 1:
        raw = raw[..., 0]
    if raw.ndim != 3 or raw.shape[0] != jets.shape[0]:
        raise DataError(f"'{path}': 'jetImage' has shape {raw.shape} for {jets.shape[0]} jets; expected "
                        "(n_jets, height, width).")
    if not np.isfinite(raw).all():
        raise DataError(f"'{path}': 'jetImage' holds NaN or infinite values; every pixel must be finite.")
    absent = [name for name in ZENODO_LABELS if name not in names]
    if absent or jets.ndim != 2 or jets.shape[1] != len(names):
        raise DataError(f"'{path}': 'jets' {jets.shape} with 'jetFeatureNames' lacking {absent}; expected the "
                        f"one-hot labels {list(ZENODO_LABELS)} among its columns.")
    hot = jets[:, [names.index(name) for name in ZENODO_LABELS]]
    if not ((np.isin(hot, (0, 1)).all(axis=1)) & (hot.sum(axis=1) == 1)).all():
        raise DataError(f"'{path}': some jets' labels are not one-hot; each needs one 1 among {list(ZENODO_LABELS)}.")
    return _rebin(raw, size, path)[..., None].astype(np.float32), hot.argmax(axis=1).astype(np.int64)


def _rebin(raw: np.ndarray, size: int, path) -> np.ndarray:
    n, height, width = raw.shape
    if height < size or width < size:
        raise DataError(f"'{path}': images of {height}x{width} pixels are smaller than size={size}; "
                        f"pass size <= {min(height, width)}.")
    fy, fx = height // size, width // size
    top, left = (height - fy * size) // 2, (width - fx * size) // 2
    crop = raw[:, top:top + fy * size, left:left + fx * size]
    return crop.reshape(n, size, fy, size, fx).sum(axis=(2, 4))


# ----------------------------------------------------------------------------------------- dataset
@dataclass(repr=False)
class JetImageDataset(JetDataset):
    """Scaled train/test jet images ``(n, H, W, 1)`` with their labels; ``image_shape`` is one image's."""

    image_shape: tuple = (IMAGE_SIZE, IMAGE_SIZE, 1)

    def summary(self) -> dict:
        out = super().summary()
        out["image_shape"] = list(self.image_shape)
        out["scaling"] = f"every pixel divided by {float(self.scaler.scale_[0]):.4g} GeV"
        return out

    def flattened(self) -> JetDataset:
        """The same events with each image as a row of ``H*W*C`` values (for an MLP on the pixels)."""
        flat = lambda X: X.reshape(len(X), -1)  # noqa: E731
        return JetDataset(X_train=flat(self.X_train), X_test=flat(self.X_test), y_train=self.y_train,
                          y_test=self.y_test, labels_train=self.labels_train, labels_test=self.labels_test,
                          scaler=self.scaler, source=self.source, notice=self.notice,
                          feature_names=self.feature_names, class_names=self.class_names)

    def __repr__(self) -> str:
        return (f"JetImageDataset(source={self.source!r}, image_shape={tuple(self.image_shape)}, "
                f"n_train={len(self.labels_train)}, n_test={len(self.labels_test)})")


def prepare_images(images: np.ndarray, labels: np.ndarray, *, source: str, notice: str,
                   test_size: float = 0.2) -> JetImageDataset:
    """Split as the jets are (``random_state=42``), scale by one number fitted on the training part."""
    from .._deps import require
    from .prepare import SPLIT_RANDOM_STATE

    model_selection = require("sklearn.model_selection", "split jet images into train and test sets")
    index_train, index_test = model_selection.train_test_split(
        np.arange(len(labels)), test_size=test_size, random_state=SPLIT_RANDOM_STATE)
    shape = images.shape[1:]
    n_pixels = int(np.prod(shape))
    train = images[index_train]
    scale = float(train.max()) / PIXEL_RANGE if train.size and train.max() > 0 else 1.0
    scaler = Scaler.from_dict({"mean": [0.0] * n_pixels, "scale": [scale] * n_pixels,
                               "n_samples_seen": int(len(index_train))})
    inverse = np.float32(1.0 / scale)
    rows, cols, channels = shape
    names = tuple(f"pixel_{r}_{c}" + (f"_{k}" if channels > 1 else "")
                  for r in range(rows) for c in range(cols) for k in range(channels))
    return JetImageDataset(
        X_train=train * inverse, X_test=images[index_test] * inverse,
        y_train=one_hot(labels[index_train]), y_test=one_hot(labels[index_test]),
        labels_train=labels[index_train], labels_test=labels[index_test], scaler=scaler,
        source=source, notice=notice, feature_names=names, image_shape=tuple(int(d) for d in shape))


def image_sources(text: str):
    """The image source a command-line ``--data`` value names, or None for jet features:
    ``synthetic-images`` -> ``"synthetic"``, ``images`` -> ``"auto"``, ``images:PATH`` -> PATH."""
    if not isinstance(text, str):
        return None
    if text == "synthetic-images":
        return "synthetic"
    if text == "images":
        return "auto"
    if text.startswith("images:") and text[len("images:"):]:
        return text[len("images:"):]
    return None


def load_jet_images(source="auto", n_events: int | None = None, seed: int = 0, test_size: float = 0.2,
                    size: int = IMAGE_SIZE, cache_dir=None) -> JetImageDataset:
    """Jet images split, scaled and one-hot encoded, from ``source``.

    ``"synthetic"``: the offline generator (``seed``; ``n_events`` images, default
    :data:`DEFAULT_IMAGE_EVENTS`). A path: a Zenodo HDF5 file or folder (:func:`read_jet_images`).
    ``"auto"``: the real images kept in ``<cache>/jet_images/`` (the cache folder of
    :func:`~fastml_lab.data.openml.cache_directory`) if any, else the synthetic ones, with a
    warning. Nothing is downloaded: put the Zenodo files in that folder. ``n_events`` caps the
    images (a random subset drawn with ``seed``); ``notice`` says which data it is.
    """
    from .load import _check_parameters, _check_split, _subset
    from .openml import cache_directory

    _check_parameters(source, n_events, seed, test_size)
    _check_count(size, "size", 4)
    fell_back = False
    if isinstance(source, os.PathLike) or source not in SOURCES:
        path = Path(source).expanduser()
        images, labels = read_jet_images(path, size)
        origin, notice = f"jet images from {path.name}", f"Using jet images from {path}."
    else:
        cached = cache_directory(cache_dir) / CACHE_SUBDIR
        has_cached = cached.is_dir() and any(p.suffix.lower() in _SUFFIXES for p in cached.iterdir())
        if source == "auto" and has_cached:
            images, labels = read_jet_images(cached, size)
            origin, notice = f"jet images cached at {cached}", f"Using the real jet images cached at {cached}."
        else:
            images, labels = make_jet_images(n_events or DEFAULT_IMAGE_EVENTS, seed=seed, size=size)
            origin = f"synthetic jet images (offline generator, seed {seed})"
            notice = f"Using synthetic jet images ({size}x{size}, offline generator, seed {seed})."
            if source == "auto":
                fell_back = True
                notice = (f"Using synthetic jet images ({size}x{size}, offline generator, seed {seed}) because no "
                          f"real jet images are in {cached}; accuracies are illustrative.")
    images, labels = _subset(images, labels, n_events, seed, origin)
    _check_split(len(labels), test_size, origin)
    if fell_back:
        warnings.warn(notice, UserWarning, stacklevel=2)
    else:
        log.info(notice)
    return prepare_images(images, labels, source=origin, notice=notice, test_size=test_size)

