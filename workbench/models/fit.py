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
    colour: bool | None = None  # True: trained on colour images only

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> ImageFit:
        d = d or {}
        return cls(description=str(d.get("description", "")),
                   modalities=tuple(str(m).upper() for m in d.get("modalities", ())),
                   body_parts=tuple(str(b).upper() for b in d.get("body_parts", ())),
                   colour=d.get("colour"))

    def to_json(self) -> dict[str, Any]:
        return {"description": self.description, "modalities": list(self.modalities),
                "body_parts": list(self.body_parts), "colour": self.colour}

    @property
    def declared(self) -> bool:
        return bool(self.modalities)


def describe_image(image: Any) -> str:
    """The image in a reviewer's words: "a chest X-ray (CR)", "a greyscale photograph"."""
    modality = (image.modality or "").upper()
    what = MODALITY_WORDS.get(modality, f"{modality} image" if modality else "image")
    body = _body_part(image)
    if image.kind == "photo":
        return f"a {'colour' if image.is_color else 'greyscale'} photograph"
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
    if modality not in fit.modalities:
        reason = f"this image is {describe_image(image)}"
    elif fit.colour and not image.is_color:
        reason = "this image is greyscale"
    elif fit.body_parts and (part := _body_part(image)) and part.upper() not in fit.body_parts:
        reason = f"this image shows the {part.lower()}"
    if reason is None:
        return None
    return f"{name} was trained on {trained}; {reason}. Its output is not a diagnosis."


def _body_part(image: Any) -> str:
    ds = image.metadata if image.kind == "dicom" else None
    return str(getattr(ds, "BodyPartExamined", "") or "") if ds is not None else ""
