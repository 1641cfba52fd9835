"""Unit tests of the settings check (pure logic, no host)."""
import ast
import json
import re
from pathlib import Path

import pytest

from tasks.settings import SETTINGS, SettingError, check, red_app, resolve, savable

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


def refused(name, value, **where):
    """The one line a refused --data value (or, with env=VAR, an environment value) gives."""
    environment = {where["env"]: value} if "env" in where else {}
    with pytest.raises(SettingError) as raised:
        resolve(defaults(), {} if environment else {name: value}, environment, {})
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"setting {name} = ") and " is not allowed: expected " in message
    return message


PATHS = ["workspace", "logs_dir", "red_dir", "visomaster_dir", "visomaster_venv", "models_dir", "jupyter_dir",
         "models_manifest"]
HOSTILE = ["/srv/$(touch /tmp/x)", "/a;id", "/$(id)", "/a`id`", "/a b", '/a"b', "/a'b", "/a%b", "/a\nb", "/a\0b",
           "/a\tb", "/a|b", "/a&b", "/a<b", "/a>b", "/a\\b", "/a*", "/wörk", "-rf", "/-rf", "/data/-x", "relative",
           "~/x", "/", "//", "/etc", "/etc/", "//etc", "/etc/red", "/usr/lib/x", "/usr/local/red", "/bin", "/lib64/x",
           "/boot/x", "/dev/shm/x", "/proc/1", "/sys/x", "/run/red", "/var/run/red", "/tmp", "/tmp/x", "/var/tmp/x",
           "/var", "/var/lib", "/var/log", "/home", "/root", "/opt", "/srv", "/mnt", "/data/../etc", "/data/..",
           "/..", "/data/./x", "/."]


@pytest.mark.parametrize("name", PATHS)
@pytest.mark.parametrize("value", HOSTILE)
def test_a_path_setting_refuses_hostile_and_system_paths(name, value):
    message = refused(name, value)
    assert message.startswith(f"setting {name} = {value!r} (from --data) is not allowed: expected ")
    assert "an absolute path of letters, digits and ._+-" in message


@pytest.mark.parametrize("name", PATHS)
@pytest.mark.parametrize("value, expected", [
    ("/workspace", "/workspace"), ("/data", "/data"), ("/logs", "/logs"), ("/mnt/work/VisoMaster", None),
    ("/opt/red", None), ("/opt/visomaster/venv", None), ("/home/red/work", None), ("/var/workspace", None),
    ("/var/lib/red", None), ("/srv/red", None), ("/root/red", None), ("/data/models/manifest.json", None),
    ("/data/my_models-v1.2+cu124", None), ("/workspace/", "/workspace"), ("/data//models", "/data/models"),
])
def test_a_path_setting_takes_plain_paths_outside_the_system_folders(name, value, expected):
    assert check(name, value, "from --data") == (expected or value)


def test_a_path_from_the_environment_is_refused_with_where_it_came_from():
    assert refused("workspace", "/workspace;id", env="WORKSPACE").startswith(
        "setting workspace = '/workspace;id' (from $WORKSPACE) is not allowed: expected an absolute path")
    assert refused("jupyter_dir", "/etc", env="JUPYTER_DIR").startswith(
        "setting jupyter_dir = '/etc' (from $JUPYTER_DIR)")


@pytest.mark.parametrize("value", ["root", "nobody", "sshd", "daemon", "bin", "www-data", "messagebus",
                                   "systemd-network", "_apt", "-red", "red;id", "red user", "$(id)", "`id`",
                                   "red\n", "red\0", "Red", "../red", "/red", "rèd", "r" * 33, ""])
def test_the_desktop_user_is_neither_hostile_nor_root_nor_a_system_account(value):
    assert refused("desktop_user", value).startswith(
        f"setting desktop_user = {value!r} (from --data) is not allowed: expected a Unix user name")


@pytest.mark.parametrize("value", ["red", "alice", "viso-user", "user_2"])
def test_the_desktop_user_takes_ordinary_names(value):
    assert check("desktop_user", value, "from --data") == value


