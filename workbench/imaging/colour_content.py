"""Whether an image's pixels hold colour, judged by content: a chest X-ray saved as an RGB
JPEG has three samples per pixel and no colour at all. What a model fits, which
calibration judges an image and how many channels an attack perturbs all depend on it."""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

# per image, computed once: the model dock, the fit check, the model input and every
# detector's calibration lookup all ask, and a grey 12-megapixel picture takes a full
# comparison of its channels (images are identity-hashed and never change after loading)
_KNOWN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def has_colour(image: Any) -> bool:
    """More than one sample per pixel, and the channels not all equal."""
    try:
        return _KNOWN[image]
    except (KeyError, TypeError):
        pass
    answer = _has_colour(image)
    with contextlib.suppress(TypeError):  # not weak-referenceable: nothing cached
        _KNOWN[image] = answer
    return answer


def _has_colour(image: Any) -> bool:
    if not image.is_color:
        return False
    frame = image.frame(0)
    if frame.ndim < 3 or frame.shape[-1] < 3:
        return False
    # a strided look rejects a colour photo at once; only a grey-looking image is
    # checked in full (a coloured annotation in one corner still counts as colour)
    for view in (frame[::8, ::8], frame):
        rgb = view[..., :3]
        if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()):
            return True
    return False
