"""Unit tests of the settings check (pure logic, no host)."""
import ast
from pathlib import Path

import pytest

from tasks.settings import SETTINGS, SettingError, resolve, savable

GROUP_DATA = Path(__file__).resolve().parent.parent / "group_data" / "all.py"


def defaults():
    namespace = {}
    exec(GROUP_DATA.read_text(), namespace)
    return {name: value for name, value in namespace.items() if not name.startswith("_")}


def test_every_setting_has_a_default_with_one_comment_line_and_a_kind():
    lines = GROUP_DATA.read_text().splitlines()
    assigned = [node.targets[0].id for node in ast.parse(GROUP_DATA.read_text()).body if isinstance(node, ast.Assign)]
    assert sorted(assigned) == sorted(SETTINGS)
    for name in assigned:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{name} = "))
        assert lines[index - 1].startswith("# "), f"{name} has no comment line above it"


def test_the_defaults_pass_their_own_check():
    values, _ = resolve(defaults(), {}, {}, {})
    assert values["phase"] == "provision"
    assert values["workspace"] == "/workspace"
    assert values["logs_dir"] == "/logs"
    assert values["desktop_user"] == "red"


def test_command_line_strings_are_converted():
    values, sources = resolve(defaults(), {"apt_cache_time": "60", "extra_apt_packages": "htop, vim",
                                           "log_backups": 3}, {}, {})
    assert values["apt_cache_time"] == 60
    assert values["extra_apt_packages"] == ["htop", "vim"]
    assert values["log_backups"] == 3
    assert sources["apt_cache_time"] == "from --data"


def test_precedence_command_line_then_environment_then_saved_then_group_data():
    saved = {"workspace": "/saved", "logs_dir": "/saved-logs"}
    values, sources = resolve(defaults(), {"workspace": "/cli"}, {"WORKSPACE": "/env"}, saved)
    assert values["workspace"] == "/cli"
    values, sources = resolve(defaults(), {}, {"WORKSPACE": "/env"}, saved)
    assert (values["workspace"], sources["workspace"]) == ("/env", "from $WORKSPACE")
    assert values["logs_dir"] == "/saved-logs"
    assert savable(values, sources).get("workspace") is None, "an environment value is not saved"
    assert savable(values, sources)["logs_dir"] == "/saved-logs"
    assert "phase" not in savable(values, sources)


@pytest.mark.parametrize("name, value, allowed", [
    ("phase", "deploy", "one of provision, build, start"),
    ("workspace", "workspace", "an absolute path"),
    ("logs_dir", "", "an absolute path"),
    ("desktop_user", "Bad User", "a Unix user name"),
    ("apt_cache_time", "soon", "a whole number of seconds"),
    ("apt_cache_time", -1, "a whole number of seconds"),
    ("log_backups", True, "a number of rotated files"),
    ("extra_apt_packages", "Not A Package", "a list of Debian package names"),
])
def test_a_bad_value_names_the_setting_the_value_and_what_is_allowed(name, value, allowed):
    with pytest.raises(SettingError) as raised:
        resolve(defaults(), {name: value}, {}, {})
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"setting {name} = {value!r} (from --data) is not allowed: expected {allowed}")


def test_a_bad_environment_value_says_where_it_came_from():
    with pytest.raises(SettingError, match=r"setting workspace = 'data' \(from \$WORKSPACE\)"):
        resolve(defaults(), {}, {"WORKSPACE": "data"}, {})


def test_an_unknown_setting_on_the_command_line_is_refused_but_pyinfra_connection_data_is_not():
    with pytest.raises(SettingError, match="setting logsdir .* is not a Red setting"):
        resolve(defaults(), {"logsdir": "/x"}, {}, {})
    values, _ = resolve(defaults(), {"ssh_port": 2222, "ssh_user": "root"}, {}, {})
    assert "ssh_port" not in values


def test_port_kind_accepts_1_to_65535_only():
    from tasks.settings import PORT
    assert PORT.convert("22") == 22
    assert PORT.convert(65535) == 65535
    for bad in (0, 65536, "80a", "", None, 1.5):
        with pytest.raises((ValueError, TypeError)):
            PORT.convert(bad)


def test_two_port_settings_with_the_same_port_are_refused():
    with pytest.raises(SettingError, match="settings vnc_port and novnc_port are both 5901: expected a different port"):
        resolve(defaults(), {"novnc_port": "5901"}, {}, {})


@pytest.mark.parametrize("value, expected", [("1280x720", "1280x720"), (" 800x600 ", "800x600")])
def test_a_resolution_is_normalised(value, expected):
    values, _ = resolve(defaults(), {}, {"VNC_RESOLUTION": value}, {})
    assert values["vnc_resolution"] == expected


@pytest.mark.parametrize("value", ["1280", "100x100", "1920x1080x24", "wide"])
def test_a_bad_resolution_is_refused(value):
    with pytest.raises(SettingError, match="setting vnc_resolution .* expected WIDTHxHEIGHT"):
        resolve(defaults(), {"vnc_resolution": value}, {}, {})


def test_a_vnc_password_is_never_echoed_in_its_error():
    with pytest.raises(SettingError) as raised:
        resolve(defaults(), {}, {"VNC_PW": "abc"}, {})
    assert "abc" not in str(raised.value)
    assert str(raised.value).startswith("setting vnc_password = (hidden) (from $VNC_PW) is not allowed")


def public_key(comment="me@laptop"):
    import base64
    blob = len(b"ssh-ed25519").to_bytes(4, "big") + b"ssh-ed25519" + (32).to_bytes(4, "big") + bytes(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def test_public_keys_come_as_a_list_or_as_lines_from_the_environment():
    values, sources = resolve(defaults(), {"ssh_authorized_keys": [public_key("a")]},
                              {"PUBLIC_KEY": f"{public_key('b')}\n\n{public_key('c')}\n"}, {})
    assert values["ssh_authorized_keys"] == [public_key("a")]
    assert values["instance_public_keys"] == [public_key("b"), public_key("c")]
    assert sources["instance_public_keys"] == "from $PUBLIC_KEY"


@pytest.mark.parametrize("line", ["ssh-ed25519", "ssh-dss AAAAB3NzaC1kc3M= old", "ssh-ed25519 not-base64!",
                                  public_key().replace("ssh-ed25519 ", "ssh-rsa ", 1)])
def test_a_line_that_is_not_a_public_key_is_refused_with_one_line(line):
    with pytest.raises(SettingError) as error:
        resolve(defaults(), {}, {"SSH_PUBLIC_KEY": line}, {})
    message = str(error.value)
    assert message.startswith("setting instance_public_keys = ") and "(from $SSH_PUBLIC_KEY)" in message
    assert "\n" not in message


def test_the_jupyter_token_comes_from_vast_and_never_shows_in_its_error():
    values, _ = resolve(defaults(), {}, {"OPEN_BUTTON_TOKEN": "open-button-token"}, {})
    assert values["jupyter_token"] == "open-button-token"
    with pytest.raises(SettingError, match=r"setting jupyter_token = \(hidden\) \(from \$JUPYTER_TOKEN\)"):
        resolve(defaults(), {}, {"JUPYTER_TOKEN": "short"}, {})
