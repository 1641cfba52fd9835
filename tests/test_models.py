"""The model fetcher (files/models/red-models, issue 5), run as the target runs it, against a local
HTTP server (tests/models_server.py) serving generated files, over real loopback HTTP."""
import contextlib
import hashlib
import http.server
import json
import os
import shlex
import subprocess
import sys
import threading
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


def table(tmp_path, files, base, digests=None, more=()):
    """The app's own models_data.py shape: f-strings over models_dir and assets_repo. `more`: further
    entries as (local_path, content, url), both written as f-strings."""
    listed = [(f"{{models_dir}}/sub/{name}", content, f"{{assets_repo}}/v1.0.0/{name}", (digests or {}).get(name))
              for name, content in files.items()] + [(*entry, None) for entry in more]
    entries = "".join(
        f'    {{\n        "model_name": "{local.rsplit("/", 1)[-1]}",\n        "local_path": f"{local}",\n'
        f'        "hash": "{digest or hashlib.sha256(content).hexdigest()}",\n'
        f'        "url": f"{url}"\n    }},\n' for local, content, url, digest in listed)
    path = tmp_path / "models_data.py"
    path.write_text(TABLE.format(base=base, entries=entries, zero="0" * 64))
    return path


def manifest(tmp_path, entries):
    """A JSON manifest from (path, content, url)."""
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps([{"name": os.path.basename(local) or "empty", "path": local, "url": url,
                                 "sha256": hashlib.sha256(content).hexdigest()} for local, content, url in entries]))
    return path


def fetch(list_path, folder, *args):
    source = "--manifest" if list_path.suffix == ".json" else "--table"
    done = subprocess.run([sys.executable, str(FETCHER), source, str(list_path), "--dir", str(folder),
                           "--backoff", "0.05", "--every", "0.2", *args], capture_output=True, text=True, timeout=120,
                          check=False)
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


def test_verified_files_keep_whole_second_mtimes_that_an_image_layer_keeps(tmp_path, served):
    """A layer keeps mtimes to the second: the sizes and mtimes that --done and the verified file record
    must still be true in an image built from the folder, or its first start would hash every file again."""
    server, files = served
    folder, marker = tmp_path / "models", tmp_path / "done"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / next(iter(files))).write_bytes(next(iter(files.values())))  # there already, verified by hash
    done = fetch(table(tmp_path, files, server.url("")), folder, "--done", str(marker))
    assert done.returncode == 0, done.stderr
    for name in files:
        assert (folder / "sub" / name).stat().st_mtime_ns % 10 ** 9 == 0, name
    for line in marker.read_text().splitlines()[1:]:
        size, mtime, path = line.split(" ", 2)
        assert mtime.endswith(".000000000") and int(size) == (folder / path).stat().st_size
    os.utime(folder / "sub" / next(iter(files)), ns=(0, 10 ** 9 * 1700000000 + 1))  # an edit at some nanosecond
    requests = len(server.requests)
    assert fetch(table(tmp_path, files, server.url("")), folder).returncode == 0
    assert len(server.requests) == requests, "a file whose mtime moved is hashed, not fetched"


LARGE = 24 << 20  # split into pieces of 4 MiB and more (red-models' SMALLEST_PIECE)


@pytest.fixture
def large(tmp_path):
    """One large file on a server that caps each connection (20 MB/s) and answers every request 20 ms late."""
    files = model_files([LARGE])
    with ModelServer({url_path(name): content for name, content in files.items()}, rate=20e6,
                     request_delay=0.02) as server:
        yield server, files, url_path("model_0.onnx")


def gets(server, path):
    """The Range of each GET of `path`, in the order they came."""
    return [asked for method, where, asked, _ in server.requests if method == "GET" and where == path]


def test_a_large_file_comes_over_several_connections_whole_and_verified(tmp_path, large):
    server, files, path = large
    folder = tmp_path / "models"
    done = fetch(table(tmp_path, files, server.url("")), folder, "--connections", "4", "--every", "0.3")
    assert done.returncode == 0, done.stderr
    assert (folder / "sub" / "model_0.onnx").read_bytes() == files["model_0.onnx"]
    assert server.connections(path) == 4, "every connection carried a piece"
    assert server.sent[path] == LARGE, "each byte was sent once"
    assert all(asked and asked.startswith("bytes=") for asked in gets(server, path))
    assert any(" MB/s, " in line and line.endswith(" s left") for line in done.stderr.splitlines()), done.stderr
    assert not list(folder.rglob("*.part*"))


