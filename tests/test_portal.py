"""The Instance Portal (issue 14), end to end on a sandbox host with access=portal: real Caddy in
front of noVNC, JupyterLab, the portal page and the logs, looked at from Debian's chromium and
from plain HTTP clients; vast's variables set in the instance's environment."""
import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from conftest import ARTIFACTS, apply, converge, shellcheck_rendered
from desktop_view import CHROMIUM, open_novnc, picture_facts
from sandbox import free_port
from test_access import run_in_kernel
from test_desktop import program_pids, wait_running
from test_foundation import CONVERGE_PROGRAMS

pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed")

TOKEN = "portal-token-0123456789abcdef"
LABEL = "C.4242"
PUBLIC_IPADDR = "203.0.113.7"  # TEST-NET-3: a documentation address, as vast's would be
USER_APP = {}  # a user's own web app on the host: the port the portal publishes it on, and its own (loopback)


def proxied_port():
    """A free port whose internal port (10000 above it) exists and is free too."""
    while True:
        port = free_port()
        if port + 10000 <= 65535:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


def wait_listening(listening, timeout=30):
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", listening), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def gate(sandbox_factory):
    """One host behind the portal, provisioned once, its token given as vast gives it."""
    ports = {"portal_port": proxied_port(), "novnc_port": proxied_port(), "jupyter_port": proxied_port()}
    USER_APP.update(port=proxied_port(), internal=free_port())
    env = {"OPEN_BUTTON_TOKEN": TOKEN, "VAST_CONTAINERLABEL": LABEL, "PUBLIC_IPADDR": PUBLIC_IPADDR,
           f"VAST_TCP_PORT_{ports['portal_port']}": "41111", f"VAST_TCP_PORT_{ports['novnc_port']}": "46901",
           f"VAST_TCP_PORT_{ports['jupyter_port']}": "48080", f"VAST_TCP_PORT_{USER_APP['port']}": "47000"}
    host = sandbox_factory.up("portal", env=env, data={"access": "portal", **ports})
    converge([host])
    wait_running(host, {"portal", "novnc", "x11vnc", "jupyter"}, timeout=30)
    for name in PUBLIC:  # RUNNING a second after its start, Caddy may still be hashing the password
        wait_listening(ports[name])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return host


def port(host, name):
    return host.info["data"][name]


def url(host, name, path="/"):
    return f"http://127.0.0.1:{port(host, name)}{path}"


