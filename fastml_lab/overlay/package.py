"""An opened, verified overlay package: paths, I/O format and status."""

from __future__ import annotations

import json
from pathlib import Path

from ..exceptions import IntegrityError
from ..fixed import FixedType
from . import manifest as mf

SOFTWARE_ONLY = "software only"
BITSTREAM_PRESENT = "bitstream present"
VERIFIED = "verified"


class OverlayPackage:
    """A package folder whose manifest is valid and whose files match their checksums.

    Opening verifies every file the manifest lists that exists (``IntegrityError`` otherwise).
    A bitstream may be absent: the package then runs in software only.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.manifest = mf.read(self.path)
        self._files = mf.check_files(self.path, self.manifest)

    # ------------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def family(self) -> str:
        """The package's model family (:mod:`fastml_lab.families`)."""
        return mf.family(self.manifest)

    @property
    def board(self):
        return self.manifest["board"]

    @property
    def io(self) -> dict:
        return self.manifest["io"]

    @property
    def n_inputs(self) -> int:
        return self.io["n_inputs"]

    @property
    def n_outputs(self) -> int:
        return self.io["n_outputs"]

    @property
    def input_name(self) -> str:
        """The input tensor's name (:func:`~fastml_lab.overlay.manifest.tensor_names`)."""
        return mf.tensor_names(self.manifest)[0]

    @property
    def output_name(self) -> str:
        """The output tensor's name (:func:`~fastml_lab.overlay.manifest.tensor_names`)."""
        return mf.tensor_names(self.manifest)[1]

    @property
    def input_type(self) -> FixedType:
        return FixedType.parse(self.io["input_type"])

    @property
    def output_type(self) -> FixedType:
        return FixedType.parse(self.io["output_type"])

    @property
    def class_names(self):
        return self.manifest.get("class_names")

    @property
    def timing(self) -> dict:
        return dict(self.manifest.get("timing") or {})

    @property
    def firmware_digest(self) -> str:
        return self.manifest["firmware"]["digest"]

    # ------------------------------------------------------------------ bitstream
    def _bitstream_file(self, role: str):
        entry = (self.manifest.get("bitstream") or {}).get(role)
        if entry is None or entry["path"] in self._files["missing"]:
            return None
        return mf.safe_member(self.path, entry["path"])

    @property
    def bitstream_path(self):
        """The ``.bit`` file if present (checksum verified), else None."""
        return self._bitstream_file("bit")

    @property
    def hwh_path(self):
        """The ``.hwh`` file if present (checksum verified), else None."""
        return self._bitstream_file("hwh")

    @property
    def has_bitstream(self) -> bool:
        return self.bitstream_path is not None and self.hwh_path is not None

    def missing_bitstream_files(self) -> list:
        """Manifest-listed bitstream files that are not in the folder."""
        return list(self._files["missing"])

    def verification(self):
        """The recorded board check, if it matches this bitstream and shows no mismatch."""
        path = self.path / mf.VERIFICATION_FILE
        if not path.is_file() or not self.has_bitstream:
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        bit_sha = self.manifest["bitstream"]["bit"]["sha256"]
        if record.get("bit_sha256") != bit_sha or record.get("mismatches") != 0:
            return None
        return record

    @property
    def status(self) -> str:
        """``"software only"``, ``"bitstream present"`` or ``"verified"``."""
        if not self.has_bitstream:
            return SOFTWARE_ONLY
        return VERIFIED if self.verification() else BITSTREAM_PRESENT

    def check_firmware_digest(self, firmware) -> None:
        """Raise IntegrityError unless ``firmware.digest()`` is the one the manifest records."""
        actual = firmware.digest()
        if actual != self.firmware_digest:
            raise IntegrityError(
                f"The emulator data in {self.path} has digest {actual[:16]}..., but the manifest "
                f"records {self.firmware_digest[:16]}...; the package was altered. Re-create it "
                "with `fastml-lab package`."
            )

    def __repr__(self) -> str:
        return f"OverlayPackage({self.name!r} {self.version}, {self.status}, {str(self.path)!r})"
