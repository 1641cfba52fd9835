"""What a person sees of the desktop: noVNC in Debian's chromium (driven by Playwright), and the
raw VNC handshake."""
import base64
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BACKGROUND = (0x3B, 0x6E, 0xA5)  # tasks/desktop.py BACKGROUND


@dataclass
class Session:
    connected: bool
    status: str
    framebuffer: tuple  # the remote screen's width and height, as noVNC received it


def open_novnc(browser, port, password=None, screenshot=None, timeout=15, keep=None):
    """Open noVNC's page the way a user does; answer its password prompt if it asks.
    Returns once connected (and the desktop drawn) or refused. `browser` may be a browser context
    (its cookies go along); `keep`, a list: the page is left open and appended to it."""
    page = browser.new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    try:
        page.goto(f"http://127.0.0.1:{port}/", timeout=timeout * 1000)
        page.wait_for_url("**/vnc.html?*", timeout=timeout * 1000)  # the landing page forwards there
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = page.evaluate("""() => ({
                connected: document.documentElement.classList.contains('noVNC_connected'),
                asking: !!document.querySelector('#noVNC_credentials_dlg.noVNC_open'),
                status: (document.querySelector('#noVNC_status') || {}).textContent || ''})""")
            if state["asking"] and password is not None:
                page.fill("#noVNC_password_input", password)
                page.click("#noVNC_credentials_button")
                password = None
            elif state["connected"] and desktop_drawn(page):
                if screenshot:  # the remote screen itself, as noVNC drew it (no dialogs over it)
                    data_url = page.evaluate("() => document.querySelector('canvas').toDataURL('image/png')")
                    Path(screenshot).write_bytes(base64.b64decode(data_url.split(",", 1)[1]))
                size = page.evaluate("() => [document.querySelector('canvas').width,"
                                     " document.querySelector('canvas').height]")
                return Session(True, state["status"], tuple(size))
            elif "failed" in state["status"].lower() or (state["asking"] and password is None):
                return Session(False, state["status"], (0, 0))
            time.sleep(0.1)
        return Session(False, f"timed out: {state['status']}", (0, 0))
    finally:
        if keep is None:
            page.close()
        else:
            keep.append(page)


def desktop_drawn(page):
    """True once noVNC's canvas shows mostly the desktop's background colour (not black, not
    empty) and something drawn on it (the window manager's toolbar, text)."""
    share, colours = page.evaluate("""([r, g, b]) => {
        const canvas = document.querySelector('canvas');
        if (!canvas || !canvas.width) return [0, 0];
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let hits = 0, total = 0;
        const colours = new Set();
        for (let i = 0; i < data.length; i += 4 * 7) {
            total++;
            colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
            if (Math.abs(data[i] - r) < 8 && Math.abs(data[i + 1] - g) < 8 && Math.abs(data[i + 2] - b) < 8) hits++;
        }
        return [hits / total, colours.size]; }""", list(BACKGROUND))
    return share > 0.5 and colours > 20


def picture_facts(path, colour=BACKGROUND):
    """Of a screenshot: the share of pixels of `colour` (the desktop's background unless given),
    of black ones, and how many distinct colours it has (a desktop with a toolbar has many; a black
    screen one)."""
    image = Image.open(path).convert("RGB")
    raw = image.tobytes()
    pixels = [tuple(raw[i:i + 3]) for i in range(0, len(raw), 3)]
    near = lambda p, c: all(abs(a - b) < 8 for a, b in zip(p, c))  # noqa: E731
    return {
        "background": sum(near(p, colour) for p in pixels) / len(pixels),
        "black": sum(near(p, (0, 0, 0)) for p in pixels) / len(pixels),
        "colours": len(set(pixels)),
        "size": image.size,
    }


def vnc_security_types(port):
    """The security types the raw VNC server offers a new client (RFB 3.8): 1 is None (no password),
    2 is VNC authentication."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        version = conn.recv(12)
        assert version.startswith(b"RFB "), version
        conn.sendall(b"RFB 003.008\n")
        count = conn.recv(1)[0]
        return set(conn.recv(count)) if count else set()
