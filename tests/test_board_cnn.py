"""Convolutional networks on the PYNQ-Z2 path: packaged, run on the software overlay and through the
real DMA driver (``fastml_lab/overlay/board.py`` against :class:`SoftwareDMA`), images sent in the
order hls4ml's stream wrapper reads them, bit for bit equal to the emulator; and the estimate's
PYNQ-Z2 verdict for CNN projects. Export only, no g++."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from fastml_lab.emulator import Firmware  # noqa: E402
from fastml_lab.estimate import estimate  # noqa: E402
from fastml_lab.hls import export  # noqa: E402
from fastml_lab.overlay import open_package, package  # noqa: E402
from fastml_lab.overlay.board import BoardOverlay  # noqa: E402
from fastml_lab.overlay.software import SoftwareOverlay  # noqa: E402
from software_dma import make_fake_pynq  # noqa: E402

L = keras.layers
SHAPE = (8, 8, 2)
BIT_DIR = "myproject_vivado_accelerator/project_1.runs/impl_1"
HWH_DIR = "myproject_vivado_accelerator/project_1.gen/sources_1/bd/design_1/hw_handoff"


def _model():
    keras.utils.set_random_seed(11)
    return keras.Sequential([
        keras.Input(SHAPE), L.Conv2D(3, 3, activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(2, 2), L.Flatten(), L.Dense(4), L.Activation("softmax")])


@pytest.fixture(scope="module", params=["stream", "parallel"])
def cnn_package(request, tmp_path_factory):
    """A CNN exported for the PYNQ-Z2 in one I/O style, with stand-in Vivado outputs, packaged."""
    root = tmp_path_factory.mktemp(f"cnn_{request.param}")
    project = export(_model(), root / "prj", backend="pynq-z2", precision="ap_fixed<12,4,AP_RND,AP_SAT>",
                     io_type=request.param, quiet=True)
    hls = project.path / "hls4ml"
    (hls / BIT_DIR).mkdir(parents=True, exist_ok=True)
    (hls / HWH_DIR).mkdir(parents=True, exist_ok=True)
    (hls / BIT_DIR / "design_1_wrapper.bit").write_bytes(b"\x00\x09bit cnn")
    (hls / HWH_DIR / "design_1.hwh").write_text("<MODULES>stand-in</MODULES>\n")
    built = open_package(package(project.path, name=f"cnn_{request.param}", out=root / "bitstreams"))
    return request.param, project, built


def _images(n, seed=0):
    return np.random.default_rng(seed).normal(0.0, 3.0, size=(n, *SHAPE))


def test_the_package_records_the_image_shape(cnn_package):
    _, project, built = cnn_package
    assert tuple(built.io["input_shape"]) == SHAPE and built.n_inputs == int(np.prod(SHAPE))
    with SoftwareOverlay(built) as ol:
        assert ol.input_shape == SHAPE


@pytest.mark.parametrize("n", [1, 29, 700])
def test_software_overlay_and_dma_driver_equal_the_emulator_bit_for_bit(cnn_package, tmp_path, n):
    _, project, built = cnn_package
    firmware = Firmware.load(project.path)
    X = _images(n, seed=n)
    expected = firmware.predict(X.astype(np.float32))  # the DMA carries float32 words
    with SoftwareOverlay(built) as software:
        np.testing.assert_array_equal(software.predict(X), expected)
    pynq = make_fake_pynq(firmware)
    with BoardOverlay(built, lock_dir=tmp_path, pynq=pynq) as board:
        np.testing.assert_array_equal(board.predict(X), expected)
        np.testing.assert_array_equal(board.predict(X.reshape(n, -1)), expected)  # flat events: the same words
        np.testing.assert_array_equal(board.classify(X), np.argmax(expected, axis=1))


def test_images_go_through_the_stream_row_by_row_pixel_by_pixel_channel_by_channel(cnn_package, tmp_path):
    """hls4ml's wrapper reads word ``i * C + j`` as channel ``j`` of pixel ``i`` (pixels row-major):
    the send buffer holds each image as numpy's C-order (H, W, C) flattening."""
    io, project, built = cnn_package
    firmware = Firmware.load(project.path)
    X = _images(3, seed=5)
    pynq = make_fake_pynq(firmware)
    with BoardOverlay(built, lock_dir=tmp_path, pynq=pynq) as board:
        board.predict(X)
        sent = np.asarray(pynq.allocations[0]).reshape(-1)[:X.size]
    np.testing.assert_array_equal(sent, X.astype(np.float32).reshape(-1))
    assert sent[1] == np.float32(X[0, 0, 0, 1]) and sent[SHAPE[2]] == np.float32(X[0, 0, 1, 0])
    wrapper = next(project.path.joinpath("hls4ml").rglob("myproject_axi.cpp")).read_text()
    if io == "stream":
        assert "in[i * input_t::size + j]" in wrapper and "N_IN / input_t::size" in wrapper
    else:
        assert "in_local[i] = in[i]" in wrapper


def test_the_estimate_gives_a_pynq_z2_verdict_for_cnn_projects(cnn_package):
    io, project, _ = cnn_package
    result = estimate(project)
    verdict = result.verdict()
    assert verdict.startswith("fits the PYNQ-Z2") and "tightest resource is" in verdict
    assert result.to_dict()["target"]["io_type"] == f"io_{io}"


def test_the_tutorials_svhn_cnn_does_not_fit_the_pynq_z2():
    """The hls4ml tutorial's part 6 CNN (16-bit, reuse 1) needs thousands of DSPs: refused, DSP named."""
    from fastml_lab.boards import board_for_part
    from fastml_lab.estimate.hardware import Target, estimate_description
    from fastml_lab.estimate.published import point_firmware

    description, arrays = point_firmware("svhn_cnn_pruned50", io_type="io_stream")
    description["io_type"] = "io_stream"
    board = board_for_part("xc7z020clg400-1")
    result = estimate_description(description, arrays, Target(board, board.part, 10.0, "vivado", "axi_stream"))
    assert not result.fits and "does not fit the PYNQ-Z2" in result.verdict() and "DSP" in result.verdict()

