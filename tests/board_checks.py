"""Checks that run in the board's interpreter (Python 3.10, the PYNQ v3.1 image's numpy 1.21.5, pynq 3.1),
started as a subprocess by tests/test_board_python.py and tests/test_pynq_conformance.py.

Needs numpy, fastml_lab and this folder on ``sys.path`` (for the stand-ins tests/software_dma.py and
tests/software_register_ip.py); the ``pynq`` subcommand also needs the real pynq. Each subcommand
prints one JSON object on stdout and writes arrays as ``.npy`` into the output folder, so the caller
compares them bit for bit with the same run in the main environment::

    python tests/board_checks.py imports
    python tests/board_checks.py shipped  OUT X.npy          # every shipped package, software overlay
    python tests/board_checks.py emulator OUT X.npy PROJECT  # the emulator of a project folder
    python tests/board_checks.py drivers  OUT X.npy          # both board drivers against the stand-ins
    python tests/board_checks.py pynq                        # real pynq's API, the stand-ins', a .hwh
    python tests/board_checks.py serve    OUT X.npy          # the shipped packages behind `fastml-lab serve`

Runs in the main environment too (the caller does, to get the reference arrays).
"""

from __future__ import annotations

import importlib
import inspect
import json
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

#: The board-safe part: what must import, and run, with numpy alone on the board's Python.
BOARD_SAFE_MODULES = [
    "fastml_lab", "fastml_lab.exceptions", "fastml_lab._io", "fastml_lab.boards", "fastml_lab.fixed",
    "fastml_lab.emulator", "fastml_lab.firmware", "fastml_lab.firmware.ops", "fastml_lab.firmware.reader",
    "fastml_lab.firmware.registry", "fastml_lab.firmware.tables", "fastml_lab.inputs", "fastml_lab.compare",
    "fastml_lab.project", "fastml_lab.scaler",
    "fastml_lab.overlay", "fastml_lab.overlay.accelerator", "fastml_lab.overlay.driver",
    "fastml_lab.overlay.board", "fastml_lab.overlay.register_board", "fastml_lab.overlay.catalog",
    "fastml_lab.overlay.links", "fastml_lab.overlay.manifest", "fastml_lab.overlay.package",
    "fastml_lab.overlay.packaging", "fastml_lab.overlay.software", "fastml_lab.commands.overlay",
    "fastml_lab.serve", "fastml_lab.serve.server", "fastml_lab.serve.handler", "fastml_lab.serve.body",
    "fastml_lab.serve.protocol", "fastml_lab.serve.tensors", "fastml_lab.serve.model",
    "fastml_lab.serve.batching", "fastml_lab.serve.metrics", "fastml_lab.serve.errors", "fastml_lab.commands.serve",
    "fastml_lab.notebooks",
    "fastml_lab.tutorial", "fastml_lab.tutorial.checks", "fastml_lab.tutorial.environment",
    "fastml_lab.tutorial.magic", "fastml_lab.tutorial.sizes",
]
#: Third-party packages the board-safe part may load (everything else is the standard library or ours).
ALLOWED_THIRD_PARTY = {"numpy", "fastml_lab"}
#: Loaded by .pth files of pip and setuptools (the editable install's finder), not by our imports.
INSTALLER_HOOKS = ("__editable__", "_distutils_hack")


def _third_party_loaded() -> list:
    """Top-level modules loaded from site-packages other than those allowed."""
    site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    found = set()
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        top = name.partition(".")[0]
        if (path and any(path.startswith(s) for s in site) and top not in ALLOWED_THIRD_PARTY
                and not top.startswith(INSTALLER_HOOKS)):
            found.add(top)
    return sorted(found)


def check_imports() -> dict:
    failed = {}
    for name in BOARD_SAFE_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # reported, not raised: the caller lists every failure at once
            failed[name] = f"{type(exc).__name__}: {exc}"
    return {"python": sys.version.split()[0], "numpy": np.__version__, "failed": failed,
            "third_party": _third_party_loaded(), "pynq_imported": "pynq" in sys.modules}


def shipped_packages() -> list:
    return sorted(p.parent for p in (ROOT / "bitstreams").glob("*/manifest.json"))


def run_shipped(out: Path, X: np.ndarray) -> dict:
    from fastml_lab.overlay import open_package
    from fastml_lab.overlay.software import SoftwareOverlay

    ran = {}
    for path in shipped_packages():
        package = open_package(path)
        with SoftwareOverlay(package) as overlay:
            y = overlay.predict(X[:, :overlay.n_inputs])
        np.save(out / f"shipped_{path.name}.npy", y)
        ran[path.name] = list(y.shape)
    return {"packages": ran}


