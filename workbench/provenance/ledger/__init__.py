"""The append-only ledger of capture records: store, tree heads, proofs, audit, Merkle maths."""
