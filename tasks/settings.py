"""Red's settings: what kind each one is, where its value comes from, and the check that runs
before the first operation.

Defaults live in group_data/all.py (one line each, with its comment). A value comes, first found:
  1. pyinfra's command line (`--data NAME=VALUE`),
  2. the instance's environment (vast's variables, e.g. WORKSPACE),
  3. in phase start, the settings the image was built or provisioned with (SAVED_SETTINGS),
  4. the inventory's host data, then group_data.
Strings from the command line or the environment are converted like any other value; a value
that is not allowed stops the run with one line naming the setting, the value and what is allowed.
"""
import base64
import binascii
import json
import re
import runpy
from dataclasses import dataclass, field
from typing import Any, Callable

# Where the start phase finds the settings a build or a provision used (root-only, no secrets).
SAVED_SETTINGS = "/etc/red/settings.json"


class SettingError(Exception):
    """One line, for the operator: the setting, the value, and what is allowed."""


@dataclass(frozen=True)
class Kind:
    allowed: str  # said to the operator when a value does not fit
    convert: Callable[[Any], Any]  # raises ValueError when the value does not fit


def _boolean(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "off", "0", ""):
        return False
    if value in (0, 1):
        return bool(value)
    raise ValueError


def _integer(low, high):
    def convert(value):
        if isinstance(value, bool):
            raise ValueError
        number = int(value) if isinstance(value, int) else int(str(value).strip(), 10)
        if not low <= number <= high:
            raise ValueError
        return number
    return convert


# The system's own folders: a setting path is never one of them, nor inside one
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin",
                "/sys", "/tmp", "/usr", "/var/lock", "/var/run", "/var/tmp")
# Folders that hold other folders: a setting path may be inside one, never one itself (Red chowns and chmods
# its folders)
SYSTEM_FOLDERS = ("/", "/home", "/media", "/mnt", "/opt", "/root", "/srv", "/var", "/var/backups", "/var/cache",
                  "/var/lib", "/var/local", "/var/log", "/var/mail", "/var/opt", "/var/spool")


def _absolute_path(value):
    """/segments of [A-Za-z0-9._+-], none of them . or .. or starting with -; a trailing / or a doubled //
    is dropped."""
    if not isinstance(value, str) or not re.fullmatch(r"(/+[A-Za-z0-9._+-]+)+/*", value):
        raise ValueError
    path = re.sub("/+", "/", value).rstrip("/")
    if (any(segment in (".", "..") or segment.startswith("-") for segment in path.split("/")[1:])
            or path in SYSTEM_FOLDERS or any(f"{path}/".startswith(f"{tree}/") for tree in SYSTEM_TREES)):
        raise ValueError
    return path


def _matching(pattern):
    def convert(value):
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise ValueError
        return value
    return convert


def _one_of(*options):
    def convert(value):
        if value not in options:
            raise ValueError
        return value
    return convert


