"""Is the Hugging Face hub usable now? The one place that reads the offline switches and probes the hub.

    if hub_offline() or not hub_reachable():   # refuse a hub id at once instead of retrying for minutes

`hub_offline` reads the environment at each call (huggingface_hub's `is_offline_mode` reads it once, at import, so a
switch set later, as the app and the tests do, would not count); `hub_reachable` opens one TCP connection to the
hub's host and port (`HF_ENDPOINT`, else huggingface.co:443) and gives up after a few seconds, DNS lookups included.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 3.0
_TRUE = ("1", "true", "yes", "on")


def hub_offline(*extra: str) -> bool:
    """True when HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE (or one of `extra`, e.g. HF_DATASETS_OFFLINE) is set to
    1 / true / yes / on, as huggingface_hub reads them."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", *extra)
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in names)


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub's host opens within `timeout` seconds."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)  # bounds DNS lookups too, which ignore the socket timeout
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])
