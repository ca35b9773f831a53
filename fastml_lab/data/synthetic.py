"""An offline generator of jets with the schema of the hls4ml LHC jet dataset.

It stands in for the real data when no copy is at hand: same 16 features in the same order, same
five classes, similar ranges, and a similar difficulty (a float 16-64-32-32-5 MLP reaches about
0.75 test accuracy, measured with 20k-200k jets, close to the real dataset's 0.75-0.76).

How a jet is built
------------------
Each jet draws a few hidden per-jet quantities, and every feature is a smooth function of them plus
a little independent noise. Because the class information sits in the shared hidden quantities, a
model cannot average it out by combining features, which keeps the task honestly hard.

* ``pt``: jet transverse momentum, log-normal around 1 TeV (not a feature; it smears mass ratios).
* ``mass``: the groomed jet mass. q and g jets follow a falling log-normal spectrum (gluons a little
  heavier); W and Z jets a peak at 80.4 and 91.2 GeV with ~8 GeV resolution and wide tails, so the
  two overlap heavily; top jets peak at 173 GeV, with some at the W mass (the b quark lost) and a
  low-mass tail for all resonances (grooming removed a prong).
* ``radiation``: colour charge, the amount of soft radiation (gluon > quark, top > W/Z). It drives
  ``multiplicity`` (Poisson counts), ``zlogz`` and ``c1_b0_mmdt``; g and q overlap substantially.
* ``prongness``: one-prong-likeness, high for q/g, low for W/Z (two prongs), in between for top
  (three prongs). Student-t tails. It drives the ratios ``c2``, ``d2``, ``m2``, ``n2``. For q/g it
  also falls with mass, so heavy QCD jets look more like W/Z, as in real data.

Classes are balanced (counts differ by at most one) and the output is reproducible for a seed.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import ConfigError
from .schema import CLASSES, FEATURES

# The constants below set the difficulty; they were tuned so a float MLP lands near 0.75 accuracy.
#: (log of the median in GeV, width in log units) of the groomed-mass spectrum of q and g jets.
_LOG_MASS_QCD = {"g": (np.log(38.0), 0.62), "q": (np.log(30.0), 0.62)}
#: (peak, scale) in GeV of resonance masses; Student-t shaped, so the tails are wider than Gaussian.
_RESONANCE_MASS = {"w": (80.4, 7.0), "z": (91.2, 7.5), "t": (173.0, 17.0)}
#: Mean of the per-jet radiation latent (unit width within a class).
_RADIATION_MEAN = {"g": 0.95, "q": -0.95, "t": 0.55, "w": -0.15, "z": -0.10}
#: Mean and width of the per-jet prongness latent.
_PRONGNESS_MEAN = {"g": 1.0, "q": 0.85, "t": 0.40, "w": 0.0, "z": 0.05}
_PRONGNESS_WIDTH = {"g": 0.28, "q": 0.28, "t": 0.26, "w": 0.26, "z": 0.26}


def make_synthetic_jets(n_events: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n_events`` raw jets: float32 features (n, 16) in FEATURES order, int64 labels 0..4."""
    if isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer)) or n_events < 1:
        raise ConfigError(f"n_events must be a positive integer; got {n_events!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer; got {seed!r}.")
    rng = np.random.default_rng(int(seed))
    n_events = int(n_events)
    labels = rng.permutation(np.arange(n_events) % len(CLASSES)).astype(np.int64)
    names = np.asarray(CLASSES)[labels]

    mass = _draw_mass(rng, names)
    pt = 1000.0 * np.exp(rng.normal(0.0, 0.12, n_events))
    radiation = _per_class(names, _RADIATION_MEAN) + rng.normal(0.0, 1.0, n_events)
    prongness = _per_class(names, _PRONGNESS_MEAN) + _per_class(names, _PRONGNESS_WIDTH) * rng.standard_t(6, n_events)
    # Heavier QCD jets look more two-pronged, as in real data.
    qcd = np.isin(names, ("g", "q"))
    prongness[qcd] -= 0.35 * np.log(np.maximum(mass[qcd], 5.0) / 35.0)

    features = _features(rng, mass, pt, radiation, prongness, names)
    X = np.column_stack([features[name] for name in FEATURES]).astype(np.float32)
    return X, labels


