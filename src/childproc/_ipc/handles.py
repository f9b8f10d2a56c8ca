"""What Node's channel says about what is sent: the handle class of a socket
(``NODE_HANDLE``'s ``type``) and the error for a message Node would refuse."""

from __future__ import annotations

from .._errors import ArgTypeError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a forked child milliseconds at start-up
    from typing import Any

__all__ = ["handle_type", "invalid_message"]


def handle_type(handle: Any) -> tuple[str, dict[str, Any]]:
    """Node's handle classes for a Python socket."""
    import socket  # whoever sends a handle has it loaded already

    if not isinstance(handle, socket.socket):
        raise ArgTypeError("This handle type cannot be sent", code="ERR_INVALID_HANDLE_TYPE")
    if handle.type == socket.SOCK_DGRAM:
        extra = {"dgramType": "udp6" if handle.family == socket.AF_INET6 else "udp4"}
        return "dgram.Socket", extra
    try:
        listening = handle.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError:
        listening = 0
    return ("net.Server" if listening else "net.Socket"), {}


def invalid_message(message: Any) -> TypeError:
    from .._messages import invalid_arg_type

    return invalid_arg_type("message", ["string", "object", "number", "boolean"], message)
