"""One snapshot per run (issue 8): a no-op apply sends almost nothing, drift is still repaired,
and the snapshot off and on change the same things. Counted on a real sandbox host over SSH."""
import hashlib
import os
import subprocess
import sys

import pytest
from conftest import converge
from test_foundation import CONVERGE_PROGRAMS

from tasks.facts import FirstLook, parse_snapshot, snapshot_command

SNAPSHOT_SCRIPT = "Snapshot script for the next run"

TWENTY_FILES = ("deploy.py", "tests/deploys/twenty_files.py")
# what the snapshot-off/on comparison looks at: content and mode of every file Red manages
COMPARED = ("/etc/supervisor", "/etc/red", "/usr/local/bin", "/usr/sbin/policy-rc.d", "/home/red/.fluxbox",
            "/opt/red/.red-release.tar", "/usr/share/novnc/index.html")


def test_the_snapshot_command_reports_what_this_machine_has(tmp_path):
    """The command on this machine's own sh, coreutils, dpkg and getent, on files made here."""
    (tmp_path / "file").write_text("content\n")
    (tmp_path / "file").chmod(0o640)
    (tmp_path / "empty").write_text("")
    (tmp_path / "empty").chmod(0o600)
    (tmp_path / "folder").mkdir(mode=0o2775)
    (tmp_path / "folder").chmod(0o2775)
    (tmp_path / "folder" / "red-a.conf").write_text("")
    (tmp_path / "folder" / "other.conf").write_text("")
    paths = [str(tmp_path / name) for name in ("file", "empty", "folder", "missing")]
    command = snapshot_command(paths, [paths[0], paths[1], paths[3]], ["dpkg", "surely-not-a-package"],
                               ["root"], [(str(tmp_path / "folder"), "red-*.conf")], ())
    output = subprocess.run(command, shell=True, capture_output=True, text=True, check=True).stdout
    seen = parse_snapshot(output.splitlines())
    owner = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True).stdout.strip()
    assert seen["paths"] == {paths[0]: ("file", 640, owner, group), paths[1]: ("file", 600, owner, group),
                             paths[2]: ("directory", 2775, owner, group)}
    assert seen["sha256"] == {paths[0]: hashlib.sha256(b"content\n").hexdigest(),
                              paths[1]: hashlib.sha256(b"").hexdigest()}
    assert seen["packages"] == {"dpkg": True}
    assert seen["users"] == {"root": ("/root", subprocess.run(["getent", "passwd", "root"], capture_output=True,
                                                               text=True).stdout.strip().split(":")[6])}
    assert seen["lists"] == {f"{tmp_path}/folder/red-*.conf": [f"{tmp_path}/folder/red-a.conf"]}
    assert seen["supervisord"] is None


def test_the_first_look_splits_the_environment_the_distribution_and_the_saved_snapshot():
    look = FirstLook().process(["WORKSPACE=/data", "VNC_PW=a=b", "@os-release", 'ID=debian', 'VERSION_ID="12"',
                                "@snapshot", "@request abc", "@stat", "/etc\tdirectory\t755\troot\troot"])
    assert look["environment"] == {"WORKSPACE": "/data", "VNC_PW": "a=b"}
    assert look["os_release"] == {"ID": "debian", "VERSION_ID": "12"}
    assert look["snapshot"]["request"] == "abc"
    assert look["snapshot"]["paths"] == {"/etc": ("directory", 755, "root", "root")}
    assert FirstLook().process(["WORKSPACE=/data", "@os-release"])["snapshot"] is None


def test_the_first_look_keeps_every_line_of_a_variable(tmp_path):
    """PUBLIC_KEY may hold several keys, one per line: the command escapes them, the parser restores them."""
    environ = tmp_path / "environ"
    environ.write_bytes(b"PUBLIC_KEY=ssh-ed25519 AAAA one\nssh-ed25519 BBBB two\\x\0PATH=/bin\0WORKSPACE=/data\0")
    command = FirstLook().command(["PUBLIC_KEY", "WORKSPACE"]).replace("/proc/1/environ", str(environ))
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    look = FirstLook().process(output.splitlines())
    assert look["environment"] == {"PUBLIC_KEY": "ssh-ed25519 AAAA one\nssh-ed25519 BBBB two\\x", "WORKSPACE": "/data"}