def _per_class(names: np.ndarray, table: dict) -> np.ndarray:
    out = np.empty(names.shape, dtype=np.float64)
    for name, value in table.items():
        out[names == name] = value
    return out


def _draw_mass(rng: np.random.Generator, names: np.ndarray) -> np.ndarray:
    n = names.size
    mass = np.empty(n)
    for name, (mu, sigma) in _LOG_MASS_QCD.items():
        pick = names == name
        mass[pick] = np.exp(rng.normal(mu, sigma, pick.sum()))
    for name, (centre, width) in _RESONANCE_MASS.items():
        pick = names == name
        mass[pick] = centre + width * rng.standard_t(8, pick.sum())
    # A top jet whose b quark fell outside the jet looks like a W.
    lost_b = (names == "t") & (rng.random(n) < 0.15)
    mass[lost_b] = 80.4 + 11.0 * rng.standard_normal(lost_b.sum())
    # Grooming sometimes removes a prong from any resonance: a soft, QCD-like mass.
    groomed = np.isin(names, ("w", "z", "t")) & (rng.random(n) < 0.08)
    mass[groomed] = np.exp(rng.normal(np.log(25.0), 0.6, groomed.sum()))
    return np.clip(mass, 0.5, 400.0)


def _features(rng, mass, pt, radiation, prongness, names) -> dict[str, np.ndarray]:
    n = mass.size

    def noise(width):
        return rng.normal(0.0, width, n)

    prongs = _per_class(names, {"g": 1.0, "q": 1.0, "w": 2.0, "z": 2.0, "t": 3.0})
    rho = mass / pt
    mean_count = 38.0 * np.exp(0.22 * radiation) * (1.0 + 0.12 * (prongs - 1.0)) * (pt / 1000.0) ** 0.3
    multiplicity = rng.poisson(mean_count).astype(np.float64) + 1.0
    log_count = np.log(multiplicity)
    return {
        "zlogz": -(0.62 * log_count + 0.25 + 0.08 * radiation) + noise(0.08),
        "c1_b0_mmdt": np.clip(0.26 + 0.035 * radiation + 0.05 * (log_count - 3.6) + noise(0.02), 0.01, 0.5),
        "c1_b1_mmdt": 0.6 * rho * np.exp(0.08 * radiation + noise(0.08)),
        "c1_b2_mmdt": 0.9 * rho**2 * np.exp(0.05 * radiation + noise(0.1)),
        "c2_b1_mmdt": np.exp(-1.9 + 0.85 * prongness + noise(0.1)),
        "c2_b2_mmdt": np.exp(-2.3 + 0.95 * prongness + noise(0.12)),
        "d2_b1_mmdt": np.exp(0.30 + 0.90 * prongness + 0.05 * radiation + noise(0.1)),
        "d2_b2_mmdt": np.exp(0.45 + 1.00 * prongness + noise(0.12)),
        "d2_a1_b1_mmdt": np.exp(0.55 + 0.80 * prongness + 0.06 * radiation + noise(0.1)),
        "d2_a1_b2_mmdt": np.exp(0.70 + 0.85 * prongness + noise(0.12)),
        "m2_b1_mmdt": np.exp(-2.6 + 0.55 * prongness + 0.1 * radiation + noise(0.15)),
        "m2_b2_mmdt": np.exp(-3.2 + 0.60 * prongness + 0.1 * radiation + noise(0.18)),
        "n2_b1_mmdt": np.exp(-1.75 + 0.55 * prongness + noise(0.08)),
        "n2_b2_mmdt": np.exp(-1.95 + 0.60 * prongness + noise(0.1)),
        "mass_mmdt": mass * np.exp(noise(0.02)),
        "multiplicity": multiplicity,
    }
