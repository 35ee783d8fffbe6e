"""Helpers for the network tests."""
import socket
import time


def tcp_request(address, port, payload=b"ping\n", timeout=10):
    """Sends payload, half-closes, returns the whole answer; retries until a
    server answers (a forwarder may accept before the container listens)."""
    end = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=2) as s:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                data = b""
                while chunk := s.recv(1024):
                    data += chunk
                if data:
                    return data
        except OSError:
            pass
        if time.monotonic() > end:
            raise AssertionError(f"nothing answered on {address}:{port}")
        time.sleep(0.05)