def _list_of(item_convert):
    """A list, a JSON list or a comma-separated string (as --data gives it)."""
    def convert(value):
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else \
                [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError
        return [item_convert(item) for item in value]
    return convert


BOOLEAN = Kind("true or false", _boolean)
PORT = Kind("a TCP port, an integer from 1 to 65535", _integer(1, 65535))
SECONDS = Kind("a whole number of seconds, 0 or more", _integer(0, 10**9))
PATH_RULE = ("an absolute path of letters, digits and ._+- (no segment . or .. or starting with -), not / or a folder "
             "such as /home, /opt, /var or /var/lib, nor inside /etc, /usr, /bin, /sbin, /lib*, /boot, /dev, /proc, "
             "/sys, /run, /tmp or /var/tmp")
ABSOLUTE_PATH = Kind(PATH_RULE, _absolute_path)

# System accounts of Debian and Ubuntu images, as a fixed list: the target's /etc/passwd is not at hand here,
# and this machine's is another system's
SYSTEM_USERS = {"root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
                "www-data", "backup", "list", "irc", "gnats", "nobody", "messagebus", "sshd", "syslog", "uuidd",
                "tcpdump", "polkitd"}


def _desktop_user(value):
    # no leading _: Debian names its newer system accounts _apt, _chrony...
    if (not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", value) or value in SYSTEM_USERS
            or value.startswith("systemd-")):
        raise ValueError
    return value


USER_NAME = Kind("a Unix user name ([a-z][a-z0-9_-]*, at most 32 characters), not root or a system account "
                 "(daemon, nobody, sshd, www-data, systemd-*...)", _desktop_user)
PACKAGE_NAMES = Kind("a list of Debian package names, e.g. [\"htop\", \"vim\"] or htop,vim",
                     _list_of(_matching(r"[a-z0-9][a-z0-9+.-]+")))


def _resolution(value):
    match = re.fullmatch(r"(\d{3,5})x(\d{3,5})", str(value).strip())
    if not match or not all(320 <= int(side) <= 8192 for side in match.groups()):
        raise ValueError
    return f"{int(match.group(1))}x{int(match.group(2))}"


def _password(value):
    if value == "":
        return ""  # none given: Red generates one
    if not isinstance(value, str) or not re.fullmatch(r"[ -~]{6,128}", value):  # written to a file, never a command
        raise ValueError
    return value


def _python_version(value):
    # `--data python_version=3.10` arrives as the number 3.1 (pyinfra reads it as JSON); no Python
    # Red can install is 3.1, so that number means 3.10
    text = "3.10" if value == 3.1 else str(value).strip()
    match = re.fullmatch(r"3\.(\d{1,2})", text)
    if isinstance(value, bool) or not match or not 7 <= int(match.group(1)) <= 20:
        raise ValueError
    return text


# No space, quote, `, $, ;, |, &, <, >, \ or % (supervisor reads %(...)s in a program's command line)
URL_CHARACTERS = r"[A-Za-z0-9._~:/?#@+,=\[\]-]"


def _url(pattern):
    """A URL of URL_CHARACTERS; no user, host, port or path right after it starts with - (ssh reads it as an option)."""
    def convert(value):
        if not isinstance(value, str) or not re.fullmatch(pattern, value) or re.search(r"(://|[@:])-", value):
            raise ValueError
        return value
    return convert


_git_url = _url(rf"((https?|ssh|git)://(?!/)|file:///|[A-Za-z0-9._][A-Za-z0-9._-]*@[A-Za-z0-9.-]+:){URL_CHARACTERS}+")


def _git_ref(value):
    """A branch, tag or commit name as git allows it (git check-ref-format, in short)."""
    text = str(value).strip()
    if (not re.fullmatch(r"[\w./-]+", text, re.ASCII) or text.startswith(("-", "/", "."))
            or text.endswith((".", "/", ".lock")) or ".." in text or "//" in text):
        raise ValueError
    return text


def _optional(convert):
    """Empty: Red derives the value from other settings."""
    return lambda value: "" if value in ("", None) else convert(value)


KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")


def _public_key(line):
    """An OpenSSH public key line: TYPE BASE64 [COMMENT], the type also inside the key data."""
    text = str(line).strip()
    parts = text.split(None, 2)
    if len(parts) < 2 or parts[0] not in KEY_TYPES or not text.isprintable():  # its comment too: keys are lines
        raise ValueError
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError from None
    if len(blob) < 4 or blob[4:4 + int.from_bytes(blob[:4], "big")] != parts[0].encode():
        raise ValueError
    return " ".join(parts)


def _public_keys(value):
    """A list, a JSON list, or lines (as PUBLIC_KEY holds them); blank lines are skipped."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip().startswith("[") else value.splitlines()
    if not isinstance(value, (list, tuple)):
        raise ValueError
    return [_public_key(line) for line in value if str(line).strip()]


RESOLUTION = Kind("WIDTHxHEIGHT, each from 320 to 8192, e.g. 1920x1080", _resolution)
PASSWORD = Kind("empty (Red generates one) or 6 to 128 printable ASCII characters", _password)


PYTHON_VERSION = Kind("a Python version 3.N, e.g. 3.10", _python_version)
GIT_URL = Kind("a git URL (https://, http://, ssh://, git://, file:/// or user@host:path) of letters, digits and "
               "._~:/?#@+,=[]- (no part starting with -)", _git_url)
GIT_REF = Kind("a branch, tag or commit, e.g. main, v0.1.6 or a commit hash", _git_ref)
PUBLIC_KEYS = Kind("OpenSSH public key lines (TYPE BASE64 [COMMENT], e.g. ssh-ed25519 AAAAC3... me@laptop)",
                   _public_keys)
# URL-safe as it travels in ?token=...: a + would read as a space there; _ and - are in secrets.token_urlsafe's tokens
TOKEN = Kind("empty (Red generates one) or 8 to 256 letters, digits and ._~-",
             _optional(_matching(r"[A-Za-z0-9._~-]{8,256}")))
DERIVED_PATH = Kind(f"empty for its default, or {PATH_RULE}", _optional(_absolute_path))


class EntryError(ValueError):
    """A value made of entries (portal_config): which entry is wrong, and why."""


# Red's own apps as PORTAL_CONFIG names them (any case): an entry for one moves it to the entry's port
RED_APPS = {"instance portal": "portal_port", "portal": "portal_port", "desktop": "novnc_port", "vnc": "novnc_port",
            "novnc": "novnc_port", "jupyter": "jupyter_port", "jupyterlab": "jupyter_port"}
APP_PATH = r"/[A-Za-z0-9._~/?=&%+-]*"  # an app's path in a link: no quote, space or <
SERVICE_KEYS = {"name", "uri", "port", "internal_port", "proto", "rewrite", "auth"}  # the seeds' keys, and the ports


def _app_port(value, what, entry):
    try:
        return _integer(1, 65535)(value)
    except (ValueError, TypeError):
        raise EntryError(f"entry {entry!r}: {what} {value!r} is not a port (1 to 65535)") from None


def _service(service, entry):
    """One app as the JSON form writes it: {"name", "uri", "port", "internal_port"}, checked. No port:
    a path on the portal's port; no internal_port (or the same as port): a link only, nothing proxied."""
    if not isinstance(service, dict) or not isinstance(service.get("name"), str):
        raise EntryError(f"entry {entry!r}: expected an object with a name")
    name, uri = service["name"].strip(), service.get("uri", "/")
    if set(service) - SERVICE_KEYS:
        raise EntryError(f"entry {entry!r}: unknown key {sorted(set(service) - SERVICE_KEYS)[0]!r}, expected "
                         f"{', '.join(sorted(SERVICE_KEYS))}")
    if not 1 <= len(name) <= 64 or not name.isprintable():
        raise EntryError(f"entry {entry!r}: expected a name of 1 to 64 printable characters")
    if not isinstance(uri, str) or not re.fullmatch(APP_PATH, uri):
        raise EntryError(f"entry {entry!r}: path {uri!r} is not allowed, expected / and letters, digits and ._~/?=&%+-")
    if service.get("auth", True) is not True or service.get("proto", "http") != "http":
        raise EntryError(f"entry {entry!r}: expected auth true and proto http (the portal checks every request)")
    checked = {"name": name, "uri": uri}
    for key, what in (("port", "port"), ("internal_port", "internal port")):
        if key in service:
            checked[key] = _app_port(service[key], what, entry)
    if "internal_port" in checked and "port" not in checked:
        raise EntryError(f"entry {entry!r}: an internal_port needs the port it is published on")
    if checked.get("internal_port") == checked.get("port"):
        checked.pop("internal_port", None)
    return checked


def _vast_entry(entry):
    """host:external_port:internal_port:path:Name, vast's form, as a JSON-form service."""
    parts = entry.split(":", 4)
    if len(parts) != 5:
        raise EntryError(f"entry {entry!r}: expected host:external_port:internal_port:path:Name")
    address, external, internal, path, name = parts
    if address not in ("localhost", "127.0.0.1"):
        raise EntryError(f"entry {entry!r}: host {address!r} is not allowed, expected localhost (apps listen on it)")
    return _service({"name": name, "uri": path, "port": _app_port(external.strip(), "external port", entry),
                     "internal_port": _app_port(internal.strip(), "internal port", entry)}, entry)


def _portal_config(value):
    """vast's `host:ext:int:path:Name|...` or the seeds' JSON `{"version":2,"port":P,"services":[...]}` (or
    its services list, as saved): the apps as a list of JSON-form services, each checked."""
    if value in ("", None, []):
        return []
    if isinstance(value, str) and not value.isprintable():
        raise ValueError  # said as for any setting, before an entry would echo it
    if isinstance(value, str) and not value.strip().startswith(("{", "[")):
        return [_vast_entry(entry.strip()) for entry in value.split("|") if entry.strip()]
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, dict):
        if "port" in value:
            _app_port(value["port"], "port", "port")  # the seeds' portal's own port: Red's is portal_port
        value = value.get("services")
    if not isinstance(value, list):
        raise ValueError
    return [_service(service, json.dumps(service)) for service in value]


