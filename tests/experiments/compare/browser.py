"""Headless Chromium for the report test: offline, with every network route closed, and proof it is closed."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

# Names resolve nowhere and anything else goes to a proxy on the discard port, which refuses.
NETWORK_BLOCK = (
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)
QUIET = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--mute-audio",
)


def chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def run(binary: str, profile: Path, url: str, *extra: str, blocked: bool = True, timeout: float = 90) -> str:
    """Load ``url``, let its scripts run for a while of virtual time, and return what the browser printed."""
    profile.mkdir(parents=True, exist_ok=True)
    args = [
        binary,
        *QUIET,
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--window-size=1400,5000",
    ]
    if blocked:
        args += NETWORK_BLOCK
    done = subprocess.run([*args, *extra, url], capture_output=True, text=True, timeout=timeout, check=False)
    return done.stdout


def png_colours(path: Path) -> int:
    """How many distinct byte values the decoded image data holds: a blank page has two or three."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            chunks.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    return len(set(zlib.decompress(b"".join(chunks))))