def run_emulator(out: Path, X: np.ndarray, project: Path) -> dict:
    from fastml_lab.emulator import Firmware

    firmware = Firmware.load(project)
    y = firmware.predict(X[:, :firmware.n_inputs])
    np.save(out / "emulator.npy", np.asarray(y))
    return {"shape": list(np.shape(y)), "digest": firmware.digest()}


def with_stand_in_bitstream(package_dir: Path, into: Path) -> Path:
    """A copy of a package with made-up .bit and .hwh bytes in its manifest (the stand-ins need no
    real bitstream); the copy is what the board drivers open."""
    from fastml_lab.overlay import manifest as mf

    copy = into / package_dir.name
    shutil.copytree(package_dir, copy)
    manifest = mf.read(copy)
    bitstream = {}
    for role in ("bit", "hwh"):
        path = copy / f"{copy.name}.{role}"
        path.write_bytes(f"stand-in {role} for {copy.name}".encode())
        bitstream[role] = {"path": path.name, "sha256": mf.sha256_file(path), "size": path.stat().st_size}
    manifest["bitstream"] = bitstream
    mf.write(copy, manifest)
    return copy


def _stream_pynq(firmware, **dma_options):
    """A pynq module whose overlay holds one :class:`software_dma.SoftwareDMA` (tests/software_dma.py)."""
    import types

    from software_dma import SoftwareDMA
    from software_register_ip import SoftwareMemory

    pynq = types.ModuleType("pynq")
    pynq.memory = SoftwareMemory()

    class Overlay:
        def __init__(self, bitfile_name, **kwargs):
            self.axi_dma_0 = SoftwareDMA(firmware, **dma_options)
            self.ip_dict = {
                "axi_dma_0": {"type": "xilinx.com:ip:axi_dma:7.1", "fullpath": "axi_dma_0", "parameters": {}},
                "myproject_axi_0": {"type": "xilinx.com:hls:myproject_axi:1.0", "fullpath": "myproject_axi_0",
                                    "parameters": {}},
            }

    class Device:
        devices = [object()]

    pynq.Overlay, pynq.allocate, pynq.Device = Overlay, pynq.memory.allocate, Device
    return pynq


def run_drivers(out: Path, X: np.ndarray) -> dict:
    """Each shipped package with a board through its board driver on the stand-ins; outputs equal the
    software overlay's here, and are saved for the caller to compare across interpreters."""
    from fastml_lab.overlay import manifest as mf
    from fastml_lab.overlay import open_package
    from fastml_lab.overlay.board import open_board
    from fastml_lab.overlay.software import SoftwareOverlay, load_firmware
    from software_register_ip import make_fake_pynq

    ran = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for path in shipped_packages():
            if open_package(path).board is None:
                continue
            package = open_package(with_stand_in_bitstream(path, tmp))
            firmware = load_firmware(package)
            memory_mapped = package.io["interface"] == mf.MEMORY_MAPPED
            events = X[:, :package.n_inputs]
            # Small transfers so that a batch is split over several runs of the IP.
            if memory_mapped:
                pynq, options = make_fake_pynq(firmware), {"max_events": 64}
            else:
                event_bytes = 4 * max(package.n_inputs, package.n_outputs)
                pynq, options = _stream_pynq(firmware, max_transfer_bytes=64 * event_bytes), {}
            with open_board(package, lock_dir=tmp, pynq=pynq, **options) as board:
                y = board.predict(events)
                classes = board.classify(events)
                driver = type(board).__name__
            with SoftwareOverlay(package) as software:
                same = bool(np.array_equal(y, software.predict(events)))
            np.save(out / f"driver_{path.name}.npy", y)
            ran[path.name] = {"driver": driver, "equals_software_overlay": same,
                              "classes": np.bincount(classes, minlength=package.n_outputs).tolist()}
    return {"packages": ran}


