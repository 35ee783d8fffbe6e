"""Finding 8 of issue 18: one name rule, decided at create, and errors that
quote at most a short prefix of what was given."""
from .conftest import one_line_error, pycontain


def test_a_long_name_is_decided_at_create_and_never_repeated_whole(root, image_ref):
    long_ok = "a" * 10000
    r = pycontain("create", "--name", long_ok, image_ref, "true", root=root)
    assert r.returncode == 0, r.stderr[:300]
    r = pycontain("start", long_ok, root=root)
    assert r.returncode == 0, r.stderr[:300]
    r = pycontain("wait", long_ok, root=root)
    assert r.stdout.strip() == "0", (r.stdout[:200], r.stderr[:300])   # accepted at create: it runs
    for args in (["create", "--name", long_ok, image_ref, "true"],          # in use
                 ["create", "--name", "_" + long_ok, image_ref, "true"],    # against the rule
                 ["run", "--rm", "--name", "_" + long_ok, image_ref, "true"],
                 ["rm", "b" + long_ok],                                      # no such container
                 ["volume", "create", "_" + long_ok]):
        line = one_line_error(pycontain(*args, root=root))
        assert len(line) < 400 and ("10000 characters" in line or "10001 characters" in line), line[:500]
    assert pycontain("rm", long_ok, root=root).returncode == 0
