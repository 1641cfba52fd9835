"""Red's image variants, as images.yaml lists them: checked, and given to whoever builds them.

    python3 images.py matrix     # the workflow's matrix (a line for $GITHUB_OUTPUT)
    python3 images.py table      # the README's table of variants

Each variant is one Dockerfile built with its build arguments; a setting's value is checked as the
deploy checks it (tasks/settings.py), so a bad entry stops here, before a runner builds anything.
"""
import json
import re
import sys
from pathlib import Path

import yaml

from tasks.settings import SettingError, check

VARIANTS_FILE = Path(__file__).resolve().parent / "images.yaml"
ARGUMENTS = {"ACCESS": "access", "MODELS_AT": "models_at"}  # build argument -> the setting it gives
NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


class VariantError(Exception):
    """One line: which variant, which field, what is allowed."""


def variants(path=VARIANTS_FILE):
    """[{"name", "tag", "about", "args"}], each checked; VariantError on the first bad entry."""
    loaded = yaml.safe_load(Path(path).read_text())
    listed = loaded.get("variants") if isinstance(loaded, dict) else None
    if not isinstance(listed, list) or not listed:
        raise VariantError(f"{path}: `variants` is not a list of variants")
    for number, variant in enumerate(listed, 1):
        _check(variant, number)
    for field in ("name", "tag"):
        values = [variant[field] for variant in listed]
        if len(set(values)) != len(values):
            raise VariantError(f"{path}: two variants have the same {field}")
    return listed


def _check(variant, number):
    where = f"images.yaml, variant {number}"
    if not isinstance(variant, dict) or set(variant) != {"name", "tag", "about", "args"}:
        raise VariantError(f"{where}: expected exactly the fields name, tag, about and args")
    if not isinstance(variant["name"], str) or not NAME.fullmatch(variant["name"]):
        raise VariantError(f"{where}: name {variant['name']!r} is not lowercase words joined by '-'")
    if not isinstance(variant["tag"], str) or (variant["tag"] and not NAME.fullmatch(variant["tag"])):
        raise VariantError(f"{where}: tag {variant['tag']!r} is not empty or lowercase words joined by '-'")
    args = variant["args"]
    if not isinstance(args, dict) or set(args) != set(ARGUMENTS):
        raise VariantError(f"{where}: args must give exactly {', '.join(ARGUMENTS)}")
    for argument, setting in ARGUMENTS.items():
        try:
            check(setting, args[argument], f"from {where}, {argument}")
        except SettingError as error:
            raise VariantError(str(error)) from None


def tag_prefix(variant):
    return f"{variant['tag']}-" if variant["tag"] else ""


def tags(variant, short_sha):
    """The tags a push gives the variant's image: TAG-latest and TAG-SHORTSHA (latest and SHORTSHA without a tag)."""
    return [f"{tag_prefix(variant)}latest", f"{tag_prefix(variant)}{short_sha}"]


def matrix():
    """The workflow's matrix: each variant's name, its build arguments as docker/build-push-action
    takes them (NAME=VALUE lines), and its tags' prefix."""
    return [{"name": variant["name"], "tag_prefix": tag_prefix(variant),
             "build_args": "\n".join(f"{name}={value}" for name, value in variant["args"].items())}
            for variant in variants()]


def table():
    rows = ["| variant | tags | build arguments | what it is |", "| --- | --- | --- | --- |"]
    for variant in variants():
        arguments = " ".join(f"`{name}={value}`" for name, value in variant["args"].items())
        rows.append(f"| {variant['name']} | `{'`, `'.join(tags(variant, 'SHORTSHA'))}` | {arguments} "
                    f"| {variant['about']} |")
    return "\n".join(rows)


def main(argv):
    try:
        if argv == ["matrix"]:
            print(f"matrix={json.dumps(matrix())}")
        elif argv == ["table"]:
            print(table())
        else:
            raise SystemExit(__doc__)
    except VariantError as error:
        raise SystemExit(f"red: {error}") from None


if __name__ == "__main__":
    main(sys.argv[1:])
