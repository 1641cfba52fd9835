"""The model fetcher (files/models/red-models, issue 5), run as the target runs it, against a local
HTTP server (tests/models_server.py) serving generated files, over real loopback HTTP."""
import hashlib
import json
import subprocess
import sys
import time

import pytest
from conftest import PROJECT, converge
from models_server import ModelServer

FETCHER = PROJECT / "files" / "models" / "red-models"
TABLE = '''models_dir = './model_assets'
assets_repo = "{base}/visomaster/visomaster-assets/releases/download"

models_list = [
{entries}
    {{
        "model_name": "NoUrl",
        "local_path": f"{{models_dir}}/no_url.onnx",
        "hash": "{zero}",
        # "url": f"{{assets_repo}}/v1.0.0/no_url.onnx"
    }},
]
'''


def model_files(sizes):
    """name -> content: generated, different for each file."""
    return {f"model_{index}.onnx": hashlib.sha256(str(index).encode()).digest() * (size // 32)
            for index, size in enumerate(sizes)}


def url_path(name):
    return f"/visomaster/visomaster-assets/releases/download/v1.0.0/{name}"


def table(tmp_path, files, base, digests=None):
    """The app's own models_data.py shape: f-strings over models_dir and assets_repo."""
    entries = "".join(
        f'    {{\n        "model_name": "{name}",\n        "local_path": f"{{models_dir}}/sub/{name}",\n'
        f'        "hash": "{(digests or {}).get(name) or hashlib.sha256(content).hexdigest()}",\n'
        f'        "url": f"{{assets_repo}}/v1.0.0/{name}"\n    }},\n' for name, content in files.items())
    path = tmp_path / "models_data.py"
    path.write_text(TABLE.format(base=base, entries=entries, zero="0" * 64))
    return path


def fetch(table_path, folder, *args):
    done = subprocess.run([sys.executable, str(FETCHER), "--table", str(table_path), "--dir", str(folder),
                           "--backoff", "0.05", "--every", "0.2", *args], capture_output=True, text=True, timeout=120)
    return done


@pytest.fixture
def served():
    files = model_files([3 << 20, 1 << 20, 64 << 10])
    with ModelServer({url_path(name): content for name, content in files.items()}) as server:
        yield server, files


def test_everything_is_fetched_and_verified_then_nothing_again(tmp_path, served):
    server, files = served
    folder, status = tmp_path / "models", tmp_path / "status.json"
    done = fetch(table(tmp_path, files, server.url("")), folder, "--status", str(status))
    assert done.returncode == 0, done.stderr
    for name, content in files.items():
        assert (folder / "sub" / name).read_bytes() == content
    assert not list(folder.rglob("*.part"))
    assert json.loads(status.read_text())["state"] == "done"
    requests_before = len(server.requests)
    again = fetch(table(tmp_path, files, server.url("")), folder)
    assert again.returncode == 0 and "all 3 files present and verified" in again.stderr
    assert len(server.requests) == requests_before, "a second run asks the network nothing"


def test_a_cut_transfer_resumes_and_fetches_only_the_rest(tmp_path, served):
    server, files = served
    name = "model_0.onnx"
    server.cut_after[url_path(name)] = 1 << 20  # the first transfer stops after 1 MiB
    done = fetch(table(tmp_path, files, server.url("")), tmp_path / "models", "--parallel", "1")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "models" / "sub" / name).read_bytes() == files[name]
    assert server.sent[url_path(name)] == len(files[name]), "1 MiB, then only the remainder"
    ranged = [r for r in server.requests if r[0] == "GET" and r[1] == url_path(name) and r[2]]
    assert ranged == [("GET", url_path(name), "bytes=1048576-")]


def test_a_corrupted_file_on_disk_is_replaced(tmp_path, served):
    server, files = served
    folder = tmp_path / "models"
    assert fetch(table(tmp_path, files, server.url("")), folder).returncode == 0
    damaged = folder / "sub" / "model_1.onnx"
    damaged.write_bytes(b"x" * damaged.stat().st_size)
    done = fetch(table(tmp_path, files, server.url("")), folder)
    assert done.returncode == 0, done.stderr
    assert damaged.read_bytes() == files["model_1.onnx"]


def test_content_that_does_not_match_its_hash_fails_and_leaves_nothing_wrong(tmp_path, served):
    server, files = served
    digests = {"model_2.onnx": "f" * 64}
    folder = tmp_path / "models"
    done = fetch(table(tmp_path, files, server.url(""), digests), folder)
    assert done.returncode == 1
    assert "sub/model_2.onnx: SHA-256 mismatch: the server sent" in done.stderr
    assert not (folder / "sub" / "model_2.onnx").exists() and not (folder / "sub" / "model_2.onnx.part").exists()
    assert (folder / "sub" / "model_0.onnx").exists(), "the other files are fetched"


