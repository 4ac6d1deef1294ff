"""Freeze the app (installer/build.sh) with and without torch and report build time, size
and the frozen self test's result: the torch-inclusive build is too big for every CI run
(GBs with CUDA wheels), so it is measured here; CI freezes the torch-less one.

    python benchmarks/freeze_build.py [--only torch|notorch]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(torch: bool) -> dict[str, str]:
    out = tempfile.mkdtemp(prefix="workbench-freeze-")
    args = ["bash", str(ROOT / "installer" / "build.sh"), "--smoke"]
    if not torch:
        args.insert(2, "--no-torch")
    done = subprocess.run(args, env=dict(os.environ, WORKBENCH_BUILD_DIR=out),
                          capture_output=True, text=True, cwd=ROOT)
    built = re.search(r"built \S+ in (\d+) s, size (\S+)", done.stdout)
    return {"variant": "with torch" if torch else "without torch",
            "seconds": built.group(1) if built else "?", "size": built.group(2) if built
            else "?", "smoke": "passed" if "selftest passed" in done.stdout else
            "FAILED:\n" + done.stdout[-2000:] + done.stderr[-2000:], "folder": out}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=("torch", "notorch"))
    args = p.parse_args()
    variants = [v for v in (False, True) if args.only is None or
                args.only == ("torch" if v else "notorch")]
    ok = True
    for torch in variants:
        r = build(torch)
        print(f"{r['variant']:<14} build {r['seconds']:>5} s  size {r['size']:>6}  "
              f"smoke {r['smoke']}  ({r['folder']})")
        ok &= r["smoke"] == "passed"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
