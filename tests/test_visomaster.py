"""VisoMaster (issue 4), end to end on a sandbox host over SSH: its checkout from a local stand-in
repository (tests/visomaster_standin.py) with real git, its packages with real pip, the app on the
desktop under real supervisor, looked at from chromium through noVNC."""
import shutil
import time

import pytest
from conftest import ARTIFACTS, apply, converge
from desktop_view import CHROMIUM, open_novnc, picture_facts
from test_desktop import password, ports, program_pids, wait_running
from test_foundation import CONVERGE_PROGRAMS

CHECKOUT = "/data/VisoMaster"  # the provisioned host's WORKSPACE is /data
VENV = "/opt/visomaster/venv"
PIP_LOG = "/logs/visomaster-pip.log"
CHECKOUT_OP = "VisoMaster | Checkout at main"
PACKAGES_OP = "VisoMaster | Python packages (requirements_cu124.txt)"
AMBER = (0xE0, 0xA0, 0x30)  # the stand-in window's background
APP = {"visomaster"}

pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def standin(sandbox_factory):
    return sandbox_factory.standin


def git(host, *args):
    return host.ssh(f"su red -c \"git -C {CHECKOUT} {' '.join(args)}\"").stdout.strip()


def in_venv(host, code):
    return host.ssh(f"{VENV}/bin/python -c '{code}'").stdout.strip()


def pip_log_size(host):
    return host.path(PIP_LOG).stat().st_size


def test_the_first_apply_clones_installs_and_shows_the_app(provisioned, standin, browser):
    host = provisioned
    wait_running(host, APP)
    assert git(host, "rev-parse", "HEAD") == standin.head()
    assert host.ssh(f"stat -c %U {CHECKOUT}/main.py").stdout.strip() == "red"
    assert host.ssh(f"readlink {CHECKOUT}/model_assets").stdout.strip() == "/data/models"
    # the known conflicts are resolved: the GPU onnxruntime alone, OpenCV without its Qt plugins
    packages = host.ssh(f"{VENV}/bin/python -m pip list --format=freeze").stdout.lower().split()
    assert "onnxruntime-gpu==1.20.0+standin" in packages
    assert not any(line.startswith(("onnxruntime==", "opencv-python==")) for line in packages), packages
    assert "opencv-python-headless==4.10.0.84+standin" in packages
    assert in_venv(host, "import onnxruntime, cv2; print(onnxruntime.FLAVOUR, cv2.HEADLESS)") == "gpu True"
    # the app's window, as a tool on the display and as a person sees it
    deadline = time.time() + 20
    while "VisoMaster stand-in" not in host.ssh("DISPLAY=:1 wmctrl -l", check=False).stdout:
        assert time.time() < deadline, host.ssh("tail -20 /logs/visomaster.log").stdout
        time.sleep(0.5)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "visomaster.png"
    assert open_novnc(browser, ports(host)[1], password(host), screenshot=shot).connected
    amber = picture_facts(shot, colour=AMBER)["background"]
    assert amber > 0.02, f"the app's window is not on the screen ({amber:.3%} amber)"


def test_a_second_apply_changes_nothing_and_runs_no_pip(provisioned):
    before = pip_log_size(provisioned), provisioned.ssh(f"readlink {VENV}").stdout
    assert converge([provisioned]).changed(provisioned) == []
    assert (pip_log_size(provisioned), provisioned.ssh(f"readlink {VENV}").stdout) == before


def test_the_checkout_moved_away_is_moved_back(provisioned, standin):
    pid = program_pids(provisioned)["visomaster"]
    git(provisioned, "checkout", "--quiet", "--detach", "v0.1.0")
    assert converge([provisioned]).changed(provisioned) == [CHECKOUT_OP, CONVERGE_PROGRAMS]
    assert git(provisioned, "rev-parse", "HEAD") == standin.head()
    wait_running(provisioned, APP, exclude_pids=[pid])


def test_a_git_lock_left_by_a_killed_git_is_removed_before_the_checkout_moves(provisioned, standin):
    git(provisioned, "checkout", "--quiet", "--detach", "v0.1.0")
    provisioned.ssh(f"su red -c 'touch {CHECKOUT}/.git/index.lock'")
    assert converge([provisioned]).changed(provisioned) == [
        "VisoMaster | Remove a git lock left by a killed git", CHECKOUT_OP, CONVERGE_PROGRAMS]
    assert git(provisioned, "rev-parse", "HEAD") == standin.head()
    assert not provisioned.path(f"{CHECKOUT}/.git/index.lock").exists()


