"""coturn (Debian's ``turnserver``) as a process of a test host: its own config, its own TLS certificate.

Never the packaged service: the test writes a config file (``use-auth-secret`` with a shared secret,
UDP/TCP on 3478, TLS on 443, private peer ranges denied except the media server) and starts
``turnserver -c FILE`` inside the TURN host, logging to a file the test can read.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from netlab import Host, NetlabError

TURNSERVER = "/usr/bin/turnserver"
REALM = "hearing.test"
# What a court's relay must never reach (RFC 1918, loopback, link-local, CGNAT, this lab's 198.18.0.0/15).
DENIED_PEER_RANGES = (
    "0.0.0.0-0.255.255.255",
    "10.0.0.0-10.255.255.255",
    "100.64.0.0-100.127.255.255",
    "127.0.0.0-127.255.255.255",
    "169.254.0.0-169.254.255.255",
    "172.16.0.0-172.31.255.255",
    "192.168.0.0-192.168.255.255",
    "198.18.0.0-198.19.255.255",
)


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A throw-away certificate and key for ``name`` (made with openssl), for coturn's TLS listener."""
    cert, key = directory / "turn-cert.pem", directory / "turn-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def turn_config(
    *,
    listen: str,
    secret: str,
    cert: Path,
    key: Path,
    allowed_peers: Sequence[str],
    log_file: Path,
    pid_file: Path,
    db_file: Path,
    user_quota: int = 12,
    total_quota: int = 1200,
) -> str:
    """The text of a coturn config file as docs/deploy.md recommends, for address ``listen``."""
    lines = [
        f"listening-ip={listen}",
        f"relay-ip={listen}",
        "listening-port=3478",
        "tls-listening-port=443",
        "min-port=49152",
        "max-port=49407",
        "fingerprint",
        "use-auth-secret",
        f"static-auth-secret={secret}",
        f"realm={REALM}",
        f"cert={cert}",
        f"pkey={key}",
        "no-cli",
        "no-multicast-peers",
        "no-software-attribute",
        "no-dtls",
        f"user-quota={user_quota}",
        f"total-quota={total_quota}",
        "stale-nonce=600",
        "verbose",
        *(f"denied-peer-ip={r}" for r in DENIED_PEER_RANGES),
        *(f"allowed-peer-ip={a}" for a in allowed_peers),
        f"log-file={log_file}",
        "simple-log",
        f"pidfile={pid_file}",
        f"userdb={db_file}",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Coturn:
    """A running coturn in a test host."""

    host: Host
    address: str
    secret: str
    process: subprocess.Popen[bytes]
    log_file: Path
    cert: Path

    def log(self) -> str:
        """What coturn logged so far."""
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def spki(self) -> str:
        """base64 SHA-256 of the certificate's public key: Chromium's
        ``--ignore-certificate-errors-spki-list`` makes a browser trust this relay's key (and only it),
        as a phone trusts a court relay's real certificate (Chromium checks ``turns:`` certificates)."""
        public = subprocess.run(
            ["openssl", "x509", "-in", str(self.cert), "-pubkey", "-noout"], check=True, capture_output=True
        ).stdout
        der = subprocess.run(
            ["openssl", "pkey", "-pubin", "-outform", "der"], input=public, check=True, capture_output=True
        ).stdout
        return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")

    def urls(self) -> list[str]:
        """The URLs a client is given: TURN over UDP and TCP on 3478, TURN over TLS on 443."""
        return [
            f"turn:{self.address}:3478?transport=udp",
            f"turn:{self.address}:3478?transport=tcp",
            f"turns:{self.address}:443?transport=tcp",
        ]


def start_coturn(host: Host, directory: Path, secret: str, allowed_peers: Sequence[str]) -> Coturn:
    """Start turnserver inside ``host`` (its eth0 address); wait until it accepts TCP on 3478 and 443."""
    if shutil.which(TURNSERVER) is None:
        raise NetlabError(f"{TURNSERVER} is not installed (scripts/system-deps.sh test installs coturn)")
    directory.mkdir(parents=True, exist_ok=True)
    address = host.address()
    cert, key = self_signed(directory, "turn.hearing.test")
    log_file = directory / "turnserver.log"
    config = directory / "turnserver.conf"
    config.write_text(
        turn_config(
            listen=address,
            secret=secret,
            cert=cert,
            key=key,
            allowed_peers=allowed_peers,
            log_file=log_file,
            pid_file=directory / "turnserver.pid",
            db_file=directory / "turndb",
        )
    )
    output = open(directory / "turnserver.out", "wb")  # noqa: SIM115
    process = host.popen([TURNSERVER, "-c", str(config)], stdout=output, stderr=subprocess.STDOUT)
    turn = Coturn(host, address, secret, process, log_file, cert)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise NetlabError(f"turnserver exited ({process.returncode}):\n{turn.log()}")
        listening = host.run(["ss", "-ltnH"], check=False).stdout
        if f"{address}:3478" in listening and f"{address}:443" in listening:
            return turn
        if time.monotonic() > deadline:
            raise NetlabError(f"turnserver did not listen within 15 s:\n{listening}\n{turn.log()}")
        time.sleep(0.1)
