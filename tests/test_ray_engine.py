"""The Ray engine against the in-process one: the batch evaluator's units, and
`workbench verify --engine ray`. Each Ray test starts a local instance of 2 CPUs through
the same code a user's run goes through, and leaves no Ray running behind it."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pydicom
import pytest
from conftest import pydicom_test_file

RAY_REASON = "the Ray engine needs Ray (pip install 'workbench[cluster]')"
PASS = "auditor passphrase"
# Probabilities, distances and detector scores may differ in the last bits between the
# engines (see test_ray_units_equal_in_process_units); nothing else may differ at all.
TOLERANCE = 1e-4
APPROX = ("p_positive", "confidence", "clean_p_positive", "linf", "l2")


@pytest.fixture(scope="module")
def _ray_starts():
    """Ray installed but unable to start a local instance on this machine (no shared
    memory, a sandbox forbidding its processes) is a property of the machine, not a bug
    of ours: say so loudly and skip, instead of failing every test the same way."""
    ray = pytest.importorskip("ray", reason=RAY_REASON)
    try:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    except Exception as exc:  # noqa: BLE001 - any reason Ray cannot start here
        pytest.skip(f"RAY IS INSTALLED BUT CANNOT START A LOCAL INSTANCE HERE: {exc}")
    finally:
        ray.shutdown()
    return ray


@pytest.fixture
def ray(_ray_starts):
    ray = _ray_starts
    assert not ray.is_initialized()  # a test must not lean on another's instance
    yield ray
    assert not ray.is_initialized(), "a Ray session was left running"


# --- evaluation ------------------------------------------------------------------------------
def _evaluate(data: Path, out: Path, engine: str) -> None:
    from workbench.evaluation.runner import EvalSpec, evaluate

    evaluate(EvalSpec(model="demo", surrogate="demo-surrogate", data=str(data), out=str(out),
                      attacks=[{"name": "pgd", "params": {"steps": 3}}],
                      detectors=[{"name": "feature-squeezing"}], image_size=48,
                      batch_size=2, split="test", limit=2, engine=engine, workers=2))


def _rows(out: Path) -> dict[tuple[str, str], dict]:
    rows = {}
    for f in sorted((out / "units").glob("*.json")):
        for r in json.loads(f.read_text())["rows"]:
            rows[r["id"], r["condition"]] = r
    return rows


def test_ray_units_equal_in_process_units(ray, shared_data, tmp_path, monkeypatch):
    import torch

    from workbench.models.zoo import resolve_card

    try:
        resolve_card("demo"), resolve_card("demo-surrogate")
    except Exception as exc:  # noqa: BLE001 - any reason the demo models are absent
        pytest.skip(f"demo models not installed: {exc}")
    data = shared_data / "dermoscopy" / "isic"
    # Run from a folder that is not the checkout: Ray gives workers the driver's current
    # folder on sys.path, which would hide whether they can import `workbench` at all
    # when it comes from a source tree (pytest's pythonpath) rather than an install.
    monkeypatch.chdir(tmp_path)

    # Ray workers run torch on one thread (parallelism is across tasks). Give the
    # in-process run one thread too, so both sum floats in the same order: with two
    # threads, probabilities and detector scores differ around 1e-7, and a PGD step
    # (the sign of a gradient) could in principle turn on such a difference. With one
    # thread on both sides the rows came out bit-identical here; the tolerance is for
    # other CPUs and BLAS builds.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        _evaluate(data, tmp_path / "inprocess", "inprocess")
        in_process_s = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    _evaluate(data, tmp_path / "ray", "ray")
    ray_s = time.perf_counter() - start
    print(f"in process {in_process_s:.1f} s, Ray (start-up included) {ray_s:.1f} s")

    a, b = _rows(tmp_path / "inprocess"), _rows(tmp_path / "ray")
    assert a.keys() == b.keys() and len(a) == 12  # 4 images x clean, pgd/white, pgd/black
    for key, ra in a.items():
        rb = b[key]
        for field in ra.keys() - {*APPROX, "scores"}:
            assert ra[field] == rb[field], (key, field)
        for field in APPROX:
            assert (ra[field] is None) == (rb[field] is None), (key, field)
            if ra[field] is not None:
                assert rb[field] == pytest.approx(ra[field], abs=TOLERANCE), (key, field)
        assert ra["scores"].keys() == rb["scores"].keys() == {"feature-squeezing"}
        for name, s in ra["scores"].items():
            assert rb["scores"][name] == pytest.approx(s, abs=TOLERANCE), (key, name)
    assert {r["success"] for k, r in a.items() if k[1] != "clean"} == {True, False}

    units = json.loads((tmp_path / "ray" / "run.json").read_text())["units"]
    log = [line.split("\t") for line in
           (tmp_path / "ray" / "computed.log").read_text().splitlines()]
    assert sorted(line[0] for line in log) == sorted(units)  # each unit once
    # computed.log's pid column is the process that wrote the result (this one); the
    # worker that computed it is in the unit file.
    pids = {json.loads((tmp_path / "ray" / "units" / f"{u}.json").read_text())["pid"]
            for u in units}
    assert os.getpid() not in pids
    assert {json.loads((tmp_path / "inprocess" / "units" / f"{u}.json").read_text())["pid"]
            for u in units} == {os.getpid()}
    for name in ("per_image.csv", "summary.json"):
        assert (tmp_path / "ray" / name).is_file()


def test_unreachable_cluster_is_one_line_and_quick(ray, tmp_path, capsys):
    """A cluster that is not there: an error naming it within seconds (ray.init itself
    would retry for many minutes), for the evaluator and the verifier alike."""
    from workbench.evaluation.engines import run_on_ray
    from workbench.evaluation.runner import EvaluationError
    from workbench.evaluation.units import Unit

    start = time.perf_counter()
    with pytest.raises(EvaluationError, match=r"^cannot connect to the Ray cluster at "
                                              r"127\.0\.0\.1:1: nothing answers there"):
        run_on_ray({}, [Unit("clean-b0000", "clean", "", "", (0,))], lambda r: None,
                   address="127.0.0.1:1")
    (tmp_path / "a.dcm").write_bytes(b"")
    code, out, err = _cli(capsys, "verify", str(tmp_path), "--engine", "ray",
                          "--address", "127.0.0.1:1")
    assert code == 2 and out == "" and err.startswith("error: cannot connect to the Ray "
                                                      "cluster at 127.0.0.1:1")
    assert len(err.splitlines()) == 1
    assert time.perf_counter() - start < 20


# --- verify ----------------------------------------------------------------------------------
def _cli(capsys, *args: str) -> tuple[int, str, str]:
    from workbench.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def archive(tmp_path, monkeypatch, capsys):
    """Signed, tampered, untrusted, unsigned and unreadable files, some in a subfolder."""
    monkeypatch.setenv("WORKBENCH_KEY_PASSPHRASE", PASS)
    folder = tmp_path / "archive"
    (folder / "series2").mkdir(parents=True)
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(pydicom_test_file(name), folder / name)
    shutil.copy(pydicom_test_file("JPEG2000.dcm"), folder / "series2" / "JPEG2000.dcm")
    assert _cli(capsys, "keys", "new", "--label", "PACS")[0] == 0
    assert _cli(capsys, "sign", str(folder))[0] == 0
    ds = pydicom.dcmread(folder / "MR_small.dcm")
    arr = ds.pixel_array.copy()
    arr[5, 5] -= 1
    ds.PixelData = arr.tobytes()
    ds.save_as(folder / "MR_small.dcm")
    # signed by a key that is then no longer trusted
    shutil.copy(pydicom_test_file("rtdose.dcm"), folder / "series2" / "rtdose.dcm")
    code, out, _ = _cli(capsys, "keys", "new", "--label", "visitor")
    fp = out.split()[2]
    assert _cli(capsys, "sign", "--key", fp, str(folder / "series2" / "rtdose.dcm"))[0] == 0
    assert _cli(capsys, "keys", "untrust", fp)[0] == 0
    shutil.copy(pydicom_test_file("SC_rgb_small_odd.dcm"), folder / "unsigned.dcm")
    (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    return folder


def test_verify_on_ray_equals_in_process(ray, archive, tmp_path, monkeypatch, capsys):
    from workbench.provenance.records.verify import verify_paths
    from workbench.provenance.records.verify_batch import verify_paths_on_ray
    from workbench.runtime.ray_tasks import ray_session

    monkeypatch.chdir(tmp_path)  # relative paths, as an auditor types them
    inproc = {}
    for fmt in (["--json"], []):
        inproc[bool(fmt)] = _cli(capsys, "verify", "archive", *fmt)
    verdicts = [json.loads(line)["verdict"] for line in inproc[True][1].splitlines()]
    assert inproc[True][0] == inproc[False][0] == 1
    assert sorted(verdicts) == ["error", "intact", "intact", "tampered", "unsigned",
                                "untrusted"]
    assert "archive/broken.dcm: " in inproc[True][1]  # the path as given, in messages too

    # One local instance for the lot: the command and the call below find it running and
    # leave it be; leaving the block shuts it down (the fixture checks).
    start = time.perf_counter()
    with ray_session(workers=2):
        for fmt in (["--json"], []):
            code, out, err = _cli(capsys, "verify", "archive", "--engine", "ray", *fmt)
            assert (code, out) == inproc[bool(fmt)][:2], err
        # several chunks, finishing in any order: the results still come in file order
        seen = []
        results = verify_paths_on_ray(["archive"], chunk_size=2,
                                      progress=lambda d, t, n: seen.append((d, t)))
    print(f"Ray verify (start-up included) {time.perf_counter() - start:.1f} s")
    assert [r.to_json() for r in results] == [r.to_json() for r in verify_paths(["archive"])]
    assert seen == [(i, 6) for i in range(1, 7)]


def test_verify_engine_ray_without_ray_exits_2(archive, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, out, err = _cli(capsys, "verify", "--engine", "ray", str(archive))
    assert code == 2 and out == ""
    assert err.strip() == "error: the Ray engine needs Ray: pip install 'workbench[cluster]'"
    code, _, err = _cli(capsys, "verify", "--workers", "2", str(archive))
    assert code == 2 and "--engine ray" in err
