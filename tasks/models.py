"""VisoMaster's model files: fetched and verified by files/models/red-models (standard library,
on the target), during the apply (models_at=build), in the background under supervisor at every
start (models_at=start), or never. Their state is in models_stage.STATUS for diagnostics."""
import shlex

from pyinfra import host
from pyinfra.api import deploy

from tasks import managed, services
from tasks.facts import as_user, as_user_script
from tasks.models_stage import DONE_MARKER, FETCHER, TABLE, fetcher_argv
from tasks.visomaster import checkout_dir, models_dir
# The marker's lines (`want ...`), then each listed file's size, mtime and path now (`have ...`)
DRIFT_PROBE = ('[ -f "$1" ] || exit 0; sed "s/^/want /" "$1"; cd "$2" && tail -n +2 "$1" | cut -d" " -f3- '
               '| xargs -r -d "\\n" stat -c "have %s %.9Y %n" -- 2>/dev/null; true')


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
    return host.data.models_manifest or f"{checkout_dir()}/{TABLE}"


def fetch_argv():
    return fetcher_argv(host.data.dict(), model_list())


def fetched_during_the_apply():
    """Fetched in the apply, and again when the list changed or a file drifted: deleted, or of
    another size or mtime than when it was verified (red-models --done keeps them beside the
    models; the snapshot compares them, hashing nothing). A second apply reads no network."""
    listed, folder, user = model_list(), models_dir(), host.data.desktop_user
    marker = f"{folder}/{DONE_MARKER}"

    def intact(lines, digests):
        wanted = [line[5:] for line in lines if line.startswith("want ")]
        present = {line[5:] for line in lines if line.startswith("have ")}
        return (bool(digests.get(listed)) and wanted[:1] == [f"list {digests[listed]}"]
                and all(line in present for line in wanted[1:]))
    return managed.unless_probed(
        name="Fetch and verify the model files", unchanged="every file is there as it was verified, for this list",
        files=[listed], holds=intact,
        # as the desktop user, who owns the models folder: root would follow a link put there
        probe=as_user(user, f"sh -c {shlex.quote(DRIFT_PROBE)} sh {shlex.quote(marker)} {shlex.quote(folder)}"),
        command=as_user_script(user, shlex.join([*fetch_argv(), "--done", marker])),
    )
