"""The browser desktop, end to end: a sandbox host over SSH, real Xvfb, window manager, x11vnc and
noVNC under supervisor, looked at from Debian's chromium."""
import shutil
import socket
import time

import pytest
from conftest import ARTIFACTS, converge, stopped_since, supervisord_log_size
from test_foundation import CONVERGE_PROGRAMS
from desktop_view import CHROMIUM, open_novnc, picture_facts, vnc_security_types

DESKTOP_PROGRAMS = {"xvfb", "window-manager", "x11vnc", "novnc"}
PASSWORD_FILE = "/etc/red/vnc-password"

pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def desk(provisioned):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return provisioned


def ports(host):
    return host.info["data"]["vnc_port"], host.info["data"]["novnc_port"]


def password(host):
    return host.path(PASSWORD_FILE).read_text().strip()


def program_pids(host):
    """name -> pid of every RUNNING supervisor program."""
    status = host.ssh("supervisorctl status", check=False).stdout
    return {line.split()[0]: int(line.split("pid ")[1].split(",")[0])
            for line in status.splitlines() if " RUNNING " in f" {line} "}


def wait_running(host, names, exclude_pids=(), timeout=15):
    """Wait until the programs are RUNNING (with new pids) and, if x11vnc is among them, it answers."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = program_pids(host)
        if set(names) <= set(pids) and not set(exclude_pids) & {pids[name] for name in names}:
            if "x11vnc" not in names or vnc_answers(ports(host)[0]):
                return pids
        time.sleep(0.2)
    status = host.ssh("supervisorctl status", check=False).stdout
    raise AssertionError(f"not all of {names} RUNNING again within {timeout}s: {status}")


def vnc_answers(port):
    """True once the VNC server greets a client (with its RFB version)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            return conn.recv(12).startswith(b"RFB ")
    except OSError:
        return False


def window_manager_name(host):
    return host.ssh("DISPLAY=:1 wmctrl -m").stdout.splitlines()[0]


def assert_desktop(host, browser, shot_name, password_to_type):
    shot = ARTIFACTS / shot_name
    session = open_novnc(browser, ports(host)[1], password_to_type, screenshot=shot)
    assert session.connected, session.status
    facts = picture_facts(shot)
    assert facts["black"] < 0.05, f"a black screen: {facts}"
    assert facts["background"] > 0.6, f"not the desktop's background: {facts}"
    assert facts["colours"] > 20, f"no toolbar or text on the desktop: {facts}"
    return session


def test_the_desktop_is_locked_and_shows_the_window_manager(desk, browser):
    wait_running(desk, DESKTOP_PROGRAMS)
    assert desk.ssh(f"stat -c '%U %a' {PASSWORD_FILE}").stdout.split() == ["root", "600"]
    assert len(password(desk)) == 8
    session = assert_desktop(desk, browser, "desktop.png", password(desk))
    assert session.framebuffer == (1920, 1080)
    assert window_manager_name(desk) == "Name: Fluxbox"
    menu = desk.path("/home/red/.fluxbox/menu").read_text()
    assert "(Terminal) {xterm" in menu


def test_a_wrong_password_is_refused_and_raw_vnc_needs_one(desk, browser):
    session = open_novnc(browser, ports(desk)[1], "wrong-pw")
    assert not session.connected
    assert 1 not in vnc_security_types(ports(desk)[0]), "the raw VNC port lets a client in without a password"
    assert 2 in vnc_security_types(ports(desk)[0])


def test_the_password_is_in_no_log_process_list_or_world_readable_file(desk):
    secret = password(desk)
    assert secret not in desk.ssh("cat /logs/*.log").stdout
    assert secret not in desk.ssh("ps -eo args").stdout
    leaked = desk.ssh(f"grep -rlF -- '{secret}' /etc /opt /home /logs /tmp /root /usr/local 2>/dev/null "
                      "| xargs -r stat -c '%a %n'", check=False).stdout.split("\n")
    assert [line for line in leaked if line and not line.startswith("600 ")] == []


def test_x11vnc_killed_is_back_and_novnc_connects_again(desk, browser):
    before = program_pids(desk)["x11vnc"]
    desk.ssh(f"kill -9 {before}")
    wait_running(desk, ["x11vnc"], exclude_pids=[before])
    assert open_novnc(browser, ports(desk)[1], password(desk)).connected


def test_xvfb_killed_brings_the_whole_desktop_back(desk, browser):
    before = program_pids(desk)
    desk.ssh(f"kill -9 {before['xvfb']}")
    wait_running(desk, ["xvfb"], exclude_pids=[before["xvfb"]])
    wait_running(desk, DESKTOP_PROGRAMS)
    assert_desktop(desk, browser, "desktop-after-xvfb-restart.png", password(desk))
    assert window_manager_name(desk) == "Name: Fluxbox"


def test_a_second_apply_changes_nothing(desk):
    assert converge([desk]).changed(desk) == []


def test_a_changed_resolution_restarts_only_the_desktop_and_shows_the_new_size(desk, browser):
    before = program_pids(desk)
    run = converge([desk], "--data", "vnc_resolution=1280x720")
    assert run.changed(desk) == [
        "Desktop | Supervisor program xvfb",
        "Red on the instance | Settings for the start phase (/etc/red/settings.json)",
        CONVERGE_PROGRAMS,
    ]
    after = wait_running(desk, DESKTOP_PROGRAMS,
                         exclude_pids=[before["xvfb"], before["window-manager"], before["x11vnc"]])
    assert after["novnc"] == before["novnc"], "noVNC does not use the display: it keeps running"
    session = assert_desktop(desk, browser, "desktop-1280x720.png", password(desk))
    assert session.framebuffer == (1280, 720)
    converge([desk])  # back to the default
    wait_running(desk, DESKTOP_PROGRAMS)


def test_a_given_password_restarts_x11vnc_alone_and_never_shows(desk, browser):
    before, log_size = program_pids(desk), supervisord_log_size(desk)
    run = converge([desk], "--data", "vnc_password=given-secret-1")
    assert "given-secret-1" not in run.stdout + run.stderr
    assert run.changed(desk) == ["Desktop | VNC password (given)", CONVERGE_PROGRAMS]
    wait_running(desk, DESKTOP_PROGRAMS, exclude_pids=[before["x11vnc"]])
    assert stopped_since(desk, log_size) == {"x11vnc"}, "Red restarted x11vnc and nothing else"
    assert open_novnc(browser, ports(desk)[1], "given-se").connected, "VNC checks the first 8 characters"
    assert not open_novnc(browser, ports(desk)[1], "the-old-one").connected
    assert converge([desk], "--data", "vnc_password=given-secret-1").changed(desk) == []


def test_passwordless_opens_it_and_the_apply_warns(desk, browser):
    before = program_pids(desk)
    run = converge([desk], "--data", "vnc_passwordless=true")
    assert "VNC and noVNC have no password (vnc_passwordless): they listen on 127.0.0.1 only" in run.stderr
    wait_running(desk, DESKTOP_PROGRAMS, exclude_pids=[before["x11vnc"]])
    assert 1 in vnc_security_types(ports(desk)[0])
    assert open_novnc(browser, ports(desk)[1], password=None).connected
    opened = program_pids(desk)
    locked = converge([desk])
    assert "vnc_passwordless" not in locked.stderr
    wait_running(desk, DESKTOP_PROGRAMS, exclude_pids=[opened["x11vnc"]])
    assert 1 not in vnc_security_types(ports(desk)[0])
