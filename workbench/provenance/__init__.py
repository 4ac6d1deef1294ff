"""Provenance (Qt-free), one subpackage per subsystem; nothing is imported here, so a command
pays only for the subsystems it uses.

- ``records``: fingerprints, canonical JSON, the signed capture record, keys and the trust
  store, signing images, and verifying them (one file, a folder, an archive on Ray).
- ``ledger``: the append-only SQLite ledger of records, its signed tree heads, inclusion and
  consistency proofs, the audit and export, and the RFC 6962 Merkle maths under them.
- ``standards``: the standards' own signatures reported beside our record: X.509
  certificates, C2PA manifests (JPEG/PNG) and DICOM digital signatures.
"""