def _http(url: str, body=None, headers=None):
    """(status, headers, body) of a GET (no ``body``) or POST on ``url``, 4xx and 5xx included."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def run_serve(out: Path, X: np.ndarray) -> dict:
    """Every shipped package behind the server (software overlays), queried over HTTP with JSON and
    binary tensors, from four threads at once, and with bad requests; answers saved for the caller."""
    import threading

    from fastml_lab.overlay import open_package
    from fastml_lab.overlay.software import SoftwareOverlay
    from fastml_lab.serve import Server

    header = "Inference-Header-Content-Length"
    models, refused = {}, {}
    with Server([str(p) for p in shipped_packages()], backend="software", port=0, max_delay_ms=5) as server:
        for path in shipped_packages():
            package = open_package(path)
            name, url = package.name, f"{server.url}/v2/models/{package.name}"
            status, _, body = _http(url)
            meta = json.loads(body)
            events = X[:, :package.n_inputs].astype(np.float32)
            request = {"inputs": [{"name": package.input_name, "shape": list(events.shape), "datatype": "FP32",
                                   "data": events.astype(np.float64).ravel().tolist()}]}
            _, _, body = _http(url + "/infer", json.dumps(request).encode())
            (tensor,) = json.loads(body)["outputs"]
            np.save(out / f"serve_{name}_json.npy", np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"]))
            raw = events.astype("<f4").tobytes()
            head = json.dumps({"inputs": [{"name": package.input_name, "shape": list(events.shape), "datatype": "FP32",
                                           "parameters": {"binary_data_size": len(raw)}}],
                               "parameters": {"binary_data_output": True}}).encode()
            _, headers, body = _http(url + "/infer", head + raw, {header: str(len(head))})
            length = int(headers[header.lower()])
            binary = np.frombuffer(body[length:], dtype="<f8").reshape(len(events), package.n_outputs)
            np.save(out / f"serve_{name}_binary.npy", binary)
            pieces = {}

            def send(start, stop):
                part = {"inputs": [dict(request["inputs"][0], shape=[stop - start, package.n_inputs],
                                        data=events[start:stop].astype(np.float64).ravel().tolist())]}
                _, _, answer = _http(url + "/infer", json.dumps(part).encode())
                pieces[start] = np.asarray(json.loads(answer)["outputs"][0]["data"]).reshape(stop - start, -1)

            bounds = np.linspace(0, len(events), 5).astype(int)
            threads = [threading.Thread(target=send, args=(int(a), int(b))) for a, b in zip(bounds[:-1], bounds[1:])]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            concurrent = np.concatenate([pieces[k] for k in sorted(pieces)])
            with SoftwareOverlay(package) as software:
                direct = software.predict(events)
            models[name] = {"metadata_status": status, "inputs": meta["inputs"], "outputs": meta["outputs"],
                            "binary_equals_json": bool(np.array_equal(binary, np.load(out / f"serve_{name}_json.npy"))),
                            "concurrent_equals_predict": bool(concurrent.tobytes() == direct.tobytes()),
                            "binary_equals_predict": bool(binary.tobytes() == direct.tobytes())}
        nan = {"inputs": [{"name": "input", "shape": [1, 16], "datatype": "FP32", "data": [float("nan")] * 16}]}
        for case, (path, body) in {"unknown model": ("/v2/models/nope/infer", b"{}"),
                                   "malformed JSON": ("/v2/models/jet_mlp/infer", b"{"),
                                   "NaN": ("/v2/models/jet_mlp/infer", json.dumps(nan).encode()),
                                   "wrong method": ("/v2/models/jet_mlp/infer", None)}.items():
            status, _, answer = _http(server.url + path, body)
            refused[case] = [status, "error" in json.loads(answer)]
        live = _http(server.url + "/v2/health/live")[0]
    return {"models": models, "refused": refused, "live_after": live}


# ------------------------------------------------------------------ the pynq API
def describe(obj, name: str) -> dict:
    """What the driver can rely on about ``obj.name``: missing, a property, a method or function (its
    parameters: name, kind, default), a class (its constructor's), or a plain attribute (its type)."""
    owner = obj if inspect.isclass(obj) else type(obj)
    static = inspect.getattr_static(owner, name, None) if inspect.isclass(owner) else None
    if static is None and not inspect.ismodule(obj):
        static = inspect.getattr_static(obj, name, None)
    if isinstance(static, property):
        return {"kind": "property"}
    if inspect.isclass(obj) and name in instance_attributes(obj):
        return {"kind": "attribute", "type": "set in a method"}
    try:
        value = getattr(obj, name)
    except AttributeError:
        return {"kind": "missing"}
    except Exception as exc:  # a property that needs hardware: it exists
        return {"kind": "property", "raises": type(exc).__name__}
    if inspect.isclass(value):
        target, kind = value.__init__, "class"
    elif callable(value):
        target, kind = value, "callable"
    else:
        return {"kind": "attribute", "type": type(value).__name__}
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return {"kind": kind, "parameters": None}
    params = [{"name": p.name, "kind": p.kind.name,
               "default": None if p.default is inspect.Parameter.empty else repr(p.default)}
              for p in signature.parameters.values() if p.name != "self"]
    return {"kind": kind, "parameters": params}


def instance_attributes(cls) -> set:
    """Names a class (or a base) assigns as ``self.name = ...`` in its methods' source."""
    import ast
    import textwrap

    names = set()
    for klass in cls.__mro__:
        if klass.__module__ in ("builtins", "numpy"):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                    and isinstance(node.value, ast.Name) and node.value.id == "self"):
                names.add(node.attr)
    return names


