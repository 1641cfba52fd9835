"""red-doctor (issue 15) on a provisioned sandbox: a healthy desk has no failure; each breakage a user
meets turns into its fail line, with its log lines or its reason, and exit 1; the doctor changes nothing."""
import json
import shlex
import time

import pytest
from conftest import converge
from models_server import ModelServer
from test_desktop import program_pids, wait_running
from test_models import commit_table, model_files, url_path

CHECKS = ["gpu", "disk", "models", "services", "app", "start", "access"]
MODELS = "/data/models"  # the provisioned host's WORKSPACE is /data
CHECKOUT = "/data/VisoMaster"
NOTEBOOK = "/data/red-diagnostics.ipynb"  # in Jupyter's root folder, the workspace
# nbclient runs the notebook as JupyterLab would, with Jupyter's own environment and the notebook's kernel
EXECUTE = ("import nbclient, nbformat, sys; book = nbformat.read(sys.argv[1], 4); "
           "nbclient.NotebookClient(book, timeout=120).execute(); nbformat.write(book, sys.argv[2])")


def doctor(host, *args, user=None):
    """(exit code, output) of red-doctor on the host, as root or as `user`."""
    command = " ".join(["red-doctor", *args])
    done = host.ssh(f"runuser -u {user} -- {command}" if user else command, check=False)
    return done.returncode, done.stdout


def findings(output, level):
    """The lines of that level, without the level: 'CHECK  LINE'."""
    return [" ".join(line.split(None, 2)[1:]) for line in output.splitlines() if line.startswith(f"{level} ")]


def block(output, start):
    """The finding line that starts with `start` (after its level) and the indented lines under it."""
    lines = output.splitlines()
    for number, line in enumerate(lines):
        if " ".join(line.split(None, 2)[1:]).startswith(start):
            below = []
            for following in lines[number + 1:]:
                if not following.startswith(" "):
                    break
                below.append(following.strip())
            return [line] + below
    raise AssertionError(f"no finding starts with {start!r}:\n{output}")


def models_state(host):
    return json.loads(host.path(f"{MODELS}/.red-status.json").read_text())


