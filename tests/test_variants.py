"""Every variant in images.yaml, built by the real Docker engine (tests/engine.py) from the local base
in one run (every layer before the deploy's shared), started as vast starts it and checked as the
workflow checks it (tests/smoke), and each one's own: the models in the image or fetched at the
first start, the portal's token or the VNC password; a task changed fetches no model again; and
docker-compose.yml brought up. VisoMaster's stand-in and its model mirror are served on this machine
(engine.served_variants)."""
import contextlib
import hashlib
import os
import pathlib
import shutil
import socket
import subprocess
import time
import urllib.request

import engine
import pytest
import sandbox as sandboxes
import yaml
from conftest import PROJECT
from test_models import model_files

import images
from tasks.models_stage import DONE_MARKER, SEED
from tasks.packages import JUPYTER, PORTAL

MODELS = "/workspace/models"
MARKER = f"{MODELS}/{DONE_MARKER}"
APP_ENVIRONMENTS = "/opt/visomaster"  # the default visomaster_venv's folder
LIST_DIGESTS = ["sh", "-c", f"cd {MODELS}/sub && sha256sum *"]  # each model file's SHA-256 and name


@pytest.fixture(scope="module")
def built(client):
    """{variant name: image tag}, the models' files and their server; every variant built once."""
    prefix = f"red-v{os.getpid()}"
    files = model_files([1 << 20, 64 << 10])
    with engine.served_variants(client, prefix, files) as inputs:
        tags = {variant["name"]: f"{prefix}/red:{variant['name']}" for variant in images.variants()}
        for variant in images.variants():
            engine.build_image(client, tags[variant["name"]], inputs.build_args(variant),
                               extra_hosts=inputs.extra_hosts)
        yield {"tags": tags, "files": files, "mirror": inputs.mirror, "prefix": prefix, "inputs": inputs,
               "hosts": inputs.hosts}


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


def digests(listing):
    """{file: SHA-256} from LIST_DIGESTS' output."""
    return {line.split()[1]: line.split()[0] for line in listing.splitlines()}


def model_digests(container):
    return digests(container.exec_run(LIST_DIGESTS).output.decode())


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
    marker_in_the_image = client.containers.run(built["tags"][name], ["stat", "-c", "%.9Y", MARKER],
                                                remove=True).decode()
    with started(client, built, name) as container:
        assert model_digests(container) == expected_digests(built)
        status = container.exec_run(["cat", f"{MODELS}/.red-status.json"]).output.decode()
        assert '"state": "done"' in status
        assert "models" not in engine.programs(container), "no fetcher runs at a start"
        assert container.exec_run(["stat", "-c", "%.9Y", MARKER]).output.decode() == marker_in_the_image, \
            "the start found the models as they were verified: it ran no fetcher (which hashes every file)"
    assert len(built["mirror"].requests) == asked, "the start asked the mirror nothing"


def deploy_layer(image):
    """The files of the image's last layer (the deploy's), read from the engine's overlay on this machine."""
    top = pathlib.Path(image.attrs["GraphDriver"]["Data"]["UpperDir"])
    assert top.is_dir()
    return top


@pytest.mark.parametrize("name", variants_where(MODELS_AT="build"))
def test_a_models_variant_holds_its_models_once_in_a_layer_before_reds_files(client, built, name):
    image = client.images.get(built["tags"][name])
    stage = next(step for step in client.api.history(image.id) if "tasks.models_stage" in step["CreatedBy"])
    assert stage["Size"] >= sum(len(content) for content in built["files"].values())
    top = deploy_layer(image)
    for folder in (MODELS, f"{SEED}/models"):
        assert not (top / folder.lstrip("/") / "sub").exists(), f"{folder}: no model file copied by the deploy's layer"


@pytest.mark.parametrize("name", [variant["name"] for variant in images.variants()])
def test_the_deploy_installs_nothing_the_layers_before_reds_files_hold(client, built, name):
    """Every Debian package, Red's own environments (tasks/packages.py) and the app's environment
    (tasks/app_stage.py) come from layers keyed by their own inputs: the deploy, which declares them
    again, finds them installed."""
    top = deploy_layer(client.images.get(built["tags"][name]))
    for installed in ("/var/lib/dpkg/status", JUPYTER.venv, PORTAL.venv, APP_ENVIRONMENTS):
        assert not (top / installed.lstrip("/")).exists(), f"{installed}: changed by the deploy's layer"


def test_every_variant_shares_one_layer_of_debian_packages(client, built):
    """No variant's argument changes the Debian packages: the Dockerfile's packages stage, built alone,
    is the first layers of every variant."""
    stage, _ = engine.build_image(client, f"{built['prefix']}/red:packages",
                                  built["inputs"].build_args(images.variants()[0]),
                                  extra_hosts=built["inputs"].extra_hosts, target="packages")
    shared = stage.attrs["RootFS"]["Layers"]
    for tag in built["tags"].values():
        assert client.images.get(tag).attrs["RootFS"]["Layers"][:len(shared)] == shared, tag