def answer(address, headers=None):
    """(status, headers, body) of a GET, redirects not followed."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(address, headers=headers or {}), timeout=15) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def first_answer(address, headers, timeout=60):
    """The first answer that is not a proxy error (an app is RUNNING a moment before it listens)."""
    deadline = time.time() + timeout
    while True:
        done = answer(address, headers)
        if done[0] not in (502, 503) or time.time() > deadline:
            return done
        time.sleep(0.5)


BEARER = {"Authorization": f"Bearer {TOKEN}"}
PUBLIC = ("portal_port", "novnc_port", "jupyter_port")


def test_a_stranger_gets_401_on_every_public_port_and_each_credential_opens_it(gate):
    for name in PUBLIC:
        status, headers, _ = answer(url(gate, name))
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic"), name
        assert answer(url(gate, name, "/?token=wrong-token-123"))[0] == 401, name
        assert answer(url(gate, name), {"Authorization": "Bearer wrong-token-123"})[0] == 401, name
        assert answer(url(gate, name), {"Cookie": f"{LABEL}_auth_token=wrong-token-123"})[0] == 401, name
        assert first_answer(url(gate, name), BEARER)[0] in (200, 302), name
        basic = "Basic " + base64.b64encode(f"vastai:{TOKEN}".encode()).decode()
        assert first_answer(url(gate, name), {"Authorization": basic})[0] in (200, 302), name
    wrong_user = "Basic " + base64.b64encode(f"root:{TOKEN}".encode()).decode()
    assert answer(url(gate, "portal_port"), {"Authorization": wrong_user})[0] == 401


def test_the_portals_runner_rendered_from_its_template_passes_shellcheck(gate):
    assert shellcheck_rendered(gate, ["/usr/local/bin/red-caddy"]) == ""


def test_the_token_link_sets_a_cookie_then_the_desktop_jupyter_and_logs_open_with_it(gate, browser):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url(gate, "portal_port", f"/?from=vast&token={TOKEN}"))
        assert page.url == url(gate, "portal_port", "/?from=vast"), "the same address, without the token"
        cookie, = [c for c in context.cookies() if c["name"] == f"{LABEL}_auth_token"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["expires"] > time.time() + 6 * 86400
        shot = ARTIFACTS / "portal-desktop.png"
        session = open_novnc(context, port(gate, "novnc_port"), screenshot=shot, timeout=30)
        assert session.connected, f"noVNC through the portal, no VNC password asked: {session.status}"
        facts = picture_facts(shot)
        assert facts["background"] > 0.6 and facts["colours"] > 20, facts
        lab = context.new_page()
        lab.goto(url(gate, "jupyter_port", "/lab"))
        lab.wait_for_selector(".jp-LabShell", timeout=60000)
        logs = context.new_page()
        logs.goto(url(gate, "portal_port", "/logs/"))
        logs.wait_for_selector("text=supervisord.log", timeout=15000)
    finally:
        context.close()


def test_jupyter_through_the_portal_runs_the_app_kernel_and_a_terminal(gate):
    import websocket
    base = url(gate, "jupyter_port", "").rstrip("/")
    assert first_answer(f"{base}/api/status", BEARER)[0] == 200
    output = run_in_kernel(gate, "visomaster", "import sys; print(sys.prefix)", base=base,
                           authorization=f"Bearer {TOKEN}")
    assert output.strip().startswith("/opt/visomaster/venv"), output
    request = urllib.request.Request(f"{base}/api/terminals", method="POST", headers=BEARER)
    with urllib.request.urlopen(request, timeout=30) as response:
        terminal = json.load(response)["name"]
    channel = websocket.create_connection(f"{base}/terminals/websocket/{terminal}".replace("http", "ws", 1),
                                          header=[f"Authorization: Bearer {TOKEN}"], timeout=30)
    try:
        channel.send(json.dumps(["stdin", "echo through-the-$((6*7))-portal\r"]))
        seen, deadline = "", time.time() + 30
        while "through-the-42-portal" not in seen and time.time() < deadline:
            message = json.loads(channel.recv())
            if message[0] == "stdout":
                seen += message[1]
        assert "through-the-42-portal" in seen, seen
    finally:
        channel.close()


def portal_page(context, gate):
    page = context.new_page()
    page.set_extra_http_headers(BEARER)
    page.goto(url(gate, "portal_port"))
    return page


def test_the_portal_page_lists_the_apps_with_vast_links_and_each_program_state(gate, browser):
    context = browser.new_context()
    try:
        page = portal_page(context, gate)
        for link in (f"http://{PUBLIC_IPADDR}:46901/", f"http://{PUBLIC_IPADDR}:48080/",
                     f"http://{PUBLIC_IPADDR}:41111/logs/"):
            page.wait_for_selector(f'a[href="{link}"]', timeout=15000)
        page.wait_for_function("() => document.body.innerText.includes('novnc')", timeout=15000)
        gate.ssh("supervisorctl stop visomaster")
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('tr')].some(row => row.innerText.includes('visomaster')"
                " && row.innerText.includes('STOPPED'))", timeout=15000)
        finally:
            gate.ssh("supervisorctl start visomaster")
        page.wait_for_function(
            "() => [...document.querySelectorAll('tr')].some(row => row.innerText.includes('visomaster')"
            " && row.innerText.includes('RUNNING'))", timeout=15000)
    finally:
        context.close()


def test_the_portal_page_shows_red_doctors_findings_and_what_to_do(gate, browser):
    status, _, body = first_answer(url(gate, "portal_port", "/status/doctor.json"), BEARER)
    assert status == 200 and json.loads(body)["summary"]["gpu"] == "warn", body[:500]
    assert answer(url(gate, "portal_port", "/status/doctor.json"))[0] == 401, "behind the portal's check"
    context = browser.new_context()
    try:
        page = portal_page(context, gate)
        page.wait_for_function("() => [...document.querySelectorAll('#health tr')].some(row => "
                               "row.innerText.includes('gpu') && row.innerText.includes('warn'))", timeout=15000)
        finding = page.locator("#health li", has_text="no GPU").inner_text()
        assert "What to do: rent an offer with an NVIDIA GPU" in finding
    finally:
        context.close()


def test_the_logs_follow_a_new_line_and_reach_nothing_outside_logs_dir(gate, browser):
    line = f"a line written at {time.time()}"
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_extra_http_headers(BEARER)
        page.goto(url(gate, "portal_port", "/logs/?file=supervisord.log&follow=1"))
        page.wait_for_function("() => document.querySelector('pre') && document.querySelector('pre').innerText.length")
        gate.ssh(f"echo '{line}' >> /logs/supervisord.log")
        page.wait_for_function(f"() => document.querySelector('pre').innerText.includes({json.dumps(line)})",
                               timeout=10000)
    finally:
        context.close()
    gate.ssh("ln -sf /etc/shadow /logs/shadow.log")
    try:
        status, _, body = answer(url(gate, "portal_port", "/logs/files/shadow.log"), BEARER)
        assert status in (403, 404) and b"root:" not in body, (status, body[:200])
    finally:
        gate.ssh("rm -f /logs/shadow.log")
    for path in ("/logs/files/../../etc/passwd", "/logs/files/..%2f..%2fetc/passwd",
                 "/logs/files/%2e%2e/%2e%2e/etc/passwd"):
        connection = http.client.HTTPConnection("127.0.0.1", port(gate, "portal_port"), timeout=15)
        connection.request("GET", path, headers=BEARER)
        body = connection.getresponse().read()
        assert b"root:x:0:0" not in body, path


def listening_beyond_loopback(host):
    """(port, program) of every TCP socket the host's processes listen on, other than on loopback."""
    rootfs = os.path.realpath(host.sandbox.rootfs)
    found = set()
    for line in subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout.splitlines():
        fields = line.split()
        address, _, listening = fields[3].rpartition(":")
        if address.strip("[]").startswith(("127.", "::1")):
            continue
        users = fields[5] if len(fields) > 5 else ""  # no process shown: not one of this machine's namespaces
        for pid in [part.split("=")[1] for part in users.split(",") if part.startswith("pid=")]:
            try:
                if os.path.realpath(f"/proc/{pid}/root") == rootfs:
                    found.add((int(listening), open(f"/proc/{pid}/comm").read().strip()))
            except OSError:
                pass
    return found


