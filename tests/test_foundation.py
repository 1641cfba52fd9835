"""The foundation, end to end: real sandbox hosts over real SSH, real supervisord."""
import json
import re
import subprocess
import sys
import threading
import time

import pytest
from conftest import PROJECT, SHUTDOWN_SUPERVISORD, apply, converge, shellcheck_rendered

from tasks.settings import SETTINGS

MAIN_CONFIG = "/etc/supervisor/supervisord.conf"
CONVERGE_PROGRAMS = ("Supervisor programs | Start supervisord, or reload it, or update and restart the programs "
                     "that changed or stopped")
# what an apply manages, compared file by file (not /logs: running services write there at any time)
MANAGED_TREES = ("/etc", "/opt/red", "/data", "/usr/sbin")


def supervisor_programs(host):
    """name -> state, from `supervisorctl status` on the host."""
    done = host.ssh("supervisorctl status", check=False)
    assert "refused" not in done.stdout + done.stderr and "no such file" not in done.stdout.lower(), done.stdout
    return dict(line.split()[:2] for line in done.stdout.splitlines() if line.strip())


def test_first_apply_builds_the_desk(provisioned):
    host = provisioned
    assert host.ssh("supervisorctl pid").stdout.strip().isdigit()
    assert host.ssh("stat -c '%U:%G %a' /data").stdout.split() == ["root:red", "2775"], "WORKSPACE from the instance"
    assert host.ssh("stat -c '%U:%G %a' /logs").stdout.split() == ["root:root", "755"]
    assert host.ssh("su red -c 'touch /logs/written-by-red'", check=False).returncode != 0, \
        "root's supervisord writes the logs: the desktop user may not put a link in their place"
    assert host.path("/logs/supervisord.log").exists()
    config = host.path(MAIN_CONFIG).read_text()
    assert "childlogdir=/logs" in config and "logfile_maxbytes=10485760" in config
    assert host.ssh("dpkg-query -W -f '${Status}' supervisor git").stdout.count("install ok installed") == 2
    saved = json.loads(host.path("/etc/red/settings.json").read_text())
    assert "workspace" not in saved, "a value from the instance's environment is not frozen into the image"
    assert host.ssh("stat -c %a /etc/red/settings.json").stdout.strip() == "600"
    assert host.ssh("/opt/red/venv/bin/pyinfra --version").stdout.startswith("pyinfra")


def test_second_apply_changes_nothing(provisioned):
    run = converge([provisioned])
    assert run.changed(provisioned) == []
    assert len(run.unchanged(provisioned)) >= 10
    assert run.report["results"]["totals"]["success"] == 0


def test_the_shell_red_renders_from_its_templates_passes_shellcheck(provisioned):
    rendered = ["/usr/local/bin/red-window-manager", "/usr/local/bin/red-visomaster"]
    assert shellcheck_rendered(provisioned, rendered) == ""


def test_hosts_named_on_the_command_line_get_the_same_defaults(provisioned):
    info = provisioned.info
    done = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", "--json", "127.0.0.1", "deploy.py", "--ssh-port", str(info["port"]),
         "--ssh-user", "root", "--ssh-key", info["key"], "--data", "ssh_known_hosts_file=/dev/null",
         "--data", "ssh_strict_host_key_checking=no",
         *[f"--data={name}={value if isinstance(value, str) else json.dumps(value)}"
           for name, value in info["data"].items()]],
        cwd=PROJECT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["results"]["totals"]["success"] == 0


@pytest.mark.parametrize("drift, expected", [
    ("echo '; edited' >> /etc/supervisor/supervisord.conf",
     ["Supervisor | Supervisor main configuration",
      CONVERGE_PROGRAMS]),
    ("rm /usr/sbin/policy-rc.d",
     ["System | Keep package installs from starting services (supervisor runs them)"]),
    ("chmod 700 /logs", ["System | Logs directory"]),
    # dpkg killed in the middle of an install leaves its journal: finished before the next install
    ("mkdir -p /var/lib/dpkg/updates && : > /var/lib/dpkg/updates/0001",
     ["System | Finish an interrupted package install"]),
])
def test_drift_is_repaired_and_only_that(provisioned, drift, expected):
    before = provisioned.path(MAIN_CONFIG).read_text()
    provisioned.ssh(drift)
    run = converge([provisioned])
    assert run.changed(provisioned) == expected
    assert provisioned.path(MAIN_CONFIG).read_text() == before
    assert provisioned.ssh("stat -c %a /logs /usr/sbin/policy-rc.d").stdout.split() == ["755", "755"]
    assert converge([provisioned]).changed(provisioned) == []


@pytest.mark.parametrize("name, value, allowed", [
    ("logs_dir", "relative/logs", SETTINGS["logs_dir"].kind.allowed),
    ("workspace", "/srv/$(touch /tmp/x)", SETTINGS["workspace"].kind.allowed),
    ("phase", "deploy", "one of provision, build, start"),
    ("log_backups", "many", "a number of rotated files to keep, 0 to 100"),
])
def test_a_bad_setting_stops_with_one_line_and_changes_nothing(provisioned, name, value, allowed):
    before = provisioned.digests(*MANAGED_TREES)
    run = apply([provisioned], "--data", f"{name}={value}")
    assert run.returncode != 0
    lines = [line for line in run.stderr.splitlines() if line.startswith("red: ")]
    assert lines == [f"red: setting {name} = {value!r} (from --data) is not allowed: expected {allowed}"]
    assert provisioned.digests(*MANAGED_TREES) == before


