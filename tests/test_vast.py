"""vast's API as the inventory (issue 18): a local HTTP server replays recorded answers
(tests/recorded/vast), checks that the key comes only in the header, and misbehaves where told."""
import http.server
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest
from conftest import PROJECT, SHUTDOWN_SUPERVISORD
from sandbox import red_data

from tasks.desktop import PASSWORD_FILE as VNC_PASSWORD_FILE
from tasks.jupyter import TOKEN_FILE as JUPYTER_TOKEN_FILE

import vast

RECORDED = PROJECT / "tests" / "recorded" / "vast"
KEY = "vast-test-key-0123456789abcdef"


class VastApi:
    """vast's instance list: two recorded pages on /api/v1/instances/, or `mode`: "v0" (only the
    older /api/v0/instances), "401", "429" (one 429 first), "empty"."""

    def __init__(self, mode="pages", pages=None):
        self.mode, self.requests, self.key_in_url = mode, [], []
        self.pages = pages or [json.loads((RECORDED / f"instances-page-{n}.json").read_text()) for n in (1, 2)]
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                api.requests.append((self.path, self.headers.get("Authorization")))
                if KEY in urllib.parse.unquote(self.path):
                    api.key_in_url.append(self.path)
                self.answer(*api.route(self.path, self.headers.get("Authorization")))

            def answer(self, status, body, headers=()):
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def route(self, path, authorization):
        where, _, query = path.partition("?")
        query = urllib.parse.parse_qs(query)
        if self.mode == "401" or authorization != f"Bearer {KEY}":
            return 401, {"success": False, "error": "invalid_user", "msg": "Invalid user key"}
        if self.mode == "429" and len(self.requests) == 1:
            return 429, {"detail": "API requests too frequent"}, [("Retry-After", "0")]
        if where == "/api/v1/instances/" and self.mode != "v0":
            if self.mode == "empty":
                return 200, {"instances": [], "next_token": None, "total_instances": 0}
            assert query.get("limit") == ["25"]
            return 200, self.pages[1] if query.get("after_token") == [self.pages[0]["next_token"]] else self.pages[0]
        if where == "/api/v0/instances" and query.get("owner") == ["me"]:
            return 200, {"instances": [instance for page in self.pages for instance in page["instances"]]}
        return 404, {"detail": "Not Found"}

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def environment(api, **more):
    return {"VAST_URL": api.url, "VAST_API_KEY": KEY, "RED_VAST": "1", "HOME": "/nonexistent", **more}


def listed(api, **more):
    said = []
    found = vast.hosts(environment(api, **more), say=said.append)
    return found, said


def test_three_instances_over_two_pages_give_the_two_running_ones():
    with VastApi() as api:
        found, said = listed(api)
    (address, port, name, data), (proxy, proxy_port, unnamed, _) = found
    assert (address, port, name) == ("203.0.113.17", 41022, "desk-a"), "direct: the public address and 22's HostPort"
    assert (proxy, proxy_port, unnamed) == ("ssh4.vast.ai", 12402, "vast-28815402"), "no 22 mapped: vast's proxy"
    assert data["vast_id"] == 28815331 and data["vast_gpu_name"] == "RTX 4090" and data["vast_num_gpus"] == 1
    assert data["vast_driver_version"] == "550.127.05" and data["vast_cuda_max_good"] == 12.4
    assert data["vast_ports"]["1111/tcp"][0]["HostPort"] == "41021"
    assert not any("token" in key for key in data), "no secret of the answer travels with the host"
    assert said == ["vast: instance 28790017 (old-desk) is 'exited': skipped"]
    assert [path.split("?")[0] for path, _ in api.requests] == ["/api/v1/instances/"] * 2
    assert {authorization for _, authorization in api.requests} == {f"Bearer {KEY}"} and not api.key_in_url


def test_an_api_without_the_paged_list_is_asked_the_older_way():
    with VastApi(mode="v0") as api:
        found, _ = listed(api)
    assert [name for _, _, name, _ in found] == ["desk-a", "vast-28815402"]
    assert [path.split("?")[0] for path, _ in api.requests] == ["/api/v1/instances/", "/api/v0/instances"]


def test_a_429_waits_and_asks_again():
    with VastApi(mode="429") as api:
        found, _ = listed(api)
    assert len(found) == 2 and len(api.requests) == 3


def test_a_label_or_ids_choose_the_instances():
    with VastApi() as api:
        assert [name for _, _, name, _ in listed(api, RED_VAST_LABEL="desk-a")[0]] == ["desk-a"]
        assert [name for _, _, name, _ in listed(api, RED_VAST_IDS="28815402, 1")[0]] == ["vast-28815402"]
        with pytest.raises(vast.VastError, match=r"^vast: no running instance with label nobody \(0 listed\)$"):
            listed(api, RED_VAST_LABEL="nobody")


