"""Diagnostics: red-doctor on the instance (files/diagnostics/red-doctor, standard library), what it
needs to know of this deploy (CONFIG, readable by all, no secret in it), and a program that keeps its
last report for the portal page (REPORT). doctor.py asks every host from the controller (table())."""
import hashlib
import json
import posixpath
import shlex
import time
from functools import lru_cache

import nbformat
from pyinfra import host, logger
from pyinfra.api import deploy

from tasks import jupyter, managed, portal, services
from tasks.facts import NotebookOrigin, as_user, as_user_script
from tasks.visomaster import checkout_dir, models_dir

DOCTOR = "/usr/local/bin/red-doctor"
CONFIG = "/etc/red-doctor.json"  # the deploy's facts for red-doctor (files/diagnostics/red-doctor CONFIG)
IMPORT_CHECK = "/usr/local/bin/red-import-check"  # tasks/visomaster.py ships it
REPORT = f"{posixpath.dirname(services.STATES)}/doctor.json"  # the last report, for the portal page
EVERY = 60  # seconds between two reports (a check imports the app's environment: about a second of CPU)
FIX = "/usr/local/bin/red-fix"
FIX_SOCKET = "/run/red-fix.sock"  # files/diagnostics/red-fix SOCKET
NOTEBOOK_CELLS = "files/diagnostics/red-diagnostics.py"  # the notebook's cells, in the percent format
NOTEBOOK = "red-diagnostics.ipynb"  # in Jupyter's root folder
APP_KERNEL = "visomaster"  # tasks/jupyter.py's kernel: the desktop user, the app's environment


@deploy("Diagnostics")
def diagnostics():
    data = host.data
    doctor = managed.put(name="red-doctor", src="files/diagnostics/red-doctor", dest=DOCTOR, mode="755")
    managed.put(name=f"What red-doctor checks ({CONFIG})", dest=CONFIG, user="root", group="root",
                mode="644", src=managed.json_content(doctor_config(), indent=1))
    # both read CONFIG again at each report and each request: a changed one restarts neither
    services.program("doctor", [DOCTOR, "--save", REPORT, "--every", str(EVERY)], priority=95, restart_on=[doctor])
    fix = managed.put(name="red-fix", src="files/diagnostics/red-fix", dest=FIX, mode="755")
    services.program("fixer", [FIX, "--serve", FIX_SOCKET, data.desktop_user], priority=96, restart_on=[fix])
    with open(managed.project_path(NOTEBOOK_CELLS)) as handle:
        content, digest = notebook_of(handle.read())
    notebook_file(name=f"Diagnostics notebook ({NOTEBOOK})", path=f"{jupyter.root_dir()}/{NOTEBOOK}",
                  content=content.encode(), digest=digest, user=data.desktop_user)


def doctor_config():
    data = host.data
    commit = getattr(data.get("visomaster_pin"), "commit", "")  # None or an error when unresolved
    return {
        "desktop_user": data.desktop_user, "workspace": data.workspace, "logs_dir": data.logs_dir,
        "red_dir": data.red_dir, "checkout": checkout_dir(), "venv": data.visomaster_venv,
        "ref": data.visomaster_ref, "commit": commit, "cuda_flavour": data.cuda_flavour,
        "import_check": IMPORT_CHECK, "models_dir": models_dir(), "models_at": data.models_at,
        "supervisor_config": services.CONFIG, "supervisor_socket": services.SOCKET, "states_file": services.STATES,
        "programs": services.declared_programs(), "apps": reachable_apps(data),
    }


def reachable_apps(data):
    """Every port a user opens, with the link that works from their browser (portal.links) and
    whether it must answer on every address."""
    ssh = portal.App("SSH", data.sshd_port, path="")
    if portal.behind_portal():
        listed = [ssh, *[app for app in portal.apps(data) if app.upstream or app.port == data.portal_port]]
        public = {app.port for app in listed}
    else:
        listed = [ssh, portal.App("Desktop", data.novnc_port), portal.App("VNC", data.vnc_port, path=""),
                  portal.App("Jupyter", data.jupyter_port)]
        public = {data.sshd_port} | ({data.novnc_port, data.vnc_port} if not data.vnc_passwordless else set()) \
            | ({data.jupyter_port} if not data.jupyter_open else set())
    links = portal.links(listed, data.instance_environment)
    for app, link in zip(listed, links):
        link["public"] = app.port in public
        if app.name == "SSH":
            link["url"] = ssh_command(link["url"])
    return links