URL_HOSTILE = ["https://host/$(id).git", "https://host/a;id", "https://host/`id`", "https://host/a'b", 'https://host/a"b',
               "https://host/a b", "https://host/a\nb", "https://host/a\0b", "https://host/a\tb", "https://host/a|b",
               "https://host/a&b", "https://host/a<b", "https://host/a>b", "https://host/a\\b",
               "https://host/%(ENV_JUPYTER_TOKEN)s", "https://hóst/x", "https://", "https:///x", "-oProxyCommand=id",
               "https://-oProxyCommand=id/x", "ftp://host/x", "/srv/repo.git", "../repo", "host/x", ""]


@pytest.mark.parametrize("value", URL_HOSTILE + ["ssh://-oProxyCommand=id/x", "ssh://git@-host/x", "ssh://host:-p/x",
                                                 "git@-oProxyCommand=id:x", "-git@host:x", "git@host:-x",
                                                 "file://relative/x", "ext::sh -c id", "git@host:"])
def test_the_git_url_refuses_hostile_values(value):
    assert refused("visomaster_repo", value).startswith(
        f"setting visomaster_repo = {value!r} (from --data) is not allowed: expected a git URL")


@pytest.mark.parametrize("value", ["https://github.com/visomaster/VisoMaster.git", "git@github.com:me/VisoMaster.git",
                                   "file:///var/tmp/red-sandbox/x/origin.git", "ssh://git@github.com/me/VisoMaster.git",
                                   "ssh://git@host:2222/~me/repo.git", "git://127.0.0.1:9418/origin.git",
                                   "http://10.0.0.5:8000/VisoMaster.git", "https://gitlab.com/g/p.git"])
def test_the_git_url_takes_real_ones(value):
    assert check("visomaster_repo", value, "from --data") == value


@pytest.mark.parametrize("value", [url for url in URL_HOSTILE if url] + ["git://host/x", "file:///srv/x", "ssh://host/x"])
def test_the_models_base_url_refuses_hostile_values(value):
    assert refused("models_base_url", value).startswith(
        f"setting models_base_url = {value!r} (from --data) is not allowed: expected empty, or an http(s) URL")


@pytest.mark.parametrize("value", ["http://10.0.0.5:8000", "https://mirror.example.com/models/", "http://[::1]:8000",
                                   "https://gitlab.com/g/p/-/raw/main", "https://host/x?a=1", ""])
def test_the_models_base_url_takes_real_ones(value):
    assert check("models_base_url", value, "from --data") == value


@pytest.mark.parametrize("value", ["short", "a;idxxxxxx", "$(id)xxxx", "`id`xxxxxx", "tok'enxxxx", 'tok"enxxxx',
                                   "tok%enxxxx", "tok enxxxx", "tokenxxxx\n", "token\0xxxx", "token\x1bxxxx",
                                   "tok+enxxxx", "tok/enxxxx", "../../etc/passwd", "tökenxxxx", "t" * 257])
def test_a_jupyter_token_is_url_safe_and_never_shown(value):
    message = refused("jupyter_token", value, env="JUPYTER_TOKEN")
    assert message.startswith("setting jupyter_token = (hidden) (from $JUPYTER_TOKEN) is not allowed: expected empty")
    assert value not in message


@pytest.mark.parametrize("value", ["open-button-token", "a-given-token-123", "0123456789abcdef" * 4,
                                   "-Xy_z.~01", "t" * 256])
def test_a_jupyter_token_takes_url_safe_ones(value):
    assert check("jupyter_token", value, "from --data") == value


@pytest.mark.parametrize("value", ["abc\ndefgh", "abc\0defgh", "abcdefgh\n", "tab\tpassword", "pässwört", "x" * 129,
                                   "\x1b[2Jabcdef"])
def test_a_vnc_password_is_printable_ascii_and_never_shown(value):
    message = refused("vnc_password", value, env="VNC_PW")
    assert message.startswith("setting vnc_password = (hidden) (from $VNC_PW) is not allowed: expected empty")
    assert value not in message


