"""A PACS seen over DICOMweb: find studies and series (QIDO-RS), retrieve instances
(WADO-RS) byte for byte into a folder, with progress and cancel. Qt-free: the CLI
(``workbench pacs``, ``workbench verify --pacs``) and the GUI's Open from PACS share it."""
