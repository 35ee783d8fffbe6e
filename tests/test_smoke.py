from pycontain import Container


def test_busybox_echo(busybox, leakcheck):
    r = Container(rootfs=busybox, command=["sh", "-c", "echo hi; echo $$"]).run(capture_output=True)
    assert r.returncode == 0
    assert r.stdout == b"hi\n1\n"


def test_hello_world(leakcheck):
    r = Container("hello-world").run(capture_output=True, text=True)
    assert r.returncode == 0
    assert "Hello from pycontain!" in r.stdout
