"""A stand-in for pynq on a PYNQ-Z2 without a loaded design: one device, no overlay support.

fastml_lab's board detection asks ``pynq.Device.devices``; the shipped packages have no
bitstream, so ``overlay.load`` still chooses the software overlay and never calls ``Overlay``.
"""


class Device:
    devices = ["fake PYNQ-Z2 (tests/fake_board)"]


def Overlay(bitfile_name, dtbo=None, download=True, ignore_version=False, device=None,  # noqa: N802
            gen_cache=False):  # pynq 3.1's signature
    raise RuntimeError("tests/fake_board: no programmable logic here")


def allocate(shape, dtype="u4", target=None, **kwargs):  # pynq 3.1's signature
    raise RuntimeError("tests/fake_board: no contiguous memory here")
