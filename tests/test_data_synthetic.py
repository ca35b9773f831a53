"""The synthetic jet generator: schema, reproducibility, balance, physical shape and difficulty."""

import warnings

import numpy as np
import pytest

from fastml_lab.data import CLASSES, FEATURES, make_synthetic_jets
from fastml_lab.exceptions import ConfigError

G, Q, T, W, Z = range(5)


@pytest.fixture(scope="module")
def jets():
    return make_synthetic_jets(20_000, seed=0)


def column(name):
    return FEATURES.index(name)


def test_schema_and_dtypes(jets):
    X, y = jets
    assert FEATURES[0] == "zlogz" and FEATURES[-2:] == ("mass_mmdt", "multiplicity")
    assert len(FEATURES) == 16 and CLASSES == ("g", "q", "t", "w", "z")
    assert X.shape == (20_000, 16) and X.dtype == np.float32
    assert y.shape == (20_000,) and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1, 2, 3, 4}
    assert np.isfinite(X).all()


def test_same_seed_same_jets_and_different_seed_different_jets():
    X1, y1 = make_synthetic_jets(500, seed=4)
    X2, y2 = make_synthetic_jets(500, seed=4)
    X3, y3 = make_synthetic_jets(500, seed=5)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    assert not np.array_equal(y1, y3)


@pytest.mark.parametrize("n", [5, 1003, 20_000])
def test_classes_are_balanced(n):
    counts = np.bincount(make_synthetic_jets(n, seed=1)[1], minlength=5)
    assert counts.sum() == n
    assert counts.max() - counts.min() <= 1


def test_physical_ranges(jets):
    X, _ = jets
    mass, count = X[:, column("mass_mmdt")], X[:, column("multiplicity")]
    assert (mass > 0).all() and mass.max() < 450
    assert (count >= 1).all() and np.array_equal(count, np.round(count))
    assert (X[:, column("zlogz")] < 0).all()
    ratios = [name for name in FEATURES if name not in ("zlogz", "mass_mmdt", "multiplicity")]
    assert (X[:, [column(n) for n in ratios]] > 0).all()


def test_groomed_mass_peaks_at_the_resonances(jets):
    X, y = jets
    mass = X[:, column("mass_mmdt")]
    median = {c: np.median(mass[y == c]) for c in range(5)}
    assert 160 < median[T] < 180
    assert 75 < median[W] < 85 and 86 < median[Z] < 96
    assert median[T] > median[Z] > median[W] > max(median[G], median[Q])
    assert median[G] > median[Q]
    # QCD jets have a falling spectrum with a tail that reaches the W/Z window.
    qcd = mass[(y == G) | (y == Q)]
    assert 0.03 < np.mean((qcd > 70) & (qcd < 100)) < 0.25


def test_gluon_jets_radiate_more_than_quark_jets(jets):
    X, y = jets
    count = X[:, column("multiplicity")]
    zlogz = X[:, column("zlogz")]
    assert np.mean(count[y == G]) > 1.15 * np.mean(count[y == Q])
    assert np.median(zlogz[y == G]) < np.median(zlogz[y == Q])


@pytest.mark.parametrize("name", ["n2_b1_mmdt", "d2_b1_mmdt", "c2_b1_mmdt", "d2_a1_b2_mmdt"])
def test_prong_ratios_are_lower_for_w_z_and_top(jets, name):
    X, y = jets
    median = {c: np.median(X[y == c, column(name)]) for c in range(5)}
    assert max(median[W], median[Z]) < median[T] < min(median[G], median[Q])


def test_features_share_a_per_jet_latent(jets):
    X, y = jets
    within_qcd = X[y == Q]
    corr = np.corrcoef(within_qcd[:, column("d2_b1_mmdt")], within_qcd[:, column("n2_b1_mmdt")])[0, 1]
    assert corr > 0.5


def test_difficulty_is_realistic_not_trivial():
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    X, y = make_synthetic_jets(4000, seed=11)
    Xs = StandardScaler().fit_transform(X)
    linear = LogisticRegression(max_iter=300).fit(Xs[:3000], y[:3000]).score(Xs[3000:], y[3000:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the MLP may stop before its optimizer converges
        mlp = MLPClassifier((32,), max_iter=200, random_state=0).fit(Xs[:3000], y[:3000])
    nonlinear = mlp.score(Xs[3000:], y[3000:])
    assert 0.60 < linear < 0.78
    assert 0.65 < nonlinear < 0.80
    # W and Z overlap heavily, so do g and q; top is the easiest class.
    truth, predicted = y[3000:], mlp.predict(Xs[3000:])
    for pair in ((W, Z), (G, Q)):
        inside = np.isin(truth, pair)
        assert np.mean(predicted[inside] == truth[inside]) < 0.85
    assert np.mean(predicted[truth == T] == T) > 0.75


@pytest.mark.parametrize(("n_events", "seed"), [(0, 0), (-3, 0), (2.5, 0), (True, 0), (10, "a"), (10, -1)])
def test_bad_parameters_raise_config_error(n_events, seed):
    with pytest.raises(ConfigError):
        make_synthetic_jets(n_events, seed=seed)
