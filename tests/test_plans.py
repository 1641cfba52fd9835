"""Unit tests of the choices Red makes from facts, as pure logic: how a host gets its Python, which
packages an image's early stages install, and which steps move a checkout without losing work. (The
end-to-end proofs: tests/test_visomaster.py, tests/test_variants.py.)"""
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tasks import git
from tasks.packages import APP, BASE, DESKTOP, JUPYTER, PORTAL, SSH, apt_packages, environments, interpreter
from tasks.settings import SettingError, build_stage_settings

UBUNTU = {"20.04": "focal", "22.04": "jammy", "24.04": "noble"}


def ubuntu(version):
    return {"ID": "ubuntu", "VERSION_ID": version, "PRETTY_NAME": f"Ubuntu {version} LTS"}


DEBIAN_12 = {"ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"}


@pytest.mark.parametrize("release, version, ppa", [
    (ubuntu("22.04"), "3.10", False),  # the distribution's own
    (ubuntu("20.04"), "3.10", True),  # deadsnakes
    (ubuntu("24.04"), "3.10", True),
    (ubuntu("24.04"), "3.12", False),
    (DEBIAN_12, "3.11", False),
])
def test_the_interpreter_comes_from_the_distribution_or_deadsnakes(release, version, ppa):
    chosen = interpreter(release, version)
    assert chosen.ppa is ppa
    assert chosen.packages == [f"python{version}", f"python{version}-venv", f"python{version}-dev"]
    assert chosen.command == f"python{version}"


def test_debian_12_has_no_python_3_10_and_says_what_it_offers():
    with pytest.raises(SettingError) as error:
        interpreter(DEBIAN_12, "3.10", "from group_data")
    assert str(error.value) == ("setting python_version = '3.10' (from group_data) is not available on this host "
                                "(Debian GNU/Linux 12 (bookworm)): expected 3.11")


def test_an_unknown_release_names_the_releases_red_knows():
    with pytest.raises(SettingError, match=r"not available on this host \(Alpine\): expected a release Red knows: "
                                           r"ubuntu 20.04, .*debian 12"):
        interpreter({"ID": "alpine", "VERSION_ID": "3.20", "PRETTY_NAME": "Alpine"}, "3.10")


COMMIT = "a" * 40
REPO = "https://example.org/VisoMaster.git"


def steps(state, stamp="20261123-120000"):
    return git.plan(state, REPO, "v1", COMMIT, "/w/VisoMaster", stamp, "red")


AS_RED = "runuser -u red -- env HOME=/home/red "  # every step runs as the user who owns the checkout


def test_nothing_there_is_cloned():
    notes, commands = steps({"state": "missing"})
    partial = "/w/VisoMaster.red-clone-20261123-120000"
    assert commands == [f"{AS_RED}git clone --quiet --no-checkout -- {REPO} {partial}",
                        f"{AS_RED}git -C {partial} checkout --quiet --detach {COMMIT}",
                        f"{AS_RED}mv -T {partial} /w/VisoMaster"], "cloned beside the path, moved into place when whole"


def test_an_empty_folder_is_replaced_by_the_clone():
    assert steps({"state": "empty"})[1][0] == f"{AS_RED}rmdir /w/VisoMaster"


@pytest.mark.parametrize("state, why", [
    ({"state": "other"}, "is not a git checkout"),
    ({"state": "git", "origin": "https://elsewhere/x.git", "head": COMMIT}, "is a checkout of https://elsewhere/x.git"),
])
def test_what_is_in_the_way_is_moved_aside_never_deleted(state, why):
    notes, commands = steps(state)
    assert notes == [f"/w/VisoMaster {why}: moved aside to /w/VisoMaster.moved-aside-20261123-120000 "
                     f"(nothing in it is deleted), then cloning {REPO}"]
    assert commands[0] == f"{AS_RED}mv /w/VisoMaster /w/VisoMaster.moved-aside-20261123-120000"
    assert not any("rm " in command for command in commands)


def test_a_checkout_at_the_commit_needs_nothing_even_with_local_edits():
    assert steps({"state": "git", "origin": REPO, "head": COMMIT, "dirty": True, "held": True}) == ([], [])


def test_local_edits_are_stashed_and_local_commits_kept_on_a_branch():
    notes, commands = steps({"state": "git", "origin": REPO, "head": "b" * 40, "dirty": True, "held": False})
    assert "stash push --quiet --message 'red: local changes before moving to v1 (20261123-120000)'" in commands[0]
    assert commands[1].endswith("branch red-kept-20261123-120000 HEAD")
    assert commands[2:] == [f"{AS_RED}git -C /w/VisoMaster fetch --quiet --tags origin",
                            f"{AS_RED}git -C /w/VisoMaster checkout --quiet --detach {COMMIT}"]
    assert all(command.startswith(AS_RED) for command in commands)
    assert len(notes) == 3 and "git stash pop" in notes[0] and "red-kept-20261123-120000" in notes[1]