def test_the_first_look_hands_over_a_saved_snapshot_whole_in_as_few_writes_as_its_size_needs(tmp_path):
    """Each of a snapshot's steps writes on its own (each write a packet of its own over SSH); the first
    look sends its output when it ends, in blocks of a MiB (strace counts the writes): every line of
    the steps, in order, a last one without a newline too."""
    script, out, trace = tmp_path / "snapshot", tmp_path / "out", tmp_path / "trace"
    script.write_text("#!/bin/sh\necho @request abc\necho @stat; seq 1 200000; echo @dpkg; printf 'last'\n")
    script.chmod(0o755)
    command = FirstLook().command(["WORKSPACE"], script=str(script))
    with out.open("wb") as stdout:
        subprocess.run(["strace", "-f", "-qq", "-y", "-e", "trace=write", "-e", "signal=none", "-o", str(trace),
                        "sh", "-c", command], stdout=stdout, check=True)
    output = out.read_bytes()
    lines = output.decode().split("\n")
    assert lines[lines.index("@snapshot"):] == ["@snapshot", "@request abc", "@stat", *map(str, range(1, 200001)),
                                                "@dpkg", "last"]
    writes = [line for line in trace.read_text().splitlines() if f"<{out}>" in line]
    assert len(output) > 1 << 20 and len(writes) == -(-len(output) // (1 << 20))


def test_the_first_look_names_who_listens_on_each_port_and_which_descend_from_reds_supervisord(tmp_path):
    """A listener under a supervisord started with the given configuration is Red's; any other is not."""
    config = str(tmp_path / "supervisord.conf")
    serve = ("import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
             "print(s.getsockname()[1], flush=True); time.sleep(60)")
    supervisord = tmp_path / "supervisord"  # a parent named as supervisord is, with the configuration in its argv
    supervisord.write_text('#!/bin/sh\n"$PYTHON" -c "$SERVE"\n')
    supervisord.chmod(0o755)
    theirs = subprocess.Popen([sys.executable, "-c", serve], stdout=subprocess.PIPE, text=True)
    ours = subprocess.Popen([str(supervisord), "-c", config], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHON": sys.executable, "SERVE": serve})
    try:
        their_port, our_port = int(theirs.stdout.readline()), int(ours.stdout.readline())
        command = FirstLook().command(["WORKSPACE"], supervisor_config=config)
        output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
        listeners = {int(seen["port"]): seen for seen in FirstLook().process(output.splitlines())["listeners"]}
        assert (listeners[their_port]["pid"], listeners[their_port]["owner"]) == (str(theirs.pid), "-")
        assert listeners[their_port]["command"].startswith("python")
        assert listeners[our_port]["owner"] == "red" and listeners[our_port]["command"].startswith("python")
    finally:
        theirs.kill()
        subprocess.run(["pkill", "-P", str(ours.pid)], check=False)  # the listener, then its parent
        ours.kill()


def test_a_no_op_apply_sends_at_most_three_commands_and_lists_every_operation(provisioned):
    run = converge([provisioned])
    assert run.sent(provisioned) <= 3
    assert run.changed(provisioned) == []
    operations = run.report["results"]["operations"]
    assert len(run.unchanged(provisioned)) == len(operations) >= 20


def test_twenty_more_managed_files_send_no_more_commands(provisioned):
    plain = converge([provisioned])
    try:
        first = converge([provisioned], deploys=TWENTY_FILES)
        assert first.changed(provisioned) == [SNAPSHOT_SCRIPT] + [f"Twenty files: {number:02}" for number in range(20)]
        again = converge([provisioned], deploys=TWENTY_FILES)
        assert again.changed(provisioned) == []
        assert len(again.unchanged(provisioned)) == len(plain.unchanged(provisioned)) + 20
        assert again.sent(provisioned) == plain.sent(provisioned) <= 3
    finally:
        provisioned.ssh("rm -rf /etc/red-twenty")
        assert converge([provisioned]).changed(provisioned) == [SNAPSHOT_SCRIPT]


DRIFTS = [
    ("a managed template edited", "echo '; edited' >> /etc/supervisor/conf.d/red-novnc.conf",
     ["Desktop | Supervisor program novnc", CONVERGE_PROGRAMS]),
    ("a file's mode changed", "chmod 700 /usr/local/bin/red-wait-display",
     ["Desktop | Wait-for-display wrapper"]),
    ("a managed file deleted", "rm /home/red/.fluxbox/menu",
     ["Desktop | Window manager: menu", CONVERGE_PROGRAMS]),
    ("a package removed", "dpkg -r wmctrl",
     ["Desktop | Desktop packages"]),
    ("a supervisor program stopped", "supervisorctl stop novnc",
     [CONVERGE_PROGRAMS]),
    ("the checkout moved to another commit", "su red -c 'git -C /data/VisoMaster checkout --quiet --detach v0.1.0'",
     ["VisoMaster | Checkout at main", CONVERGE_PROGRAMS]),
]


@pytest.mark.parametrize("drift, expected", [(command, expected) for _, command, expected in DRIFTS],
                         ids=[name for name, _, _ in DRIFTS])
def test_each_drift_is_repaired_by_the_next_apply_and_only_that(provisioned, drift, expected):
    assert converge([provisioned]).sent(provisioned) <= 3, "the run before the drift used the snapshot"
    provisioned.ssh(drift)
    repaired = converge([provisioned])
    assert repaired.changed(provisioned) == expected
    assert converge([provisioned]).changed(provisioned) == []
    assert provisioned.ssh("supervisorctl status", check=False).returncode == 0, "every program runs again"


def test_snapshot_off_and_on_change_the_same_operations_and_leave_the_same_files(provisioned):
    drifts = "; ".join(command for _, command, _ in DRIFTS) + "; echo '# edited' >> /etc/supervisor/supervisord.conf"
    results = {}
    for snapshot in ("false", "true"):
        provisioned.ssh(drifts)
        run = converge([provisioned], "--data", f"snapshot={snapshot}")
        results[snapshot] = (run.changed(provisioned), provisioned.ssh(
            f"find {' '.join(COMPARED)} -type f -exec sha256sum {{}} + | sort; "
            f"find {' '.join(COMPARED)} -printf '%p %m %u %g\\n' | sort; dpkg-query -W wmctrl; "
            "git -c safe.directory='*' -C /data/VisoMaster rev-parse HEAD").stdout)
    off, on = results["false"], results["true"]
    assert len(off[0]) >= 5
    assert off[0] == on[0]
    assert off[1] == on[1]