def test_a_404_and_a_server_that_stops_answering_fail_clearly(tmp_path, served):
    server, files = served
    del server.files[url_path("model_1.onnx")]
    server.silent.add(url_path("model_2.onnx"))
    status = tmp_path / "status.json"
    done = fetch(table(tmp_path, files, server.url("")), tmp_path / "models", "--timeout", "1", "--retries", "1",
                 "--status", str(status))
    assert done.returncode == 1
    assert "2 of 3 files could not be fetched:" in done.stderr
    assert "sub/model_1.onnx: HTTP 404" in done.stderr
    assert "sub/model_2.onnx: " in done.stderr and "timed out" in done.stderr
    failed = {entry["path"] for entry in json.loads(status.read_text())["failed"]}
    assert failed == {"sub/model_1.onnx", "sub/model_2.onnx"}


def test_too_little_free_space_stops_before_any_download(tmp_path, served):
    server, files = served
    done = fetch(table(tmp_path, files, server.url("")), tmp_path / "models", "--assume-free", str(1 << 20))
    assert done.returncode == 3
    assert "not enough space" in done.stderr and "nothing was fetched" in done.stderr
    assert not [r for r in server.requests if r[0] == "GET"]
    written = [path for path in (tmp_path / "models").rglob("*") if path.is_file()]
    assert [path.name for path in written] in ([], [".red-verified.json"])


def test_a_mirror_replaces_the_download_host(tmp_path, served):
    server, files = served
    done = fetch(table(tmp_path, files, "https://github.com"), tmp_path / "models", "--base-url", server.url(""))
    assert done.returncode == 0, done.stderr
    assert {r[1] for r in server.requests if r[0] == "GET"} == {url_path(name) for name in files}


# -- end to end: the deploy fetches them on a sandbox host (models_at) ------------------------------

MODELS = "/data/models"  # the provisioned host's WORKSPACE is /data


@pytest.fixture
def models_served(provisioned, sandbox_factory):
    """The stand-in app gets a model table (as upstream's, URLs on GitHub); a local server is the mirror."""
    files = model_files([2 << 20, 1 << 20, 64 << 10])
    with ModelServer({url_path(name): content for name, content in files.items()}) as server:
        yield server, files, sandbox_factory.standin


def commit_table(standin, files, tmp_path):
    text = table(tmp_path, files, "https://github.com").read_text()
    return standin.commit("A model table", {"app/processors/models_data.py": text}, push=True)


def test_models_at_build_are_fetched_in_the_apply_and_a_second_apply_reads_nothing(provisioned, models_served,
                                                                                     tmp_path):
    server, files, standin = models_served
    commit_table(standin, files, tmp_path)
    settings = ["--data", "models_at=build", "--data", f"models_base_url={server.url('')}"]
    run = converge([provisioned], *settings)
    assert "Models | Fetch and verify the model files" in run.changed(provisioned)
    for name, content in files.items():
        assert provisioned.path(f"{MODELS}/sub/{name}").read_bytes() == content
    assert provisioned.ssh(f"stat -c %U {MODELS}/sub/model_0.onnx").stdout.strip() == "red"
    assert provisioned.ssh("ls /data/VisoMaster/model_assets/sub/").stdout.split() == sorted(files)
    requests = len(server.requests)
    assert converge([provisioned], *settings).changed(provisioned) == []
    assert len(server.requests) == requests, "a second apply asks the network nothing"


def test_models_at_start_come_in_the_background_while_the_desktop_is_up(provisioned, models_served, tmp_path):
    server, _, standin = models_served
    files = model_files([3 << 20, 2 << 20])  # another list than the build test's
    server.files.update({url_path(name): content for name, content in files.items()})
    commit_table(standin, files, tmp_path)
    server.delay = 2.0  # about six seconds for the whole list
    folder = "/data/models-at-start"
    run = converge([provisioned], "--data", "models_at=start", "--data", f"models_base_url={server.url('')}",
                   "--data", f"models_dir={folder}")
    assert "Models | Supervisor program models" in run.changed(provisioned)
    status = provisioned.path(f"{folder}/.red-status.json")
    seen, desktop_meanwhile = [], None
    deadline = time.time() + 60
    while time.time() < deadline:
        if status.exists():
            state = json.loads(status.read_text())
            seen.append((state["state"], state["bytes_done"], state["bytes_total"]))
            if state["state"] == "fetching" and desktop_meanwhile is None:
                desktop_meanwhile = provisioned.ssh("supervisorctl status", check=False).stdout
            if state["state"] != "fetching":
                break
        time.sleep(0.2)
    assert any(state == "fetching" and 0 < done < total for state, done, total in seen), seen
    assert seen[-1][0] == "done", seen
    assert all(f"{program} " in desktop_meanwhile and "RUNNING" in desktop_meanwhile.split(f"{program} ")[1][:40]
               for program in ("xvfb", "x11vnc", "novnc")), desktop_meanwhile
    assert provisioned.path(f"{folder}/sub/model_0.onnx").read_bytes() == files["model_0.onnx"]
    converge([provisioned])  # back to the sandbox's settings
