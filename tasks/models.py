"""VisoMaster's model files: fetched and verified by files/models/red-models (standard library,
on the target), during the apply (models_at=build), in the background under supervisor at every
start (models_at=start), or never. Their state is in STATUS for diagnostics."""
import shlex

from pyinfra import host
from pyinfra.api import deploy

from tasks import managed, services
from tasks.facts import as_user_script
from tasks.visomaster import checkout_dir, models_dir

FETCHER = "/usr/local/bin/red-models"
STATUS = ".red-status.json"  # in models_dir
DONE_MARKER = ".red-fetched-list"  # in models_dir: the list as it was when every file was there


@deploy("Models")
def models(checkout):
    """`checkout` is the operation that moves the app's checkout (its model table may change)."""
    data = host.data
    managed.put(name="red-models", src="files/models/red-models", dest=FETCHER, mode="755")
    if data.models_at == "build":
        fetched_during_the_apply()
    elif data.models_at == "start":
        services.program("models", fetch_argv(), user=data.desktop_user, priority=90, startsecs=0,
                         oneshot=True, restart_on=[checkout])


def model_list():
    """The manifest, or the app's own model table."""
    return host.data.models_manifest or f"{checkout_dir()}/app/processors/models_data.py"


def fetch_argv():
    data, folder = host.data, models_dir()
    source = ["--manifest", data.models_manifest] if data.models_manifest else ["--table", model_list()]
    mirror = ["--base-url", data.models_base_url] if data.models_base_url else []
    return [FETCHER, *source, "--dir", folder, "--parallel", str(data.models_parallel), *mirror,
            "--status", f"{folder}/{STATUS}"]


def fetched_during_the_apply():
    """Fetched in the apply; done again only when the list differs from the one last fetched whole
    (kept beside the models): a second apply reads no network."""
    listed, marker = model_list(), f"{models_dir()}/{DONE_MARKER}"
    fetch_and_mark = f"{shlex.join(fetch_argv())} && cp {shlex.quote(listed)} {shlex.quote(marker)}"
    return managed.until_copied(
        name="Fetch and verify the model files", unchanged="every file was fetched and verified for this list",
        source=listed, copy=marker,
        # as the desktop user, who owns the models folder: root would follow a link put there
        command=as_user_script(host.data.desktop_user, fetch_and_mark),
    )
