"""Network access: reachability checks with a timeout, and where Keras caches its downloads."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

from .errors import CertificateError, DownloadUnavailableError


def keras_home() -> Path:
    """The folder where the installed Keras caches downloads (KERAS_HOME or ~/.keras)."""
    try:
        from keras.src.backend.config import keras_home as installed_keras_home
        return Path(installed_keras_home()).expanduser()
    except ImportError:  # a Keras without this private accessor: mirror its documented default
        return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()


def check_reachable(url: str, timeout: float) -> None:
    """Raise DownloadUnavailableError unless `url` answers within `timeout` seconds."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            pass
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise CertificateError(
                f"cannot verify the HTTPS certificate of {url} ({reason}): this Python trusts no "
                "certificates. With python.org's Python on macOS, run 'Install "
                "Certificates.command' in its Applications folder; behind a company proxy, set "
                "SSL_CERT_FILE to the proxy's certificate") from None
        raise DownloadUnavailableError(f"cannot reach {url} ({reason})") from None


def is_network_failure(exc: BaseException) -> bool:
    """True for a failed fetch (Keras' bare "URL fetch failure" Exception, a lost connection)."""
    if isinstance(exc, (urllib.error.URLError, TimeoutError, ConnectionError)):
        return True
    return type(exc) is Exception and str(exc).startswith("URL fetch failure")


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Give every socket opened inside the block a timeout, so a stalled download cannot hang."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
