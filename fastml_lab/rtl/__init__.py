"""Register-transfer level with open tools: generate, simulate and map RTL without Vivado.

* :mod:`.network` -- an HGQ2 network to da4ml's pipelined Verilog (``export --backend rtl``);
* :mod:`.verilator` -- the Verilator build and harness the C simulation runs for Verilog projects;
* :mod:`.ghdl` -- GHDL runs a VHDL project's testbench (conifer's VHDL BDTs, ``--backend vhdl``);
* :mod:`.yosys` -- yosys maps a project's RTL to Xilinx 7-series cells (``synth --tool yosys``);
* :mod:`.waveform` -- Verilator's VCD of the pipeline, read and drawn.

The project record names the RTL (its ``rtl`` entry) and the simulator (``csim.simulator``); the
toolchain reads those and never asks which family wrote them. Importing this package loads nothing.
"""
