"""Repairs at the cost of their bytes (issue 17): small files that drifted are written inside one shell
command, however many, each still listed as changed; counted on a real sandbox host over SSH."""
import hashlib
import random
import subprocess
import sys
import threading
import time

from conftest import PROJECT, converge
from test_snapshot import TWENTY_FILES

from tasks.managed import inline_script

POLICY = "Keep package installs from starting services (supervisor runs them)"
EVERY_BYTE = ("deploy.py", "tests/deploys/every_byte.py")


def test_one_edited_file_is_repaired_in_one_command(provisioned):
    converge([provisioned])
    provisioned.ssh("echo '# edited' >> /usr/sbin/policy-rc.d && chmod 700 /usr/sbin/policy-rc.d")
    run = converge([provisioned])
    print(f"one repaired file: {run.sent(provisioned)} remote commands")
    assert run.changed(provisioned) == [f"System | {POLICY}"]
    assert run.sent(provisioned) <= 3
    assert provisioned.path("/usr/sbin/policy-rc.d").read_bytes() == (PROJECT / "files/system/policy-rc.d").read_bytes()
    assert provisioned.ssh("stat -c '%a %U %G' /usr/sbin/policy-rc.d").stdout.split() == ["755", "root", "root"]
    assert not provisioned.ssh("ls /usr/sbin | grep red-", check=False).stdout, "no temporary file is left"


def test_twenty_edited_files_cost_no_more_commands_than_one(provisioned):
    names = [f"/etc/red-twenty/file-{number:02}" for number in range(20)]
    try:
        converge([provisioned], deploys=TWENTY_FILES)
        provisioned.ssh(f"echo edited >> {names[7]}")
        one = converge([provisioned], deploys=TWENTY_FILES)
        assert one.changed(provisioned) == ["Twenty files: 07"]
        provisioned.ssh("; ".join(f"echo edited >> {name}" for name in names) + f"; chmod 600 {names[3]}")
        twenty = converge([provisioned], deploys=TWENTY_FILES)
        print(f"repaired files, remote commands: 1 file {one.sent(provisioned)}, 20 files {twenty.sent(provisioned)}")
        assert twenty.changed(provisioned) == [f"Twenty files: {number:02}" for number in range(20)]
        assert twenty.sent(provisioned) == one.sent(provisioned) <= 3
        for number, name in enumerate(names):
            assert provisioned.path(name).read_text() == f"managed file {number}\n"
        assert provisioned.ssh(f"stat -c %a {names[3]}").stdout.strip() == "644"
        assert converge([provisioned], deploys=TWENTY_FILES).changed(provisioned) == []
    finally:
        provisioned.ssh("rm -rf /etc/red-twenty")
        converge([provisioned])


def test_a_file_of_every_byte_survives_the_trip(provisioned):
    sys.path.insert(0, str(PROJECT / "tests" / "deploys"))
    from every_byte import CONTENT, PATH
    try:
        for damage in ("rm -f", "truncate -s 7"):  # made, then repaired
            provisioned.ssh(f"{damage} {PATH}")
            run = converge([provisioned], deploys=EVERY_BYTE)
            assert run.changed(provisioned)[-1:] == ["Every byte"]
            assert provisioned.path(PATH).read_bytes() == CONTENT
            assert provisioned.ssh(f"stat -c %a {PATH}").stdout.strip() == "640"
        assert run.changed(provisioned) == ["Every byte"] and run.sent(provisioned) <= 3
    finally:
        provisioned.ssh(f"rm -f {PATH}")
        converge([provisioned])


def test_a_repair_cut_midway_leaves_the_old_or_the_new_file_never_a_part(provisioned):
    """The repair's own command, its connection cut at random moments, while a reader on the target
    reads the file again and again: every read is the old or the new file, whole."""
    path = "/usr/local/share/red-cut-test"
    old, new = (random.Random(seed).randbytes(40 << 10) for seed in (1, 2))
    digests = {hashlib.sha256(content).hexdigest(): name for content, name in ((old, "old"), (new, "new"))}
    provisioned.path(path).write_bytes(old)
    reader = subprocess.Popen(provisioned.ssh_argv(
        f"end=$(($(date +%s) + 8)); while [ $(date +%s) -lt $end ]; do sha256sum {path} 2>&1; done"),
        stdout=subprocess.PIPE, text=True)
    seen = []
    collecting = threading.Thread(target=lambda: seen.extend(reader.stdout.read().splitlines()))
    collecting.start()
    try:
        for attempt in range(30):
            content = new if attempt % 2 == 0 else old
            writer = subprocess.Popen(provisioned.ssh_argv(inline_script([(path, content, "root", "root", "644")])),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(random.uniform(0, 0.05))
            writer.kill()  # the connection is cut, wherever the command got to
            writer.wait()
    finally:
        collecting.join(timeout=30)
        reader.wait(timeout=30)
        provisioned.ssh(f"rm -f {path}")
    names = [digests.get(line.split()[0], line) for line in seen]
    assert len(names) > 20 and set(names) <= {"old", "new"}, set(names) - {"old", "new"}
    assert "sha256sum" not in " ".join(seen)


def test_the_inline_command_writes_every_byte_and_fits_one_argument(tmp_path):
    """The command itself, on this machine's sh: several files, one of every byte, within the limit."""
    sys.path.insert(0, str(PROJECT / "tests" / "deploys"))
    from every_byte import CONTENT
    files = [(str(tmp_path / "every byte"), CONTENT, None, None, "600"),
             (str(tmp_path / "kept mode"), b"second\n", None, None, None)]
    (tmp_path / "kept mode").write_text("old\n")
    (tmp_path / "kept mode").chmod(0o751)
    command = inline_script(files)
    subprocess.run(["sh", "-c", command], check=True)
    assert (tmp_path / "every byte").read_bytes() == CONTENT
    assert (tmp_path / "every byte").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "kept mode").read_bytes() == b"second\n"
    assert (tmp_path / "kept mode").stat().st_mode & 0o777 == 0o751
    assert sorted(path.name for path in tmp_path.iterdir()) == ["every byte", "kept mode"]
    assert CONTENT.decode("latin-1") not in command and "EOF" not in command, "the content is only base64"
