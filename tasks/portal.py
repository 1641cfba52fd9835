"""The Instance Portal (access=portal), the way vast's own images open an instance: Caddy listens
on every web app's public port and on portal_port, checks each request once (vast's check: a
token in the query, its cookie, a Bearer token, else basic auth) and proxies it to the app, which
listens on 127.0.0.1 only. portal_port serves the portal page (the apps, the programs' states, the
models' progress) and the logs. access=direct: no Caddy, each app on its public port with its own
lock. sshd is the same in both."""
import json
import posixpath
import re
import shlex
from dataclasses import dataclass

from pyinfra import host, logger
from pyinfra.api import deploy

from tasks import managed, secrets, services
from tasks.packages import PORTAL
from tasks.services import STATES
from tasks.secrets import SECRETS_DIR
from tasks.settings import INTERNAL_OFFSET, red_app

VENV = PORTAL.venv
USER = "red-portal"  # Caddy runs as this user, which can read no secret
HOME = "/var/lib/red-portal"
CONFIG_DIR = "/etc/red-portal"
CADDYFILE = f"{CONFIG_DIR}/Caddyfile"
SITE = "/usr/local/share/red-portal"  # the portal page and the logs viewer
PAGES = ["index.html", "logs.html", "portal.css", "portal.js"]  # in files/portal, served as they are
CADDY = "/usr/local/bin/red-caddy"  # runs and reloads Caddy as USER, its secrets in its environment
ADMIN_SOCKET = "/run/red-portal/admin.sock"  # Caddy's admin API: USER's alone (it holds the live configuration)
TOKEN_FILE = f"{SECRETS_DIR}/portal-token"
PASSWORD_FILE = f"{SECRETS_DIR}/web-password"
TOKEN_LENGTH = 32
# Read from the container's environment besides the settings' own variables
INSTANCE_NAMES = ["PUBLIC_IPADDR", "VAST_CONTAINERLABEL", "VAST_TCP_PORT_[0-9]+"]


@dataclass(frozen=True)
class App:
    name: str
    port: int  # public: Caddy listens on it
    upstream: int = 0  # the app on 127.0.0.1; 0: the portal's own site
    path: str = "/"
    credential: str = ""  # "jupyter": Caddy passes Jupyter's token on (Jupyter keeps its lock on 127.0.0.1)
    # websockify (Python's http.server) answers a reused connection only after the peer's delayed ACK,
    # 40 ms a request (measured: 44 ms against 5 ms); a new loopback connection costs 0.1 ms
    fresh_connections: bool = False


def behind_portal():
    return host.data.access == "portal"


def listen(public):
    """(address, port) an app listens on: 127.0.0.1 and its internal port behind the portal, else
    every address and its public port."""
    return ("127.0.0.1", public + INTERNAL_OFFSET) if behind_portal() else ("0.0.0.0", public)


def left_to_another(what, public):
    """Whether a process Red did not start holds an app's public port, or the port the app itself
    listens on: Red then runs neither the app nor Caddy's door to it (services.held_by_another)."""
    return services.held_by_another(what, public, listen(public)[1])


def apps(data):
    """Every app the portal lists, Red's own first, then the user's own from portal_config (those with
    an internal port are proxied; the others are links)."""
    return [App("Instance Portal", data.portal_port),
            App("Desktop", data.novnc_port, data.novnc_port + INTERNAL_OFFSET, fresh_connections=True),
            App("Jupyter", data.jupyter_port, data.jupyter_port + INTERNAL_OFFSET, credential="jupyter"),
            App("Logs", data.portal_port, path="/logs/"),
            *[App(service["name"], service.get("port", data.portal_port), service.get("internal_port", 0),
                  service["uri"]) for service in data.portal_config if not red_app(service)]]


def links(apps, environment):
    """The apps as the portal page lists them: on vast, the address the user's browser reaches
    (PUBLIC_IPADDR and the port VAST_TCP_PORT_<port> maps); elsewhere no url, and the page uses
    the address the browser used."""
    address = environment.get("PUBLIC_IPADDR", "")
    listed = []
    for app in apps:
        mapped = environment.get(f"VAST_TCP_PORT_{app.port}", "")
        url = (f"http://{address}:{int(mapped)}{app.path}"
               if re.fullmatch(r"[0-9.]{7,15}|[0-9a-fA-F:]{2,39}", address) and mapped.isdigit() else None)
        if url and ":" in address:
            url = f"http://[{address}]:{int(mapped)}{app.path}"
        listed.append({"name": app.name, "port": app.port, "path": app.path, "url": url})
    return listed