PORTAL_CONFIG = Kind("vast's host:external_port:internal_port:path:Name entries joined by |, or JSON "
                     "{\"version\":2,\"services\":[{\"name\",\"uri\",\"port\",\"internal_port\"}...]}",
                     _portal_config)


def choice(*options):
    return Kind("one of " + ", ".join(options), _one_of(*options))


@dataclass(frozen=True)
class Setting:
    kind: Kind
    env: tuple = field(default=())  # the instance's environment variables that override it
    secret: bool = False  # never saved to SAVED_SETTINGS, never echoed
    saved: bool = True  # False: about this run only, never read back in phase start


SETTINGS = {
    "phase": Setting(choice("provision", "build", "start"), saved=False),
    "snapshot": Setting(BOOLEAN, saved=False),
    "workspace": Setting(ABSOLUTE_PATH, env=("WORKSPACE",)),
    "logs_dir": Setting(ABSOLUTE_PATH),
    "desktop_user": Setting(USER_NAME),
    "red_dir": Setting(ABSOLUTE_PATH),
    "apt_cache_time": Setting(SECONDS),
    "extra_apt_packages": Setting(PACKAGE_NAMES),
    "log_max_bytes": Setting(Kind("a size in bytes, from 1024 to 10 GB", _integer(1024, 10 * 1024**3))),
    "log_backups": Setting(Kind("a number of rotated files to keep, 0 to 100", _integer(0, 100))),
    "vnc_resolution": Setting(RESOLUTION, env=("VNC_RESOLUTION",)),
    "vnc_port": Setting(PORT),
    "novnc_port": Setting(PORT),
    "vnc_password": Setting(PASSWORD, env=("VNC_PW", "VNC_PASSWORD"), secret=True),
    "vnc_passwordless": Setting(BOOLEAN, env=("VNC_PASSWORDLESS",)),
    "window_manager": Setting(choice("fluxbox", "openbox")),
    "python_version": Setting(PYTHON_VERSION),
    "visomaster_repo": Setting(GIT_URL),
    "visomaster_ref": Setting(GIT_REF),
    "visomaster_dir": Setting(DERIVED_PATH),
    "visomaster_venv": Setting(ABSOLUTE_PATH),
    "cuda_flavour": Setting(choice("cu124", "cu118")),
    "visomaster_autostart": Setting(BOOLEAN),
    "access": Setting(choice("portal", "direct")),
    "portal_port": Setting(PORT, env=("OPEN_BUTTON_PORT",)),
    "portal_token": Setting(TOKEN, env=("OPEN_BUTTON_TOKEN", "WEB_PASSWORD"), secret=True),
    "web_username": Setting(Kind("1 to 64 letters, digits and ._-", _matching(r"[A-Za-z0-9._-]{1,64}")),
                            env=("WEB_USERNAME",)),
    "web_password": Setting(PASSWORD, env=("WEB_PASSWORD",), secret=True),
    "portal_config": Setting(PORTAL_CONFIG, env=("PORTAL_CONFIG",)),
    "sshd_port": Setting(PORT),
    "ssh_authorized_keys": Setting(PUBLIC_KEYS),
    "instance_public_keys": Setting(PUBLIC_KEYS, env=("PUBLIC_KEY", "SSH_PUBLIC_KEY")),
    "jupyter_port": Setting(PORT),
    "jupyter_dir": Setting(DERIVED_PATH, env=("JUPYTER_DIR",)),
    "jupyter_token": Setting(TOKEN, env=("JUPYTER_TOKEN", "OPEN_BUTTON_TOKEN"), secret=True),
    "jupyter_open": Setting(BOOLEAN),
    "models_at": Setting(choice("build", "start", "never")),
    "models_dir": Setting(DERIVED_PATH),
    "models_manifest": Setting(DERIVED_PATH),
    "models_connections": Setting(Kind("a number of connections at once, 1 to 32", _integer(1, 32))),
    "models_base_url": Setting(Kind("empty, or an http(s) URL that replaces the download host, of letters, digits and "
                                    "._~:/?#@+,=[]- (no part starting with -)",
                                    _optional(_url(rf"https?://(?!/){URL_CHARACTERS}+")))),
}

