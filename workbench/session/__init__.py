"""The open study as plain objects (no Qt): `Study`, one `ImageSession` per image with
everything known about it, `Job`s with progress and cancel, and the actions that fill the
sessions. The GUI and the CLI are two views of the same objects."""

from .image_session import AttackRun, DetectorFindings, ImageSession, Prediction
from .jobs import Cancelled, Job, JobFailed
from .study import Study

__all__ = ["AttackRun", "Cancelled", "DetectorFindings", "ImageSession", "Job", "JobFailed",
           "Prediction", "Study"]
