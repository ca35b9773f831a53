"""The stand-ins held to the real pynq 3.1: every pynq name the board drivers use (found in their source
with ``ast``) has the real library's form in the stand-ins (tests/software_dma.py,
tests/software_register_ip.py, tests/fake_board/pynq): methods with the same parameters and defaults,
values where pynq has properties or attributes; and pynq's own parser, on a Vivado .hwh with an AXI DMA
for the PYNQ-Z2's part, gives the ip_dict the drivers' lookups expect. The real pynq runs in the board
environment (``make board-env``); tests/board_checks.py ``pynq`` reports what it sees there.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from board_checks import PYNQ_USES
from test_board_python import BOARD_PYTHON, run_checks

ROOT = Path(__file__).resolve().parents[1]
DRIVERS = [ROOT / "fastml_lab" / "overlay" / name for name in ("driver.py", "board.py", "register_board.py")]
#: Names in the drivers' source that pynq also has, used on the drivers' own objects.
NOT_PYNQ = {
    "overlay": "the drivers' own self.overlay (pynq.overlay is a submodule)",
    "registers": "the drivers' own self.registers, the manifest's offsets (pynq.registers is a submodule)",
    "close": "the overlay's and the lock's close; the drivers free pynq buffers with freebuffer()",
}
#: Which stand-in plays which real object: (report group, role in it).
STAND_INS = {
    "DMA": [("software_dma", "DMA")],
    "DMAChannel": [("software_dma", "DMAChannel")],
    "DefaultIP": [("software_register_ip", "DefaultIP")],
    "PynqBuffer": [("software_register_ip", "PynqBuffer")],
    "Register": [("software_register_ip", "Register")],
}

pytestmark = pytest.mark.skipif(BOARD_PYTHON is None, reason="no board environment with the real pynq "
                                "(.venv-board): `make board-env` builds it")


@pytest.fixture(scope="module")
def report():
    return run_checks(BOARD_PYTHON, "pynq")


def names_in_drivers() -> set:
    """Attribute names the drivers' source reads, and names given to getattr/hasattr as strings."""
    names = set()
    for path in DRIVERS:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("getattr", "hasattr") and len(node.args) > 1
                  and isinstance(node.args[1], ast.Constant)):
                names.add(node.args[1].value)
    return names


def _signature(entry) -> list:
    """(name, kind, default) of each parameter; dtype defaults compared as numpy dtypes."""
    params = []
    for p in entry["parameters"]:
        default = p["default"]
        if p["name"] == "dtype" and default is not None:
            default = str(np.dtype(eval(default)))  # noqa: S307 (a repr of a string literal)
        params.append((p["name"], p["kind"], default))
    return params


def _conforms(real: dict, fake: dict) -> str | None:
    """Why ``fake`` would let a driver do what the real one refuses (or the reverse), or None."""
    if fake["kind"] == "missing":
        return "missing"
    real_callable = real["kind"] in ("callable", "class")
    fake_callable = fake["kind"] in ("callable", "class")
    if real_callable != fake_callable:
        return f"pynq's is a {real['kind']}, the stand-in's a {fake['kind']}"
    if real_callable and real["parameters"] is not None:
        if _signature(real) != _signature(fake):
            return f"parameters {_signature(fake)}, pynq's {_signature(real)}"
    return None


def test_the_real_pynq_is_3_1_on_the_board_interpreter(report):
    assert report["pynq"].startswith("3.1."), report["pynq"]
    assert report["python"].startswith("3.10.") and report["numpy"].startswith("1.")


def test_every_pynq_name_the_drivers_use_is_in_the_table(report):
    """A new pynq call in a driver must be added to PYNQ_USES (and so checked below)."""
    used = names_in_drivers()
    table = {name for names in PYNQ_USES.values() for name in names}
    pynq_names = {name for members in report["members"].values() for name in members}
    unchecked = sorted((used & pynq_names) - table - set(NOT_PYNQ))
    assert unchecked == [], f"pynq names the drivers use that no check covers: {unchecked}"
    for name in NOT_PYNQ:
        assert name in used, f"{name!r} is no longer in the drivers; drop it from NOT_PYNQ"


def test_every_name_in_the_table_exists_in_pynq(report):
    for role, names in PYNQ_USES.items():
        for name in names:
            assert report["real"][role][name]["kind"] != "missing", f"pynq 3.1 has no {role}.{name}"


@pytest.mark.parametrize("role", sorted(STAND_INS))
def test_stand_ins_have_pynq_s_form(report, role):
    drifts = []
    for group, fake_role in STAND_INS[role]:
        for name, real in report["real"][role].items():
            why = _conforms(real, report["stand_ins"][group][fake_role][name])
            if why:
                drifts.append(f"{group} {fake_role}.{name}: {why}")
    assert drifts == []


def test_the_allocators_take_pynq_s_parameters(report):
    real = report["real"]["pynq"]["allocate"]
    assert _conforms(real, report["stand_ins"]["software_register_ip"]["allocate"]) is None
    assert _conforms(real, report["stand_ins"]["fake_board_pynq"]["allocate"]) is None


def test_the_fake_board_pynq_has_pynq_s_form(report):
    fake, real = report["stand_ins"]["fake_board_pynq"], report["real"]
    assert _conforms(real["pynq"]["Overlay"], fake["Overlay"]) is None
    assert fake["Device.devices"]["kind"] in ("attribute", "property")
    assert real["Device"]["devices"]["kind"] == "property"


def test_dma_channel_values_are_values(report):
    """idle, running and error are properties in pynq (read without calling), as in the stand-in."""
    channel = report["stand_ins"]["software_dma_class"]["DMAChannel"]
    for name in ("idle", "running", "error"):
        assert report["real"]["DMAChannel"][name]["kind"] == "property"
        assert channel[name]["kind"] == "property", f"SoftwareChannel.{name} is not a property"


def test_pynq_s_hwh_parser_gives_what_the_drivers_look_up(report):
    """resizer.hwh (a Vivado design for the PYNQ-Z2's xc7z020, shipped with pynqmetadata's tests): an
    AXI DMA and an HLS IP with AXI-lite registers, as hls4ml's and conifer's designs have."""
    assert report["hwh"], "no .hwh with an AXI DMA found beside pynqmetadata"
    for name, parsed in report["hwh"].items():
        entries = parsed["entries"]
        dma = parsed["find_dma"]
        assert dma is not None, name
        # find_ip picks the DMA by its type and reaches its driver along fullpath.
        assert entries[dma["name"]]["type"].startswith("xilinx.com:ip:axi_dma:")
        assert entries[dma["name"]]["fullpath"] == dma["name"]
        # Parameters are strings, as the stand-ins' ip_dict has them; the transfer limit is pynq's.
        assert entries[dma["name"]]["parameter_types"] == ["str"]
        assert dma["max_transfer_bytes"] == dma["pynq_buffer_max_size"]
        hls = [e for e in entries.values() if ":hls:" in e["type"]]
        assert hls, "an HLS IP, which BoardOverlay lists by ':hls:' in its type"
        for entry in hls:
            # register_map.<name>.address is the offset within the IP, which the BDT driver compares
            # with the manifest's offsets (the stand-in's register_map holds the same).
            assert entry["register_offsets"] and entry["register_map_addresses"] == entry["register_offsets"]
            assert entry["register_offsets"]["CTRL"] == 0
