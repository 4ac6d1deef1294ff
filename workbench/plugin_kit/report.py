"""The report of ``workbench plugin check``: one line per check, PASS, FAIL or SKIP, as
text for a terminal and as JSON for a script."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Check:
    """One line of the report: what was checked, PASS/FAIL/SKIP, and why."""

    name: str
    status: str
    message: str
    plugin: str = ""  # the plugin's name, for the checks of one declared plugin
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        label = f"{self.plugin} {self.name}" if self.plugin else self.name
        return f"{self.status}  {label}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "plugin": self.plugin or None, "status": self.status,
                "message": self.message, "details": self.details}


@dataclass
class CheckReport:
    """All checks of one file. ``ok``: nothing failed (skipped checks are not failures)."""

    path: str
    checks: list[Check] = field(default_factory=list)

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, name: str, status: str, message: str, plugin: str = "",
            **details: Any) -> Check:
        check = Check(name, status, message, plugin, details)
        self.checks.append(check)
        return check

    def add_failure(self, name: str, where: str, reason: str, plugin: str) -> None:
        """A run's failure; the same failure on another input extends the earlier line
        ("also on ...") rather than repeating it."""
        for c in self.checks:
            if (c.name, c.plugin, c.status) == (name, plugin, FAIL) and \
                    c.details.get("reason") == reason:
                c.details["inputs"].append(where)
                c.message = f"{c.details['inputs'][0]}: {reason} (also on " + \
                    ", ".join(c.details["inputs"][1:]) + ")"
                return
        self.add(name, FAIL, f"{where}: {reason}", plugin, reason=reason, inputs=[where])

    def to_text(self) -> str:
        lines = [f"checking {self.path}"] + [f"  {c.line()}" for c in self.checks]
        failed = len(self.problems)
        skipped = sum(c.status == SKIP for c in self.checks)
        verdict = f"{failed} failed" if failed else "all passed"
        lines.append(f"{len(self.checks)} checks: {verdict}"
                     + (f", {skipped} skipped" if skipped else ""))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.path, "ok": self.ok, "failed": len(self.problems),
                "checks": [c.to_json() for c in self.checks]}
