"""``fetch_bitstream`` and ``fastml-lab fetch`` against a local HTTPS server: https only (redirects
too), a size limit (the manifest's recorded size, or a cap), a deadline on the whole download, md5
and sha256 checked before the file lands, nothing written outside the package folder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from https_helpers import HTTPSServer, body, drip, endless, make_certificate, redirect

from fastml_lab.exceptions import BoardError, ConfigError, IntegrityError
from fastml_lab.overlay import links
from fastml_lab.overlay import manifest as mf
from fastml_lab.overlay.links import fetch_bitstream, write_link

SHIPPED = Path(__file__).resolve().parents[1] / "bitstreams" / "jet_mlp_pynq"
NAME = "jet_mlp_pynq"
BIT = np.random.default_rng(11).integers(0, 256, 300_000, dtype=np.uint8).tobytes()  # several read blocks
OTHER = bytes(b ^ 0x5A for b in BIT[:1000]) + BIT[1000:]  # same length, other bytes


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(certificate):
    srv = HTTPSServer(*certificate)
    yield srv
    srv.close()


@pytest.fixture
def https(server, monkeypatch):
    """The server with no routes, and no proxy or CA file from the environment in the way."""
    for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(var, raising=False)
    server.reset()
    return server


@pytest.fixture
def pkg(tmp_path):
    """A copy of the shipped jet_mlp_pynq package given a stand-in bitstream and hardware handoff
    (the manifest records their sha256 and size), its .bit removed as a release would leave it."""
    path = tmp_path / "pkgs" / NAME
    shutil.copytree(SHIPPED, path)
    (path / f"{NAME}.bit").write_bytes(BIT)
    (path / f"{NAME}.hwh").write_text("<MODULES>stand-in</MODULES>\n")
    manifest = mf.read(path)
    manifest["bitstream"] = {role: {"path": f"{NAME}.{role}", "sha256": mf.sha256_file(path / f"{NAME}.{role}"),
                                    "size": (path / f"{NAME}.{role}").stat().st_size} for role in ("bit", "hwh")}
    mf.write(path, manifest)
    return path


def link_to(pkg, url, md5=None) -> Path:
    """Write the .bit's .link to ``url`` (md5 of the true bitstream unless given) and remove the .bit."""
    bit = pkg / f"{NAME}.bit"
    if bit.exists():
        link = write_link(pkg, "bit", "https://placeholder.invalid/x.bit")
        bit.unlink()
    else:
        link = pkg / f"{NAME}.bit.link"
    link.write_text(json.dumps({"pynq-z2": {"url": url, "md5sum": md5 or hashlib.md5(BIT).hexdigest()}}))
    return link