@pytest.mark.parametrize("value", ["given-secret-1", "pa'ss\"wo;rd$(id)`%", "a b c d", "x" * 128])
def test_a_vnc_password_may_hold_any_printable_ascii(value):
    assert check("vnc_password", value, "from --data") == value


@pytest.mark.parametrize("comment", ["me\nevil", "me\tlaptop", "me\rlaptop", "me\x1b[2J", "me\0", "me\u2028x"])
def test_a_public_key_comment_holds_no_control_character(comment):
    refused("ssh_authorized_keys", [public_key(comment)])


@pytest.mark.parametrize("value", ["-main", "ma\nin", "ma\0in", "ma in", "mäin", "$(id)", "a;b", "a`b`", "../x"])
def test_the_visomaster_ref_refuses_hostile_values(value):
    refused("visomaster_ref", value)


@pytest.mark.parametrize("name", sorted(SETTINGS))
@pytest.mark.parametrize("control", ["\0", "\n", "\x1b", "\x7f", "\u2028"])
def test_no_setting_takes_a_control_character(name, control):
    text = {"log_backups": "15", "models_connections": "12", "extra_apt_packages": "htop",
            "ssh_authorized_keys": public_key(), "instance_public_keys": public_key()}.get(
                name, str(defaults()[name]).lower())
    refused(name, text[:1] + control + text[1:])


@pytest.mark.parametrize("name, variable", [("vnc_password", "VNC_PW"), ("jupyter_token", "JUPYTER_TOKEN")])
def test_an_image_build_takes_no_secret(name, variable):
    with pytest.raises(SettingError) as error:
        resolve(defaults(), {"phase": "build", name: "a-secret-in-the-history"}, {}, {})
    assert str(error.value) == (f"setting {name} = (hidden) (from --data) is not allowed in an image build: expected "
                                f"it in the instance's environment at run time ({variable}, "
                                f"{SETTINGS[name].env[1]}), never in the image's history")
    assert "a-secret-in-the-history" not in str(error.value)
    values, _ = resolve(defaults(), {"phase": "start"}, {variable: "a-secret-at-the-start"}, {})
    assert values[name] == "a-secret-at-the-start"


@pytest.mark.parametrize("name, value, allowed", [
    ("access", "open", "one of portal, direct"),
    ("web_username", "va st", "1 to 64 letters"),
    ("portal_token", "short", "empty (Red generates one) or 8 to 256"),
])
def test_the_portal_settings_refuse_what_can_never_work(name, value, allowed):
    with pytest.raises(SettingError, match=rf"setting {name} = .* expected {re.escape(allowed)}"):
        resolve(defaults(), {name: value}, {}, {})


def test_vast_variables_give_the_portal_its_port_token_and_login():
    values, sources = resolve(defaults(), {}, {"OPEN_BUTTON_PORT": "2222", "OPEN_BUTTON_TOKEN": "tok-0123456789",
                                               "WEB_USERNAME": "me", "WEB_PASSWORD": "pass-word"}, {})
    assert (values["portal_port"], values["portal_token"], values["web_username"], values["web_password"]) == \
        (2222, "tok-0123456789", "me", "pass-word")
    assert sources["portal_token"] == "from $OPEN_BUTTON_TOKEN"
    values, _ = resolve(defaults(), {}, {"WEB_PASSWORD": "pass-word"}, {})
    assert values["portal_token"] == "pass-word", "without OPEN_BUTTON_TOKEN, WEB_PASSWORD is the token"


def test_behind_the_portal_an_app_port_needs_a_free_internal_port():
    with pytest.raises(SettingError, match="setting novnc_port = 60000 is not allowed with access=portal"):
        resolve(defaults(), {"novnc_port": 60000}, {}, {})
    with pytest.raises(SettingError, match="setting jupyter_port = 8080 .* internal port \\(18080"):
        resolve(defaults(), {"portal_port": 18080}, {}, {})
    assert resolve(defaults(), {"novnc_port": 60000, "access": "direct"}, {}, {})[0]["novnc_port"] == 60000


