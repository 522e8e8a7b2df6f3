"""Debian's chromium, as the browser tests and bench/slowlink.py launch it."""

EXECUTABLE = "/usr/bin/chromium"

LAUNCH_ARGS = {
    "executable_path": EXECUTABLE,
    "headless": True,
    "args": [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ],
}
