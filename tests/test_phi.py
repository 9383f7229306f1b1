"""No identity without ``--keep-phi`` (issue 14 item 3; DICOM PS3.15 Annex E, basic profile).

A DICOM phantom carrying about 25 tagged identifying values (patient, institution,
physicians, accession, descriptions, dates, UIDs, a private tag) in folders named like the
patient goes through the whole plan; then every byte twinsep wrote or printed is searched,
with gzip, zip (3MF), PDF streams, PNG text chunks and base64 opened.
"""

from __future__ import annotations

import base64
import gzip
import io
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from twinsep.casefolder import read_json

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SERIES_UID = "1.2.826.0.1.3680043.8.498.31415926535.8979"

#: DICOM keyword -> a value that must never come out of twinsep without --keep-phi.
TAGGED = {
    "PatientName": "Doe^Janequinta^Maria",
    "PatientID": "MRN86753091",
    "PatientBirthDate": "20230519",
    "OtherPatientIDs": "ALTID55512",
    "PatientAddress": "17 Quagmire Lane Springfieldton",
    "PatientTelephoneNumbers": "555-0147-2231",
    "PatientMotherBirthName": "Zyxwerth",
    "InstitutionName": "Saint Quuxbury Childrens Hospital",
    "InstitutionAddress": "99 Hospitalstrasse Zorbingen",
    "InstitutionalDepartmentName": "Paediatric Neuroradiology Zorb",
    "ReferringPhysicianName": "Hausarzt^Edeltraud",
    "PerformingPhysicianName": "Radiologe^Kunibert",
    "NameOfPhysiciansReadingStudy": "Befunder^Hildegunde",
    "OperatorsName": "Roentgen^Wilbrord",
    "RequestingPhysician": "Anforder^Gismunda",
    "AccessionNumber": "ACC20231117X9",
    "StudyID": "STUDYQ7781",
    "StudyDescription": "CT SCHAEDEL Janequinta pre-op",
    "SeriesDescription": "Janequinta Doe venogram 0.6mm",
    "ProtocolName": "PROTO-QZX-CRANIO-77",
    "StationName": "CTSTATIONQ42",
    "DeviceSerialNumber": "SN-998877-QZ",
    "ImageComments": "twins of Mrs Zyxwerth, bed 12",
    "AdditionalPatientHistory": "history of Janequinta: none",
    "StudyDate": "20231117",
    "StudyTime": "101112.131415",
    "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.27182818284.5904",
    "SeriesInstanceUID": SERIES_UID,
    "FrameOfReferenceUID": "1.2.826.0.1.3680043.8.498.16180339887.4989",
}
PRIVATE = "PRIVATE-SECRET-Q8Z7"
FOLDER = "Doe_Janequinta_MRN86753091"


def _tag_series(folder: Path) -> list[str]:
    """Put the tagged values into every file of the series; its SOP Instance UIDs too."""
    import pydicom

    sops = []
    for n, path in enumerate(sorted(folder.rglob("*.dcm"))):
        ds = pydicom.dcmread(path)
        for key, value in TAGGED.items():
            setattr(ds, key, value)
        ds.SOPInstanceUID = f"{SERIES_UID}.{n + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        block = ds.private_block(0x0009, "QUUX MEDICAL", create=True)
        block.add_new(0x01, "LO", PRIVATE)
        ds.save_as(path, enforce_file_format=True)
        sops.append(ds.SOPInstanceUID)
    return sops


def _unpacked(data: bytes, depth: int = 0) -> list[bytes]:
    """``data`` and everything inside it: gzip, zip members, PDF streams, PNG text chunks
    and base64 runs, opened recursively."""
    out = [data]
    if depth > 3:
        return out
    inner: list[bytes] = []
    if data[:2] == b"\x1f\x8b":
        try:
            inner.append(gzip.decompress(data))
        except (OSError, EOFError):
            pass
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            inner += [zf.read(name) for name in zf.namelist()]
    if data[:5] == b"%PDF-":
        for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
            try:
                inner.append(zlib.decompress(m.group(1)))
            except zlib.error:
                inner.append(m.group(1))
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        pos = 8
        while pos + 8 <= len(data):
            length, kind = struct.unpack(">I4s", data[pos:pos + 8])
            body = data[pos + 8:pos + 8 + length]
            if kind == b"tEXt" or kind == b"iTXt":
                inner.append(body)
            if kind == b"zTXt":
                inner.append(zlib.decompress(body.split(b"\0", 1)[1][1:]))
            if kind == b"iTXt" and body.split(b"\0", 1)[1][:1] == b"\x01":
                inner.append(zlib.decompress(body.split(b"\0", 3)[-1].split(b"\0", 1)[-1]))
            pos += 12 + length
    for m in re.finditer(rb"[A-Za-z0-9+/]{64,}={0,2}", data):
        try:
            inner.append(base64.b64decode(m.group(0), validate=True))
        except ValueError:
            continue
    for blob in inner:
        out += _unpacked(blob, depth + 1)
    return out