def test_a_ref_is_resolved_on_the_controller_to_its_commit(tmp_path):
    def run(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True,
                              text=True).stdout.strip()
    run("init", "--quiet", "--initial-branch=main")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "--allow-empty", "-m", "one")
    run("tag", "-a", "v1", "-m", "an annotated tag")
    first = run("rev-parse", "HEAD")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "--allow-empty", "-m", "two")
    url = f"file://{tmp_path}"
    assert git.resolve(url, "v1") == git.Pin(url, "v1", first, "tag"), \
        "an annotated tag resolves to its commit, not the tag object"
    assert git.resolve(url, "main") == git.Pin(url, "main", run("rev-parse", "HEAD"), "branch")
    assert git.resolve(url, COMMIT) == git.Pin(url, COMMIT, COMMIT, "commit"), "a full hash is used as it is"
    with pytest.raises(git.RefError, match="'nope' is no branch or tag of"):
        git.resolve(url, "nope")


def test_a_ref_asked_by_many_hosts_at_once_is_asked_once(monkeypatch):
    """Every host's deploy resolves the ref; those that ask while it is being asked wait for that answer,
    an error included (a repository that does not answer is not asked once per host)."""
    asked = []

    def ask(repo, ref, timeout):
        asked.append(ref)
        time.sleep(0.2)  # git ls-remote on the network: the other hosts ask meanwhile
        if ref == "nope":
            raise git.RefError(f"{ref!r} is no branch or tag of {repo}")
        return git.Pin(repo, ref, COMMIT, "branch")
    monkeypatch.setattr(git, "ask", ask)
    url = f"https://example.invalid/{time.time_ns()}.git"
    with ThreadPoolExecutor(8) as hosts:
        pins = list(hosts.map(lambda _: git.resolve(url, "main"), range(8)))
        errors = list(hosts.map(lambda _: pytest.raises(git.RefError, git.resolve, url, "nope").value, range(8)))
    assert asked == ["main", "nope"]
    assert pins == [git.Pin(url, "main", COMMIT, "branch")] * 8
    assert {str(error) for error in errors} == {f"'nope' is no branch or tag of {url}"}
    assert git.resolve(url, "main", timeout=5) and asked[-1] == "main", "another deadline: asked again"


def stage(*words):
    """The settings an image's early stage resolves from its --data words (over group_data/all.py)."""
    return build_stage_settings([word for pair in words for word in ("--data", pair)])


def test_the_image_installs_every_package_the_tasks_name_once_with_the_settings_window_manager():
    settings, sources = stage("window_manager=openbox", "python_version=3.11", "extra_apt_packages=[\"htop\"]")
    wanted = apt_packages(settings, DEBIAN_12, sources["python_version"])
    assert len(wanted) == len(set(wanted))
    assert set(wanted) == {*BASE, "htop", *DESKTOP, "openbox", *SSH, "python3.11", "python3.11-venv",
                           "python3.11-dev", *APP}


def test_deadsnakes_python_is_left_to_the_deploy_which_adds_its_ppa():
    settings, _ = stage("python_version=3.10")
    assert not any(package.startswith("python3.10") for package in apt_packages(settings, ubuntu("24.04")))


def test_a_stage_refuses_a_python_the_release_lacks_in_one_line_naming_where_it_came_from():
    settings, sources = stage("python_version=3.10")
    with pytest.raises(SettingError, match=r"^setting python_version = '3.10' \(from --data\) is not available"):
        apt_packages(settings, DEBIAN_12, sources["python_version"])


@pytest.mark.parametrize("argv, message", [
    (["--data", "no_such=1"], "setting no_such (--data) is not a Red setting"),
    (["--data", "vnc_port=0"], "setting vnc_port = '0' (from --data)"),
    (["vnc_port=1"], "expected --data NAME=VALUE, not 'vnc_port=1'"),
    (["--data", "vnc_password=secret"], "vnc_password"),  # a secret would stay in the image's history
])
def test_a_stage_refuses_bad_data_in_one_line(argv, message):
    with pytest.raises(SettingError) as error:
        build_stage_settings(argv)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_red_environments_follow_access():
    assert environments(stage("access=direct")[0]) == [JUPYTER]
    assert environments(stage("access=portal")[0]) == [JUPYTER, PORTAL]
