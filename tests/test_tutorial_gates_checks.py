"""Tutorial 9's exercise checks (signed digits, pipeline latency) and the programs its cells need."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fastml_lab.tutorial import checks
from fastml_lab.tutorial.environment import PROGRAMS
from fastml_lab.tutorial.magic import skip_notice


@pytest.mark.parametrize("constant", range(-300, 301))
def test_signed_digits_add_up_to_the_constant_with_no_two_neighbours(constant):
    digits = checks.signed_digits(constant)
    assert sum(sign << shift for shift, sign in digits) == constant
    shifts = [shift for shift, _ in digits]
    assert shifts == sorted(shifts) and all(b - a >= 2 for a, b in zip(shifts, shifts[1:]))
    assert all(sign in (-1, 1) for _, sign in digits)
    assert len(digits) <= bin(abs(constant)).count("1")  # never more terms than plain binary


def test_signed_digit_adders_judges_the_count_and_shows_the_terms():
    assert checks.signed_digits(187) == [(0, -1), (2, -1), (6, -1), (8, 1)]
    verdict = checks.check_signed_digit_adders(3, 187)
    assert verdict and "x * 187 = (x << 8) - (x << 6) - (x << 2) - (x << 0)" in repr(verdict)
    assert "would need 5" in repr(verdict)
    assert not checks.check_signed_digit_adders(5, 187)  # the plain binary count
    assert checks.check_signed_digit_adders(..., 187).status == checks.UNANSWERED
    assert checks.check_signed_digit_adders(0, 64)  # a power of two is a shift: no adder


def test_pipeline_latency_is_the_number_of_stages():
    project = SimpleNamespace(timing={"latency_cycles": 3, "ii_cycles": 1, "clock_mhz": 100.0})
    assert checks.check_pipeline_latency(3, project)
    verdict = checks.check_pipeline_latency(2, project)
    assert not verdict and "describe_rtl" in repr(verdict)
    assert checks.check_pipeline_latency(..., project).status == checks.UNANSWERED


def test_cells_can_need_verilator_and_yosys():
    assert {"g++", "verilator", "yosys"} <= set(PROGRAMS)
    notice = skip_notice(["verilator"], on_board=False)
    assert notice.startswith("[skipped] This cell needs Verilator (to simulate the Verilog)")