def outside_address():
    """This machine's address other than loopback (the sandbox shares its network)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: it only picks the outgoing address
        return probe.getsockname()[0]


def test_from_outside_only_caddy_and_sshd_listen_and_each_refuses_a_stranger(gate):
    found = listening_beyond_loopback(gate)
    expected = {(port(gate, name), "caddy") for name in PUBLIC} | {(port(gate, "sshd_port"), "sshd")}
    assert found == expected
    address = outside_address()
    for name in PUBLIC:
        assert answer(f"http://{address}:{port(gate, name)}/")[0] == 401, name
    refused = subprocess.run(["ssh", "-p", str(port(gate, "sshd_port")), "-o", "BatchMode=yes",
                              "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                              f"root@{address}", "true"], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr


def test_the_token_is_in_no_log_process_list_or_world_readable_file(gate):
    answer(url(gate, "portal_port", f"/?token={TOKEN}"), {"Accept": "text/html"})  # logged, without its query
    assert gate.ssh("ps -eo args").stdout.count(TOKEN) == 0
    holders = gate.ssh(f"grep -rlF {TOKEN} /etc /var /opt /usr/local /run /tmp /home /logs /workspace 2>/dev/null",
                       check=False).stdout.split()
    # OPEN_BUTTON_TOKEN is Jupyter's token too, as on vast
    assert sorted(holders) == ["/etc/red/jupyter-token", "/etc/red/portal-token"], holders
    assert gate.ssh("stat -c %a:%U /etc/red /etc/red/portal-token /etc/red/jupyter-token").stdout.split() == \
        ["700:root", "600:root", "600:root"]


def users_app(host):
    """A user's own web app on 127.0.0.1 (not Red's): its pid."""
    return host.ssh(f"mkdir -p /tmp/notes && echo 'my notes app' > /tmp/notes/index.html && cd /tmp/notes && "
                    f"{{ setsid python3 -m http.server --bind 127.0.0.1 {USER_APP['internal']} "
                    f">/dev/null 2>&1 & echo $!; }}").stdout.strip()


def apps_listed(host):
    return json.loads(host.ssh("cat /etc/red-portal/apps.json").stdout)


def test_a_users_app_in_either_portal_config_form_is_proxied_listed_and_reloads_caddy_alone(gate, browser):
    portal, app, internal = port(gate, "portal_port"), USER_APP["port"], USER_APP["internal"]
    vast_form = f"localhost:{app}:{internal}:/:Notes|localhost:{portal}:{portal}:/logs/:Every log"
    json_form = json.dumps({"version": 2, "port": 11111, "services": [
        {"name": "Notes", "uri": "/", "port": app, "internal_port": internal, "proto": "http", "auth": True},
        {"name": "Every log", "uri": "/logs/", "port": portal}]})
    pid, before = users_app(gate), program_pids(gate)
    context = browser.new_context()
    context.add_cookies([{"name": f"{LABEL}_auth_token", "value": TOKEN, "url": url(gate, "portal_port")}])
    pages = []
    try:
        session = open_novnc(context, port(gate, "novnc_port"), timeout=30, keep=pages)
        assert session.connected, session.status
        run = converge([gate], "--data", f"portal_config={vast_form}", "--data", "web_username=someone")
        assert run.changed(gate) == ["Portal | Portal apps", "Portal | Caddy configuration",
                                     "Red on the instance | Settings for the start phase (/etc/red/settings.json)",
                                     "Diagnostics | What red-doctor checks (/etc/red-doctor.json)", CONVERGE_PROGRAMS]
        listed = apps_listed(gate)
        assert {"name": "Notes", "port": app, "path": "/", "url": f"http://{PUBLIC_IPADDR}:47000/"} in listed
        assert {"name": "Every log", "port": portal, "path": "/logs/", "url": f"http://{PUBLIC_IPADDR}:41111/logs/"} \
            in listed
        assert answer(f"http://127.0.0.1:{app}/")[0] == 401, "the user's app is behind the portal's check"
        status, _, body = first_answer(f"http://127.0.0.1:{app}/", BEARER)
        assert (status, body) == (200, b"my notes app\n")
        basic = "Basic " + base64.b64encode(f"someone:{TOKEN}".encode()).decode()
        assert first_answer(url(gate, "portal_port"), {"Authorization": basic})[0] == 200, "the new name works"
        assert program_pids(gate) == before, "no program restarted, Caddy included"
        time.sleep(2)
        assert pages[0].evaluate("() => document.documentElement.classList.contains('noVNC_connected')"), \
            "the desktop session stayed connected"
        page = portal_page(context, gate)
        page.wait_for_selector(f'a[href="http://{PUBLIC_IPADDR}:47000/"]', timeout=15000)
        run = converge([gate], "--data", f"portal_config={json_form}", "--data", "web_username=someone")
        assert run.changed(gate) == [], "the JSON form gives the same apps, saved as the same value"
        assert apps_listed(gate) == listed
        broken = apply([gate], "--data", f"portal_config={vast_form}|localhost:nope:1:/:Broken")
        assert broken.returncode != 0
        assert [line for line in broken.stderr.splitlines() if line.startswith("red: ")] == [
            "red: setting portal_config (from --data) is not allowed: entry 'localhost:nope:1:/:Broken': "
            "external port 'nope' is not a port (1 to 65535)"]
        assert apps_listed(gate) == listed, "a refused value changes nothing"
    finally:
        context.close()
        gate.ssh(f"kill {pid}")
        converge([gate])


def test_ports_held_by_processes_red_did_not_start_are_reported_and_left_to_them(gate):
    """vast's SSH and Jupyter launch modes run their own sshd and Jupyter: stand-ins for both."""
    jupyter, sshd = proxied_port(), free_port()
    pids = gate.ssh(f"mkdir -p /tmp/their-jupyter && echo theirs > /tmp/their-jupyter/index.html && "
                    f"cd /tmp/their-jupyter && {{ setsid python3 -m http.server {jupyter} >/dev/null 2>&1 & echo $!; }}"
                    f" && {{ setsid /usr/sbin/sshd -D -p {sshd} -o PidFile=none >/dev/null 2>&1 & echo $!; }}"
                    ).stdout.split()
    try:
        for held in (jupyter, sshd):
            wait_listening(held)
        run = converge([gate], "--data", f"jupyter_port={jupyter}", "--data", f"sshd_port={sshd}")
        said = [line for line in run.stderr.splitlines() if "which Red did not start" in line]
        assert [line.split("] ", 1)[1] for line in said] == [
            f"port {sshd} is held by sshd (pid {pids[1]}), which Red did not start: Red leaves SSH to it",
            f"port {jupyter} is held by python3 (pid {pids[0]}), which Red did not start: Red leaves Jupyter to it"]
        programs = set(gate.ssh("supervisorctl status | cut -d' ' -f1").stdout.split())
        assert "jupyter" not in programs and "sshd" not in programs and "novnc" in programs
        assert answer(f"http://127.0.0.1:{jupyter}/")[:3:2] == (200, b"theirs\n"), "Caddy did not take the port"
        assert {"name": "Jupyter", "port": jupyter, "path": "/", "url": None} in apps_listed(gate), \
            "the portal links the Jupyter that runs"
        again = converge([gate], "--data", f"jupyter_port={jupyter}", "--data", f"sshd_port={sshd}")
        assert again.changed(gate) == [], "nothing fought over"
    finally:
        gate.ssh(f"kill {' '.join(pids)}")
        converge([gate])
        wait_running(gate, {"jupyter", "sshd"}, timeout=30)


def test_a_second_apply_changes_nothing(gate):
    assert converge([gate]).changed(gate) == []
