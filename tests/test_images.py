"""The image variants (images.yaml), the workflow that builds and pushes them, and the compose file:
what each says is what the others do. (The linters run in tests/run: hadolint, actionlint, yamllint.)"""
import shutil
import subprocess

import engine
import pytest
import yaml
from conftest import PROJECT

import images

WORKFLOW = PROJECT / ".github" / "workflows" / "images.yml"
PUSH_ONLY_ON_MAIN = "${{ github.event_name == 'push' && github.ref == 'refs/heads/main' }}"


def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def steps(job):
    return workflow()["jobs"][job]["steps"]


def strings(node, where=()):
    """(path, text) of every string in a YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, (*where, index))
    elif isinstance(node, str):
        yield where, node


def test_the_variants_are_the_seeds_four_images_and_the_readme_lists_them():
    listed = {variant["name"]: variant["args"] for variant in images.variants()}
    assert listed == {"default": {"ACCESS": "direct", "MODELS_AT": "build"},
                      "portal": {"ACCESS": "portal", "MODELS_AT": "build"},
                      "small": {"ACCESS": "direct", "MODELS_AT": "start"},
                      "small-portal": {"ACCESS": "portal", "MODELS_AT": "start"}}
    assert images.table() in (PROJECT / "README.md").read_text(), "README: paste `python3 images.py table`"


@pytest.mark.parametrize("entry, said", [
    ("{name: x, tag: x, about: x, args: {ACCESS: vnc, MODELS_AT: start}}", "access"),
    ("{name: x, tag: x, about: x, args: {ACCESS: direct, MODELS_AT: later}}", "models_at"),
    ("{name: x, tag: x, about: x, args: {ACCESS: direct}}", "args must give exactly ACCESS, MODELS_AT"),
    ("{name: 'x;rm', tag: x, about: x, args: {ACCESS: direct, MODELS_AT: start}}", "name 'x;rm'"),
    ("{name: x, tag: 'a b', about: x, args: {ACCESS: direct, MODELS_AT: start}}", "tag 'a b'"),
])
def test_a_bad_variant_is_refused_with_one_line(tmp_path, entry, said):
    bad = tmp_path / "images.yaml"
    bad.write_text(f"variants:\n  - {entry}\n")
    with pytest.raises(images.VariantError) as refused:
        images.variants(bad)
    assert said in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("text", ["", "[]\n", "variants: {}\n"])
def test_a_file_without_a_list_of_variants_is_one_line(tmp_path, text):
    bad = tmp_path / "images.yaml"
    bad.write_text(text)
    with pytest.raises(images.VariantError, match="`variants` is not a list of variants"):
        images.variants(bad)


def test_two_variants_with_one_tag_are_refused(tmp_path):
    twice = tmp_path / "images.yaml"
    entry = "{name: %s, tag: same, about: x, args: {ACCESS: direct, MODELS_AT: start}}"
    twice.write_text(f"variants:\n  - {entry % 'one'}\n  - {entry % 'two'}\n")
    with pytest.raises(images.VariantError, match="the same tag"):
        images.variants(twice)


def test_the_workflows_matrix_is_the_variants_file():
    reads = [step for step in steps("variants") if "images.py matrix" in step.get("run", "")]
    assert len(reads) == 1 and reads[0]["id"] == "read"
    assert workflow()["jobs"]["variants"]["outputs"]["matrix"] == "${{ steps.read.outputs.matrix }}"
    image = workflow()["jobs"]["image"]
    assert image["needs"] == "variants"
    assert image["strategy"]["matrix"] == {"include": "${{ fromJSON(needs.variants.outputs.matrix) }}"}
    done = subprocess.run(["python3", "images.py", "matrix"], cwd=PROJECT, capture_output=True, text=True, check=True)
    matrix = yaml.safe_load(done.stdout.removeprefix("matrix="))
    assert [(entry["name"], entry["build_args"].splitlines()) for entry in matrix] == [
        (variant["name"], [f"{name}={value}" for name, value in variant["args"].items()])
        for variant in images.variants()]
    build = next(step for step in image["steps"] if step.get("uses", "").startswith("docker/build-push-action"))
    assert build["with"]["build-args"] == "${{ matrix.build_args }}"


def test_nothing_is_pushed_on_a_pull_request():
    triggers = workflow()[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"push", "pull_request", "workflow_dispatch"} and triggers["push"] == {"branches": ["main"]}
    image = workflow()["jobs"]["image"]
    assert image["env"]["PUSH"] == PUSH_ONLY_ON_MAIN
    for step in image["steps"]:
        text = yaml.safe_dump(step)
        if "login-action" in step.get("uses", "") or "docker push" in step.get("run", ""):
            assert step.get("if") == "env.PUSH == 'true'", step
        if "build-push-action" in step.get("uses", ""):
            assert "push" not in step["with"] and "env.PUSH == 'true'" in step["with"]["cache-to"]
        assert "push: true" not in text


def test_secrets_appear_only_where_docker_logs_in():
    used = [(where, text) for where, text in strings(workflow()) if "secrets." in text]
    login = next(index for index, step in enumerate(steps("image")) if "login-action" in step.get("uses", ""))
    assert used and all(where[:4] == ("jobs", "image", "steps", login) and where[4] == "with" for where, _ in used)


def test_the_smoke_test_runs_before_the_push():
    names = [step.get("name", step.get("uses", "")) for step in steps("image")]
    smoke = next(index for index, name in enumerate(names) if name.startswith("Smoke test"))
    push = next(index for index, name in enumerate(names) if name.startswith("Push"))
    assert smoke < push and steps("image")[smoke]["run"].startswith("tests/smoke ")


def test_compose_config_accepts_the_file_with_the_example_settings(tmp_path):
    if shutil.which("apt-get") is None and shutil.which("docker-compose") is None:
        pytest.skip("no docker compose, and no apt-get to install Debian's")
    shutil.copy(PROJECT / "docker-compose.yml", tmp_path)
    shutil.copy(PROJECT / ".env.example", tmp_path / ".env")
    done = subprocess.run([*engine.compose_command(), "config"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    red = yaml.safe_load(done.stdout)["services"]["red"]
    assert red["build"]["args"] == next(v["args"] for v in images.variants() if v["name"] == "default")
    assert red["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert "workspace:/workspace" in red["volumes"][0]
    assert all(str(port).startswith("127.0.0.1:") for port in red["ports"]), red["ports"]
    assert {"1111", "22"} <= {str(port).split(":")[2].split("/")[0] for port in red["ports"]}
    assert red["environment"]["VNC_RESOLUTION"] == "1920x1080"


def test_the_example_settings_hold_no_secret():
    for line in (PROJECT / ".env.example").read_text().splitlines():
        name, _, value = line.partition("=")
        if name in ("VNC_PASSWORD", "OPEN_BUTTON_TOKEN", "JUPYTER_TOKEN", "WEB_PASSWORD", "VNC_PW"):
            assert value == "", f"{name} has a value in .env.example"
    assert ".env" in (PROJECT / ".gitignore").read_text().splitlines()