ENVIRONMENT_NAMES = sorted({name for setting in SETTINGS.values() for name in setting.env})


def _printable(value):
    """No control character (NUL, newline, escape...) in a string, or in a list's strings, whatever the kind."""
    if any(isinstance(item, str) and not item.isprintable() for item in
           (value if isinstance(value, (list, tuple)) else [value])):
        raise ValueError
    return value


def check(name, value, source):
    """The converted value, or SettingError with its one line."""
    setting = SETTINGS[name]
    try:
        return _printable(setting.kind.convert(value))
    except (ValueError, TypeError, json.JSONDecodeError) as error:
        if isinstance(error, EntryError):  # a value of entries: the one entry that is wrong, and why
            raise SettingError(f"setting {name} ({source}) is not allowed: {error}") from None
        shown = "(hidden)" if setting.secret else repr(value)
        raise SettingError(f"setting {name} = {shown} ({source}) is not allowed: "
                           f"expected {setting.kind.allowed}") from None


def resolve(defaults, command_line, environment, saved):
    """Every setting's checked value, and where each came from. Each argument maps names to values; `environment` maps
    environment variable names (vast's) to values."""
    unknown = sorted(set(_pyinfra_free(command_line)) - set(SETTINGS))
    if unknown:
        raise SettingError(f"setting {unknown[0]} (--data) is not a Red setting: "
                           f"expected one of {', '.join(sorted(SETTINGS))}")
    resolved, sources = {}, {}
    for name, setting in SETTINGS.items():
        from_env = [var for var in setting.env if environment.get(var) not in (None, "")]
        if name in command_line:
            value, source = command_line[name], "from --data"
        elif from_env:
            value, source = environment[from_env[0]], f"from ${from_env[0]}"
        elif name in saved:
            value, source = saved[name], f"from {SAVED_SETTINGS}"
        elif name in defaults:
            value, source = defaults[name], "from group_data"
        else:
            raise SettingError(f"setting {name} has no value: add it to group_data/all.py")
        resolved[name] = check(name, value, source)
        sources[name] = source
    _move_red_apps(resolved, sources)
    _check_ports_differ(resolved)
    _check_internal_ports(resolved)
    _check_portal_apps(resolved)
    _check_no_secret_in_a_build(resolved, sources)
    return resolved, sources


