"""A workbench attack plugin, packaged: see gamma.py and the entry point in pyproject.toml."""
