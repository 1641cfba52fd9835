"""One managed file with every byte value, a line EOF, a NUL and no final newline, run after deploy.py
(tests/test_repairs.py imports it for CONTENT and PATH only)."""
PATH = "/usr/local/share/red-every-byte"
CONTENT = bytes(range(256)) + b"\nEOF\n'\"$(reboot)`x`\n\0" + bytes(range(255, -1, -1)) + b"no final newline"

if __name__ != "every_byte":  # run by pyinfra as a deploy file
    from tasks import managed

    managed.put(name="Every byte", src=CONTENT, dest=PATH, mode="640")
