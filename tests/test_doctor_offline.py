"""The doctor's parts that need no sandbox (issue 15): red-doctor's GPU check against outputs real
nvidia-smi printed (tests/recorded/nvidia-smi, sources in its SOURCES.md: no GPU reaches these
machines), through a stand-in nvidia-smi on PATH, and app environments (real venvs) whose torch and
onnxruntime report what a CUDA build reports; the controller's table and the notebook it makes."""
import getpass
import json
import subprocess
import sys

import pytest
from conftest import PROJECT

from tasks.diagnostics import CHECKS, NOTEBOOK_CELLS, cells_digest, notebook, notebook_cells, table
from tasks.facts import NOTEBOOK_ORIGIN

DOCTOR = PROJECT / "files" / "diagnostics" / "red-doctor"
RECORDED = PROJECT / "tests" / "recorded" / "nvidia-smi"
TRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
MISMATCH_EXIT = 18  # nvidia-smi's exit code for NVML_ERROR_LIB_RM_VERSION_MISMATCH


def environment(folder, torch_cuda=None, available=True, providers=(TRT, CUDA, CPU)):
    """A venv holding stand-ins of torch (a CUDA build for `torch_cuda`; none when None) and onnxruntime."""
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(folder)], check=True)
    site = next(folder.glob("lib/python3*/site-packages"))
    if torch_cuda:
        (site / "torch").mkdir()
        (site / "torch" / "__init__.py").write_text(
            f'__version__ = "2.4.1+cu{torch_cuda.replace(".", "")}"\n'
            f'class version:\n    cuda = "{torch_cuda}"\n'
            f'class cuda:\n    @staticmethod\n    def is_available():\n        return {available}\n')
    (site / "onnxruntime").mkdir()
    (site / "onnxruntime" / "__init__.py").write_text(
        f'__version__ = "1.20.0"\ndef get_available_providers():\n    return {list(providers)!r}\n')
    return folder