def test_a_cut_in_one_piece_resumes_only_that_piece(tmp_path, large):
    server, files, path = large
    server.cut_after[path] = 1 << 20  # the first transfer stops after 1 MiB
    done = fetch(table(tmp_path, files, server.url("")), tmp_path / "models", "--connections", "4")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "models" / "sub" / "model_0.onnx").read_bytes() == files["model_0.onnx"]
    assert server.sent[path] == LARGE, "the cut piece's first MiB was not asked again"
    asked = [tuple(map(int, where.split("=")[1].split("-"))) for where in gets(server, path)]
    resumed = [(start, stop) for start, stop in asked if (start - (1 << 20), stop) in asked]
    assert len(resumed) == 1 and len(asked) == len(set(stop for _, stop in asked)) + 1, asked


def test_a_server_that_ignores_range_gets_one_connection_per_file(tmp_path, served):
    server, files = served
    server.ranges = server.advertised = False
    done = fetch(table(tmp_path, files, server.url("")), tmp_path / "models", "--connections", "4")
    assert done.returncode == 0, done.stderr
    for name, content in files.items():
        assert (tmp_path / "models" / "sub" / name).read_bytes() == content
        assert gets(server, url_path(name)) == [None], "one request, no Range"


def test_a_server_that_says_it_answers_range_but_does_not_still_works(tmp_path, large):
    server, files, path = large
    server.ranges = False  # but Accept-Ranges: bytes all the same
    done = fetch(table(tmp_path, files, server.url("")), tmp_path / "models", "--connections", "4")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "models" / "sub" / "model_0.onnx").read_bytes() == files["model_0.onnx"]


def test_wrong_bytes_once_are_caught_by_the_hash_and_the_file_fetched_again(tmp_path, large):
    server, files, path = large
    server.corrupt[path] = 1
    done = fetch(table(tmp_path, files, server.url("")), tmp_path / "models", "--connections", "4")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "models" / "sub" / "model_0.onnx").read_bytes() == files["model_0.onnx"]
    assert server.sent[path] == 2 * LARGE, "once whole, then once more from the first byte"


def test_wrong_bytes_every_time_are_named_and_leave_nothing(tmp_path, large):
    server, files, path = large
    server.corrupt[path] = 100
    folder = tmp_path / "models"
    done = fetch(table(tmp_path, files, server.url("")), folder, "--connections", "4")
    assert done.returncode == 1
    assert "sub/model_0.onnx: SHA-256 mismatch: the server sent" in done.stderr
    assert not list(folder.rglob("*.part*")) and not (folder / "sub" / "model_0.onnx").exists()


def test_a_run_killed_midway_is_resumed_from_what_it_recorded(tmp_path, large):
    server, files, path = large
    server.rate = 4e6  # about 1.5 s for the whole file over 4 connections
    folder, listed = tmp_path / "models", table(tmp_path, files, server.url(""))
    first = subprocess.Popen([sys.executable, str(FETCHER), "--table", str(listed), "--dir", str(folder),
                              "--connections", "4"], stderr=subprocess.DEVNULL)
    record = folder / "sub" / "model_0.onnx.part.json"
    deadline = time.time() + 30
    while time.time() < deadline and not (record.exists() and written(record) >= 4 << 20):
        time.sleep(0.05)
    first.kill()
    first.wait()
    kept = written(record)
    assert 0 < kept < LARGE
    sent_before = server.sent[path]
    server.rate = 0
    done = fetch(listed, folder, "--connections", "4")
    assert done.returncode == 0, done.stderr
    assert (folder / "sub" / "model_0.onnx").read_bytes() == files["model_0.onnx"]
    assert server.sent[path] - sent_before == LARGE - kept, "only what the record did not hold"


def written(record):
    try:
        return sum(stop - start for start, stop in json.loads(record.read_text())["written"])
    except (OSError, ValueError):
        return 0


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


# -- the list cannot write outside --dir: whoever controls the app's repository controls the table ----------

ESCAPES = {"escape.bin", "abs.bin", "x.bin", "through.bin", "file_url.bin"}


