"""Generated bad input files: random bytes, truncated archives, wrong
magic, tar headers whose numeric fields are not numbers."""
import gzip
import io
import random
import tarfile


def _tar(members=(("a", b"hello\n"),)):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _with_field(data: bytes, offset: int, width: int, value: bytes) -> bytes:
    """A tar whose first header has value in the field at offset (checksum fixed up)."""
    hdr = bytearray(data[:512])
    hdr[offset:offset + width] = value.ljust(width, b"\0")[:width]
    hdr[148:156] = b" " * 8
    hdr[148:156] = b"%06o\0 " % sum(hdr)
    return bytes(hdr) + data[512:]


def bad_files(seed: int) -> dict:
    rng = random.Random(seed)
    good = _tar([("etc/hostname", b"x\n"), ("bin/true", b"\x7fELF" + bytes(100))])
    cases = {
        "empty": b"",
        "random-1k": rng.randbytes(1024),
        "random-64k": rng.randbytes(65536),
        "zeros": bytes(4096),
        "truncated-tar": good[: len(good) // 3],
        "half-header": good[:300],
        "gzip-magic-garbage": b"\x1f\x8b\x08\x00" + rng.randbytes(2000),
        "truncated-gzip": gzip.compress(good)[:40],
        "zstd-magic-garbage": b"\x28\xb5\x2f\xfd" + rng.randbytes(500),
        "bad-size-field": _with_field(good, 124, 12, b"xyz"),
        "negative-size": _with_field(good, 124, 12, b"\xff" * 12),
        "bad-mode-field": _with_field(good, 100, 8, b"9999999"),
        "bad-mtime-field": _with_field(good, 136, 12, b"--"),
        "bad-checksum": good[:148] + b"0000000\0" + good[156:],
        "json-not-archive": b'{"schemaVersion": 2}',
    }
    for i in range(3):    # a good tar with random bytes flipped in its first header
        data = bytearray(good)
        for _ in range(8):
            data[rng.randrange(512)] = rng.randrange(256)
        cases[f"flipped-header-{i}"] = bytes(data)
    return cases
