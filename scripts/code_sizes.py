"""The largest modules and functions of the project, the house limits beside them.

Run: python3 scripts/code_sizes.py [--top N] [ROOT ...]   (default roots: workbench plugins)
tests/test_architecture.py holds the same limits: no module over 500 lines, no function
over 80 lines.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

MODULE_LIMIT = 500
FUNCTION_LIMIT = 80
REPO = Path(__file__).resolve().parents[1]
ROOTS = ("workbench", "plugins")


def _files(roots: tuple[str, ...]) -> list[Path]:
    return sorted(p for r in roots for p in (REPO / r).rglob("*.py"))


def module_sizes(roots: tuple[str, ...] = ROOTS) -> list[tuple[int, str]]:
    """(lines, path) of every module, largest first."""
    out = [(len(p.read_text(encoding="utf-8").splitlines()), str(p.relative_to(REPO)))
           for p in _files(roots)]
    return sorted(out, reverse=True)


def function_sizes(roots: tuple[str, ...] = ROOTS) -> list[tuple[int, str]]:
    """(lines, "path:line name") of every function and method, largest first."""
    out = []
    for p in _files(roots):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append((node.end_lineno - node.lineno + 1,
                            f"{p.relative_to(REPO)}:{node.lineno} {node.name}"))
    return sorted(out, reverse=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("roots", nargs="*", default=list(ROOTS))
    args = ap.parse_args()
    roots = tuple(args.roots)
    for title, rows, limit in (("modules", module_sizes(roots), MODULE_LIMIT),
                               ("functions", function_sizes(roots), FUNCTION_LIMIT)):
        print(f"| largest {title} (limit {limit} lines) | lines |")
        print("|---|---:|")
        for n, where in rows[:args.top]:
            print(f"| {where} | {n}{' OVER' if n > limit else ''} |")
        print()


if __name__ == "__main__":
    main()