@pytest.fixture
def escapes(tmp_path, served):
    """Files an entry could write outside --dir, served (and, for file://, on disk) so that a fetcher
    that does not refuse them would really write them; --dir is tmp_path/app/models, `outside` a folder
    a link inside --dir points to."""
    server, files = served
    evil = {name: name.encode() * 1000 for name in ESCAPES}
    server.files.update({url_path(name): content for name, content in evil.items()})
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "file_url.bin").write_bytes(evil["file_url.bin"])
    folder, outside = tmp_path / "app" / "models", tmp_path / "outside"
    (folder / "sub").mkdir(parents=True)
    outside.mkdir()
    (folder / "linked").symlink_to(outside)
    yield server, files, evil, folder, outside


def assert_refused_and_nothing_outside(done, status, escapes, before):
    server, files, evil, folder, outside = escapes
    assert done.returncode == 1, done.stderr
    failed = {entry["path"]: entry["reason"] for entry in json.loads(status.read_text())["failed"]}
    for name in ESCAPES:
        refused = [path for path in failed if path.endswith(name) and failed[path].startswith("refused: ")]
        assert refused, (name, failed)
        assert any(line.strip().startswith(f"{refused[0]}: refused: ") for line in done.stderr.splitlines()), name
    assert failed["../escape.bin"] == "refused: the path leaves the models folder"
    assert failed["linked/through.bin"] == "refused: the path passes through a symbolic link"
    assert failed["sub/file_url.bin"] == "refused: only http:// and https:// URLs are fetched, not file:"
    for name, content in files.items():
        assert (folder / "sub" / name).read_bytes() == content, "the good entries are fetched all the same"
    assert set(json.loads((folder / ".red-verified.json").read_text())) == {
        str(folder / "sub" / name) for name in files}
    assert not [r for r in server.requests if r[1] in {url_path(name) for name in evil}]
    assert not list(outside.iterdir())
    assert not list(folder.rglob("*file_url*")) and not list(folder.rglob("*.part"))
    everything = {path for path in folder.parent.parent.rglob("*") if folder not in path.parents}
    assert everything == before | {status}, "nothing is written outside --dir"


def test_a_table_cannot_write_outside_the_models_folder(tmp_path, escapes):
    server, files, evil, folder, _ = escapes
    status = tmp_path / "status.json"
    absolute = tmp_path / "app" / "abs.bin"
    listed = table(tmp_path, files, server.url(""), more=[
        ("{models_dir}/../escape.bin", evil["escape.bin"], "{assets_repo}/v1.0.0/escape.bin"),
        (str(absolute), evil["abs.bin"], "{assets_repo}/v1.0.0/abs.bin"),
        ("{models_dir}/../../x.bin", evil["x.bin"], "{assets_repo}/v1.0.0/x.bin"),
        ("{models_dir}/linked/through.bin", evil["through.bin"], "{assets_repo}/v1.0.0/through.bin"),
        ("{models_dir}/sub/file_url.bin", evil["file_url.bin"], f"file://{tmp_path}/source/file_url.bin")])
    before = {path for path in tmp_path.rglob("*") if folder not in path.parents}
    done = fetch(listed, folder, "--status", str(status))
    assert_refused_and_nothing_outside(done, status, escapes, before)
    assert "5 of 8 files could not be fetched" in done.stderr
    assert not absolute.exists() and not (tmp_path / "x.bin").exists()


