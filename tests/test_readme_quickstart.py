"""CI must run the README's own test command, so the two can never drift apart."""

from __future__ import annotations

import re

from conftest import REPO_ROOT


def test_ci_runs_the_readme_test_command():
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    lines = [line for b in blocks for line in b.splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    assert len(commands) == 2, commands  # the quick start is exactly two commands
    install_and_launch, install_and_test = commands
    assert "workbench --demo" in install_and_launch
    ci = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    # besides the README's command, CI may only install system test tools when missing
    tools = [c for c in ci if c.startswith("command -v ")]
    assert all("apt-get install" in c for c in tools), tools
    ci_commands = [c for c in ci if c and not c.startswith(("#", "set ", "cd ", "command -v "))]
    assert ci_commands == [install_and_test]