def test_a_changed_task_builds_the_image_again_without_fetching_the_models(client, built, tmp_path):
    """The default variant built again from the same files but one task: only Red's files and the deploy's
    layers are new, and the mirror is asked nothing."""
    variant = next(variant for variant in images.variants() if variant["name"] == "default")
    context = engine.context_with_a_changed_task(tmp_path)
    asked = len(built["mirror"].requests)
    tag = f"{built['prefix']}/red:changed-task"
    rebuilt, _ = engine.build_image(client, tag, built["inputs"].build_args(variant),
                                    extra_hosts=built["inputs"].extra_hosts, path=context)
    before = client.images.get(built["tags"]["default"]).attrs["RootFS"]["Layers"]
    after = rebuilt.attrs["RootFS"]["Layers"]
    assert len(after) == len(before) and after[:-2] == before[:-2], "only Red's files and the deploy are new"
    assert len(built["mirror"].requests) == asked, "the build fetched no model"
    assert digests(client.containers.run(tag, LIST_DIGESTS, remove=True).decode()) == expected_digests(built)


@pytest.mark.parametrize("name", variants_where(MODELS_AT="build"))
def test_a_models_variant_seeds_its_models_into_a_workspace_mounted_empty_without_the_network(client, built, name):
    workspace = sandboxes.HOSTS / f"{built['prefix']}-{name}-empty-workspace"
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    container = engine.run(client, built["tags"][name], f"{built['prefix']}-{name}-seeded", network="none",
                           volumes={str(workspace): {"bind": "/workspace", "mode": "rw"}})
    try:
        engine.wait_all_running(container, timeout=120)
        assert model_digests(container) == expected_digests(built)
        assert "models" not in engine.programs(container)
    finally:
        engine.remove(container)
        shutil.rmtree(workspace, ignore_errors=True)


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


def test_docker_compose_up_starts_the_desk_from_the_compose_file(client, built, tmp_path):
    """docker-compose.yml with the example .env (the image built here, ports free on this machine, a VNC
    password) brought up by compose: the desk starts, listening on 127.0.0.1 only, with /workspace a
    named volume that Docker filled from the image. This machine has no GPU, so the reservation is taken
    out of compose's own resolution of the file: an override cannot remove it in Debian's compose 1.29,
    which merges an override's device list into the file's (compose v2's `!reset` could)."""
    project = f"{built['prefix']}-compose"
    image, tag = built["tags"]["default"].rsplit(":", 1)
    ports = {name: sandboxes.free_port() for name in ("RED_PORTAL_PORT", "RED_NOVNC_PORT", "RED_JUPYTER_PORT",
                                                      "RED_SSH_PORT")}
    settings = {"RED_IMAGE": image, "RED_TAG": tag, "VNC_PASSWORD": "compose-secret-4d1", **ports}
    shutil.copy(PROJECT / "docker-compose.yml", tmp_path)
    (tmp_path / ".env").write_text("".join(
        f"{line.partition('=')[0]}={settings[line.partition('=')[0]]}\n" if line.partition("=")[0] in settings
        else f"{line}\n" for line in (PROJECT / ".env.example").read_text().splitlines()))
    compose = [*engine.compose_command(), "--project-name", project]
    resolved = yaml.safe_load(subprocess.run([*compose, "config"], cwd=tmp_path, capture_output=True, text=True,
                                             check=True).stdout)
    assert resolved["services"]["red"].pop("deploy")["resources"]["reservations"]["devices"]
    (tmp_path / "without-gpu.yml").write_text(yaml.safe_dump(resolved))
    up = [*compose, "--file", "without-gpu.yml"]
    try:
        done = subprocess.run([*up, "up", "--detach", "--no-build"], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        container, = client.containers.list(filters={"label": f"com.docker.compose.project={project}"})
        engine.wait_all_running(container, timeout=120)
        bindings = container.attrs["HostConfig"]["PortBindings"]
        assert {binding["HostIp"] for published in bindings.values() for binding in published} == {"127.0.0.1"}
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['RED_NOVNC_PORT']}/vnc.html", timeout=10) as page:
            assert page.status == 200
        with socket.create_connection(("127.0.0.1", ports["RED_SSH_PORT"]), timeout=10) as ssh:
            assert ssh.recv(64).startswith(b"SSH-2.0-")
        assert model_digests(container) == expected_digests(built)
        volume = next(mount for mount in container.attrs["Mounts"] if mount["Destination"] == "/workspace")
        assert volume["Type"] == "volume" and volume["Name"] == f"{project}_workspace"
    finally:
        subprocess.run([*up, "down", "--volumes"], cwd=tmp_path, capture_output=True)
