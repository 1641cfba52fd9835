"""Red's deploy: checks every setting, then runs the tasks in order for the phase.

    pyinfra inventory.py deploy.py                          provision, over SSH
    pyinfra -y @local deploy.py --data phase=build          in a Dockerfile RUN step
    onstart.sh                                              phase start, on every container start
"""
import json
import os
import re

from pyinfra import host
from pyinfra.connectors.local import LocalConnector

from tasks import (controller, desktop, diagnostics, jupyter, managed, models, models_stage, onstart, portal, python,
                   services, ssh, summary, system, visomaster, workspace)
from tasks.settings import ENVIRONMENT_NAMES, SAVED_SETTINGS, SETTINGS, SettingError, check, resolve, savable


def instance_environment(snapshot, phase):
    """vast's variables as the instance sees them: the container's main process's environment
    (an SSH session or a shell started by hand does not have them), and on @local this
    process's own on top (a Dockerfile's ENV, a variable set for onstart.sh). The same command
    brings back the snapshot the last run left, when `snapshot` is on."""
    names = ENVIRONMENT_NAMES + portal.INSTANCE_NAMES
    look = managed.first_look(names, snapshot, lock=phase == "provision",  # onstart.sh locks a start
                              supervisor_config=services.CONFIG)
    host.data.os_release, host.data.listeners = look["os_release"], look["listeners"]
    environment = look["environment"]
    if isinstance(host.connector, LocalConnector):
        environment.update({name: value for name, value in os.environ.items()
                            if any(re.fullmatch(pattern, name) for pattern in names)})
    host.data.instance_environment = environment
    return environment


def saved_settings(phase):
    """In phase start, the settings the image was built (or the host provisioned) with."""
    if phase != "start" or not os.path.exists(SAVED_SETTINGS):
        return {}
    with open(SAVED_SETTINGS) as handle:
        return json.load(handle)


def checked_settings():
    command_line = host.inventory.get_override_data()
    data = host.data.dict()  # every layer read once (a host.data.NAME reads them all again)
    defaults = {name: data[name] for name in SETTINGS if data.get(name) is not None}
    try:
        # neither has an environment variable: known before the instance's environment is read
        phase, snapshot = (check(name, command_line.get(name, defaults.get(name)),
                                 "from --data" if name in command_line else "from group_data")
                           for name in ("phase", "snapshot"))
        values, sources = resolve(defaults, command_line, instance_environment(snapshot, phase),
                                  saved_settings(phase))
        python.interpreter(host.data.os_release, values["python_version"], sources["python_version"])
    except SettingError as error:
        raise SystemExit(f"red: {error}") from None
    for name, value in values.items():
        setattr(host.data, name, value)
    return values, sources


controller.at_each_host()
settings, sources = checked_settings()
# The access part first: the desk comes up, locked, whatever happens to the app's steps below.
system.system()
services.supervisor()
desktop.desktop()
ssh.ssh()
jupyter_access = jupyter.locked()
portal.portal(jupyter.TOKEN_FILE, jupyter_access, f"{visomaster.models_dir()}/{models_stage.STATUS}")
onstart.red_on_instance(savable(settings, sources))
# The app's steps (packages, the network): a failure lets the run go on, and is named at its end.
APP_STEP = {"_ignore_errors": True}
if settings["phase"] != "build":
    workspace.seeded(visomaster.checkout_dir(), **APP_STEP)
app_python = python.python(**APP_STEP)
models.models(visomaster.visomaster(app_python, **APP_STEP), **APP_STEP)
jupyter.jupyter(app_python, jupyter_access, **APP_STEP)
if settings["phase"] == "build":
    workspace.kept_in_the_image(f"{settings['visomaster_repo']} {settings['visomaster_ref']}", visomaster.models_dir())
diagnostics.diagnostics(**APP_STEP)  # the doctor and the notebook: never in the way of the desk
services.apply()
managed.snapshot_script(name="Snapshot script for the next run")
managed.failures_reported(name="Steps that failed")
summary.summary()  # vast instances: what to open, printed when the run is over