def cookie_name(environment):
    """vast's cookie: {VAST_CONTAINERLABEL}_auth_token; cookies are per host, not per port, so the
    label keeps two instances on one address apart."""
    label = environment.get("VAST_CONTAINERLABEL", "")
    return f"{label if re.fullmatch(r'[A-Za-z0-9.-]{1,64}', label) else 'red'}_auth_token"


@deploy("Portal")
def portal(jupyter_token_file, jupyter_access, models_status):
    """Caddy and its configuration; `jupyter_access`: the operations of Jupyter's token (in
    `jupyter_token_file`: its change restarts Caddy, which passes the token on); `models_status`:
    the model fetcher's status file."""
    data = host.data
    keys = [web_password(), portal_token()]
    if not behind_portal():
        return
    environment = data.instance_environment
    managed.user(name=f"Portal user {USER}", user=USER, home=HOME, shell="/usr/sbin/nologin")
    installed = managed.once(name="Caddy in its own environment", commands=[PORTAL.command], marker=PORTAL.marker,
                             key=PORTAL.key)
    wrapper = managed.template(
        name="Caddy runner (as the portal user)", src="files/portal/red-caddy.j2", dest=CADDY, mode="755",
        **{name: shlex.quote(value) for name, value in {
            "user_name": USER, "home": HOME, "caddy": f"{VENV}/bin/caddy", "config": CADDYFILE,
            "admin_socket": ADMIN_SOCKET, "token_file": TOKEN_FILE, "password_file": PASSWORD_FILE,
            "jupyter_token_file": jupyter_token_file}.items()})
    managed.directory(name="Portal page folder", path=SITE, user="root", group="root", mode="755")
    for page in PAGES:
        managed.put(name=f"Portal page {page}", src=f"files/portal/{page}", dest=f"{SITE}/{page}", mode="644")
    managed.directory(name="Portal configuration folder", path=CONFIG_DIR, user="root", group="root", mode="755")
    listed = apps(data)
    managed.put(name="Portal apps", src=(json.dumps(links(listed, environment), indent=1) + "\n").encode(),
                dest=f"{CONFIG_DIR}/apps.json", mode="644")
    caddyfile = managed.template(
        name="Caddy configuration", src="files/portal/Caddyfile.j2", dest=CADDYFILE, mode="644",
        admin_socket=ADMIN_SOCKET, cookie=cookie_name(environment), web_username=data.web_username,
        proxied=[app for app in listed if app.upstream and not left_to_another(app.name, app.port)],
        portal_port=None if services.held_by_another("the portal page", data.portal_port) else data.portal_port,
        logs_dir=data.logs_dir,
        site=SITE, status_dir=posixpath.dirname(STATES), models_dir=posixpath.dirname(models_status),
        models_status=posixpath.basename(models_status), config_dir=CONFIG_DIR,
    )
    services.program("portal", [CADDY, "run"], priority=45,
                     restart_on=[installed, wrapper, *[key for key in keys if key], *jupyter_access],
                     reload=(caddyfile, f"{CADDY} reload"))


def portal_token():
    """The token file's operation: given (portal_token, OPEN_BUTTON_TOKEN, WEB_PASSWORD) or made once."""
    data = host.data
    if data.phase == "build" or not behind_portal():
        return None  # secrets are made at start, never in an image layer
    if data.portal_token:
        return secrets.given(name="Portal token (given)", path=TOKEN_FILE, secret=data.portal_token)
    logger.info(f"[{host.name}] Portal token: generated once, kept in {TOKEN_FILE} (root only)")
    return secrets.generated(name="Portal token (generated once)", path=TOKEN_FILE, length=TOKEN_LENGTH)


def web_password():
    """Basic auth's password file, when web_password is given (else the token is the password)."""
    data = host.data
    if data.phase == "build" or not behind_portal():
        return None
    if data.web_password:
        return secrets.given(name="Portal password (given)", path=PASSWORD_FILE, secret=data.web_password)
    return secrets.absent(name="Portal password: the token", path=PASSWORD_FILE)
