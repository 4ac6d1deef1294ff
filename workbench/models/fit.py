"""Whether a classifier fits an image: what its card says it was trained on (kind of
image, DICOM modality, body part, colour) against what the image is. A model that does not
fit an image gives output that must never be shown as a diagnosis: a skin-lesion model
answering "melanoma 0.89" on a CT slice is a confident, wrong statement.

Photos count as modality XC (DICOM's external-camera photography); DICOM dermoscopy is
XC or DMS. A card that declares nothing fits nothing: its output is always a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..imaging.colour_content import has_colour

MODALITY_WORDS = {
    "CR": "X-ray (CR)", "DX": "X-ray (DX)", "MG": "mammogram", "CT": "CT", "MR": "MR",
    "US": "ultrasound", "XA": "angiogram", "NM": "nuclear medicine image", "PT": "PET",
    "OT": "DICOM image of another kind", "SC": "secondary capture", "XC": "photograph",
    "DMS": "dermoscopy image", "OP": "ophthalmic photograph",
}


@dataclass(frozen=True)
class ImageFit:
    """What a model was trained on, from its card's ``fits``."""

    description: str = ""  # in words, for the warning: "dermoscopy photographs of skin"
    modalities: tuple[str, ...] = ()  # DICOM modality codes; photos are XC
    body_parts: tuple[str, ...] = ()  # BodyPartExamined values; empty: not checked
    colour: bool | None = None  # True: colour images only; False: greyscale only
    # a PNG/JPEG export of the modality (a chest X-ray saved as a picture) is accepted when
    # its pixels are grey: nothing in such a file says what it shows (see fit_caveat)
    greyscale_photos: bool = False
    # the oldest patients in the training data (a paediatric model: 5); an image whose
    # header gives an older patient is outside what the model was measured on
    max_age_years: float | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> ImageFit:
        d = d or {}
        return cls(description=str(d.get("description", "")),
                   modalities=tuple(str(m).upper() for m in d.get("modalities", ())),
                   body_parts=tuple(str(b).upper() for b in d.get("body_parts", ())),
                   colour=d.get("colour"),
                   greyscale_photos=bool(d.get("greyscale_photos", False)),
                   max_age_years=d.get("max_age_years"))

    def to_json(self) -> dict[str, Any]:
        return {"description": self.description, "modalities": list(self.modalities),
                "body_parts": list(self.body_parts), "colour": self.colour,
                "greyscale_photos": self.greyscale_photos,
                "max_age_years": self.max_age_years}

    @property
    def declared(self) -> bool:
        return bool(self.modalities)


def describe_image(image: Any) -> str:
    """The image in a reviewer's words: "a chest X-ray (CR)", "a greyscale photograph"."""
    modality = (image.modality or "").upper()
    what = MODALITY_WORDS.get(modality, f"{modality} image" if modality else "image")
    body = _body_part(image)
    if image.kind == "photo":
        return f"a {'colour' if has_colour(image) else 'greyscale'} photograph"
    if body and modality in ("CR", "DX", "CT", "MR", "US", "MG"):
        what = f"{body.lower()} {what}"
    return f"{_article(what)} {what}"


def _article(word: str) -> str:
    # "an MR", "an X-ray", "an ultrasound"; "a CT", "a breast mammogram"
    vowel_sound = word[:1].lower() in "aeiou" or (word[:2].isupper() and word[0] in "FHLMNRSX")
    return "an" if vowel_sound else "a"


def fit_problem(card: Any, image: Any) -> str | None:
    """None when ``card``'s model fits ``image``; else one sentence saying why not, meant
    to be shown instead of the model's answer."""
    fit: ImageFit = getattr(card, "fits", None) or ImageFit()
    name = getattr(card, "name", "this model")
    if not fit.declared:
        return (f"{name}'s card does not say which images it was trained on, so its output "
                "is not a diagnosis for any image.")
    trained = fit.description or "images of modality " + "/".join(fit.modalities)
    modality = "XC" if image.kind == "photo" else (image.modality or "").upper()
    reason = None
    if image.kind == "photo" and fit.greyscale_photos and modality not in fit.modalities:
        if has_colour(image):
            reason = "this image is a colour photograph"
    elif modality not in fit.modalities:
        reason = f"this image is {describe_image(image)}"
    elif fit.colour and not has_colour(image):
        # by content: a chest X-ray saved as an RGB JPEG has three equal channels
        reason = "this image is greyscale" + (" (its three colour channels are equal)"
                                              if image.is_color else "")
    elif fit.colour is False and has_colour(image):
        reason = "this image is in colour"
    elif fit.body_parts and (part := _body_part(image)) and part.upper() not in fit.body_parts:
        reason = f"this image shows the {part.lower()}"
    elif fit.max_age_years is not None and (age := patient_age_years(image)) is not None \
            and age > fit.max_age_years:
        reason = (f"this patient was {age:.0f} years old at the study, and the oldest "
                  f"patients it was trained on were {fit.max_age_years:g}")
    if reason is None:
        return None
    return f"{name} was trained on {trained}; {reason}. Its output is not a diagnosis."


def fit_caveat(card: Any, image: Any) -> str | None:
    """What a reviewer must know although the model fits: a picture file (PNG, JPEG)
    taken for an export of the card's modality only because its pixels are grey."""
    fit: ImageFit = getattr(card, "fits", None) or ImageFit()
    if image.kind != "photo" or not fit.greyscale_photos or "XC" in fit.modalities:
        return None
    if fit_problem(card, image) is not None:
        return None
    subject = (fit.description or "the images").split(" (")[0]
    return (f"a picture file does not say what it shows; it is read as one of the {subject} "
            "this model was trained on only because its pixels are grey")


def _body_part(image: Any) -> str:
    ds = image.metadata if image.kind == "dicom" else None
    return str(getattr(ds, "BodyPartExamined", "") or "") if ds is not None else ""


def patient_age_years(image: Any) -> float | None:
    """The patient's age at the study from the DICOM header: Patient's Age (nnnY/M/W/D),
    else Study Date minus Patient's Birth Date; None when the header does not say."""
    ds = image.metadata if image.kind == "dicom" else None
    if ds is None:
        return None
    age = str(getattr(ds, "PatientAge", "") or "").strip().upper()
    units = {"Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}
    if len(age) == 4 and age[:3].isdigit() and age[3] in units:
        return int(age[:3]) * units[age[3]]
    from datetime import date

    def day(text: Any) -> date | None:
        t = str(text or "").strip()
        try:
            return date(int(t[:4]), int(t[4:6]), int(t[6:8])) if len(t) >= 8 else None
        except ValueError:
            return None

    born = day(getattr(ds, "PatientBirthDate", ""))
    seen = day(getattr(ds, "StudyDate", "") or getattr(ds, "ContentDate", ""))
    if born is None or seen is None or seen < born:
        return None
    return (seen - born).days / 365.25
