"""A DICOM data set's elements as they were read from the file, kept apart from the
data set the rest of the workbench uses.

pydicom converts an element from its stored bytes the first time anything reads it, and
replaces the stored form in the data set. Converting is not lossless for the bytes: a
multi-valued string stored as ``b"tobien waltraud \\04.11.51 "`` is written back as
``tobien waltraud\\04.11.51``. The header fingerprint hashes stored bytes, so it must not
see what a metadata panel, an export or a verification read in the meantime; otherwise
the same file, untouched, would give another header digest after the user browsed its
tags, and a valid signature would read as "header changed".

The view is taken right after parsing, before the reader touches an attribute. It shares
the stored elements themselves (immutable), not the dictionary that conversion writes
into; a sequence pydicom has already parsed (one of undefined length) is copied item by
item for the same reason.
"""

from __future__ import annotations

from typing import Any


def stored_view(ds: Any) -> Any:
    """A new Dataset holding ``ds``'s elements as they are now (see the module docstring),
    with its byte order, VR encoding and file meta, so that reading it converts nothing
    in ``ds``."""
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    elements: dict[Any, Any] = {}
    for tag in ds.keys():  # noqa: SIM118 (iterating a Dataset converts each element)
        elem = ds.get_item(tag)
        if isinstance(elem, DataElement) and elem.VR == "SQ" and elem.value is not None:
            elem = DataElement(elem.tag, "SQ", Sequence([stored_view(i) for i in elem.value]),
                               is_undefined_length=elem.is_undefined_length)
        elements[tag] = elem
    view = Dataset(elements)
    implicit, little = ds.original_encoding
    view.set_original_encoding(implicit, little)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        view.file_meta = meta
    return view