@pytest.mark.parametrize("mode, message", [
    ("401", r"^vast refused the API key \(HTTP 401 from http://127\.0\.0\.1:\d+\): check VAST_API_KEY"),
    ("empty", r"^vast: no running instance \(0 listed\)$"),
])
def test_a_refused_key_or_no_instance_stops_with_one_line(mode, message):
    with VastApi(mode=mode) as api:
        with pytest.raises(vast.VastError, match=message):
            listed(api)


def test_an_unreachable_api_stops_with_one_line():
    with VastApi() as api:
        url = api.url
    with pytest.raises(vast.VastError, match=rf"^vast's API at {url} cannot be reached: "):
        vast.hosts({"VAST_URL": url, "VAST_API_KEY": KEY}, say=print)


def test_the_key_is_found_where_vasts_cli_keeps_it(tmp_path, monkeypatch):
    (tmp_path / "config" / "vastai").mkdir(parents=True)
    (tmp_path / "config" / "vastai" / "vast_api_key").write_text("from-config\n")
    (tmp_path / ".vast_api_key").write_text("legacy\n")
    monkeypatch.setenv("HOME", str(tmp_path))  # ~, as vast's CLI reads it
    home = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert vast.api_key({**home, "VAST_API_KEY": "from-env"}) == "from-env"
    assert vast.api_key(home) == "from-config"
    (tmp_path / "config" / "vastai" / "vast_api_key").unlink()
    assert vast.api_key(home) == "legacy"
    (tmp_path / ".vast_api_key").unlink()
    with pytest.raises(vast.VastError, match="^no vast API key: set VAST_API_KEY"):
        vast.api_key(home)


def test_inventory_py_lists_them_and_stops_with_the_line_on_an_error():
    code = "import json, inventory; print(json.dumps(inventory.instances))"
    with VastApi() as api:
        done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True,
                              env={**os.environ, **environment(api, RED_SSH_KEY="/keys/id_ed25519")})
    assert done.returncode == 0, done.stderr
    (name, data), (unnamed, proxied) = json.loads(done.stdout)
    assert (name, data["ssh_hostname"], data["ssh_port"], data["ssh_user"], data["ssh_key"]) == (
        "desk-a", "203.0.113.17", 41022, "root", "/keys/id_ed25519")
    assert (unnamed, proxied["ssh_hostname"], proxied["ssh_port"]) == ("vast-28815402", "ssh4.vast.ai", 12402)
    assert "is 'exited': skipped" in done.stderr
    with VastApi(mode="401") as api:
        refused = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True,
                                 env={**os.environ, **environment(api)})
    assert refused.returncode == 1
    line = refused.stderr.strip()
    assert line.startswith("vast refused the API key (HTTP 401") and "\n" not in line
    with VastApi() as api:
        malformed = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True,
                                   env={**os.environ, **environment(api, RED_VAST_DATA='["desk-a"]')})
    assert malformed.returncode == 1
    assert malformed.stderr.strip().splitlines()[-1].startswith("RED_VAST_DATA is not {")


