"""A managed container keeps the image it was created from, even with
pull="always" and a tag that moved in the registry (docker's rule)."""
import tarfile

from pycontain import containers, image


def test_a_stored_pull_always_does_not_pull_at_every_start(registry, busybox, tmp_path):
    root = tmp_path / "root"
    ref = f"{registry.host}/pinned/img:1"
    first = tmp_path / "first.tar"
    with tarfile.open(first, "w") as t:
        t.add(busybox, arcname=".")
    image.import_(str(first), "local/pin:first", root=root)
    image.push("local/pin:first", dest=ref, root=root)
    c = containers.create(ref, ["sh", "-c", "cat /marker 2>/dev/null || echo first"], pull="always", root=root)
    try:
        # the tag moves in the registry
        marker = tmp_path / "marker"
        marker.write_text("second\n")
        second = tmp_path / "second.tar"
        with tarfile.open(second, "w") as t:
            t.add(busybox, arcname=".")
            t.add(marker, arcname="marker")
        image.import_(str(second), "local/pin:second", root=root)
        image.push("local/pin:second", dest=ref, root=root)
        for _ in range(2):
            c.start()
            assert c.wait(timeout=20) == 0
        assert c.logs() == b"first\nfirst\n"                 # no pull at start: the image of create
        assert c.reload().attrs["Image"] == image.get("local/pin:first", root=root).id
        assert c.attrs["Config"]["Image"] == ref
    finally:
        c.remove(force=True)
        containers.close_stores()
