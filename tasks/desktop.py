"""The browser desktop: a virtual display (Xvfb), a window manager, x11vnc sharing the display
and noVNC (websockify) serving it to a browser; all four under supervisor. Locked by default."""
from pyinfra import host, logger
from pyinfra.api import deploy
from tasks import managed, portal, secrets, services
from tasks.packages import DESKTOP, WINDOW_MANAGER
from tasks.secrets import SECRETS_DIR

DISPLAY = ":1"
PASSWORD_FILE = f"{SECRETS_DIR}/vnc-password"
BACKGROUND = "#3b6ea5"
TERMINAL = 'xterm -fa "DejaVu Sans Mono" -fs 12'
WAIT_FOR_DISPLAY = "/usr/local/bin/red-wait-display"
XVFB = "/usr/local/bin/red-xvfb"  # Xvfb, after clearing a lock no live X server holds
NOVNC_WEB = "/usr/share/novnc"
VNC_PASSWORD_LENGTH = 8  # VNC authentication uses the first 8 characters only


@deploy("Desktop")
def desktop():
    data = host.data
    home = f"/home/{data.desktop_user}"
    managed.packages(name="Desktop packages", packages=DESKTOP + WINDOW_MANAGER[data.window_manager])
    managed.put(name="Wait-for-display wrapper", src="files/desktop/red-wait-display", dest=WAIT_FOR_DISPLAY,
                mode="755")
    xvfb_start = managed.put(name="Xvfb wrapper (clears a stale X lock)", src="files/desktop/red-xvfb", dest=XVFB,
                             mode="755")
    session = managed.template(
        name="Window manager start script", src="files/desktop/red-window-manager.j2",
        dest="/usr/local/bin/red-window-manager", mode="755",
        window_manager=data.window_manager, background=BACKGROUND,
    )
    menus = window_manager_files(home)
    managed.put(name="noVNC opens connected and scaled", src="files/desktop/novnc-index.html",
                dest=f"{NOVNC_WEB}/index.html", mode="644")
    vnc_auth, password = vnc_password()
    novnc_address, novnc_port = portal.listen(data.novnc_port)
    if data.vnc_passwordless:
        novnc_address = "127.0.0.1"

    x_env = {"DISPLAY": DISPLAY, "HOME": home, "USER": data.desktop_user}
    xvfb = services.program(
        "xvfb", [XVFB, DISPLAY, "-screen", "0", f"{data.vnc_resolution}x24", "-nolisten", "tcp", "-nolisten", "local",
                 "-dpi", "96"],
        priority=10, restart_on=[xvfb_start],
    )
    services.program(
        "window-manager", [WAIT_FOR_DISPLAY, "/usr/local/bin/red-window-manager"],
        user=data.desktop_user, directory=home, environment=x_env, priority=20,
        restart_on=[xvfb, session, *menus],
    )
    if not services.held_by_another("VNC", data.vnc_port):
        services.program(
            "x11vnc", [WAIT_FOR_DISPLAY, "x11vnc", "-display", DISPLAY, "-rfbport", str(data.vnc_port), *vnc_auth,
                       "-forever", "-shared", "-noxdamage", "-quiet"],
            environment={"DISPLAY": DISPLAY}, priority=30,
            restart_on=[xvfb] + ([password] if password else []),
        )
    if not portal.left_to_another("Desktop", data.novnc_port):
        services.program(
            "novnc", ["websockify", "--web", NOVNC_WEB, f"{novnc_address}:{novnc_port}", f"127.0.0.1:{data.vnc_port}"],
            user=data.desktop_user, priority=40,
        )


def window_manager_files(home):
    """The window manager's menu, with a terminal, in the desktop user's home."""
    user = host.data.desktop_user
    if host.data.window_manager == "fluxbox":
        targets = [("fluxbox-menu.j2", f"{home}/.fluxbox/menu")]
    else:
        targets = [("openbox-menu.xml.j2", f"{home}/.config/openbox/menu.xml")]
    return [managed.user_file(name=f"Window manager: {dest.rsplit('/', 1)[1]}", src=f"files/desktop/{src}",
                              dest=dest, user=user, terminal=TERMINAL)
            for src, dest in targets]


def vnc_password():
    """x11vnc's authentication arguments, and the operation that writes its password file."""
    data = host.data
    if portal.behind_portal():  # the portal's check is the lock: VNC on 127.0.0.1 only, without a password
        return ["-nopw", "-localhost"], None
    if data.vnc_passwordless:  # never open to the network: only through an SSH tunnel (or the portal)
        logger.warning(f"[{host.name}] VNC and noVNC have no password (vnc_passwordless): they listen on "
                       f"127.0.0.1 only; reach them through an SSH tunnel, e.g. ssh -L {data.novnc_port}:127.0.0.1:"
                       f"{data.novnc_port}")
        return ["-nopw", "-localhost"], None
    if data.phase == "build":
        return ["-passwdfile", PASSWORD_FILE], None  # secrets are made at start, never in an image layer
    if data.vnc_password:
        if len(data.vnc_password) > VNC_PASSWORD_LENGTH:
            logger.warning(f"[{host.name}] VNC checks only the first {VNC_PASSWORD_LENGTH} characters "
                           "of vnc_password")
        password = secrets.given(name="VNC password (given)", path=PASSWORD_FILE, secret=data.vnc_password)
    else:
        logger.info(f"[{host.name}] VNC password: generated once, kept in {PASSWORD_FILE} (root only)")
        password = secrets.generated(name="VNC password (generated once)", path=PASSWORD_FILE,
                                     length=VNC_PASSWORD_LENGTH)
    return ["-passwdfile", PASSWORD_FILE], password
