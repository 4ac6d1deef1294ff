"""The append-only ledger of capture records: store (and its schema), entries, tree heads,
proofs, audit and export, and the RFC 6962 Merkle maths under them."""