def _needles(sops: list[str]) -> dict[str, bytes]:
    found = {}
    for key, value in {**TAGGED, "private tag": PRIVATE, "folder": FOLDER}.items():
        for n, variant in enumerate({value, value.replace("^", " "), value.replace("^", ", ")}):
            found[f"{key} #{n}"] = variant.lower().encode()
    found.update({f"SOPInstanceUID {k}": s.encode() for k, s in enumerate(sops)})
    found["Janequinta"] = b"janequinta"  # any part of the name
    found["Zyxwerth"] = b"zyxwerth"
    return found


def test_no_identity_in_any_output_printout_or_log(make_phantom_obj, tmp_path: Path,
                                                   capsys) -> None:
    from twinsep.cli import main
    from twinsep.phantom import write_phantom

    ph = tmp_path / "phantom"
    write_phantom(make_phantom_obj(fusion="total", spacing=3.0), ph, dicom=True)
    dicom = tmp_path / FOLDER / "CT_Janequinta"
    dicom.parent.mkdir()
    (ph / "dicom").rename(dicom)
    sops = _tag_series(dicom)
    out = tmp_path / f"Case_{FOLDER}"
    assert len(TAGGED) + 1 >= 25
    code = main(["--verbose", "plan", str(dicom), "--out", str(out), "--series", SERIES_UID,
                 "--roster", str(ROOT / "examples" / "roster.yaml")])
    printed = capsys.readouterr()
    assert code == 0, printed.err[-3000:]
    assert read_json(out / "plan.json")["conjoined"] is True

    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(files) > 20
    blobs = {str(p.relative_to(out)): _unpacked(p.read_bytes()) for p in files}
    blobs["printout"] = [(printed.out + printed.err).encode()]
    opened = sum(len(v) for v in blobs.values())
    assert opened > len(files)  # something was opened (gzip at least)
    leaks = []
    for where, parts in blobs.items():
        for part in parts:
            low = part.lower()
            leaks += [f"{name} in {where}" for name, needle in _needles(sops).items()
                      if needle in low]
    assert not leaks, sorted(set(leaks))[:20]
    # the series is still named, by its pseudonym; the study date by the age at the scan
    source = read_json(out / "case.json")["source"]
    assert source["series_pseudonym"].startswith("2.25.")
    assert source["age_at_scan_days"] == 182.0  # 2023-05-19 to 2023-11-17

    # with --keep-phi they are kept where asked (case.json's phi, the DICOM-SEG)
    assert main(["plan", str(dicom), "--out", str(out), "--keep-phi"]) == 0
    phi = read_json(out / "case.json")["phi"]
    assert phi["patient_name"] == TAGGED["PatientName"]
    assert phi["series_instance_uid"] == SERIES_UID


def test_the_unpacker_finds_what_is_hidden() -> None:
    """The search is not blind: a value hidden in each container is found."""
    secret = b"doe^janequinta^maria"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("3D/model.xml", gzip.compress(secret))
    png_text = b"Comment\0\0" + zlib.compress(secret)
    png = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(png_text)) + b"zTXt" + png_text
           + b"\0\0\0\0")
    pdf = b"%PDF-1.7\nstream\n" + zlib.compress(secret) + b"\nendstream\n"
    html = b"<script>var m='" + base64.b64encode(b"x" * 60 + secret) + b"';</script>"
    for blob in (buf.getvalue(), png, pdf, html):
        assert any(secret in part for part in _unpacked(blob)), blob[:20]
