"""workbench: a forensics workbench for medical images under adversarial attack."""

__version__ = "0.1.0"
