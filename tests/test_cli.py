"""The headless command line, run as a user would run it (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import pydicom_test_file

from workbench import __version__


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, timeout=120)


def test_version():
    out = run_cli("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"workbench {__version__}"


def test_info_prints_what_each_file_is():
    ct, j2k = pydicom_test_file("CT_small.dcm"), pydicom_test_file("JPEG2000.dcm")
    out = run_cli("info", str(ct), str(j2k))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert str(ct) in text and str(j2k) in text
    ct_block = text.split(str(j2k))[0]
    assert "modality         CT" in ct_block
    assert "size             128x128" in ct_block
    assert "frames           1" in ct_block
    assert "Explicit VR Little Endian" in ct_block
    assert "photometric      MONOCHROME2" in ct_block
    assert "window           C " in ct_block
    assert "JPEG 2000" in text.split(str(j2k))[1]


def test_info_json_matches_the_file():
    import pydicom

    path = pydicom_test_file("MR_small.dcm")
    out = run_cli("info", "--json", str(path))
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    ds = pydicom.dcmread(path)
    assert record["modality"] == ds.Modality
    assert record["size"] == f"{ds.Columns}x{ds.Rows}"
    window = f"C {float(ds.WindowCenter):g} / W {float(ds.WindowWidth):g}"
    assert record["window"].startswith(window)


def test_info_bad_file_is_one_line_and_nonzero(tmp_path):
    good = pydicom_test_file("CT_small.dcm")
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not an image\n" * 20)
    out = run_cli("info", str(bad), str(good))
    assert out.returncode == 1
    err_lines = out.stderr.strip().splitlines()
    assert len(err_lines) == 1
    assert err_lines[0].startswith("error: ") and str(bad) in err_lines[0]
    assert "Traceback" not in out.stderr
    assert str(good) in out.stdout  # the good file is still reported


def test_info_imports_neither_qt_nor_torch():
    path = pydicom_test_file("CT_small.dcm")
    code = (
        "import sys\n"
        "from workbench.cli import main\n"
        f"rc = main(['info', {str(path)!r}])\n"
        "heavy = [m for m in ('PySide6', 'torch', 'torchvision') if m in sys.modules]\n"
        "assert rc == 0 and not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_gui_without_a_display_says_so_instead_of_crashing():
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run([sys.executable, "-m", "workbench", "--demo"], capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 2
    assert "no display" in out.stderr and "Traceback" not in out.stderr


def test_info_imports_only_its_own_command_family():
    path = pydicom_test_file("CT_small.dcm")
    code = (
        "import sys\n"
        "from workbench.cli import main\n"
        f"rc = main(['info', {str(path)!r}])\n"
        "families = sorted(m for m in sys.modules if m.startswith('workbench.cli.'))\n"
        "assert rc == 0 and families == ['workbench.cli.commands', 'workbench.cli.images',\n"
        "                                'workbench.cli.plumbing'], families\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_every_command_in_the_table_has_its_arguments_and_help():
    from workbench.cli.commands import COMMANDS, build_parser, find_command

    assert find_command("--smoke") is find_command("selftest")
    for command in COMMANDS:
        parser, _ = build_parser(command)
        with pytest.raises(SystemExit) as done:
            parser.parse_args([command.name, "--help"])
        assert done.value.code == 0, command.name
