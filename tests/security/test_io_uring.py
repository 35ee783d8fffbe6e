"""io_uring in a default container: refused, as docker 25 and later refuse it
(its syscalls bypass seccomp's view of what a process does and have been a
steady source of kernel escapes). Unconfined, the kernel allows it here:
the refusal comes from the default profile."""
import errno

import pytest

from sechelpers import probe

pytestmark = pytest.mark.usefixtures("leakcheck")

SYSCALLS = ["io_uring_setup", "io_uring_enter", "io_uring_register"]


@pytest.mark.parametrize("what", SYSCALLS)
def test_io_uring_is_refused_by_default(rootfs, what):
    assert probe(rootfs, what) == f"ERR {errno.EPERM}"


def test_io_uring_works_unconfined(rootfs):
    # the kernel's own answers: a ring, and an error about the missing ring
    assert probe(rootfs, "io_uring_setup", seccomp="unconfined") == "OK"
    for what in ("io_uring_enter", "io_uring_register"):
        assert probe(rootfs, what, seccomp="unconfined") in (f"ERR {errno.EBADF}", f"ERR {errno.EINVAL}")