def test_a_manifest_cannot_write_outside_the_models_folder(tmp_path, escapes):
    server, files, evil, folder, outside = escapes
    status = tmp_path / "status.json"
    (outside / "target.bin").write_bytes(b"not a model")
    (folder / "sub" / "final.bin").symlink_to(outside / "target.bin")
    url = server.url(url_path("escape.bin"))  # served: a refusal is the only thing that stops these
    good = [(f"sub/{name}", content, server.url(url_path(name))) for name, content in files.items()]
    listed = manifest(tmp_path, good + [
        ("../escape.bin", evil["escape.bin"], url),
        (str(tmp_path / "app" / "abs.bin"), evil["abs.bin"], server.url(url_path("abs.bin"))),
        ("sub/../../x.bin", evil["x.bin"], server.url(url_path("x.bin"))),
        ("linked/through.bin", evil["through.bin"], server.url(url_path("through.bin"))),
        ("sub/file_url.bin", evil["file_url.bin"], f"file://{tmp_path}/source/file_url.bin"),
        ("sub/final.bin", evil["escape.bin"], url),
        ("", evil["escape.bin"], url),
        ("sub/bad\x1b[2J.bin", evil["escape.bin"], url),
        ("sub/ftp.bin", evil["escape.bin"], "ftp://127.0.0.1/escape.bin"),
        ("sub/data.bin", b"hi", "data:application/octet-stream,hi")])
    before = {path for path in tmp_path.rglob("*") if folder not in path.parents}
    done = fetch(listed, folder, "--status", str(status))
    (outside / "target.bin").unlink()  # checked here: the others must leave `outside` empty
    assert_refused_and_nothing_outside(done, status, escapes, before - {outside / "target.bin"})
    failed = {entry["path"]: entry["reason"] for entry in json.loads(status.read_text())["failed"]}
    assert failed[str(tmp_path / "app" / "abs.bin")] == "refused: the path is absolute"
    assert failed["sub/final.bin"] == "refused: the path passes through a symbolic link"
    assert failed["''"] == "refused: the path is empty"
    assert failed["'sub/bad\\x1b[2J.bin'"] == "refused: the path contains control characters"
    assert "\x1b" not in done.stderr, "a control character never reaches the terminal"
    assert failed["sub/ftp.bin"].endswith("not ftp:") and failed["sub/data.bin"].endswith("not data:")
    assert "10 of 13 files could not be fetched" in done.stderr


def test_a_mirror_that_is_not_http_is_refused(tmp_path, served):
    server, files = served
    done = fetch(table(tmp_path, files, server.url("")), tmp_path / "models", "--base-url", f"file://{tmp_path}")
    assert done.returncode == 1
    assert "sub/model_0.onnx: refused: only http:// and https:// URLs are fetched, not file:" in done.stderr
    assert not server.requests and not (tmp_path / "models" / "sub").exists()


@contextlib.contextmanager
def redirecting(location):
    """A server that answers every request with a redirect to `location`."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_redirect_to_ftp_is_not_followed(tmp_path):
    with redirecting("ftp://127.0.0.1:9/model.bin") as base:
        listed = manifest(tmp_path, [("model.bin", b"x", f"{base}/model.bin")])
        done = fetch(listed, tmp_path / "models", "--retries", "0")
    assert done.returncode == 1
    assert "model.bin: refused: only http:// and https:// URLs are fetched, not ftp: (a redirect from" in done.stderr


def test_the_status_and_verified_files_are_not_written_through_links(tmp_path, served):
    server, files = served
    folder, outside = tmp_path / "models", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    status = folder / ".red-status.json"
    for name in (status.name, ".red-verified.json", f"{status.name}.tmp", ".red-verified.json.tmp"):
        (outside / name).write_text("not ours")
        (folder / name).symlink_to(outside / name)  # the files themselves, and where a temporary file was
    done = fetch(table(tmp_path, files, server.url("")), folder, "--status", str(status))
    assert done.returncode == 0, done.stderr
    assert {path.read_text() for path in outside.iterdir()} == {"not ours"} and len(list(outside.iterdir())) == 4
    assert not status.is_symlink() and json.loads(status.read_text())["state"] == "done"
    assert not (folder / ".red-verified.json").is_symlink()
    assert not [path for path in folder.iterdir() if path.name.endswith(".tmp") and not path.is_symlink()]


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
    again = converge([provisioned], *settings)
    assert again.changed(provisioned) == []
    assert len(server.requests) == requests, "a second apply asks the network nothing"
    assert again.sent(provisioned) == 1, "the models cost no command of their own"
    for name, damage in (("model_0.onnx", "rm {}"), ("model_1.onnx", "truncate -s 1000 {}"),
                         ("model_2.onnx", "head -c $(stat -c %s {0}) /dev/zero > {0}.new && mv {0}.new {0}")):
        path = f"{MODELS}/sub/{name}"
        provisioned.ssh(f"runuser -u red -- sh -c {shlex.quote(damage.format(path))}")
        requests = len(server.requests)
        run = converge([provisioned], *settings)
        assert "Models | Fetch and verify the model files" in run.changed(provisioned), name
        assert provisioned.path(path).read_bytes() == files[name], name
        assert {asked for _, asked, _, _ in server.requests[requests:]} == {url_path(name)}, "only that file"
    requests = len(server.requests)
    assert converge([provisioned], *settings).changed(provisioned) == []
    assert len(server.requests) == requests


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
