"""Overlay packages: manifest round trip and validation, integrity refusals, atomic packaging,
the search for packages and fetching a bitstream from a .link file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from https_helpers import HTTPSServer, make_certificate
from https_helpers import body as https_body

from fastml_lab.exceptions import ConfigError, IntegrityError
from fastml_lab.overlay import list_overlays, load, open_package, package, resolve
from fastml_lab.overlay import manifest as mf
from fastml_lab.overlay.links import fetch_bitstream, write_link
from fastml_lab.overlay.package import BITSTREAM_PRESENT, SOFTWARE_ONLY, VERIFIED

OVERLAY_DIR = Path(__file__).resolve().parents[1] / "fastml_lab" / "overlay"


def _edit_manifest(pkg: Path, change) -> None:
    path = pkg / mf.MANIFEST_FILE
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# ---------------------------------------------------------------------------- manifest
def test_manifest_records_the_io_format_and_round_trips(make_overlay_package, overlay_project):
    from fastml_lab.emulator import Firmware

    pkg = make_overlay_package("tiny")
    data = mf.read(pkg)
    firmware = Firmware.load(overlay_project)
    assert data["schema_version"] == mf.SCHEMA_VERSION
    assert data["board"] == "pynq-z2" and data["clock_mhz"] == pytest.approx(100.0)
    assert data["io"]["n_inputs"] == firmware.n_inputs
    assert data["io"]["n_outputs"] == firmware.n_outputs
    assert data["io"]["word_dtype"] == "float32" and "TLAST" in data["io"]["packing"]
    assert data["io"]["input_type"] == str(firmware.input_type)
    assert data["firmware"]["digest"] == firmware.digest()
    assert {e["path"] for e in data["firmware"]["files"]} == set(Firmware.FILES)
    assert data["bitstream"] is None
    mf.write(pkg, data)
    assert mf.read(pkg) == data
    assert sorted(p.name for p in pkg.iterdir()) == sorted([mf.MANIFEST_FILE, *Firmware.FILES])


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("io"), "lacks io"),
    (lambda d: d.update(schema_version=mf.SCHEMA_VERSION + 1), "newer"),
    (lambda d: d.update(schema_version="1"), "schema_version"),
    (lambda d: d.update(board="zcu999"), "Unknown board 'zcu999'"),
    (lambda d: d["io"].update(n_inputs=0), "io.n_inputs"),
    (lambda d: d["io"].update(interface="parallel"), "axi_stream"),
    (lambda d: d["io"].update(word_dtype="int16"), "word_dtype"),
    (lambda d: d.update(class_names=["a", "b"]), "class names"),
    (lambda d: d["firmware"]["files"].append({"path": "x"}), "'path' and 'sha256'"),
])
def test_invalid_manifests_are_refused_with_the_reason(make_overlay_package, change, message):
    pkg = make_overlay_package("tiny")
    _edit_manifest(pkg, change)
    with pytest.raises(ConfigError, match=message):
        open_package(pkg)


def test_not_a_package_and_broken_json(tmp_path):
    with pytest.raises(ConfigError, match="no manifest.json"):
        open_package(tmp_path)
    (tmp_path / mf.MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        mf.read(tmp_path)


# ---------------------------------------------------------------------------- integrity
def test_tampered_emulator_data_is_refused(make_overlay_package):
    pkg = make_overlay_package("tiny")
    with open(pkg / "firmware.npz", "ab") as f:
        f.write(b"\0")
    with pytest.raises(IntegrityError, match="firmware.npz does not match the manifest"):
        open_package(pkg)


def test_emulator_digest_must_match_even_with_consistent_file_hashes(make_overlay_package):
    pkg = make_overlay_package("tiny")
    _edit_manifest(pkg, lambda d: d["firmware"].update(digest="0" * 64))
    assert open_package(pkg).status == SOFTWARE_ONLY  # file hashes still match
    with pytest.raises(IntegrityError, match="digest"):
        load(pkg, backend="software")


def test_missing_emulator_file_is_refused(make_overlay_package):
    pkg = make_overlay_package("tiny")
    (pkg / "firmware.json").unlink()
    with pytest.raises(IntegrityError, match="lacks firmware.json"):
        open_package(pkg)


def test_tampered_bitstream_is_refused(make_overlay_package):
    pkg = make_overlay_package("built", built=True)
    assert open_package(pkg).status == BITSTREAM_PRESENT
    (pkg / "built.bit").write_bytes(b"another design")
    with pytest.raises(IntegrityError, match=r"built\.bit does not match the manifest"):
        open_package(pkg)


@pytest.mark.parametrize("bad_path, message", [
    ("../firmware.json", r"escapes the package folder"),
    ("/etc/passwd", "absolute path"),
    ("sub/../../x", r"escapes"),
])
def test_paths_escaping_the_package_are_refused(make_overlay_package, bad_path, message):
    pkg = make_overlay_package("tiny")
    _edit_manifest(pkg, lambda d: d["firmware"]["files"][0].update(path=bad_path))
    with pytest.raises(IntegrityError, match=message):
        open_package(pkg)


def test_symlink_out_of_the_package_is_refused(make_overlay_package, tmp_path):
    pkg = make_overlay_package("tiny")
    outside = tmp_path / "outside.json"
    shutil.copyfile(pkg / "firmware.json", outside)
    (pkg / "firmware.json").unlink()
    os.symlink(outside, pkg / "firmware.json")
    with pytest.raises(IntegrityError, match="outside the package folder"):
        open_package(pkg)


def test_project_for_an_unknown_board_is_not_packaged(overlay_project, tmp_path):
    project = tmp_path / "prj"
    shutil.copytree(overlay_project, project)
    info = json.loads((project / "project.json").read_text())
    info["board"] = "zcu999"
    (project / "project.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match="zcu999"):
        package(project, name="x", out=tmp_path / "out" / "x")
    assert not (tmp_path / "out" / "x").exists()


# ---------------------------------------------------------------------------- atomic packaging
def _interrupt_on_second_copy(monkeypatch):
    real = shutil.copyfile
    calls = []

    def copyfile(src, dst, *a, **k):
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(src, dst, *a, **k)

    monkeypatch.setattr(shutil, "copyfile", copyfile)


def test_interrupted_packaging_leaves_nothing_behind(overlay_project, tmp_path, monkeypatch):
    out = tmp_path / "bitstreams" / "tiny"
    _interrupt_on_second_copy(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        package(overlay_project, name="tiny", out=out)
    assert not out.exists()
    assert list(out.parent.iterdir()) == []


def test_interrupted_overwrite_keeps_the_old_package(make_overlay_package, overlay_project,
                                                     monkeypatch):
    pkg = make_overlay_package("tiny", version="1.0.0")
    before = (pkg / mf.MANIFEST_FILE).read_text()
    _interrupt_on_second_copy(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        package(overlay_project, name="tiny", out=pkg, version="2.0.0", overwrite=True)
    assert (pkg / mf.MANIFEST_FILE).read_text() == before
    assert [p.name for p in pkg.parent.iterdir()] == ["tiny"]


def test_existing_package_needs_overwrite(make_overlay_package, overlay_project):
    pkg = make_overlay_package("tiny")
    with pytest.raises(ConfigError, match="already exists"):
        package(overlay_project, name="tiny", out=pkg)
    package(overlay_project, name="tiny", out=pkg, version="2.0.0", overwrite=True)
    assert open_package(pkg).version == "2.0.0"
    assert [p.name for p in pkg.parent.iterdir()] == ["tiny"]


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 65])
def test_bad_package_names(overlay_project, tmp_path, name):
    with pytest.raises(ConfigError, match="Package name"):
        package(overlay_project, name=name, out=tmp_path / "p")


def test_default_destination_is_bitstreams_of_the_current_folder(overlay_project, tmp_path,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = package(overlay_project, name="here")
    assert out == tmp_path / "bitstreams" / "here"
    assert resolve("here") == out


# ---------------------------------------------------------------------------- finding packages
def test_list_overlays_reports_each_status(make_overlay_package, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_overlay_package("soft")
    built = make_overlay_package("built", built=True)
    verified = make_overlay_package("checked", built=True)
    bit_sha = mf.read(verified)["bitstream"]["bit"]["sha256"]
    mf.write_json_atomic(verified / mf.VERIFICATION_FILE, {"bit_sha256": bit_sha, "mismatches": 0})
    broken = make_overlay_package("broken")
    (broken / "firmware.npz").write_bytes(b"junk")
    rows = {r.name: r for r in list_overlays([built.parent])}
    assert rows["soft"].status == SOFTWARE_ONLY
    assert rows["built"].status == BITSTREAM_PRESENT
    assert rows["checked"].status == VERIFIED
    assert rows["broken"].status.startswith("invalid:") and "firmware.npz" in rows["broken"].status


def test_verification_record_of_another_bitstream_does_not_count(make_overlay_package):
    pkg = make_overlay_package("built", built=True)
    mf.write_json_atomic(pkg / mf.VERIFICATION_FILE, {"bit_sha256": "0" * 64, "mismatches": 0})
    assert open_package(pkg).status == BITSTREAM_PRESENT


def test_search_path_from_environment(make_overlay_package, tmp_path, monkeypatch):
    pkg = make_overlay_package("envpkg")
    monkeypatch.chdir(tmp_path / "bitstreams" / "envpkg")  # no ./bitstreams here
    with pytest.raises(ConfigError, match="No overlay package named 'envpkg'"):
        resolve("envpkg")
    monkeypatch.setenv("FASTML_LAB_OVERLAYS", str(pkg.parent))
    assert resolve("envpkg") == pkg
    assert any(r.name == "envpkg" for r in list_overlays())


def test_existing_folder_that_is_not_a_package(tmp_path):
    with pytest.raises(ConfigError, match="not an overlay package"):
        resolve(tmp_path)


def test_a_path_that_does_not_exist_is_named_as_a_path(tmp_path):
    with pytest.raises(ConfigError) as err:
        resolve(tmp_path / "gone" / "pkg")
    assert f"{tmp_path / 'gone' / 'pkg'} does not exist" in str(err.value)
    assert "No overlay package named" not in str(err.value)


# ---------------------------------------------------------------------------- .link files
@pytest.fixture(scope="module")
def release_server(tmp_path_factory):
    """A local HTTPS server (tests/test_fetch.py tests fetching against it in depth)."""
    server = HTTPSServer(*make_certificate(tmp_path_factory.mktemp("tls")))
    yield server
    server.close()


def _release(server, pkg, role):
    """Serve the package's file from the HTTPS server, link it and remove it; returns the link
    path and the URL path it is served at."""
    entry = mf.read(pkg)["bitstream"][role]
    route = f"/release/{pkg.name}/{entry['path']}"
    server.routes[route] = https_body((pkg / entry["path"]).read_bytes())
    link = write_link(pkg, role, server.url(route))
    (pkg / entry["path"]).unlink()
    return link, route


def test_fetch_bitstream_from_a_link(make_overlay_package, release_server):
    pkg = make_overlay_package("linked", built=True)
    assert mf.read(pkg)["bitstream"]["bit"]["size"] == (pkg / "linked.bit").stat().st_size
    link, _ = _release(release_server, pkg, "bit")
    assert json.loads(link.read_text())["pynq-z2"]["md5sum"]
    assert open_package(pkg).status == SOFTWARE_ONLY
    assert fetch_bitstream(pkg, cafile=release_server.cert) == [pkg / "linked.bit"]
    assert open_package(pkg).status == BITSTREAM_PRESENT


def test_fetch_refuses_a_download_with_the_wrong_checksum(make_overlay_package, release_server):
    pkg = make_overlay_package("linked", built=True)
    _, route = _release(release_server, pkg, "bit")
    size = mf.read(pkg)["bitstream"]["bit"]["size"]
    release_server.routes[route] = https_body(b"?" * size)  # the right size, other bytes
    with pytest.raises(IntegrityError, match="md5"):
        fetch_bitstream(pkg, cafile=release_server.cert)
    assert sorted(p.name for p in pkg.iterdir()) == sorted(
        ["linked.bit.link", "linked.hwh", mf.MANIFEST_FILE, "firmware.json", "firmware.npz"])


def test_link_for_another_board_is_refused(make_overlay_package, release_server):
    pkg = make_overlay_package("linked", built=True)
    link, _ = _release(release_server, pkg, "bit")
    link.write_text(json.dumps({"ZCU104": {"url": "https://example.org/x", "md5sum": "0"}}))
    with pytest.raises(ConfigError, match="no entry for board 'pynq-z2'"):
        fetch_bitstream(pkg, cafile=release_server.cert)


# ---------------------------------------------------------------------------- board-safe code
def test_overlay_package_imports_with_numpy_alone():
    code = (
        "import sys; import fastml_lab.overlay, fastml_lab.overlay.board,"
        " fastml_lab.overlay.software, fastml_lab.commands.overlay, fastml_lab.notebooks,"
        " fastml_lab.project, fastml_lab.boards;"
        "heavy = {'tensorflow', 'keras', 'hls4ml', 'sklearn', 'pandas', 'pynq', 'scipy', 'matplotlib'};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_overlay_code_is_python_3_10_compatible():
    import ast

    extra = [OVERLAY_DIR.parent / "commands" / "overlay.py", OVERLAY_DIR.parent / "notebooks" / "__init__.py",
             OVERLAY_DIR.parent / "project.py", OVERLAY_DIR.parent / "boards.py"]
    for path in sorted(OVERLAY_DIR.glob("*.py")) + extra:
        source = path.read_text()
        ast.parse(source, filename=str(path), feature_version=(3, 10))
        for name in ("tomllib", "typing.Self", "ExceptionGroup", "except*", "TaskGroup"):
            assert name not in source, f"{path.name} uses {name}, which Python 3.10 lacks"