def test_a_local_edit_survives_a_new_commit_and_the_apply_says_how(provisioned, standin):
    provisioned.ssh(f"su red -c 'echo \"# my edit\" >> {CHECKOUT}/app/ui.py'")
    new = standin.commit("Upstream moves on", {"app/version.py": 'VERSION = "0.1.2"\n'}, push=True)
    run = converge([provisioned])
    assert CHECKOUT_OP in run.changed(provisioned)
    assert f"{CHECKOUT} has local changes: kept in a stash named 'red: local changes before moving to main" \
        in run.stderr
    assert git(provisioned, "rev-parse", "HEAD") == new
    assert "red: local changes before moving to main" in git(provisioned, "stash", "list")
    assert "+# my edit" in git(provisioned, "stash", "show", "-p")
    git(provisioned, "stash", "pop", "--quiet")
    assert provisioned.path(f"{CHECKOUT}/app/ui.py").read_text().endswith("# my edit\n")
    assert converge([provisioned]).changed(provisioned) == [], "a local edit at the right commit is left alone"
    git(provisioned, "checkout", "--quiet", "--", "app/ui.py")


def test_local_commits_are_kept_on_a_branch_when_the_ref_changes(provisioned, standin):
    git(provisioned, "-c", "user.name=me", "-c", "user.email=me@example.org", "commit", "--quiet",
        "--allow-empty", "-m", "my-own-work")
    mine = git(provisioned, "rev-parse", "HEAD")
    run = converge([provisioned], "--data", "visomaster_ref=v0.1.0")
    assert "VisoMaster | Checkout at v0.1.0" in run.changed(provisioned)
    assert "is at commits that no branch or tag holds: kept on the branch red-kept-" in run.stderr
    assert mine in git(provisioned, "log", "--format=%H", "--branches=red-kept-*")
    assert git(provisioned, "rev-parse", "HEAD") == git(provisioned, "rev-parse", "v0.1.0^{commit}")
    converge([provisioned])
    assert git(provisioned, "rev-parse", "HEAD") == standin.head(), "back on main, as the settings say"


def test_a_plain_directory_in_the_way_is_moved_aside_with_its_files(provisioned, standin):
    provisioned.ssh("mkdir -p /data/elsewhere && echo precious > /data/elsewhere/notes.txt")
    run = converge([provisioned], "--data", "visomaster_dir=/data/elsewhere")
    assert "/data/elsewhere is not a git checkout: moved aside to /data/elsewhere.moved-aside-" in run.stderr
    assert provisioned.ssh("cat /data/elsewhere.moved-aside-*/notes.txt").stdout == "precious\n"
    assert provisioned.ssh("git -c safe.directory='*' -C /data/elsewhere rev-parse HEAD").stdout.strip() \
        == standin.head()
    converge([provisioned])
    wait_running(provisioned, APP)
    assert f"directory={CHECKOUT}" in provisioned.path("/etc/supervisor/conf.d/red-visomaster.conf").read_text()


def test_a_changed_requirements_file_reinstalls_and_restarts_the_app(provisioned, standin):
    pid = program_pids(provisioned)["visomaster"]
    extra = "red-extra==1.0+standin"
    standin.commit("Needs red-extra", {"requirements_cu124.txt": (standin.work / "requirements_cu124.txt")
                                       .read_text() + extra + "\n"}, push=True)
    run = converge([provisioned])
    assert {CHECKOUT_OP, PACKAGES_OP, CONVERGE_PROGRAMS} <= set(run.changed(provisioned))
    assert in_venv(provisioned, "import red_extra; print(red_extra.ADDED)") == "True"
    wait_running(provisioned, APP, exclude_pids=[pid])
    assert converge([provisioned]).changed(provisioned) == []


def test_a_requirement_that_cannot_be_installed_is_named_and_the_app_keeps_running(provisioned, standin):
    pid, venv = program_pids(provisioned)["visomaster"], provisioned.ssh(f"readlink {VENV}").stdout
    good = (standin.work / "requirements_cu124.txt").read_text()
    standin.commit("A requirement nobody has", {"requirements_cu124.txt": good + "surely-not-a-package-red==9.9\n"},
                   push=True)
    failed = apply([provisioned])
    assert failed.returncode != 0
    assert "red: pip could not install surely-not-a-package-red==9.9" in failed.stderr
    assert provisioned.ssh(f"readlink {VENV}").stdout == venv, "the environment in use is unchanged"
    assert program_pids(provisioned).get("visomaster") == pid, "the app that ran still runs"
    again = apply([provisioned])
    assert again.returncode != 0 and "red: pip could not install surely-not-a-package-red" in again.stderr, \
        "the next apply tries again"
    standin.commit("Fixed", {"requirements_cu124.txt": good + "# the missing requirement dropped\n"}, push=True)
    fixed = converge([provisioned])
    assert PACKAGES_OP in fixed.changed(provisioned)
    wait_running(provisioned, APP)


def test_the_app_killed_is_restarted_by_supervisor(provisioned):
    pid = wait_running(provisioned, APP)["visomaster"]
    provisioned.ssh(f"kill -9 {pid}")
    wait_running(provisioned, APP, exclude_pids=[pid], timeout=20)

