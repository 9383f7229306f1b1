"""De-identification of what twinsep keeps of a scan's header (DICOM PS3.15 Annex E,
basic profile): no names, IDs, dates, free-text descriptions or UIDs in any output unless
``--keep-phi``.

- UIDs are replaced by stable pseudonyms (:func:`pseudonym`): the same UID gives the same
  pseudonym in every run, on every machine, so a series can still be named and chosen.
- Dates are replaced by intervals: the age at the scan in days (:func:`age_at_scan_days`),
  from which ``compare`` takes the months between two scans.
- Free text (series and study descriptions, protocol names) is dropped.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
from typing import Any

#: A DICOM UID: digits in dot-separated components, at most 64 characters.
_UID = re.compile(r"^[0-9]+(\.[0-9]+){2,}$")

#: Keys of a reader's source description that identify the study; moved to ``phi``.
_IDENTIFYING = {
    "series_uid": "series_instance_uid",
    "study_date": "study_date",
    "series_description": "series_description",
    "study_description": "study_description",
    "protocol_name": "protocol_name",
}

_AGE_UNITS_DAYS = {"D": 1.0, "W": 7.0, "M": 30.4375, "Y": 365.25}


def looks_like_uid(text: str) -> bool:
    """Whether ``text`` has the form of a DICOM UID.

    >>> looks_like_uid("1.2.840.10008.5.1.4.1.1.2"), looks_like_uid("12.5")
    (True, False)
    """
    return len(text) <= 64 and bool(_UID.match(text))


def pseudonym(uid: str) -> str:
    """A stable pseudonym of a UID: a UID under the ``2.25`` root (PS3.5 B.2) made from a
    hash of it, which does not reveal it.

    >>> pseudonym("1.2.3.4") == pseudonym("1.2.3.4") != pseudonym("1.2.3.5")
    True
    >>> pseudonym("1.2.3.4").startswith("2.25.")
    True
    """
    digest = hashlib.sha256(f"twinsep pseudonym {uid}".encode()).digest()[:16]
    return f"2.25.{int.from_bytes(digest, 'big')}"


def _date(text: str) -> _dt.date | None:
    try:
        return _dt.datetime.strptime(str(text).strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def age_at_scan_days(study_date: str = "", birth_date: str = "",
                     patient_age: str = "") -> float | None:
    """The age at the scan in days: StudyDate - PatientBirthDate, else PatientAge
    (``nnnD|W|M|Y``, months of 30.4375 days), else None.

    >>> age_at_scan_days("20240301", "20230901")
    182.0
    >>> age_at_scan_days(patient_age="006M")
    182.625
    """
    study, birth = _date(study_date), _date(birth_date)
    if study and birth and study >= birth:
        return float((study - birth).days)
    m = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY])\s*", str(patient_age or "").upper())
    return float(m.group(1)) * _AGE_UNITS_DAYS[m.group(2)] if m else None


def deidentify(source: dict[str, Any], phi: dict[str, Any]) -> tuple[dict, dict]:
    """Split a reader's source description into what may be kept (``source``: the series
    pseudonym and the age at the scan instead of the UID and dates) and what is PHI.

    >>> src, phi = deidentify({"modality": "CT", "series_uid": "1.2.3.4",
    ...                        "series_description": "DOE JANE head", "study_date": "20240301"},
    ...                       {"patient_birth_date": "20230901"})
    >>> sorted(src), src["age_at_scan_days"], phi["series_description"]
    (['age_at_scan_days', 'modality', 'series_pseudonym'], 182.0, 'DOE JANE head')
    """
    kept = dict(source)
    private = dict(phi)
    for key, phi_key in _IDENTIFYING.items():
        value = kept.pop(key, None)
        if value not in (None, ""):
            private[phi_key] = value
    if private.get("series_instance_uid"):
        kept["series_pseudonym"] = pseudonym(str(private["series_instance_uid"]))
    age = age_at_scan_days(str(private.get("study_date", "")),
                           str(private.get("patient_birth_date", "")),
                           str(private.get("patient_age", "")))
    if age is not None:
        kept["age_at_scan_days"] = age
    return kept, private


__all__ = ["age_at_scan_days", "deidentify", "looks_like_uid", "pseudonym"]
