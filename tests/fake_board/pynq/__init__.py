"""A stand-in for pynq on a PYNQ-Z2 without a loaded design: one device, no overlay support.

fastml_lab's board detection asks ``pynq.Device.devices``; the shipped packages have no
bitstream, so ``overlay.load`` still chooses the software overlay and never calls ``Overlay``.
"""


class Device:
    devices = ["fake PYNQ-Z2 (tests/fake_board)"]


def Overlay(*args, **kwargs):  # noqa: N802 (pynq's name)
    raise RuntimeError("tests/fake_board: no programmable logic here")


def allocate(*args, **kwargs):
    raise RuntimeError("tests/fake_board: no contiguous memory here")