def test_red_vast_provisions_both_instances_and_says_what_to_open(sandbox_factory):
    """The recorded answers point at two sandbox hosts: one reached directly (its sshd's port as the port
    vast mapped to 22, its noVNC and Jupyter mapped), one only through the "proxy"."""
    direct, proxied = sandbox_factory.up("va"), sandbox_factory.up("vb")
    pages = [json.loads((RECORDED / f"instances-page-{n}.json").read_text()) for n in (1, 2)]
    first, second = pages[0]["instances"]
    mapped = {port: [{"HostIp": "0.0.0.0", "HostPort": str(port)}]
              for port in (direct.info["data"]["novnc_port"], direct.info["data"]["jupyter_port"])}
    first.update(public_ipaddr="127.0.0.1", ports={
        "22/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(direct.info["port"])}],
        **{f"{port}/tcp": entries for port, entries in mapped.items()}})
    second.update(ssh_host="127.0.0.1", ssh_port=proxied.info["port"])
    own = {"desk-a": {**direct.info["data"], "ssh_key": direct.info["key"]},
           "vast-28815402": {**proxied.info["data"], "ssh_key": proxied.info["key"]}}
    with VastApi(pages=pages) as api:
        env = {key: value for key, value in os.environ.items() if key not in ("RED_HOSTS", "RED_HOST")}
        env.update(environment(api, RED_VAST_DATA=json.dumps(own), HOME=os.environ.get("HOME", "/root")))
        runs = [subprocess.run([sys.executable, "tests/pyinfra_counted.py", "-y", "--json", "inventory.py",
                                "deploy.py"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=1800)
                for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr[-3000:]
    for host in (direct, proxied):
        assert "RUNNING" in host.ssh("supervisorctl status novnc").stdout, "provisioned"
    desks = runs[0].stderr.split("Your desks (RED_VAST):", 1)[1]
    novnc, jupyter = direct.info["data"]["novnc_port"], direct.info["data"]["jupyter_port"]
    mine = desks.split("desk-a\n", 1)[1]
    assert mine.startswith(f"    desktop  http://127.0.0.1:{novnc}/   password: {VNC_PASSWORD_FILE} (on the instance")
    assert f"\n    jupyter  http://127.0.0.1:{jupyter}/   token: {JUPYTER_TOKEN_FILE} (on the instance" in mine
    assert f"\n    ssh      ssh -p {direct.info['port']} root@127.0.0.1\n" in mine
    other = desks.split("vast-28815402\n", 1)[1]
    assert f"port {proxied.info['data']['novnc_port']} is not mapped on this instance" in other
    assert f"    ssh      ssh -p {proxied.info['port']} root@127.0.0.1" in other
    for host in (direct, proxied):
        for secret in (VNC_PASSWORD_FILE, JUPYTER_TOKEN_FILE):
            assert host.path(secret).read_text().strip() not in runs[0].stderr + runs[0].stdout
    assert runs[1].returncode == 0, runs[1].stderr[-3000:]
    changed = [op["name"] for op in json.loads(runs[1].stdout)["results"]["operations"] if op["success"]]
    assert changed == [], "a second apply changes nothing on either"


BOOTSTRAP = PROJECT / "onstart-bootstrap.sh"
ON_START_LIMIT = 4048  # characters: vast's API documents 4,048 for `onstart` (its CLI docs say 16 KB)


def test_the_bootstrap_fits_in_an_on_start_command():
    assert len(BOOTSTRAP.read_text()) < ON_START_LIMIT


def red_repository(folder):
    """A repository holding this working tree's files (committed or not) on branch main, made in
    `folder` beside what is there (the stand-in keeps its own "work" folder)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=PROJECT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    work = folder / "red-source"
    for name in files:
        if (PROJECT / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / name, work / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(work)]
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "Red"]):
        subprocess.run(git + step, check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(folder / "red.git")], check=True)
    shutil.rmtree(work)
    return folder / "red.git"


def test_the_bootstrap_makes_a_desk_of_a_bare_rootfs_then_only_starts_it(sandbox_factory):
    host = sandbox_factory.up("boot")  # a fresh rootfs: python3, the CA bundle (and sshd, to reach it)
    repository = red_repository(sandbox_factory.standin.folder)  # a folder the sandbox sees at the same path
    settings = {name: value for name, value in host.info["data"].items() if not isinstance(value, list)}
    host.path("/root/on-start.sh").write_text(BOOTSTRAP.read_text())

    def start(**environment):
        assignments = " ".join(f"{name}={shlex.quote(value)}" for name, value in environment.items())
        return host.ssh(f"{assignments} bash /root/on-start.sh", check=False, timeout=1800)
    missing = start(RED_REF="main")
    assert missing.returncode == 1
    assert missing.stdout.strip().splitlines()[-1] == ("red-bootstrap: RED_REPO is not set: add -e RED_REPO=<Red's "
                                                       "Git URL> to the instance's environment")
    foreign = start(RED_REPO=f"file://{repository}", RED_REF="main", RED_DATA="--data access=direct @other.py")
    assert foreign.returncode == 1
    assert foreign.stdout.strip().splitlines()[-1] == ("red-bootstrap: RED_DATA holds only --data NAME=VALUE "
                                                       "pairs, not: @other.py")
    first = start(RED_REPO=f"file://{repository}", RED_REF="main", RED_DATA=red_data(settings))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    assert desk_is_up(host)
    host.ssh(SHUTDOWN_SUPERVISORD)  # the container stops (and is gone before the next start)
    again = start()
    assert again.returncode == 0, again.stdout[-3000:]
    assert "getting Red" not in again.stdout and "] No changes" in again.stdout
    assert "] Success" not in again.stdout, "only onstart.sh, which changes nothing"
    assert desk_is_up(host)
    host.ssh(SHUTDOWN_SUPERVISORD)
    repository.rename(repository.with_suffix(".cut"))  # the repository out of reach
    cut = start(RED_REPO=f"file://{repository}", RED_REF="main")
    assert cut.returncode == 0, cut.stdout[-3000:]
    assert desk_is_up(host)


def desk_is_up(host, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        states = dict(line.split()[:2] for line in host.ssh("supervisorctl status", check=False).stdout.splitlines()
                      if len(line.split()) >= 2)
        if {"xvfb", "x11vnc", "novnc"} <= set(states) and all(states[name] == "RUNNING"
                                                             for name in ("xvfb", "x11vnc", "novnc")):
            return True
        time.sleep(0.5)
    return False