def planned_changes(output, host):
    """Operations the dry run's "Detected changes" table marks as changing on the host
    (its Change column; conditional ones only run when what they follow changed)."""
    table = output.split("Detected changes:", 1)[1].split("Detected changes may not", 1)[0]
    rows = [re.match(r"\s*(.+?)\s{2,}(\S.*?)\s{2,}(\S.*?)\s*$", line) for line in table.splitlines()]
    return [row.group(1) for row in rows if row and f"({host.name})" in row.group(2)]


def test_dry_run_reports_nothing_then_shows_the_diff_of_a_changed_template(provisioned):
    command = [sys.executable, "-m", "pyinfra", "--dry", "--diff", "inventory.py", "deploy.py"]
    env = {"RED_HOSTS": json.dumps([provisioned.info]), "PATH": "/usr/bin:/bin"}
    quiet = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True)
    assert quiet.returncode == 0, quiet.stderr
    assert planned_changes(quiet.stdout + quiet.stderr, provisioned) == []
    before = provisioned.digests(*MANAGED_TREES)
    changed = subprocess.run(command + ["--data", "log_backups=7"], cwd=PROJECT, env=env,
                             capture_output=True, text=True)
    output = changed.stdout + changed.stderr
    assert changed.returncode == 0, output
    assert re.search(r"Will modify /etc/supervisor/supervisord.conf\n.*\n(.*\n)*?\s+- logfile_backups=5\n"
                     r"\s+\+ logfile_backups=7\n", output), output
    planned = planned_changes(output, provisioned)
    assert {"Supervisor | Supervisor main configuration",
            "Red on the instance | Settings for the start phase (/etc/red/settings.json)"} <= set(planned)
    assert all("Supervisor" in name or "Settings" in name for name in planned), planned
    assert provisioned.digests(*MANAGED_TREES) == before


def test_two_hosts_with_different_settings_in_one_run_each_get_their_own(sandbox_factory, provisioned):
    xvfb = "/etc/supervisor/conf.d/red-xvfb.conf"
    second = sandbox_factory.up("b", data={"vnc_resolution": "1280x720"})
    run = converge([provisioned, second])
    assert run.changed(provisioned) == []
    assert CONVERGE_PROGRAMS in run.changed(second)
    assert second.ssh("stat -c %a /workspace").stdout.strip() == "2775", "no WORKSPACE there: the default"
    assert "1280x720x24" in second.path(xvfb).read_text() and "1920x1080x24" in provisioned.path(xvfb).read_text()
    assert converge([provisioned, second]).report["results"]["totals"]["success"] == 0
    # one input changed for one host: only that host's items change (what a run renders once is keyed by it)
    second.info["data"]["vnc_resolution"] = "1024x768"
    run = converge([provisioned, second])
    assert run.changed(provisioned) == []
    assert "Desktop | Supervisor program xvfb" in run.changed(second), run.changed(second)
    assert "1024x768x24" in second.path(xvfb).read_text() and "1920x1080x24" in provisioned.path(xvfb).read_text()
    assert converge([provisioned, second]).report["results"]["totals"]["success"] == 0


def test_onstart_leaves_supervisord_running_with_every_program_running(provisioned):
    host = provisioned
    host.ssh(SHUTDOWN_SUPERVISORD)
    done = host.ssh("/opt/red/onstart.sh")
    assert "Grand total" in done.stdout + done.stderr
    deadline = time.time() + 15
    while not all(state == "RUNNING" for state in supervisor_programs(host).values()) and time.time() < deadline:
        time.sleep(0.2)
    programs = supervisor_programs(host)
    assert {"xvfb", "window-manager", "x11vnc", "novnc"} <= set(programs)
    assert all(state == "RUNNING" for state in programs.values()), programs
    assert host.ssh("supervisorctl status", check=False).returncode == 0
    # two starts at once: both succeed, one supervisord
    both = host.ssh("/opt/red/onstart.sh >/tmp/one.log 2>&1 & other=$!; /opt/red/onstart.sh >/tmp/two.log 2>&1; "
                    "first=$?; wait $other; echo $first $?")
    assert both.stdout.split() == ["0", "0"]
    assert host.ssh("ps -eo comm= | grep -c '^supervisord$'").stdout.strip() == "1"
    assert converge([host]).changed(host) == [], "onstart.sh's start phase did not drift the provisioned host"


def test_a_provision_waits_while_onstart_holds_the_target_and_both_succeed(provisioned):
    host = provisioned
    ended = {}

    def onstart():
        ended["onstart"] = (host.ssh("/opt/red/onstart.sh >/tmp/onstart.log 2>&1; echo $?").stdout.strip(),
                            time.monotonic())
    starting = threading.Thread(target=onstart)
    starting.start()
    deadline = time.time() + 30
    while host.ssh("flock -n /run/red.lock true", check=False).returncode == 0:
        assert time.time() < deadline and starting.is_alive(), "onstart.sh never held the lock"
        time.sleep(0.05)
    provision = apply([host])
    provision_ended = time.monotonic()
    starting.join()
    assert provision.returncode == 0, provision.stderr[-3000:]
    assert ended["onstart"][0] == "0", host.path("/tmp/onstart.log").read_text()[-3000:]
    assert provision_ended > ended["onstart"][1], "the provision ran while onstart.sh held the target"
    # the provision's lock ends with its connection (its holder looks twice a second)
    assert host.ssh("flock -w 5 /run/red.lock true", check=False).returncode == 0, "the lock is free after the run"
    assert converge([host]).changed(host) == []
