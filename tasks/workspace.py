"""The workspace an image carries. A volume mounted on the workspace hides what the image built
there (Docker fills a new named volume from the image, a bind mount it does not), so an image build
keeps a copy of it apart (hard links: no space twice), and a start copies it into a workspace that
lacks the checkout, without the network."""
import hashlib
import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import Directory

from tasks import managed
from tasks.facts import Checkout, as_user_script
from tasks.models_stage import SEED, seeded_entry



@deploy("Workspace seed")
def seeded(checkout):
    """A workspace without the checkout gets whatever the image's seed holds that it lacks (as the
    desktop user: nothing of root's follows what the user made there)."""
    data = host.data
    managed.declare(paths=[SEED], checkouts=[(checkout, data.desktop_user)])
    copy = ("cd {seed} && for name in * .[!.]*; do [ -e \"$name\" ] || continue; rmdir {ws}/\"$name\" 2>/dev/null; "
            "[ -e {ws}/\"$name\" ] || [ -L {ws}/\"$name\" ] || {{ cp -a \"$name\" {ws}/.red-seed-\"$name\" "
            "&& mv -T {ws}/.red-seed-\"$name\" {ws}/\"$name\"; }} || exit 1; done"
            ).format(seed=shlex.quote(SEED), ws=shlex.quote(data.workspace))

    def nothing_to_seed(seed, state):
        return not seed or state.get("state") not in ("missing", "empty")

    def converge():
        state = host.get_fact(Checkout, path=checkout, user=data.desktop_user)
        if not nothing_to_seed(host.get_fact(Directory, path=SEED), state):
            yield as_user_script(data.desktop_user, copy)
    return managed.checked(
        name=f"An empty workspace gets what the image holds ({SEED})", unchanged="nothing to seed",
        matches=lambda seen: nothing_to_seed(SEED in seen["paths"], seen["checkouts"].get(checkout, {})),
        converge=converge,
    )


@deploy("Workspace seed")
def kept_in_the_image(source, models):
    """In an image build: the workspace as built, kept apart (hard links: no space twice) for
    workspaces mounted empty, refreshed when `source`, what the checkout came from, differs. The models
    folder that the image's models stage already linked into the seed in its own layer
    (models_stage.seeded_entry) is kept as it is: linked from that lower layer, each model file would
    be copied."""
    workspace = host.data.workspace
    skipped = seeded_entry(models, workspace) or ""
    entries = ('for name in * .[!.]*; do {{ [ -e "$name" ] || [ -L "$name" ]; }} || continue; '
               'if [ "$name" = {skipped} ] && [ -d {seed}/"$name" ]; then continue; fi; '
               'rm -rf {seed}/"$name" && cp -al "$name" {seed}/ || exit 1; done'
               ).format(skipped=shlex.quote(skipped), seed=shlex.quote(SEED))
    return managed.once(
        name=f"The workspace, kept for empty volumes ({SEED})",
        commands=[f"mkdir -p {SEED} && cd {shlex.quote(workspace)} && {entries}"],
        marker=f"{SEED}.made", key=hashlib.sha256(f"{workspace} {source}".encode()).hexdigest(),
    )
