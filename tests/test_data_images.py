"""Jet images: the offline generator, the reader of Zenodo-format HDF5 files, the loader, the CNN builder."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from fastml_lab.data.images import (IMAGE_SIZE, JetImageDataset, image_sources, load_jet_images, make_jet_images,
                                    read_jet_images)
from fastml_lab.data.schema import CLASSES
from fastml_lab.exceptions import ConfigError, DataError


@pytest.fixture(scope="module")
def images():
    return make_jet_images(5000, seed=3)


def test_shapes_classes_and_values(images):
    X, y = images
    assert X.shape == (5000, IMAGE_SIZE, IMAGE_SIZE, 1) and X.dtype == np.float32
    assert y.dtype == np.int64 and np.bincount(y).tolist() == [1000] * len(CLASSES)
    assert np.isfinite(X).all() and X.min() == 0.0
    lit = X > 0
    assert (X[lit] >= 1.0).all(), "pixels below the 1 GeV threshold are zero"
    total = X.sum(axis=(1, 2, 3))
    assert 400 < np.median(total) < 1000, "about the jet's pT lands in the image"


def test_reproducible_by_seed():
    a, la = make_jet_images(300, seed=7)
    b, lb = make_jet_images(300, seed=7)
    c, _ = make_jet_images(300, seed=8)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, c)


def test_classes_are_distinguishable(images):
    """Gluons light the most pixels, W/Z the fewest; a nearest-centroid rule on the pixels beats chance."""
    X, y = images
    lit = {name: (X[y == k] > 0).sum(axis=(1, 2, 3)).mean() for k, name in enumerate(CLASSES)}
    assert lit["g"] > lit["q"] > lit["w"] and lit["g"] > lit["t"]
    flat = X.reshape(len(X), -1) / X.reshape(len(X), -1).sum(1, keepdims=True)
    train, test = slice(0, 4000), slice(4000, None)
    centroids = np.stack([flat[train][y[train] == k].mean(0) for k in range(len(CLASSES))])
    guess = np.argmin(((flat[test][:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert np.mean(guess == y[test]) > 0.4  # chance: 0.2


def test_memory_stays_small():
    tracemalloc.start()
    try:
        X, _ = make_jet_images(20_000, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert X.nbytes == 20_000 * 256 * 4
    # beyond the images, one chunk of 4,096 jets at a time: the same for any number of images
    assert peak < X.nbytes + 96 * 2**20, f"peak {peak / 2**20:.0f} MiB while generating"


@pytest.mark.parametrize("kwargs, match", [
    ({"n_events": 0}, "n_events must be an integer >= 1"),
    ({"n_events": 10, "seed": -1}, "seed must be an integer >= 0"),
    ({"n_events": 10, "size": 2}, "size must be an integer >= 4"),
])
def test_generator_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_jet_images(**kwargs)


def test_load_synthetic_split_scaled_and_flattened():
    ds = load_jet_images("synthetic", n_events=1000, seed=1)
    assert isinstance(ds, JetImageDataset) and ds.image_shape == (16, 16, 1)
    assert ds.X_train.shape == (800, 16, 16, 1) and ds.X_test.shape == (200, 16, 16, 1)
    assert ds.y_train.shape == (800, 5) and ds.class_names == CLASSES
    assert "synthetic jet images" in ds.notice and "seed 1" in ds.notice
    assert float(ds.X_train.max()) == pytest.approx(16.0) and ds.X_train.min() == 0.0
    raw, _ = make_jet_images(1000, seed=1)
    assert np.allclose(ds.scaler.transform(raw.reshape(1000, -1)).max(), ds.X_train.max(), rtol=0.5)
    assert ds.scaler.n_features_in_ == 256 and np.all(ds.scaler.mean_ == 0)
    summary = ds.summary()
    assert summary["image_shape"] == [16, 16, 1] and "divided by" in summary["scaling"]
    flat = ds.flattened()
    assert flat.X_train.shape == (800, 256) and np.array_equal(flat.X_train[3], ds.X_train[3].ravel())
    assert len(ds.feature_names) == 256


def test_auto_falls_back_to_synthetic_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="no real jet images"):
        ds = load_jet_images("auto", n_events=200, cache_dir=tmp_path)
    assert "synthetic" in ds.source


def _zenodo_file(path, n, rng, side=100):
    """A small file in the Zenodo hls4ml jet format: jetImage (n, side, side), jets with one-hot labels."""
    h5py = pytest.importorskip("h5py")
    names = ["j_pt", "j_g", "j_q", "j_w", "j_z", "j_t"]
    labels = rng.integers(0, 5, n)  # in the file's column order g, q, w, z, t
    jets = np.zeros((n, len(names)))
    jets[:, 0] = rng.uniform(800, 1200, n)
    jets[np.arange(n), 1 + labels] = 1
    image = rng.exponential(1.0, (n, side, side)) * (rng.random((n, side, side)) < 0.05)
    with h5py.File(path, "w") as f:
        f["jetImage"] = image
        f["jets"] = jets
        f["jetFeatureNames"] = np.array([name.encode() for name in names])
    return image, np.array([0, 1, 3, 4, 2])[labels]  # -> g, q, t, w, z


def test_reads_zenodo_files_and_rebins(tmp_path):
    rng = np.random.default_rng(0)
    image, labels = _zenodo_file(tmp_path / "jetImage_0.h5", 30, rng)
    X, y = read_jet_images(tmp_path / "jetImage_0.h5")
    assert X.shape == (30, 16, 16, 1) and np.array_equal(y, labels)
    crop = image[:, 2:98, 2:98]  # 100 -> 96 = 16 blocks of 6
    assert np.allclose(X[..., 0], crop.reshape(30, 16, 6, 16, 6).sum(axis=(2, 4)), rtol=1e-5)
    _zenodo_file(tmp_path / "jetImage_1.h5", 20, rng)
    X, y = read_jet_images(tmp_path)
    assert X.shape == (50, 16, 16, 1)
    ds = load_jet_images(tmp_path, seed=0)
    assert ds.X_train.shape == (40, 16, 16, 1) and "jet images from" in ds.notice


def test_auto_reads_the_cached_real_images(tmp_path):
    folder = tmp_path / "jet_images"
    folder.mkdir()
    _zenodo_file(folder / "a.h5", 25, np.random.default_rng(1), side=32)
    ds = load_jet_images("auto", cache_dir=tmp_path)
    assert "real jet images" in ds.notice and len(ds.labels_train) + len(ds.labels_test) == 25


def test_bad_files_are_named(tmp_path):
    h5py = pytest.importorskip("h5py")
    with pytest.raises(DataError, match="no such file"):
        read_jet_images(tmp_path / "missing.h5")
    (tmp_path / "x.csv").write_text("a\n1\n")
    with pytest.raises(DataError, match="unsupported file type '.csv'"):
        read_jet_images(tmp_path / "x.csv")
    with h5py.File(tmp_path / "features_only.h5", "w") as f:
        f["jets"] = np.zeros((2, 3))
    with pytest.raises(DataError, match=r"features_only.h5.*without \['jetImage', 'jetFeatureNames'\]"):
        read_jet_images(tmp_path / "features_only.h5")
    _zenodo_file(tmp_path / "small.h5", 4, np.random.default_rng(2), side=8)
    with pytest.raises(DataError, match="smaller than size=16"):
        read_jet_images(tmp_path / "small.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no .h5/.hdf5 jet image files"):
        read_jet_images(tmp_path / "empty")


def test_command_line_sources():
    assert image_sources("synthetic-images") == "synthetic"
    assert image_sources("images") == "auto"
    assert image_sources("images:/data/jets") == "/data/jets"
    assert image_sources("synthetic") is None and image_sources("images:") is None


# ------------------------------------------------------------------------------------------- the CNN
def test_cnn_spec_and_builder():
    keras = pytest.importorskip("keras")
    from fastml_lab.train import build_cnn, parse_cnn_spec

    spec = parse_cnn_spec("4-8:fc=16", n_classes=5)
    assert spec.filters == (4, 8) and spec.dense == (16,) and spec.to_string() == "4-8:fc=16"
    model = build_cnn(spec, seed=0)
    assert [layer.name for layer in model.layers] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2",
                                                      "flatten", "fc1", "relu_fc1", "output", "softmax"]
    assert isinstance(model.get_layer("conv1"), keras.layers.Conv2D)
    assert model.output_shape == (None, 5)
    again = build_cnn(spec, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), again.get_weights()))
    for text, match in [("8-x", "bad widths"), ("8:k=0", "unknown option"), ("8-8-8-8", "below 2x2")]:
        with pytest.raises(ConfigError, match=match):
            parse_cnn_spec(text)


def test_cnn_trains_and_its_qat_twin_equals_its_firmware(tmp_path):
    pytest.importorskip("hgq")
    from fastml_lab.evaluate import evaluate
    from fastml_lab.hls import export
    from fastml_lab.quantize import quantize
    from fastml_lab.train import build_cnn, train_model

    ds = load_jet_images("synthetic", n_events=3000, seed=0)
    model = build_cnn("4-4", seed=0)
    history = train_model(model, ds, epochs=3, batch_size=256, learning_rate=3e-3, progress=False)
    assert history.epochs_run == 3 and evaluate(model, ds).accuracy > 0.28  # chance: 0.2
    q = quantize(model, ds, bits={"weights": 6, "activations": 8}, epochs=1, batch_size=256, progress=False)
    assert [type(layer).__name__ for layer in q.model.layers][:2] == ["QConv2D", "Activation"]
    assert set(q.bits) == {"conv1", "conv2", "output"} and q.ebops > 0
    assert {row["name"] for row in q.fit.layers} == {"conv1", "conv2", "output"}
    project = export(q.model, tmp_path / "qcnn", io_type="parallel")
    X = ds.X_test[:300]
    assert np.array_equal(project.firmware().predict(X), q.model.predict(X, verbose=0).astype(np.float64))


def test_train_command_builds_a_cnn_on_images(tmp_path, capsys):
    pytest.importorskip("keras")
    from fastml_lab.cli import main
    from fastml_lab.train import load_model

    out = tmp_path / "cnn.keras"
    assert main(["train", "--family", "nn", "--model", "cnn", "--hidden", "4-4", "--data", "synthetic-images",
                 "--events", "600", "--epochs", "1", "--out", str(out)]) in (0, None)
    assert "jet images" in capsys.readouterr().out
    assert load_model(out).get_layer("conv2").filters == 4
    for args, match in [(["--model", "cnn", "--data", "synthetic"], "--model cnn takes jet images"),
                        (["--data", "synthetic-images"], "--model mlp takes jet features"),
                        (["--model", "rnn", "--data", "synthetic"], "--model must be one of mlp, cnn")]:
        assert main(["train", "--family", "nn", *args, "--events", "300", "--epochs", "1",
                     "--out", str(tmp_path / "x.keras")]) not in (0, None)
        assert match in capsys.readouterr().err