def real_members() -> dict:
    """Every public name of the pynq objects the drivers touch (class members and instance attributes)."""
    import pynq
    from pynq.buffer import PynqBuffer
    from pynq.lib.dma import DMA, _SDMAChannel
    from pynq.overlay import DefaultIP, Overlay
    from pynq.pl_server.device import Device
    from pynq.registers import Register

    members = {"pynq": sorted(n for n in dir(pynq) if not n.startswith("_"))}
    for role, cls in {"Overlay": Overlay, "Device": Device, "DMA": DMA, "DMAChannel": _SDMAChannel,
                      "PynqBuffer": PynqBuffer, "DefaultIP": DefaultIP, "Register": Register}.items():
        own = set(dir(cls)) - set(dir(np.ndarray) if issubclass(cls, np.ndarray) else dir(object))
        members[role] = sorted(n for n in own | instance_attributes(cls) if not n.startswith("_"))
    return members


def real_pynq_api() -> dict:
    """The real pynq 3.1 objects the drivers touch, as :func:`describe` sees them."""
    import pynq
    from pynq.buffer import PynqBuffer
    from pynq.lib.dma import DMA, _SDMAChannel
    from pynq.overlay import DefaultIP, Overlay
    from pynq.pl_server.device import Device
    from pynq.registers import Register

    objects = {"pynq": pynq, "Overlay": Overlay, "Device": Device, "DMA": DMA, "DMAChannel": _SDMAChannel,
               "PynqBuffer": PynqBuffer, "DefaultIP": DefaultIP, "Register": Register}
    return _api(objects)


#: What the board drivers (fastml_lab/overlay/driver.py, board.py, register_board.py) use of each pynq object;
#: tests/test_pynq_conformance.py checks it against the names the drivers' source mentions.
PYNQ_USES = {
    "pynq": ["Overlay", "allocate", "Device"], "Overlay": ["ip_dict"], "Device": ["devices"],
    "DMA": ["sendchannel", "recvchannel", "buffer_max_size"],
    "DMAChannel": ["transfer", "wait", "idle", "running", "error", "transferred", "start", "stop"],
    "PynqBuffer": ["flush", "invalidate", "freebuffer", "physical_address"],
    "DefaultIP": ["read", "write", "register_map"], "Register": ["address"],
}


def _api(objects: dict) -> dict:
    return {role: {name: describe(obj, name) for name in PYNQ_USES[role]} for role, obj in objects.items()}


def stand_in_api() -> dict:
    """The same objects as the stand-ins build them (tests/software_dma.py, software_register_ip.py,
    tests/fake_board/pynq)."""
    import types

    from fastml_lab.overlay.packaging import CONIFER_REGISTERS
    from software_dma import SoftwareChannel, SoftwareDMA
    from software_register_ip import MemoryBuffer, SoftwareMemory, SoftwareRegisterIP

    class NoFirmware:
        n_inputs, n_outputs = 16, 5

    fake_board = _load_fake_board_pynq()
    memory = SoftwareMemory()
    ip = SoftwareRegisterIP(NoFirmware(), memory)
    dma = SoftwareDMA(NoFirmware())
    register = next(iter(vars(ip.register_map).values()))
    stream_overlay = _stream_pynq(NoFirmware()).Overlay("x.bit")
    return {
        "software_dma": _api({"DMA": dma, "DMAChannel": dma.sendchannel}) | {
            "overlay": {"ip_dict": describe(stream_overlay, "ip_dict")}},
        "software_dma_class": {"DMAChannel": {n: describe(SoftwareChannel, n) for n in
                                              ("transfer", "wait", "idle", "running", "error", "transferred")}},
        "software_register_ip": _api({"DefaultIP": ip, "PynqBuffer": memory.allocate((4,), "float32"),
                                      "Register": register}) | {
            "allocate": describe(types.SimpleNamespace(allocate=memory.allocate), "allocate"),
            "registers": sorted(CONIFER_REGISTERS)},
        "software_register_ip_class": {"PynqBuffer": {n: describe(MemoryBuffer, n) for n in
                                                      ("flush", "invalidate", "freebuffer")}},
        "fake_board_pynq": {n: describe(fake_board, n) for n in ("Overlay", "allocate", "Device")} | {
            "Device.devices": describe(fake_board.Device, "devices")},
    }


