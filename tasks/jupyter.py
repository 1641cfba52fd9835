"""JupyterLab: in its own environment (apart from the app's), with a kernel that runs in the
app's environment, under supervisor, and never open without a token unless jupyter_open says so."""
import shlex

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.files import File

from tasks import managed, portal, secrets, services
from tasks.facts import as_user
from tasks.packages import APP_KERNEL_MARKER, JUPYTER, app_kernel_install
from tasks.secrets import SECRETS_DIR

VENV = JUPYTER.venv
CONFIG = f"{SECRETS_DIR}/jupyter_server_config.py"  # root only: it reads the token file
TOKEN_FILE = f"{SECRETS_DIR}/jupyter-token"
KERNELS = "/usr/local/share/jupyter/kernels"  # on every Jupyter's data path
TOKEN_LENGTH = 32
KERNEL_AS_USER = "/usr/local/bin/red-kernel-as-user"


@deploy("JupyterLab: token and configuration")
def locked():
    """The access part: the token (a secret) and the server's configuration; the operations that
    restart Jupyter when they change."""
    data = host.data
    token = jupyter_token()
    address, port = portal.listen(data.jupyter_port)
    config = managed.template(
        name="Server configuration", src="files/jupyter/jupyter_server_config.py.j2", dest=CONFIG,
        user="root", group="root", mode="600", address="127.0.0.1" if data.jupyter_open else address, port=port,
        behind_portal=portal.behind_portal(), root_dir=root_dir(), open=data.jupyter_open, token_file=TOKEN_FILE,
    )
    return [config] + ([token] if token else [])


def root_dir():
    return host.data.jupyter_dir or host.data.workspace


@deploy("JupyterLab")
def jupyter(interpreter, access):
    """JupyterLab's environment, the app's kernel and the program; `access` is what locked() returned."""
    installed = managed.once(name="JupyterLab in its own environment", commands=[JUPYTER.command],
                             marker=JUPYTER.marker, key=JUPYTER.key)
    kernel = app_kernel(interpreter)
    if portal.left_to_another("Jupyter", host.data.jupyter_port):
        return
    services.program("jupyter", [f"{VENV}/bin/jupyter", "lab", f"--config={CONFIG}"], directory=root_dir(),
                     environment={"HOME": "/root", "SHELL": "/bin/bash"}, priority=60,
                     restart_on=[installed, kernel, *access])


def app_kernel(interpreter):
    """A kernel that runs in the app's environment, so notebooks import what the app has. That
    environment is the desktop user's: the kernel runs as that user (KERNEL_AS_USER), and so does
    pip when it adds ipykernel there."""
    app_venv, user = host.data.visomaster_venv, host.data.desktop_user
    marker = f"{app_venv}/{APP_KERNEL_MARKER}"
    managed.put(name="Kernel runner (as the desktop user)", src="files/jupyter/red-kernel-as-user",
                dest=KERNEL_AS_USER, mode="755")

    def converge():
        if not host.get_fact(File, path=marker):
            yield as_user(user, shlex.join(app_kernel_install(app_venv)))
            yield as_user(user, f"touch {shlex.quote(marker)}")
    managed.declare(paths=[marker])
    managed.checked(name="ipykernel in the app's environment", unchanged="installed",
                    matches=lambda seen: managed.path_matches(seen, marker, "file"), converge=converge)
    return managed.template(
        name="Kernel: VisoMaster's environment", src="files/jupyter/kernel.json.j2",
        dest=f"{KERNELS}/visomaster/kernel.json", mode="644",
        argv=[KERNEL_AS_USER, user, f"{app_venv}/bin/python", "{connection_file}"],
        display_name=f"VisoMaster (Python {interpreter.version})",
    )


def jupyter_token():
    """The token file's operation: given (jupyter_token, JUPYTER_TOKEN, OPEN_BUTTON_TOKEN) or made once."""
    data = host.data
    if data.jupyter_open:  # never open to the network: only through an SSH tunnel (or the portal)
        logger.warning(f"[{host.name}] JupyterLab has no token (jupyter_open): it listens on 127.0.0.1 only; "
                       f"reach it through an SSH tunnel, e.g. ssh -L {data.jupyter_port}:127.0.0.1:{data.jupyter_port}")
        return None
    if data.phase == "build":
        return None  # secrets are made at start, never in an image layer
    if data.jupyter_token:
        return secrets.given(name="Token (given)", path=TOKEN_FILE, secret=data.jupyter_token)
    logger.info(f"[{host.name}] Jupyter token: generated once, kept in {TOKEN_FILE} (root only)")
    return secrets.generated(name="Token (generated once)", path=TOKEN_FILE, length=TOKEN_LENGTH)
