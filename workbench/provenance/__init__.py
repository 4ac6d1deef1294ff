"""Provenance (Qt-free): fingerprints, keys, signed capture records, the ledger, verification."""
