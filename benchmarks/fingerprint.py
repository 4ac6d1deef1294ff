"""Fingerprint and signing throughput, each as a ratio to a named peer in the same run.

1. Pixel fingerprint of the 4688x2592 16-bit CBIS-DDSM mammogram (whole-image hash and
   per-frame hash) vs plain hashlib SHA-256 over the same pixel bytes (goal >= 0.8).
2. Sign + append to the ledger: capture records per second for a small real DICOM
   (decode, fingerprints, Ed25519 signature, sidecar write, durable ledger append). Peers:
   what no signer can skip, decode + SHA-256 (pydicom's `dcmread(...).pixel_array` and
   hashlib over the file's bytes), and the ledger's fsync'd append alone. Where the rest
   goes is printed stage by stage, so Python overhead shows up as a stage, not a guess.

Run: python3 benchmarks/fingerprint.py [--runs N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from timing import median_time

REPO = Path(__file__).resolve().parents[1]
MAMMOGRAM = REPO.parent / "shared" / "data" / "dicom" / "mammography" / "sfm-malign-0" / "1-282.dcm"




def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--records", type=int, default=200)
    args = ap.parse_args()
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb_bench_"))

    from workbench.imaging import load_image
    from workbench.provenance.records.fingerprint import pixel_fingerprint

    if MAMMOGRAM.is_file():
        image = load_image(MAMMOGRAM)
        raw = image.pixels.tobytes()  # the peer hashes bytes it already has
        mb = len(raw) / 1e6
        peer = median_time(lambda: hashlib.sha256(raw).hexdigest(), args.runs)
        ours = median_time(lambda: pixel_fingerprint(image), args.runs)
        print(f"pixel fingerprint of {MAMMOGRAM.name} ({image.columns}x{image.rows}, "
              f"{mb:.1f} MB), median of {args.runs}:")
        print(f"  hashlib sha256 over the bytes      {peer * 1000:7.1f} ms  {mb / peer:7.0f} MB/s")
        print(f"  workbench pixel_fingerprint        {ours * 1000:7.1f} ms  {mb / ours:7.0f} MB/s")
        print(f"  throughput ratio workbench/hashlib {peer / ours:7.2f}   (goal >= 0.8)")
    else:
        print(f"mammogram not found at {MAMMOGRAM}: pixel figures skipped")

    import pydicom
    from pydicom.data import get_testdata_file

    from workbench.provenance.ledger.store import Ledger
    from workbench.provenance.records import keys
    from workbench.provenance.records.record import build_record, sign_record
    from workbench.provenance.records.signing import sign_image

    info = keys.generate_key("bench")
    key = keys.load_private_key(info.fingerprint, "bench")
    work = Path(tempfile.mkdtemp(prefix="wb_sign_"))
    src = Path(get_testdata_file("CT_small.dcm", download=False))
    files = []
    for i in range(args.records):
        f = work / f"ct_{i:04d}.dcm"
        shutil.copy(src, f)
        files.append(f)
    ledger = Ledger(work / "ledger.sqlite")
    sign_image(files[0], key, ledger=ledger)  # warm-up: lazy imports, the key's first use
    t = time.perf_counter()
    for f in files[1:]:
        sign_image(f, key, ledger=ledger)
    sign_rate = (len(files) - 1) / (time.perf_counter() - t)

    # a folder as `workbench sign` signs it: workers prepare, one commit per batch
    from workbench.session.batch_signing import sign_files

    folder = work / "folder"
    folder.mkdir()
    batch_files = []
    for i in range(args.records):
        f = folder / f"ct_{i:04d}.dcm"
        shutil.copy(src, f)
        batch_files.append(f)
    ledger3 = Ledger(work / "ledger3.sqlite")
    t = time.perf_counter()
    sign_files(batch_files, key, ledger=ledger3)
    batch_rate = len(batch_files) / (time.perf_counter() - t)
    ledger3.close()

    def decode_and_hash(f: Path) -> None:
        pydicom.dcmread(f).pixel_array  # noqa: B018 (the decode is the point)
        hashlib.sha256(f.read_bytes()).digest()

    t = time.perf_counter()
    for f in files:
        decode_and_hash(f)
    floor_rate = len(files) / (time.perf_counter() - t)
    # stage by stage, on the same files (sidecars already there do not matter to these)
    from workbench.provenance.records.fingerprint import (
        file_sha256,
        metadata_fingerprint,
        perceptual_hash,
    )
    from workbench.provenance.records.header import header_fingerprint

    images = [load_image(f) for f in files[:50]]
    stages = {
        "decode (load_image)": lambda i, f: load_image(f),
        "header fingerprint": lambda i, f: header_fingerprint(i.metadata, b"0" * 16),
        "pixel fingerprint": lambda i, f: pixel_fingerprint(i),
        "file SHA-256": lambda i, f: file_sha256(f),
        "metadata fingerprint": lambda i, f: metadata_fingerprint(i, b"0" * 16),
        "perceptual hash": lambda i, f: perceptual_hash(i),
        "build + Ed25519 sign": lambda i, f: sign_record(build_record(i), key),
    }
    stage_ms = {}
    for label, fn in stages.items():
        t = time.perf_counter()
        for i, f in zip(images, files, strict=False):
            fn(i, f)
        stage_ms[label] = (time.perf_counter() - t) / len(images) * 1000
    # The peer: durable appends alone, of records built beforehand.
    image = load_image(src)
    records = [sign_record(build_record(image), key) for _ in range(args.records)]
    ledger2 = Ledger(work / "ledger2.sqlite")
    t = time.perf_counter()
    for r in records:
        ledger2.append(r)
    append_rate = len(records) / (time.perf_counter() - t)
    print(f"sign + append ({src.name}, {args.records} files):")
    print(f"  decode + SHA-256 alone (pydicom, hashlib)  {floor_rate:8.0f} records/s")
    print(f"  ledger append alone (fsync each)           {append_rate:8.0f} records/s")
    print(f"  workbench sign_image + append              {sign_rate:8.0f} records/s")
    print(f"  workbench sign (a folder: {os.cpu_count()} cores, batched)   {batch_rate:8.0f} "
          "records/s (worker start-up included)")
    print(f"  ratio sign / (decode + SHA-256)            {sign_rate / floor_rate:8.2f}")
    print(f"  ratio folder sign / (decode + SHA-256)     {batch_rate / floor_rate:8.2f}")
    print(f"  ratio sign / append                        {sign_rate / append_rate:8.2f}")
    print("  stages, per record (build + sign includes the fingerprints above):")
    for label, ms in stage_ms.items():
        print(f"    {label:<30} {ms:7.2f} ms")
    ledger.close()
    ledger2.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
