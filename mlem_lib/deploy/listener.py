"""The listening socket of a local deployment, kept open across updates.

A local deployment's public ``host:port`` is one TCP socket that this small
process binds once and keeps for as long as the deployment exists. Workers (the
model servers, :mod:`mlem_lib.deploy.worker`) ask it for that socket over a unix
socket and receive a copy of the descriptor (``SCM_RIGHTS``). All workers then
accept from the same kernel queue, so an update never closes the port:

1. the new worker starts on a private port of its own and is smoke-tested there;
2. it is told to accept on the public socket too (both versions answer for a moment);
3. the old worker stops gracefully: it stops accepting and finishes what it has.

No connection is refused or reset on the way, and the listener itself never touches
a request. Only processes of this user, and the unprivileged user of our images
(so containers of the deployment can ask too), get the socket.

Run as ``python -m mlem_lib.deploy.listener --host H --port P --control NAME``; it prints
one line ``mlem-listener: ready <host>:<port>`` when both sockets listen, and exits on
SIGTERM.

Example:
    >>> sock = fetch_listener(control_address("demo"))  # doctest: +SKIP
    >>> sock.getsockname()  # doctest: +SKIP
    ('127.0.0.1', 8080)
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import struct
import sys
from collections.abc import Sequence

READY = "mlem-listener: ready"
TAKEN = "mlem-listener: cannot listen on"
# the unprivileged user generated images run as (mlem_lib.build.dockerfile.USER_ID)
CONTAINER_UID = 10001


def fetch_listener(address: str, timeout: float = 10.0) -> socket.socket:
    """Receive the public listening socket from the listener at ``address``.

    Raises:
        OSError: no listener answers there, or it sent no socket.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(_sockaddr(address))
        _, fds, _, _ = socket.recv_fds(conn, 16, 1)
    if not fds:
        raise OSError(f"the listener at {address!r} sent no socket (refused?)")
    return socket.socket(fileno=fds[0])


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def control_address(key: str) -> str:
    """The abstract unix socket name of the listener identified by ``key``.

    Abstract names (Linux) have no file and no path-length trouble, vanish with the
    process that bound them, and are reachable from containers on the host network.
    They are written with a leading ``@`` (as ``ss`` shows them) so they can travel in
    arguments and environment variables.

    Example:
        >>> control_address("/srv/iris.run 127.0.0.1:8080")[:15]
        '@mlem-listener-'
    """
    import hashlib

    return "@mlem-listener-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _sockaddr(address: str) -> str:
    return "\0" + address[1:] if address.startswith("@") else address


def serve(public: socket.socket, address: str, allowed: set[int]) -> None:
    """Hand ``public`` to every allowed client of the unix socket ``address`` (forever)."""
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    control.bind(_sockaddr(address))
    control.listen(16)
    bound = public.getsockname()
    print(f"{READY} {bound[0]}:{bound[1]}", flush=True)
    while True:
        conn, _ = control.accept()
        with conn:
            try:
                if _peer_uid(conn) in allowed:
                    socket.send_fds(conn, [b"mlem"], [public.fileno()])
                else:
                    conn.sendall(b"refused")
            except OSError:
                continue  # the client went away


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlem_lib.deploy.listener",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control", required=True,
                        help="abstract unix socket name (see control_address)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        public = socket.create_server((args.host, args.port), backlog=2048)
    except OSError as exc:
        print(f"{TAKEN} {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr,
              flush=True)
        return 1
    try:
        serve(public, args.control, {os.getuid(), 0, CONTAINER_UID})
    except OSError as exc:
        print(f"mlem-listener: the control socket failed: {exc.strerror or exc}",
              file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
