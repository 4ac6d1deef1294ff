"""A DICOMweb archive: QIDO-RS searches with dicomweb-client, WADO-RS instances as the
archive's own bytes (``transfer-syntax=*``: never transcoded on the way, so a signed
instance can be verified as it is stored)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .multipart import MultipartError, split_parts

TIMEOUT = 30.0  # seconds, per request: a dead archive is an error, never a hang
PAGE = 500  # results per QIDO-RS request


class PacsError(Exception):
    """A PACS that cannot be reached or answers wrongly; the message names it."""


@dataclass(frozen=True)
class StudyRow:
    study_uid: str
    patient_id: str
    patient_name: str
    date: str
    description: str
    modalities: str
    series: int
    instances: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SeriesRow:
    study_uid: str
    series_uid: str
    modality: str
    number: str
    description: str
    instances: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InstanceRef:
    study_uid: str
    series_uid: str
    sop_uid: str

    @property
    def name(self) -> str:
        """How a result names the instance: its place in the archive."""
        return f"{self.study_uid}/{self.series_uid}/{self.sop_uid}"


def _value(item: dict, tag: str) -> str:
    """A QIDO-RS JSON attribute as text ('' when absent); names by their alphabetic part."""
    values = (item.get(tag) or {}).get("Value") or []
    if not values:
        return ""
    first = values[0]
    if isinstance(first, dict):  # PN
        return str(first.get("Alphabetic", ""))
    return "\\".join(str(v) for v in values)


def check_uid(uid: str | None, what: str = "UID") -> str:
    """A UID safe to put in a URL path and a file name, else PacsError. A conformant UID
    is digits and dots (PS3.5 9.1); archives hold non-conformant ones too (hex hashes), so
    letters, '-' and '_' pass, but never a '/', a leading dot or anything longer than 64."""
    text = str(uid or "")
    if not (0 < len(text) <= 64 and not text.startswith(".")
            and all(c.isascii() and (c.isalnum() or c in "._-") for c in text)):
        raise PacsError(f"{text!r}: not a DICOM {what}")
    return text


def _identity(item: dict) -> str:
    """What makes a search result one study, series or instance: its UIDs."""
    return "/".join(_value(item, tag) for tag in ("0020000D", "0020000E", "00080018"))


def _count(item: dict, tag: str) -> int:
    try:
        return int(_value(item, tag) or 0)
    except ValueError:
        return 0


class DicomWeb:
    """One archive's DICOMweb root, e.g. ``http://127.0.0.1:8042/dicom-web``."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT) -> None:
        from dicomweb_client.api import DICOMwebClient
        from dicomweb_client.session_utils import create_session

        if not url.startswith(("http://", "https://")):
            raise PacsError(f"{url}: a DICOMweb URL starts with http:// or https://")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = create_session()
        # a timeout on every request: an archive that accepts the connection and then says
        # nothing is an error, never a hang
        # permissive: archives hold non-conformant UIDs (hex hashes); check_uid keeps
        # what reaches a URL or a file name safe
        self._client = DICOMwebClient(self.url, session=self._session, timeout=timeout,
                                      permissive_uid=True)
        # dicomweb-client retries a refused connection for 31 s by default; a busy
        # archive (429, 503) is still retried, briefly
        self._client.set_http_retry_params(retry=True, max_attempts=3,
                                           wait_exponential_multiplier=250)

    # --- QIDO-RS --------------------------------------------------------------------------
    def _search(self, what: str, call: Any, *, limit: int | None = None,
                **kwargs: Any) -> list[dict]:
        """All matches, page by page. Paging is ours, not dicomweb-client's
        ``get_remaining``: an archive that ignores ``offset`` for some filters (Orthanc's
        ModalitiesInStudy does) sends the same page forever, and that must end."""
        import requests

        found: list[dict] = []
        seen: set[str] = set()
        while limit is None or len(found) < limit:
            size = PAGE if limit is None else min(PAGE, limit - len(found))
            try:
                page = call(limit=size, offset=len(found), **kwargs) or []
            except requests.exceptions.ConnectionError:
                raise PacsError(f"cannot reach the PACS at {self.url}") from None
            except requests.exceptions.Timeout:
                raise PacsError(f"the PACS at {self.url} did not answer within "
                                f"{self.timeout:.0f} s") from None
            except requests.exceptions.HTTPError as exc:
                code = getattr(exc.response, "status_code", "?")
                raise PacsError(f"the PACS at {self.url} refused the {what} search "
                                f"(HTTP {code})") from None
            except ValueError as exc:  # an answer dicomweb-client cannot read as JSON
                raise PacsError(f"the PACS at {self.url} sent an unreadable {what} "
                                f"search result ({exc})") from None
            new = [item for item in page if _identity(item) not in seen]
            seen.update(_identity(item) for item in new)
            found.extend(new)
            if len(page) < size or not new:
                break
        return found

    def find_studies(self, *, patient_id: str | None = None, date: str | None = None,
                     modality: str | None = None, limit: int | None = None) -> list[StudyRow]:
        """Studies matching all the given keys. ``date`` is a DICOM date or range
        (``20240101``, ``20240101-``, ``20240101-20240131``); wildcards as QIDO-RS has
        them in patient IDs (``PAT*``)."""
        filters: dict[str, str] = {}
        if patient_id:
            filters["PatientID"] = patient_id
        if date:
            filters["StudyDate"] = date
        if modality:
            filters["ModalitiesInStudy"] = modality
        items = self._search("study", self._client.search_for_studies, search_filters=filters,
                             limit=limit, fields=["StudyDescription", "ModalitiesInStudy",
                                                  "NumberOfStudyRelatedSeries",
                                                  "NumberOfStudyRelatedInstances"])
        rows = [StudyRow(_value(i, "0020000D"), _value(i, "00100020"), _value(i, "00100010"),
                         _value(i, "00080020"), _value(i, "00081030"), _value(i, "00080061"),
                         _count(i, "00201206"), _count(i, "00201208")) for i in items]
        return sorted(rows, key=lambda r: (r.date, r.patient_id, r.study_uid))

    def find_series(self, study_uid: str) -> list[SeriesRow]:
        items = self._search("series", self._client.search_for_series,
                             study_instance_uid=check_uid(study_uid, "study UID"),
                             fields=["SeriesDescription", "NumberOfSeriesRelatedInstances"])
        rows = [SeriesRow(study_uid, _value(i, "0020000E"), _value(i, "00080060"),
                          _value(i, "00200011"), _value(i, "0008103E"), _count(i, "00201209"))
                for i in items]
        return sorted(rows, key=lambda r: (_number(r.number), r.series_uid))

    def instances(self, study_uid: str | None = None, series_uid: str | None = None,
                  *, since: str | None = None) -> list[InstanceRef]:
        """Every instance of a series, a study, studies dated ``since`` or later, or the
        whole archive, in archive order (study, series, instance number)."""
        if series_uid and not study_uid:
            raise PacsError("a series is found within its study: give the study UID too")
        if study_uid:
            check_uid(study_uid, "study UID")
        if series_uid:
            check_uid(series_uid, "series UID")
        studies = ([study_uid] if study_uid else
                   [s.study_uid for s in self.find_studies(date=f"{since}-" if since else None)])
        out: list[InstanceRef] = []
        for study in studies:
            items = self._search("instance", self._client.search_for_instances,
                                 study_instance_uid=study, series_instance_uid=series_uid,
                                 fields=["InstanceNumber"])
            refs = sorted((_value(i, "0020000E"), _number(_value(i, "00200013")),
                            _value(i, "00080018")) for i in items)
            out.extend(InstanceRef(study, series, sop) for series, _n, sop in refs)
        return out

    # --- WADO-RS --------------------------------------------------------------------------
    def fetch(self, ref: InstanceRef) -> bytes:
        """The instance as the archive stores it (PS3.10 file bytes)."""
        import requests

        url = (f"{self.url}/studies/{ref.study_uid}/series/{ref.series_uid}"
               f"/instances/{ref.sop_uid}")
        accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
        try:
            r = self._session.get(url, headers={"Accept": accept}, timeout=self.timeout)
        except requests.exceptions.ConnectionError:
            raise PacsError(f"cannot reach the PACS at {self.url}") from None
        except requests.exceptions.Timeout:
            raise PacsError(f"{ref.sop_uid}: the PACS did not send it within "
                            f"{self.timeout:.0f} s") from None
        if r.status_code != 200:
            raise PacsError(f"{ref.sop_uid}: the PACS answered HTTP {r.status_code}")
        try:
            parts = split_parts(r.content, r.headers.get("Content-Type", ""))
        except MultipartError as exc:
            raise PacsError(f"{ref.sop_uid}: {exc}") from None
        if len(parts) != 1:
            raise PacsError(f"{ref.sop_uid}: the PACS sent {len(parts)} parts for one "
                            "instance")
        return parts[0]


def _number(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        return 0