def snapshot(folder) -> dict:
    """Every file under ``folder`` (hidden ones too) with its sha256; symlinks by their target."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = ("->" + os.readlink(p)) if p.is_symlink() else (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
    return out


def fetch_refused(pkg, exc_type, *needles, **kwargs):
    """Fetch, expecting ``exc_type`` whose message holds every needle; the package folder (its
    files and their bytes: .link and manifest included) must be exactly as before."""
    before = snapshot(pkg.parent)
    with pytest.raises(exc_type) as err:
        fetch_bitstream(pkg, **kwargs)
    for needle in needles:
        assert str(needle) in str(err.value)
    assert snapshot(pkg.parent) == before
    return err.value


# ------------------------------------------------------------------------------ accepted
def test_fetches_the_bitstream_over_https_and_then_has_nothing_to_fetch(https, pkg, certificate):
    https.routes["/r/jet.bit"] = body(BIT)
    link = link_to(pkg, https.url("/r/jet.bit"))
    before = snapshot(pkg)
    assert fetch_bitstream(pkg, cafile=certificate[0]) == [pkg / f"{NAME}.bit"]
    assert (pkg / f"{NAME}.bit").read_bytes() == BIT
    after = snapshot(pkg)
    assert after.pop(f"{NAME}.bit") == hashlib.sha256(BIT).hexdigest() and after == before
    assert mf.check_files(pkg, mf.read(pkg)) == {"missing": [], "present": [
        "firmware.json", "firmware.npz", f"{NAME}.bit", f"{NAME}.hwh"]}
    assert fetch_bitstream(pkg, cafile=certificate[0]) == [] and https.requests == ["/r/jet.bit"]
    assert link.is_file()


def test_follows_https_redirects_and_accepts_a_link_without_md5(https, pkg, certificate):
    https.routes["/latest"] = redirect("/v1/jet.bit")
    https.routes["/v1/jet.bit"] = body(BIT, content_length=False)
    link = link_to(pkg, https.url("/latest"))
    link.write_text(json.dumps({"PYNQ-Z2": {"url": https.url("/latest")}}))  # no md5sum: sha256 alone
    assert fetch_bitstream(pkg, cafile=certificate[0]) == [pkg / f"{NAME}.bit"]
    assert (pkg / f"{NAME}.bit").read_bytes() == BIT and https.requests == ["/latest", "/v1/jet.bit"]


def test_a_package_without_recorded_sizes_is_capped(https, pkg, certificate):
    """Packages written before manifests recorded sizes: the cap (max_bytes, default 64 MiB) applies."""
    manifest = mf.read(pkg)
    for entry in manifest["bitstream"].values():
        del entry["size"]
    mf.write(pkg, manifest)
    https.routes["/jet.bit"] = body(BIT)
    link_to(pkg, https.url("/jet.bit"))
    assert links.MAX_DOWNLOAD_BYTES == 64 << 20
    fetch_refused(pkg, IntegrityError, https.url("/jet.bit"), "announces 300000 bytes",
                  "the 299999-byte limit", cafile=certificate[0], max_bytes=len(BIT) - 1)
    assert fetch_bitstream(pkg, cafile=certificate[0]) == [pkg / f"{NAME}.bit"]


# ------------------------------------------------------------------------------ refused by the server's answer
REFUSALS = {
    # name: (route, md5 in the .link, exception, message parts; "{url}" is the URL fetched)
    "md5 wrong": (body(OTHER), None, IntegrityError, ["{url}", "md5 " + hashlib.md5(OTHER).hexdigest()]),
    "md5 right, sha256 wrong": (body(OTHER), hashlib.md5(OTHER).hexdigest(), IntegrityError,
                                ["{url}", "sha256", "the manifest records"]),
    "too long, with Content-Length": (body(BIT + b"x"), None, IntegrityError,
                                      ["{url}", "announces 300001 bytes", "300000 bytes the manifest records"]),
    "too long, without Content-Length": (body(BIT + b"x", content_length=False), None, IntegrityError,
                                         ["{url}", "sent more than the 300000 bytes", "bytes so far"]),
    "Content-Length lies low": (body(BIT + b"x", content_length=len(BIT) - 1), None, IntegrityError,
                                ["{url}", "announces 299999 bytes"]),
    "endless body": (endless(), None, IntegrityError, ["{url}", "sent more than the 300000 bytes"]),
    "too short, without Content-Length": (body(BIT[:-1], content_length=False), None, IntegrityError,
                                          ["{url}", "sent 299999 bytes, not the 300000"]),
    "connection closed early": (body(BIT[:1000], content_length=len(BIT)), None, BoardError,
                                ["{url}", "ended after 1000 of the 300000 bytes"]),
    "redirect to http": (redirect("http://127.0.0.1:9/jet.bit"), None, ConfigError,
                         ["{url}", "'http://127.0.0.1:9/jet.bit'", "only https:// URLs", ".bit.link"]),
    "redirect to file": (redirect("file:///etc/passwd"), None, ConfigError, ["'file:///etc/passwd'", "only https"]),
    "redirect loop": (redirect("/jet.bit"), None, BoardError, ["{url}", f"more than {links.MAX_REDIRECTS}"]),
    "404": (None, None, BoardError, ["{url}", "HTTP Error 404"]),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_bad_answer_leaves_the_package_as_it_was(case, https, pkg, certificate):
    route, md5, exc_type, needles = REFUSALS[case]
    if route is not None:
        https.routes["/jet.bit"] = route
    url = https.url("/jet.bit")
    link_to(pkg, url, md5=md5)
    fetch_refused(pkg, exc_type, *(n.format(url=url) for n in needles), cafile=certificate[0])
    if case == "redirect loop":
        assert len(https.requests) == links.MAX_REDIRECTS + 1
    if case == "redirect to http":
        assert https.requests == ["/jet.bit"]  # the http URL was never asked for


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
@pytest.mark.timeout(30)  # without the deadline the drip would run for hours
def test_a_dripping_server_fails_by_the_deadline(headers_too, https, pkg, certificate):
    """A byte every 0.05 s never trips the socket timeout (as long as the deadline); the deadline ends it."""
    https.routes["/jet.bit"] = drip(BIT, 0.05, headers_too=headers_too)
    url = https.url("/jet.bit")
    link_to(pkg, url)
    start = time.monotonic()
    fetch_refused(pkg, BoardError, url, "within the time limit of 0.6 s", "nothing was written",
                  cafile=certificate[0], timeout_s=0.6)
    assert 0.55 < time.monotonic() - start < 2.5


def test_an_untrusted_certificate_is_refused(https, pkg):
    https.routes["/jet.bit"] = body(BIT)
    url = https.url("/jet.bit")
    link_to(pkg, url)
    fetch_refused(pkg, BoardError, url, "CERTIFICATE_VERIFY_FAILED")
    assert https.requests == []  # refused during the handshake, before any request


# ------------------------------------------------------------------------------ refused before any connection
@pytest.mark.parametrize("url", [
    "http://127.0.0.1/jet.bit", "HTTP://example.org/jet.bit", "file:///etc/passwd", "ftp://example.org/jet.bit",
    "data:application/octet-stream;base64,AAAA", "https:///jet.bit", "//example.org/jet.bit", "jet.bit", 42,
])
def test_only_https_urls_are_fetched(url, https, pkg, certificate):
    link = link_to(pkg, url)
    fetch_refused(pkg, ConfigError, str(link), repr(url), "only https:// URLs", cafile=certificate[0])
    with pytest.raises(ConfigError, match="only https://"):
        write_link(pkg, "hwh", url)
    assert not (pkg / f"{NAME}.hwh.link").exists() and https.requests == []


def test_a_manifest_path_with_dotdot_is_refused(https, pkg, certificate):
    https.routes["/jet.bit"] = body(BIT)
    outside = pkg.parent / f"{NAME}.bit.link"  # what the .link of '../jet_mlp_pynq.bit' names
    outside.write_text(json.dumps({"pynq-z2": {"url": https.url("/jet.bit")}}))
    manifest = json.loads((pkg / mf.MANIFEST_FILE).read_text())
    manifest["bitstream"]["bit"]["path"] = f"../{NAME}.bit"
    (pkg / mf.MANIFEST_FILE).write_text(json.dumps(manifest))
    (pkg / f"{NAME}.bit").unlink()
    fetch_refused(pkg, IntegrityError, f"'../{NAME}.bit'", "escapes the package folder", cafile=certificate[0])
    assert https.requests == []


@pytest.mark.parametrize("which", ["bitstream", ".link"])
def test_a_symlink_pointing_out_of_the_package_is_refused(which, https, pkg, tmp_path, certificate):
    https.routes["/jet.bit"] = body(BIT)
    link = link_to(pkg, https.url("/jet.bit"))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    if which == "bitstream":  # a dangling symlink: the download would land in `elsewhere`
        (pkg / f"{NAME}.bit").symlink_to(outside / "written_here.bit")
    else:
        shutil.move(link, outside / "jet.link")
        link.symlink_to(outside / "jet.link")
    before = snapshot(outside)
    fetch_refused(pkg, IntegrityError, f"{NAME}.bit", "outside the package folder", cafile=certificate[0])
    assert snapshot(outside) == before and https.requests == []


@pytest.mark.parametrize("kwargs, message", [
    ({"timeout_s": 0}, "timeout must be a positive"), ({"timeout_s": float("nan")}, "timeout must be a positive"),
    ({"max_bytes": 0}, "max_bytes must be a positive"),
])
def test_limits_must_be_positive(kwargs, message, pkg):
    fetch_refused(pkg, ConfigError, message, **kwargs)


def test_a_recorded_size_must_be_a_number_of_bytes(pkg):
    manifest = json.loads((pkg / mf.MANIFEST_FILE).read_text())
    manifest["bitstream"]["bit"]["size"] = "300000"
    (pkg / mf.MANIFEST_FILE).write_text(json.dumps(manifest))
    fetch_refused(pkg, ConfigError, str(pkg / mf.MANIFEST_FILE), "'size' must be a number of bytes")


# ------------------------------------------------------------------------------ the command line
def cli(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR", "https_proxy",
                                                              "HTTPS_PROXY", "all_proxy", "ALL_PROXY")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "fastml_lab.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def assert_refused(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastml-lab fetch: error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    for needle in needles:
        assert needle in lines[0]


def test_cli_fetch_trusts_ssl_cert_file_and_refuses_in_one_line(https, pkg, certificate):
    https.routes["/jet.bit"] = body(BIT)
    https.routes["/bad.bit"] = body(OTHER)
    url = https.url("/jet.bit")
    link = link_to(pkg, url)
    trust = {"SSL_CERT_FILE": str(certificate[0])}
    rewritten = str(link.relative_to(pkg.parent))
    before = snapshot(pkg.parent)

    assert_refused(cli("fetch", pkg), url, "CERTIFICATE_VERIFY_FAILED")  # the system store alone
    link.write_text(json.dumps({"pynq-z2": {"url": https.url("/bad.bit")}}))
    assert_refused(cli("fetch", pkg, env_extra=trust), https.url("/bad.bit"), "sha256")
    link.write_text(json.dumps({"pynq-z2": {"url": "http://127.0.0.1:9/jet.bit"}}))
    assert_refused(cli("fetch", pkg, env_extra=trust), str(link), "only https:// URLs")
    after = snapshot(pkg.parent)
    assert after.pop(rewritten) != before.pop(rewritten) and after == before  # only the rewritten .link differs
    assert https.requests == ["/bad.bit"]

    link_to(pkg, url)
    ok = cli("fetch", pkg, "--timeout", "10", env_extra=trust)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"Fetched {pkg / (NAME + '.bit')}"
    assert (pkg / f"{NAME}.bit").read_bytes() == BIT
    again = cli("fetch", pkg, env_extra=trust)
    assert again.returncode == 0
    assert again.stdout.strip() == f"Nothing to fetch: {pkg} has every file its manifest lists."


def test_cli_fetch_says_what_is_still_missing(pkg, capsys):
    from fastml_lab.cli import main

    (pkg / f"{NAME}.bit").unlink()
    before = snapshot(pkg.parent)
    assert main(["fetch", str(pkg)]) == 0
    assert capsys.readouterr().out.strip() == f"{pkg} still lacks {NAME}.bit: no .link file to fetch it from."
    assert snapshot(pkg.parent) == before