def wait_models(host, state, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if host.path(f"{MODELS}/.red-status.json").exists() and models_state(host)["state"] == state and \
                "RUNNING" not in host.ssh("supervisorctl status models", check=False).stdout:
            return models_state(host)
        time.sleep(0.2)
    raise AssertionError(f"the models never reached {state}: {models_state(host)}")


@pytest.fixture(scope="module")
def desk(provisioned, sandbox_factory, tmp_path_factory):
    """The provisioned host with the stand-in's model table, fetched at start from a local mirror."""
    files = model_files([256 << 10, 64 << 10])
    with ModelServer({url_path(name): content for name, content in files.items()}) as server:
        commit_table(sandbox_factory.standin, files, tmp_path_factory.mktemp("table"))
        settings = ["--data", "models_at=start", "--data", f"models_base_url={server.url('')}"]
        converge([provisioned], *settings)
        wait_models(provisioned, "done")
        yield provisioned, server, files, settings
    converge([provisioned])  # back to the sandbox's settings


def test_a_healthy_desk_has_no_failure_as_root_or_as_the_desktop_user_and_changes_nothing(desk):
    host = desk[0]
    before = host.digests("/etc", "/opt/red", MODELS)
    code, output = doctor(host)
    assert (code, findings(output, "fail")) == (0, []), output
    assert "models 2 of 2 files present and verified in /data/models" in findings(output, "ok")
    assert any(line.startswith(f"app the checkout {CHECKOUT} is at main (") for line in findings(output, "ok"))
    assert any(line.startswith("app the environment /opt/visomaster/venv imports the app (red-import-check: ")
               for line in findings(output, "ok")), output
    assert findings(output, "warn")[0].startswith("gpu no GPU: nvidia-smi is not on this instance"), \
        "no GPU reaches these machines"
    report = json.loads(doctor(host, "--json")[1])
    assert report["ok"] is True and sorted(report["summary"]) == sorted(CHECKS)
    code, as_user = doctor(host, user="red")
    assert (code, findings(as_user, "fail")) == (0, []), as_user
    assert "services x11vnc: RUNNING" in findings(as_user, "ok"), "read from the programs' states file"
    assert host.digests("/etc", "/opt/red", MODELS) == before


def test_a_stopped_program_fails_with_its_last_log_lines(desk):
    host = desk[0]
    host.ssh("supervisorctl stop x11vnc")
    try:
        for user in (None, "red"):
            code, output = doctor(host, user=user)
            assert code == 1
            found = block(output, "services x11vnc: STOPPED")
            assert found[0].split()[:2] == ["fail", "services"]
            assert found[1] == "fix: supervisorctl start x11vnc, after reading why it stopped (/logs/x11vnc.log)"
            assert len(found) > 2 and all(line.startswith("|") for line in found[2:])
            logged = host.path("/logs/x11vnc.log").read_text().splitlines()[-20:]
            assert found[2:] == [f"| {line}".strip() for line in logged]
    finally:
        host.ssh("supervisorctl start x11vnc")
    assert doctor(host)[0] == 0


def test_a_failed_model_fetch_fails_with_each_files_reason(desk):
    host, server, files, _ = desk
    broken = url_path("model_1.onnx")
    server.files[broken] = b"not the model"
    host.ssh(f"runuser -u red -- rm {MODELS}/sub/model_1.onnx && supervisorctl start models")
    try:
        wait_models(host, "failed")
        code, output = doctor(host)
        assert code == 1
        found = block(output, "models 1 model files could not be fetched (1 of 2 present)")
        assert found[1] == "fix: fix the reason, then fetch them again: supervisorctl start models"
        assert found[2].startswith("sub/model_1.onnx: SHA-256 mismatch: the server sent ")
    finally:
        server.files[broken] = files["model_1.onnx"]
        host.ssh("supervisorctl start models")
        wait_models(host, "done")
    assert doctor(host)[0] == 0


def test_a_full_disk_fails(desk):
    host = desk[0]
    full = "/data/full"
    host.ssh(f"mkdir -p {full} && mount -t tmpfs -o size=150m tmpfs {full} && "
             f"head -c 120M /dev/zero > {full}/filler && mount --bind {full} {MODELS}")
    try:
        code, output = doctor(host, "--check", "disk")
        assert code == 1
        assert [line for line in findings(output, "fail") if line.startswith("disk the models' folder")] == [
            "disk the models' folder (/data/models): 0.0 GB free of 0.2 GB: full"]
    finally:
        host.ssh(f"umount {MODELS}; umount {full}; rmdir {full}")
    assert doctor(host)[0] == 0


def test_a_moved_checkout_fails_and_the_next_apply_brings_it_back(desk):
    host, settings = desk[0], desk[3]
    wanted = host.ssh(f"runuser -u red -- git -C {CHECKOUT} rev-parse HEAD").stdout.strip()
    host.ssh(f"runuser -u red -- git -C {CHECKOUT} checkout -q --detach HEAD~1")
    moved = host.ssh(f"runuser -u red -- git -C {CHECKOUT} rev-parse HEAD").stdout.strip()
    code, output = doctor(host, "--check", "app")
    assert code == 1
    assert f"app the checkout {CHECKOUT} is at {moved[:12]}, not at main ({wanted[:12]})" in findings(output, "fail")
    converge([host], *settings)
    assert doctor(host, "--check", "app")[0] == 0


def test_a_broken_app_environment_fails_with_the_import_error(desk):
    host = desk[0]
    package = host.ssh("runuser -u red -- /opt/visomaster/venv/bin/python -c "
                       "'import tqdm, os; print(os.path.dirname(tqdm.__file__))'").stdout.strip()
    host.ssh(f"runuser -u red -- mv {package} {package}.away")
    try:
        code, output = doctor(host, "--check", "app")
        assert code == 1
        assert ("app the environment /opt/visomaster/venv does not import the app: red-import-check: tqdm: "
                "ModuleNotFoundError: No module named 'tqdm'") in findings(output, "fail"), output
    finally:
        host.ssh(f"runuser -u red -- mv {package}.away {package}")
    assert doctor(host, "--check", "app")[0] == 0


def test_the_last_start_phase_is_reported_finished_failed_or_never_run(desk):
    host = desk[0]
    host.ssh("rm -f /logs/onstart.log")
    code, output = doctor(host, "--check", "start")
    assert (code, findings(output, "warn")) == (0, ["start the start phase never ran on this container"])
    host.ssh("WORKSPACE=not-absolute /opt/red/onstart.sh >/dev/null 2>&1", check=False)
    code, output = doctor(host, "--check", "start")
    found = block(output, "start the start phase failed (exit 1) at ")
    assert code == 1 and found[0].startswith("fail  start")
    assert any(line.startswith("red: setting workspace") for line in found[2:]), output
    host.ssh("/opt/red/onstart.sh >/dev/null 2>&1")
    code, output = doctor(host, "--check", "start")
    assert code == 0 and findings(output, "ok")[0].startswith("start the start phase finished at ")


def test_the_controller_shows_every_host_in_one_table_and_changes_nothing(desk, sandbox_factory):
    """pyinfra inventory.py doctor.py on two hosts, one of them with a program stopped."""
    host, other = desk[0], sandbox_factory.up("doctor")
    try:
        converge([other])
        other.ssh("supervisorctl stop novnc")
        trees = ("/etc", "/opt/red", "/data", "/workspace")
        before = {each.name: each.digests(*trees) for each in (host, other)}
        run = converge([host, other], deploys=("doctor.py",))
        assert run.changed(host) == [] and run.changed(other) == []
        assert {each.name: each.digests(*trees) for each in (host, other)} == before
        lines = run.stderr.splitlines()
        header = next(number for number, line in enumerate(lines) if line.split()[:1] == ["host"])
        assert lines[header].split() == ["host", *CHECKS]
        rows = {line.split()[0]: dict(zip(CHECKS, line.split()[1:])) for line in lines[header + 1:header + 3]}
        assert rows[other.name]["services"] == "FAIL" and rows[host.name]["services"] == "ok"
        assert rows[host.name]["gpu"] == rows[other.name]["gpu"] == "warn"
        failing = block("\n".join(lines[header + 3:]), "services: novnc: STOPPED")
        assert failing[0] == f"{other.name}  services: novnc: STOPPED"
        assert failing[1] == "fix: supervisorctl start novnc, after reading why it stopped (/logs/novnc.log)"
    finally:
        other.sandbox.down()  # its processes end now, not at the session's end


def test_the_notebook_shows_the_findings_as_the_desktop_user_and_fixes_nothing_unless_asked(desk):
    host = desk[0]
    before = program_pids(host)
    host.ssh(f"/opt/jupyter/venv/bin/python -c {shlex.quote(EXECUTE)} {NOTEBOOK} /tmp/executed.ipynb")
    executed = json.loads(host.path("/tmp/executed.ipynb").read_text())
    assert executed["metadata"]["kernelspec"]["name"] == "visomaster", "the app's kernel, as the desktop user"
    outputs = [output for cell in executed["cells"] if cell["cell_type"] == "code" for output in cell["outputs"]]
    assert [output for output in outputs if output["output_type"] == "error"] == []
    text = "".join("".join(output.get("text", "")) for output in outputs)
    assert "ok    services x11vnc: RUNNING" in text, "red-doctor's findings"
    assert "ok    app      the checkout /data/VisoMaster is at main" in text
    assert "x11vnc           RUNNING" in text, "the programs' states"
    assert "==> /logs/x11vnc.log <==" in text and "no nvidia-smi on this instance: no GPU" in text
    assert text.count("not run: red-fix ") == 4, "each fix asks first; run whole, nobody answers"
    assert program_pids(host) == before


def test_red_fix_restarts_a_program_for_the_desktop_user_and_takes_nothing_else(desk):
    host = desk[0]
    before = program_pids(host)
    done = host.ssh("runuser -u red -- red-fix restart x11vnc", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    after = wait_running(host, ["x11vnc"], exclude_pids=[before["x11vnc"]])
    assert {name: pid for name, pid in after.items() if name != "x11vnc"} == \
        {name: pid for name, pid in before.items() if name != "x11vnc"}, "x11vnc alone"
    for hostile, said in [
            ("restart sshd; id", "red-fix: a request is a fix's name in a few plain words"),
            ("restart ../../usr/bin/id", "red-fix: a request is a fix's name in a few plain words"),
            ("shutdown", "red-fix: 'shutdown' is not a fix red-fix knows: restart PROGRAM (one of ")]:
        refused = host.ssh(f"runuser -u red -- red-fix {shlex.quote(hostile)}", check=False)
        assert refused.returncode == 2 and refused.stdout.startswith(said), refused.stdout + refused.stderr
    stranger = host.ssh("runuser -u nobody -- red-fix restart x11vnc", check=False)
    assert stranger.returncode == 1 and "Permission denied" in stranger.stderr
    assert program_pids(host) == after, "nothing else restarted"


def test_a_notebook_the_user_edited_is_kept_beside_and_outputs_of_a_run_are_left(desk):
    host, settings = desk[0], desk[3]
    notebook = host.path(NOTEBOOK)
    pristine = notebook.read_text()
    book = json.loads(pristine)
    book["cells"][2]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ok\n"]}]
    host.ssh(f"runuser -u red -- tee {NOTEBOOK} >/dev/null <<'EOF'\n{json.dumps(book)}\nEOF")
    assert converge([host], *settings).changed(host) == [], "a run's outputs stay"
    book["cells"][2]["source"] = "print('mine')"
    edited = json.dumps(book)
    host.ssh(f"runuser -u red -- tee {NOTEBOOK} >/dev/null <<'EOF'\n{edited}\nEOF")
    try:
        run = converge([host], *settings)
        assert run.changed(host) == ["Diagnostics | Diagnostics notebook (red-diagnostics.ipynb)"]
        kept = list(host.path("/data").glob("red-diagnostics (yours, *).ipynb"))
        assert [path.read_text() for path in kept] == [edited + "\n"], "the user's copy, as they left it"
        assert notebook.read_text() == pristine
        assert converge([host], *settings).changed(host) == []
    finally:
        host.ssh("rm -f '/data/red-diagnostics (yours, '*")