def doctor(tmp_path, venv, recording=None, flavour="cu124", exit_code=0):
    """(exit code, finding lines) of `red-doctor --check gpu`, nvidia-smi printing `recording` (None: absent)."""
    tools = tmp_path / "bin"
    tools.mkdir(exist_ok=True)
    if recording:
        (tools / "nvidia-smi").write_text(f"#!/bin/sh\ncat {RECORDED / recording}\nexit {exit_code}\n")
        (tools / "nvidia-smi").chmod(0o755)
    checkout = tmp_path / "app"
    checkout.mkdir(exist_ok=True)
    has_torch = any(venv.glob("lib/python3*/site-packages/torch"))
    (checkout / "main.py").write_text(("import torch\n" if has_torch else "") + "import onnxruntime\n")
    config = tmp_path / "doctor.json"
    config.write_text(json.dumps({"desktop_user": getpass.getuser(), "venv": str(venv), "checkout": str(checkout),
                                  "cuda_flavour": flavour,
                                  "import_check": str(PROJECT / "files" / "visomaster" / "red-import-check")}))
    done = subprocess.run([sys.executable, str(DOCTOR), "--config", str(config), "--check", "gpu"],
                          env={"PATH": f"{tools}:/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert not done.stderr, done.stderr
    return done.returncode, done.stdout.splitlines()


@pytest.fixture(scope="module")
def cu124(tmp_path_factory):
    return environment(tmp_path_factory.mktemp("cu124") / "venv", "12.4")


def test_driver_550_with_cuda_12_4_runs_a_cu124_environment(tmp_path, cu124):
    code, lines = doctor(tmp_path, cu124, "one-gpu-550-cuda-12.4.txt")
    assert (code, lines) == (0, [
        "ok    gpu      GPU 0: Tesla P4, 8192 MiB, driver 550.135 (CUDA up to 12.4)",
        "ok    gpu      the driver's CUDA 12.4 runs the app's environment (CUDA 12.4, torch)",
        "ok    gpu      torch 2.4.1+cu124 sees the GPU",
        "ok    gpu      onnxruntime has CUDAExecutionProvider and TensorrtExecutionProvider"])


def test_driver_535_with_cuda_12_2_is_too_old_for_a_cu124_environment(tmp_path, cu124):
    code, lines = doctor(tmp_path, cu124, "one-gpu-535-cuda-12.2.txt")
    assert code == 1
    assert lines[0] == "ok    gpu      GPU 0: NVIDIA A10G, 23028 MiB, driver 535.247.01 (CUDA up to 12.2)"
    assert lines[1:3] == [
        "fail  gpu      the driver 535.247.01 supports CUDA up to 12.2, older than the app's environment needs: "
        "CUDA 12.4 (torch)",
        "               fix: choose an offer whose driver supports CUDA 12.4 or newer (vast's filter "
        "cuda_vers>=12.4), or use cuda_flavour=cu118"]


def test_without_torch_the_cuda_flavour_names_the_cuda_the_environment_needs(tmp_path):
    venv = environment(tmp_path / "venv")
    code, lines = doctor(tmp_path, venv, "one-gpu-535-cuda-12.2.txt", flavour="cu124")
    assert code == 1
    assert lines[1].endswith("older than the app's environment needs: CUDA 12.4 (cuda_flavour=cu124)")
    assert "fail  gpu      torch does not import in the app's environment: ModuleNotFoundError: " \
           "No module named 'torch'" in lines


def test_two_gpus_each_get_their_line(tmp_path):
    venv = environment(tmp_path / "venv", "11.8")
    code, lines = doctor(tmp_path, venv, "two-gpus.txt", flavour="cu118")
    assert code == 0
    assert lines[:3] == [
        "ok    gpu      GPU 0: GRID A100-40C, 40960 MiB, driver 525.60.13 (CUDA up to 12.0)",
        "ok    gpu      GPU 1: GRID A100-40C, 40960 MiB, driver 525.60.13 (CUDA up to 12.0)",
        "ok    gpu      the driver's CUDA 12.0 runs the app's environment (CUDA 11.8, torch)"]


def test_no_nvidia_smi_is_a_warning_the_desk_still_runs(tmp_path, cu124):
    code, lines = doctor(tmp_path, cu124, None)
    assert (code, lines[0]) == (0, "warn  gpu      no GPU: nvidia-smi is not on this instance; the desk runs, but the "
                                   "app will not swap faces at speed")


def test_a_driver_library_mismatch_fails_with_nvidia_smis_words_and_the_fix(tmp_path, cu124):
    code, lines = doctor(tmp_path, cu124, "nvml-mismatch.txt", exit_code=MISMATCH_EXIT)
    assert (code, lines) == (1, [
        "fail  gpu      nvidia-smi fails: Failed to initialize NVML: Driver/library version mismatch",
        "               fix: the host's driver was updated under this container: restart the instance, or choose "
        "another offer",
        "               NVML library version: 570.124"])


def test_a_cpu_torch_and_a_cpu_onnxruntime_fail_beside_a_gpu(tmp_path):
    venv = environment(tmp_path / "venv", "12.4", available=False, providers=(CPU,))
    code, lines = doctor(tmp_path, venv, "one-gpu-550-cuda-12.4.txt")
    assert code == 1
    assert "fail  gpu      torch 2.4.1+cu124 sees no GPU (torch.cuda.is_available() is False)" in lines
    assert "fail  gpu      onnxruntime 1.20.0 has no CUDAExecutionProvider (it has CPUExecutionProvider)" in lines


def test_the_table_has_a_row_per_host_and_the_failing_lines_below():
    healthy = {"summary": {check: "ok" for check in CHECKS}, "findings": []}
    broken = {"summary": {**healthy["summary"], "gpu": "warn", "services": "fail"}, "findings": [
        {"check": "gpu", "level": "warn", "line": "no GPU", "fix": "rent one", "details": []},
        {"check": "services", "level": "fail", "line": "novnc: STOPPED", "fix": "supervisorctl start novnc",
         "details": ["| the last line"]}]}
    assert table({"desk-1": healthy, "desk-22": broken, "new": None}).splitlines() == [
        "host     gpu       disk      models    services  app       start     access",
        "desk-1   ok        ok        ok        ok        ok        ok        ok",
        "desk-22  warn      ok        ok        FAIL      ok        ok        ok",
        "new      red-doctor did not answer: has Red's deploy run there?",
        "",
        "desk-22  services: novnc: STOPPED",
        "         fix: supervisorctl start novnc",
        "         | the last line"]


def test_the_notebook_is_the_same_text_for_the_same_cells_and_knows_them_again(tmp_path):
    cells = notebook_cells((PROJECT / NOTEBOOK_CELLS).read_text())
    assert cells[0][0] == "markdown" and cells[0][1].startswith("# Red diagnostics\n")
    assert notebook(cells) == notebook(cells), "no random cell ids: a second apply changes nothing"
    path = tmp_path / "red-diagnostics.ipynb"
    path.write_text(notebook(cells))
    origin = subprocess.run([sys.executable, "-c", NOTEBOOK_ORIGIN, str(path)], capture_output=True, text=True)
    assert origin.stdout.strip() == f"ours {cells_digest(cells)}"
    book = json.loads(path.read_text())
    book["cells"][1]["source"] = ["print('mine')"]
    path.write_text(json.dumps(book))
    origin = subprocess.run([sys.executable, "-c", NOTEBOOK_ORIGIN, str(path)], capture_output=True, text=True)
    assert origin.stdout.strip() == "theirs"
