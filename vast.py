"""vast.ai's API, for the controller: the user's running instances as inventory.py's hosts.

The key, first found: VAST_API_KEY, $XDG_CONFIG_HOME/vastai/vast_api_key (~/.config by default),
the legacy ~/.vast_api_key; sent as `Authorization: Bearer KEY`, never in a URL. The API is
https://console.vast.ai, or VAST_URL. Instances are listed as vast's CLI lists them (vast-ai/vast-cli,
2026): `GET /api/v1/instances/` in pages of 25 (`after_token` = the answer's `next_token`), or, where
that answers 404, the older `GET /api/v0/instances?owner=me`. A 429 waits and asks again.

Standard library only: vast's SDK (vastai-sdk 1.9.1) requires its CLI package, which pulls 44 MB of
wheels (aiohttp, borb, pillow, lxml, cryptography) for these two requests.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

API = "https://console.vast.ai"
PAGE = 25  # the most /api/v1/instances/ answers at once
TRIES = 6  # a 429 is asked again this many times, a second apart (vast allows about one request a second)
# what each host's data carries from its instance, for the tasks and the doctor
CARRIED = ("id", "label", "gpu_name", "num_gpus", "driver_version", "cuda_max_good", "public_ipaddr", "ports")


class VastError(Exception):
    """What went wrong with vast's API, in one line."""


def api_key(environ=os.environ):
    if environ.get("VAST_API_KEY", "").strip():
        return environ["VAST_API_KEY"].strip()
    home = os.path.expanduser("~")
    config = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    for path in (os.path.join(config, "vastai", "vast_api_key"), os.path.join(home, ".vast_api_key")):
        try:
            with open(path) as handle:
                if key := handle.read().strip():
                    return key
        except OSError:
            continue
    raise VastError("no vast API key: set VAST_API_KEY, or save it with `vastai set api-key KEY` "
                    "(~/.config/vastai/vast_api_key)")


def get(base, path, key, query, pause=time.sleep):
    """The JSON answer to GET base+path?query, with the key in the header; a 429 is asked again."""
    url = f"{base.rstrip('/')}{path}?{urllib.parse.urlencode(query)}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}", "Accept": "application/json"})
    for attempt in range(TRIES):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            if error.code != 429 or attempt == TRIES - 1:
                raise
            pause(min(float(error.headers.get("Retry-After") or 1), 10))
    raise AssertionError("unreachable")


def instances(base, key, pause=time.sleep):
    """Every instance of the account, as vast describes them."""
    try:
        return _instances(base, key, pause)
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            raise VastError(f"vast refused the API key (HTTP {error.code} from {base}): check VAST_API_KEY "
                            "or ~/.config/vastai/vast_api_key") from None
        raise VastError(f"vast's API answered HTTP {error.code} {error.reason} ({base})") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise VastError(f"vast's API at {base} cannot be reached: {reason}") from None


def _instances(base, key, pause):
    found, token = [], None
    while True:
        query = {"limit": PAGE, **({"after_token": token} if token else {})}
        try:
            page = get(base, "/api/v1/instances/", key, query, pause)
        except urllib.error.HTTPError as error:
            if error.code == 404 and not found:  # an API without the paged list: the older one
                return get(base, "/api/v0/instances", key, {"owner": "me"}, pause).get("instances") or []
            raise
        found += page.get("instances") or []
        token = page.get("next_token")
        if not token:
            return found


def ssh_address(instance):
    """(address, port) as vast's CLI picks them: direct to the instance's public address when its
    port 22 is mapped, else vast's SSH proxy. (The SDK's ssh_url prefers the proxy; Red follows
    the CLI: direct is one hop shorter.)"""
    mapped = (instance.get("ports") or {}).get("22/tcp") or []
    if instance.get("public_ipaddr") and mapped and str(mapped[0].get("HostPort", "")).isdigit():
        return instance["public_ipaddr"].strip(), int(mapped[0]["HostPort"])
    return instance.get("ssh_host"), int(instance.get("ssh_port") or 0)


def plain(label):
    """Whether a label can name a host: it is shown on the controller's terminal."""
    return isinstance(label, str) and label.isprintable() and bool(label.strip())


def name(instance):
    return instance["label"] if plain(instance.get("label")) else f"vast-{instance.get('id')}"


def shown(label):
    return label if plain(label) else ("no label" if label in (None, "") else repr(label))


def wanted(instance, label, ids):
    return (not label or instance.get("label") == label) and (not ids or str(instance.get("id")) in ids)


def hosts(environ=os.environ, say=lambda line: print(line, file=sys.stderr)):
    """(address, port, name, data) for each running instance the environment asks for: RED_VAST=1
    (all), RED_VAST_LABEL=LABEL, RED_VAST_IDS=ID,ID. Those not running are named and skipped."""
    label, ids = environ.get("RED_VAST_LABEL", ""), {part.strip() for part in environ.get("RED_VAST_IDS", "").split(",")
                                                     if part.strip()}
    base = environ.get("VAST_URL") or API
    listed = [instance for instance in instances(base, api_key(environ)) if wanted(instance, label, ids)]
    found = []
    for instance in listed:
        status = instance.get("actual_status")
        address, port = ssh_address(instance)
        if status != "running" or not address or not port:
            say(f"vast: instance {instance.get('id')} ({shown(instance.get('label'))}) is {status!r}: skipped")
            continue
        found.append((address, port, name(instance), {f"vast_{field}": instance.get(field) for field in CARRIED}))
    if not found:
        which = f"with label {label}" if label else (f"with ids {','.join(sorted(ids))}" if ids else "")
        raise VastError(f"vast: no running instance {which}".rstrip() + f" ({len(listed)} listed)")
    return found
