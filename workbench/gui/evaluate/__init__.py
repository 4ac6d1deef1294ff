"""The Evaluate window (Tools > Evaluate): settings, a resumable batch run, its results."""

from .window import EvaluateWindow

__all__ = ["EvaluateWindow"]