def ssh_command(url):
    """portal.links gives http://ADDRESS:PORT for SSH's mapped port; a user runs ssh -p PORT root@ADDRESS."""
    if not url:
        return None
    address, _, port = url.removeprefix("http://").rpartition(":")
    return f"ssh -p {port} root@{address.strip('[]')}"


# -- the notebook ---------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def notebook_of(text):
    """(the notebook, its cells' digest) from the cells file's text: made once per run, not per host."""
    cells = notebook_cells(text)
    return notebook(cells), cells_digest(cells)


def notebook_cells(text):
    """[[kind, source]] from the percent format: "# %%" starts a code cell, "# %% [markdown]" a text
    cell whose lines lose their "# "; what comes before the first marker is the file's own comment."""
    cells = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            cells.append(["markdown" if "[markdown]" in line else "code", []])
        elif cells:
            kind, lines = cells[-1]
            lines.append(line.removeprefix("#").removeprefix(" ") if kind == "markdown" else line)
    return [[kind, "\n".join(lines).strip("\n")] for kind, lines in cells]


def cells_digest(cells):
    """As facts.NOTEBOOK_ORIGIN computes it from a notebook file."""
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def notebook(cells):
    """The notebook, made with nbformat: the same text for the same cells (ids numbered, no outputs),
    its cells locked against edits, run by the app's kernel."""
    made = [(nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell)(
        source, id=f"red-{number}", metadata={"editable": False, "deletable": False})
        for number, (kind, source) in enumerate(cells)]
    book = nbformat.v4.new_notebook(cells=made, metadata={
        "kernelspec": {"name": APP_KERNEL, "display_name": "VisoMaster", "language": "python"},
        "language_info": {"name": "python"}, "red": {"cells": cells_digest(cells)}})
    nbformat.validate(book)
    return nbformat.writes(book) + "\n"


def notebook_file(name, path, content, digest, user):
    """The notebook at `path`, in the user's folder, written by the user: left as it is while its
    cells are the ones Red writes (outputs saved by a run are kept); rewritten when they are an older
    version of Red's; moved aside, never overwritten, when the user edited them."""
    quoted = shlex.quote(path)
    write = managed.inline_script([(path, content, None, None, None)])

    def converge():
        found = host.get_fact(NotebookOrigin, path=path, user=user)
        if found == f"ours {digest}":
            return
        if found == "theirs":
            aside = f"{path.removesuffix('.ipynb')} (yours, {time.strftime('%Y%m%d-%H%M%S')}).ipynb"
            logger.warning(f"[{host.name}] {path} was edited: kept as {aside}; Red's is written in its place")
            yield as_user(user, f"mv -n {quoted} {shlex.quote(aside)}")
        yield as_user_script(user, write)
    managed.declare(files=[path], paths=[posixpath.dirname(path)])
    return managed.checked(name=name, unchanged=f"{path} is Red's", contained=True,
                           matches=lambda seen: seen["sha256"].get(path) == managed.sha256(content),
                           converge=converge)


# -- from the controller: doctor.py ---------------------------------------------------------------

CHECKS = ["gpu", "disk", "models", "services", "app", "start", "access"]  # red-doctor's, in its order
_reports = {}  # host name -> red-doctor's --json report, None when it did not answer


def collect(name, report, hosts):
    """Keeps a host's report; once every host in `hosts` has one, returns the table (else None)."""
    _reports[name] = report
    if not set(hosts) <= set(_reports):
        return None
    return table({host: _reports[host] for host in hosts})


def table(reports):
    """A row per host, a column per check (its worst finding: ok, warn or FAIL), and below it every
    failing finding with what to do."""
    width = max([len("host")] + [len(name) for name in reports])
    lines = ["  ".join([f"{'host':<{width}}", *[f"{check:<8}" for check in CHECKS]]).rstrip()]
    failing = []
    for name, report in reports.items():
        if report is None:
            lines.append(f"{name:<{width}}  red-doctor did not answer: has Red's deploy run there?")
            continue
        levels = [report["summary"].get(check, "-") for check in CHECKS]
        lines.append("  ".join([f"{name:<{width}}", *[f"{level.replace('fail', 'FAIL'):<8}" for level in levels]])
                     .rstrip())
        failing += [(name, finding) for finding in report["findings"] if finding["level"] == "fail"]
    lines += [""] if failing else []
    for name, finding in failing:
        lines.append(f"{name}  {finding['check']}: {finding['line']}")
        lines += [f"{'':{width + 2}}fix: {finding['fix']}"] + [f"{'':{width + 2}}{detail}"
                                                             for detail in finding["details"]]
    return "\n".join(lines)