def _load_fake_board_pynq():
    spec = importlib.util.spec_from_file_location("fake_board_pynq", HERE / "fake_board" / "pynq" / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_hwh(path: Path) -> dict:
    """pynq's own reading of a Vivado .hwh: the ip_dict entries' type, fullpath, parameter types and
    register offsets, the DMA driver's transfer limit, and what the drivers' lookups find in it."""
    import pynq
    from pynq.metadata.runtime_metadata_parser import RuntimeMetadataParser
    from pynq.registers import RegisterMap
    from pynqmetadata.frontends import Metadata

    from fastml_lab.boards import DEFAULT_BOARD, get_board
    from fastml_lab.overlay.board import max_transfer_bytes
    from fastml_lab.overlay.driver import find_ip

    ip_dict = RuntimeMetadataParser(Metadata(input=str(path))).ip_dict
    entries = {}
    for name, entry in ip_dict.items():
        registers = entry.get("registers") or {}
        mapped = {}
        if registers:
            size = max(r["address_offset"] + r["size"] // 8 for r in registers.values())
            register_map = RegisterMap.create_subclass(name, registers)(np.zeros((size + 3) // 4, np.uint32))
            mapped = {r: int(getattr(register_map, r).address) for r in registers if r.isidentifier()}
        entries[name] = {
            "type": entry.get("type"), "fullpath": entry.get("fullpath"),
            "parameter_types": sorted({type(v).__name__ for v in (entry.get("parameters") or {}).values()}),
            "c_sg_length_width": (entry.get("parameters") or {}).get("c_sg_length_width"),
            "register_offsets": {r: v["address_offset"] for r, v in registers.items()},
            "register_map_addresses": mapped,
        }

    class Parsed:  # what pynq.Overlay offers the drivers: ip_dict and attributes along fullpath
        pass

    overlay = Parsed()
    overlay.ip_dict = ip_dict
    dma_entry = None
    for name, entry in ip_dict.items():
        if "fullpath" in entry:
            class Driver:
                pass
            setattr(overlay, entry["fullpath"].split("/")[0], Driver())
            if entry.get("type", "").startswith("xilinx.com:ip:axi_dma:"):
                dma_entry = entry
    found = None
    if dma_entry is not None:
        overlay_driver = getattr(overlay, dma_entry["fullpath"])
        overlay_driver.sendchannel = overlay_driver.recvchannel = object()
        name, _, entry = find_ip(overlay, get_board(DEFAULT_BOARD).dma_vlnv, "AXI DMA",
                                 ("sendchannel", "recvchannel"))
        # pynq's DMA driver computes buffer_max_size from the same parameter (pynq/lib/dma.py).
        width = int(entry["parameters"]["c_sg_length_width"])
        found = {"name": name, "max_transfer_bytes": max_transfer_bytes(object(), entry),
                 "pynq_buffer_max_size": (1 << width) - 1}
    return {"pynq": pynq.__version__, "entries": entries, "find_dma": found}


def pynq_report() -> dict:
    import pynq
    import pynqmetadata

    hwhs = sorted(Path(pynqmetadata.__file__).parent.glob("tests/hwhs/*.hwh"))
    dma_hwhs = [p for p in hwhs if b"xilinx.com:ip:axi_dma:" in p.read_bytes()]
    return {
        "pynq": pynq.__version__, "python": sys.version.split()[0], "numpy": np.__version__,
        "real": real_pynq_api(), "members": real_members(), "stand_ins": stand_in_api(),
        "hwh": {p.name: parse_hwh(p) for p in dma_hwhs},
    }


def main(argv) -> int:
    command = argv[0]
    if command == "imports":
        result = check_imports()
    elif command == "pynq":
        result = pynq_report()
    else:
        out, X = Path(argv[1]), np.load(argv[2])
        out.mkdir(parents=True, exist_ok=True)
        if command == "shipped":
            result = run_shipped(out, X)
        elif command == "emulator":
            result = run_emulator(out, X, Path(argv[3]))
        elif command == "drivers":
            result = run_drivers(out, X)
        elif command == "serve":
            result = run_serve(out, X)
        else:
            raise SystemExit(f"unknown check {command!r}; one of imports, shipped, emulator, drivers, serve, pynq")
    result.setdefault("python", sys.version.split()[0])
    result.setdefault("numpy", np.__version__)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
