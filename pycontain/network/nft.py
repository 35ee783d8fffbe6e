"""nftables through its JSON interface, in process (libnftables) when it can.

libnftables.so.1 (Debian: libnftables1, a dependency of the nftables package)
takes the same JSON `nft -j -f -` reads, without a fork and exec of a dynamic
binary per change. Its netlink socket is opened per call, in the network
namespace of the calling thread, which is the one the engine configures.
Without the library the `nft` program is used.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import shutil
import subprocess
import threading

from ..errors import NetworkError

NFT_CTX_OUTPUT_JSON = 1 << 4

_lib = None
_lib_lock = threading.Lock()


def _load():
    global _lib
    with _lib_lock:
        if _lib is None:
            name = ctypes.util.find_library("nftables") or "libnftables.so.1"
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                _lib = False
                return _lib
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
            lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
            lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
            _lib = lib
    return _lib


def run(commands: list, *, what: str = "nftables") -> list:
    """Runs a list of JSON nftables commands as one transaction (all or none).
    Returns the `nftables` array of the output (for list commands), else []."""
    text = json.dumps({"nftables": commands})
    lib = _load()
    if lib:
        ctx = lib.nft_ctx_new(0)
        if not ctx:
            raise NetworkError(f"{what}: cannot create an nftables context")
        try:
            lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON)
            lib.nft_ctx_buffer_output(ctx)
            lib.nft_ctx_buffer_error(ctx)
            rc = lib.nft_run_cmd_from_buffer(ctx, text.encode())
            out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
            err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode()
        finally:
            lib.nft_ctx_free(ctx)
    else:
        nft = shutil.which("nft")
        if nft is None:
            raise NetworkError(f"{what}: neither libnftables nor the nft program is installed (apt-get install nftables)")
        p = subprocess.run([nft, "-j", "-f", "-"], input=text, capture_output=True, text=True)
        rc, out, err = p.returncode, p.stdout, p.stderr
    if rc != 0:
        first = next((line for line in err.splitlines() if line.strip()), "failed")
        raise NetworkError(f"{what}: {first}")
    if not out.strip():
        return []
    return json.loads(out).get("nftables", [])


def try_run(commands: list) -> bool:
    """run() for teardown: a rule or element that is already gone is not an error."""
    try:
        run(commands)
        return True
    except NetworkError:
        return False
