"""Every variant in images.yaml, built by the real Docker engine (tests/engine.py) from the local base
in one run (every layer before the deploy's shared), started as vast starts it and checked as the
workflow checks it (tests/smoke), and each one's own: the models in the image or fetched at the
first start, the portal's token or the VNC password. VisoMaster's stand-in and its model mirror are
served on this machine: at the build (host network) and to the containers (the bridge's gateway)."""
import contextlib
import hashlib
import os
import socket
import subprocess
import time

import engine
import pytest
import sandbox as sandboxes
from conftest import PROJECT
from models_server import ModelServer
from test_models import model_files, table, url_path

import images

STANDIN_HOST, MODELS_HOST = "red-standin", "red-models"  # names the build and the containers resolve
MODELS = "/workspace/models"
REF = "v0.2.0"  # the stand-in's tag with a model table (a tag: a start asks no repository)


@pytest.fixture(scope="module")
def built(client, tmp_path_factory):
    """{variant name: image tag}, the models' files and their server; every variant built once."""
    prefix = f"red-v{os.getpid()}"
    gateway = client.networks.get("bridge").attrs["IPAM"]["Config"][0]["Gateway"]
    files = model_files([1 << 20, 64 << 10])
    table_text = table(tmp_path_factory.mktemp("table"), files, "https://github.com").read_text()

    def with_a_model_table(standin):
        standin.commit("A model table", {"app/processors/models_data.py": table_text})
        standin.git("tag", REF)
        standin.git("push", "--quiet", "origin", "main", "--tags")
    with engine.served_standin(client, prefix, ready=with_a_model_table) as (server, _), \
            ModelServer({url_path(name): content for name, content in files.items()}, address=gateway) as mirror:
        settings = {"python_version": "3.11", "visomaster_ref": REF,
                    "visomaster_repo": f"git://{STANDIN_HOST}:{server.git_port}/origin.git",
                    "models_base_url": f"http://{MODELS_HOST}:{mirror.port}"}
        tags = {}
        for variant in images.variants():
            tags[variant["name"]] = f"{prefix}/red:{variant['name']}"
            engine.build_image(client, tags[variant["name"]], {
                "BASE_IMAGE": engine.base_image(client), **variant["args"],
                "RED_DATA": sandboxes.red_data(settings)},
                extra_hosts={STANDIN_HOST: "127.0.0.1", MODELS_HOST: gateway})
        yield {"tags": tags, "files": files, "mirror": mirror, "prefix": prefix,
               "hosts": {STANDIN_HOST: gateway, MODELS_HOST: gateway}}


def variants_where(**args):
    return [variant["name"] for variant in images.variants()
            if all(variant["args"][name] == value for name, value in args.items())]


@contextlib.contextmanager
def started(client, built, name):
    """A container of the variant, every program RUNNING; removed afterwards."""
    container = engine.run(client, built["tags"][name], f"{built['prefix']}-{name}-{time.monotonic_ns()}",
                           extra_hosts=built["hosts"])
    try:
        engine.wait_all_running(container, timeout=120, oneshots={"models"})  # models_at=start: fetched once
        yield container
    finally:
        engine.remove(container)


def model_digests(container):
    listing = container.exec_run(["sh", "-c", f"cd {MODELS}/sub && sha256sum *"]).output.decode()
    return {line.split()[1]: line.split()[0] for line in listing.splitlines()}


def expected_digests(built):
    return {name: hashlib.sha256(content).hexdigest() for name, content in built["files"].items()}


@pytest.mark.parametrize("name", [variant["name"] for variant in images.variants()])
def test_each_variant_starts_and_passes_the_smoke_test(built, name):
    hosts = [f"--add-host={host}:{address}" for host, address in built["hosts"].items()]
    done = subprocess.run([str(PROJECT / "tests" / "smoke"), built["tags"][name], *hosts],
                          capture_output=True, text=True, env={**os.environ, "SMOKE_DEADLINE": "180"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "passes red-doctor" in done.stdout


@pytest.mark.parametrize("name", variants_where(MODELS_AT="build"))
def test_a_models_variant_holds_every_model_verified_and_starts_with_no_download(client, built, name):
    asked = len(built["mirror"].requests)
    with started(client, built, name) as container:
        assert model_digests(container) == expected_digests(built)
        status = container.exec_run(["cat", f"{MODELS}/.red-status.json"]).output.decode()
        assert '"state": "done"' in status
        assert "models" not in engine.programs(container), "no fetcher runs at a start"
    assert len(built["mirror"].requests) == asked, "the start asked the mirror nothing"


@pytest.mark.parametrize("name", variants_where(MODELS_AT="start"))
def test_a_start_variant_fetches_the_models_at_its_first_start(client, built, name):
    in_the_image = client.containers.run(built["tags"][name], ["sh", "-c", f"ls -A {MODELS}/sub 2>/dev/null | wc -l"],
                                         remove=True).decode().strip()
    assert in_the_image == "0", "the image holds no model"
    asked = len(built["mirror"].requests)
    with started(client, built, name) as container:
        deadline = time.monotonic() + 120
        while model_digests(container) != expected_digests(built):
            assert time.monotonic() < deadline, container.exec_run(["cat", f"{MODELS}/.red-status.json"]).output
            time.sleep(1)
    assert len(built["mirror"].requests) > asked


@pytest.mark.parametrize("name", variants_where(ACCESS="portal"))
def test_a_portal_variant_answers_401_without_the_token(client, built, name):
    with started(client, built, name) as container:
        probe = ("import urllib.request, urllib.error\n"
                 "try:\n    urllib.request.urlopen('http://127.0.0.1:1111/', timeout=10)\n    print(200)\n"
                 "except urllib.error.HTTPError as error:\n    print(error.code)")
        deadline = time.monotonic() + 30
        while (answer := container.exec_run(["python3", "-c", probe]).output.decode().strip()) != "401":
            assert time.monotonic() < deadline, answer
            time.sleep(0.5)


@pytest.mark.parametrize("name", variants_where(ACCESS="direct"))
def test_a_direct_variant_asks_for_the_vnc_password(client, built, name):
    with started(client, built, name) as container, \
            socket.create_connection(("127.0.0.1", engine.host_port(container, 5901)), timeout=10) as vnc:
        assert vnc.recv(12).startswith(b"RFB 003.")
        vnc.sendall(b"RFB 003.008\n")
        count = vnc.recv(1)[0]
        types = set(vnc.recv(count))
    assert 2 in types and 1 not in types, f"security types {types}: 2 is the VNC password, 1 none"
