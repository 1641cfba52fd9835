"""One quoting rule: every value that reaches a shell, Python or supervisor stays a value. Each
template and command is rendered by the task's own code with hostile values, then run or parsed
the way the target does (sh, python, supervisor's %-expansion and shlex), and must give back the
values exactly, with nothing executed (a marker file a command substitution would make is absent).
The settings check refuses such values before any of this; this is the second line."""
import configparser
import json
import os
import shlex
import subprocess
import types
from pathlib import Path

import pytest
from pyinfra.api.util import get_template

from tasks import facts, git, services, visomaster

PROJECT = Path(__file__).resolve().parent.parent


def hostile(tmp_path, marker):
    """A value a shell would split, substitute and glob, and Python or supervisor would interpret."""
    return f"{tmp_path}/a b;$(touch {marker})`touch {marker}`'%(ENV_HOME)s*&|<>\\"


def render(template, values):
    return get_template(str(PROJECT / template)).render(values)


def recorder(tmp_path, name):
    """A program that writes its arguments and working folder as JSON (and runs nothing)."""
    log = tmp_path / f"{name}.json"
    stub = tmp_path / "bin" / name
    stub.parent.mkdir(exist_ok=True)
    stub.write_text(f"#!/usr/bin/env python3\nimport json, os, sys\nwith open({str(log)!r}, 'a') as f:\n"
                    "    f.write(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd()}) + '\\n')\n")
    stub.chmod(0o755)
    return stub, log


def recorded(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_the_launcher_keeps_hostile_paths_as_values(tmp_path):
    marker = tmp_path / "ran"
    checkout, venv = hostile(tmp_path, marker) + "/checkout", hostile(tmp_path, marker) + "/venv"
    os.makedirs(checkout)
    stub, log = recorder(tmp_path, "wait-for-display")
    values = {**visomaster.launcher_values("red", venv, checkout, hostile(tmp_path, marker)),
              "wait_for_display": shlex.quote(str(stub))}
    script = tmp_path / "launcher"
    script.write_text(render("files/visomaster/red-visomaster.j2", values))
    subprocess.run(["sh", str(script)], check=True, env={"PATH": os.environ["PATH"]})
    assert recorded(log) == [{"argv": [f"{venv}/bin/python", "main.py"], "cwd": checkout}]
    assert not marker.exists()


def test_jupyters_configuration_keeps_hostile_values_as_strings(tmp_path):
    marker = tmp_path / "ran"
    root_dir = hostile(tmp_path, marker) + f"\"; open({str(marker)!r}, 'w'); x = \""
    token_file = tmp_path / "token"
    token_file.write_text("the-token\n")
    config = render("files/jupyter/jupyter_server_config.py.j2",
                    {"open": False, "address": "127.0.0.1", "port": 18080, "behind_portal": True,
                     "root_dir": root_dir, "token_file": str(token_file)})
    c = types.SimpleNamespace(ServerApp=types.SimpleNamespace(), IdentityProvider=types.SimpleNamespace())
    exec(compile(config, "jupyter_server_config.py", "exec"), {"get_config": lambda: c})
    assert (c.ServerApp.root_dir, c.ServerApp.ip, c.ServerApp.port) == (root_dir, "127.0.0.1", 18080)
    assert c.IdentityProvider.token == "the-token" and c.ServerApp.allow_remote_access is True
    assert not marker.exists()


def test_a_kernel_description_keeps_hostile_values_as_strings(tmp_path):
    argv = ["/usr/local/bin/red-kernel-as-user", "red", hostile(tmp_path, "m") + '"],"x":["', "{connection_file}"]
    kernel = json.loads(render("files/jupyter/kernel.json.j2", {"argv": argv, "display_name": 'A "name"'}))
    assert kernel["argv"] == argv and kernel["display_name"] == 'A "name"'


def supervisor_reads(conf_text):
    """A program file as supervisord reads it: %-expanded (its own expansions), the command split by shlex."""
    parser = configparser.RawConfigParser()
    parser.read_string(conf_text)
    section = parser[parser.sections()[0]]
    expansions = {"ENV_HOME": "/root", "here": "/etc/supervisor/conf.d", "program_name": "x"}
    return {key: section[key] % expansions for key in ("command", "directory", "user", "environment")}


def test_a_supervisor_program_keeps_hostile_words_as_words(tmp_path):
    value = hostile(tmp_path, "marker")
    values = services.program_values("x", ["/usr/bin/prog", value, "--flag"], user="red", directory=value,
                                     environment={"A": value.replace('"', "")})
    conf = render("files/supervisor/program.conf.j2", {**values, "priority": 1, "autostart": "true",
                                                         "autorestart": "true", "startsecs": 1, "logs_dir": "/logs",
                                                         "log_max_bytes": 1024, "log_backups": 1})
    read = supervisor_reads(conf)
    assert shlex.split(read["command"]) == ["/usr/bin/prog", value, "--flag"]
    assert read["directory"] == value and read["environment"] == f'A="{value.replace(chr(34), "")}"'


@pytest.mark.parametrize("where", [{"directory": "/w/new\nline"}, {"environment": {"A": '"quoted"'}},
                                   {"argv": ["/bin/echo", "new\nline"]}])
def test_what_supervisor_cannot_hold_is_refused(where):
    with pytest.raises(ValueError, match="not a value supervisor can hold"):
        services.program_values("x", **{"argv": ["/bin/true"], **where})


def test_git_steps_pass_hostile_paths_and_urls_as_single_words(tmp_path):
    """Each step of moving a checkout, run by sh with a `runuser` that records what it was given."""
    marker = tmp_path / "ran"
    path, repo = hostile(tmp_path, marker), "https://example.org/a;$(touch " + str(marker) + ")"
    stub, log = recorder(tmp_path, "runuser")
    environment = {"PATH": f"{stub.parent}:{os.environ['PATH']}"}
    states = [{"state": "missing"}, {"state": "other"},
              {"state": "git", "origin": repo, "head": "b" * 40, "dirty": True, "held": False}]
    for state in states:
        _, commands = git.plan(state, repo, "v1", "a" * 40, path, "20261124-120000", "red")
        for command in commands:
            subprocess.run(["sh", "-c", command], check=True, env=environment)
    words = [word for call in recorded(log) for word in call["argv"]]
    assert path in words and repo in words and f"{path}.moved-aside-20261124-120000" in words
    assert all(call["argv"][:4] == ["-u", "red", "--", "env"] for call in recorded(log))
    assert not marker.exists()


def test_the_checkout_probe_keeps_a_hostile_path_as_a_value(tmp_path):
    marker = tmp_path / "ran"
    path = hostile(tmp_path, marker)
    os.makedirs(f"{path}/.git")
    stub, log = recorder(tmp_path, "runuser")
    done = subprocess.run(["sh", "-c", facts.checkout_probe(path, "red")], capture_output=True, text=True,
                          env={"PATH": f"{stub.parent}:{os.environ['PATH']}"})
    assert done.stdout.splitlines()[0] == "state git"
    assert all(call["argv"][call["argv"].index("-C") + 1] == path for call in recorded(log))
    assert not marker.exists()