def build_stage_settings(argv, defaults_file="group_data/all.py"):
    """The settings of an image's early stage (tasks/packages.py, tasks/app_stage.py, tasks/models_stage.py), from its
    `--data NAME=VALUE` words over group_data's defaults, resolved and checked as the deploy does in
    phase build (values as strings: each setting's check converts them): (values, sources)."""
    words, command_line = list(argv), {}
    while words:
        flag = words.pop(0)
        if flag != "--data" or not words or "=" not in words[0]:
            raise SettingError(f"expected --data NAME=VALUE, not {flag!r}")
        name, value = words.pop(0).split("=", 1)
        command_line[name] = value
    values = runpy.run_path(defaults_file)
    defaults = {name: values[name] for name in SETTINGS if values.get(name) is not None}
    return resolve(defaults, {**command_line, "phase": "build"}, {}, {})


def _check_no_secret_in_a_build(resolved, sources):
    """An image build keeps its arguments in the image's history: a secret belongs to the instance's
    environment, read at each start."""
    if resolved["phase"] != "build":
        return
    for name, setting in SETTINGS.items():
        if setting.secret and resolved[name]:
            raise SettingError(f"setting {name} = (hidden) ({sources[name]}) is not allowed in an image build: "
                               f"expected it in the instance's environment at run time "
                               f"({', '.join(setting.env)}), never in the image's history")