VAST_PORTAL_CONFIG = ("localhost:1111:11111:/:Instance Portal|localhost:7901:17901:/:Desktop|"
                      "localhost:8080:8080:/terminals/1:Jupyter Terminal|localhost:8384:18384:/:Syncthing")


def test_both_portal_config_forms_give_the_same_apps_and_move_reds_own():
    seeds_json = json.dumps({"version": 2, "port": 11111, "services": [
        {"name": "Instance Portal", "uri": "/", "port": 1111, "internal_port": 11111},
        {"name": "VNC", "port": 7901, "proto": "http", "rewrite": True, "auth": True},
        {"name": "Jupyter Terminal", "uri": "/terminals/1", "port": 8080},
        {"name": "Syncthing", "uri": "/", "port": 8384, "internal_port": 18384}]})
    from_vast, sources = resolve(defaults(), {}, {"PORTAL_CONFIG": VAST_PORTAL_CONFIG}, {})
    from_json, _ = resolve(defaults(), {}, {"PORTAL_CONFIG": seeds_json}, {})
    assert from_vast["novnc_port"] == from_json["novnc_port"] == 7901
    assert sources["novnc_port"] == "from portal_config"
    users_own = [service for service in from_vast["portal_config"] if not red_app(service)]
    assert users_own == [service for service in from_json["portal_config"] if not red_app(service)] == [
        {"name": "Jupyter Terminal", "uri": "/terminals/1", "port": 8080},  # a link: nothing proxied
        {"name": "Syncthing", "uri": "/", "port": 8384, "internal_port": 18384}]
    saved, _ = resolve(defaults(), {"phase": "start"}, {}, {"portal_config": from_vast["portal_config"]})
    assert saved["portal_config"] == from_vast["portal_config"], "the saved value reads back the same"


@pytest.mark.parametrize("value, why", [
    ("localhost:8384:18384:/:Syncthing|localhost:port:1:/:Broken",
     "entry 'localhost:port:1:/:Broken': external port 'port' is not a port (1 to 65535)"),
    ("example.com:8384:18384:/:Far", "entry 'example.com:8384:18384:/:Far': host 'example.com' is not allowed"),
    ("localhost:8384:18384:Syncthing", "entry 'localhost:8384:18384:Syncthing': expected host:external_port:"),
    ("localhost:8384:18384:/\"><script>:X", "path '/\"><script>' is not allowed"),
    ('{"services": [{"name": "Open", "uri": "/", "auth": false}]}', "expected auth true and proto http"),
    ('{"services": [{"name": "Typo", "url": "/"}]}', "unknown key 'url'"),
])
def test_a_malformed_portal_config_entry_is_refused_by_name(value, why):
    with pytest.raises(SettingError, match=re.escape(why)) as error:
        resolve(defaults(), {}, {"PORTAL_CONFIG": value}, {})
    assert str(error.value).startswith("setting portal_config (from $PORTAL_CONFIG) is not allowed: entry ")


@pytest.mark.parametrize("value, why", [
    ("localhost:7901:7902:/:Desktop", "entry 'Desktop' is not allowed: internal port 7902; Red's own app listens on "
                                      "its port + 10000, expected 17901"),
    ("localhost:8384:18384:/:Mine|localhost:8385:18384:/:Again", "its internal port 18384 is entry 'Mine''s"),
    ("localhost:22:18384:/:Mine", "its port 22 is sshd_port's"),
    ("localhost:8384:16901:/:Mine", "its internal port 16901 is novnc_port's internal port"),
    ("localhost:7000:17000:/:Desktop|localhost:7001:17001:/:VNC", "a second entry for novnc_port"),
])
def test_portal_config_refuses_ports_another_app_has(value, why):
    with pytest.raises(SettingError, match=re.escape(why)):
        resolve(defaults(), {}, {"PORTAL_CONFIG": value}, {})