def _check_ports_differ(resolved):
    """Every port setting is a listening port on the same instance: no two may be the same."""
    seen = {}
    for name, setting in SETTINGS.items():
        if setting.kind is PORT:
            if resolved[name] in seen:
                raise SettingError(f"settings {seen[resolved[name]]} and {name} are both {resolved[name]}: "
                                   f"expected a different port for each")
            seen[resolved[name]] = name


# Behind the portal, a web app listens on 127.0.0.1 at its public port + INTERNAL_OFFSET (vast's "1" in front:
# 6901 -> 16901, 8080 -> 18080)
INTERNAL_OFFSET = 10000
PROXIED_PORTS = ("novnc_port", "jupyter_port")


def _check_internal_ports(resolved):
    """With access=portal each proxied app takes a second, internal port: it must exist and be free."""
    if resolved["access"] != "portal":
        return
    public = {resolved[name]: name for name, setting in SETTINGS.items() if setting.kind is PORT}
    for name in PROXIED_PORTS:
        internal = resolved[name] + INTERNAL_OFFSET
        if internal > 65535 or internal in public:
            raise SettingError(f"setting {name} = {resolved[name]} is not allowed with access=portal: expected a port "
                               f"whose internal port ({internal}, {INTERNAL_OFFSET} above it) is at most 65535 and "
                               f"no other setting's")


def red_app(service):
    """The port setting of the Red app a portal_config entry names, or None for a user's own app."""
    return RED_APPS.get(service["name"].lower())


def _move_red_apps(resolved, sources):
    """portal_config's entries for Red's own apps set their public ports; their internal port is Red's
    (public + INTERNAL_OFFSET), so an entry naming another cannot be right."""
    moved = set()
    for service in resolved["portal_config"]:
        name = red_app(service)
        if name is None or "port" not in service:
            continue
        internal = service["port"] + INTERNAL_OFFSET
        if name in moved:
            raise SettingError(f"setting portal_config entry {service['name']!r} is not allowed: a second entry for "
                               f"{name}; expected one entry per app")
        if service.get("internal_port", internal) != internal:
            raise SettingError(f"setting portal_config entry {service['name']!r} is not allowed: internal port "
                               f"{service['internal_port']}; Red's own app listens on its port + {INTERNAL_OFFSET}, "
                               f"expected {internal}")
        moved.add(name)
        resolved[name], sources[name] = service["port"], "from portal_config"


def _check_portal_apps(resolved):
    """A user's own app behind the portal takes its public port for Caddy; its internal port is the app's."""
    taken = {resolved[name]: name for name, setting in SETTINGS.items() if setting.kind is PORT}
    if resolved["access"] == "portal":
        taken.update({resolved[name] + INTERNAL_OFFSET: f"{name}'s internal port" for name in PROXIED_PORTS})
    for service in resolved["portal_config"]:
        if red_app(service) or "internal_port" not in service:
            continue
        for port, what in ((service["port"], "port"), (service["internal_port"], "internal port")):
            if port in taken:
                raise SettingError(f"setting portal_config entry {service['name']!r} is not allowed: its {what} "
                                   f"{port} is {taken[port]}'s; expected a port of its own")
            taken[port] = f"entry {service['name']!r}"


def _pyinfra_free(command_line):
    """--data names that are not pyinfra's own connection settings."""
    return [name for name in command_line if not name.startswith(("ssh_", "winrm_", "docker_", "chroot_"))
            and not name.startswith("_")]


def savable(settings, sources):
    """What the start phase may read back: no secrets, nothing about one run only (the phase), and
    nothing the instance's environment gave (the environment at the next start decides those again)."""
    return {name: value for name, value in settings.items()
            if SETTINGS[name].saved and not SETTINGS[name].secret and not sources[name].startswith("from $")}
