"""The fork server (pycontain/managed/starter.py) from the library's side: a
process forks it before its first thread, then starts with threads go
through it, an attach socket included (SCM_RIGHTS); once it cannot answer,
cmonitor's own threaded path starts them. Each case runs in a process of
its own: the test process has threads already, and launch() refuses those."""
import json
import socket
import subprocess
import sys
import textwrap

import pytest

from pycontain import attach, containers

from .conftest import wait_for

@pytest.mark.parametrize("mode", ["warm", "lost"])
def test_a_start_with_threads_goes_through_the_starter_with_its_attach_socket(busybox, managed, mode):
    c = containers.create(rootfs=str(busybox), command=["sh", "-c", "echo first; read line; echo got $line"],
                          stdin_open=True)
    code = textwrap.dedent("""
        # the process with threads
        import json, os, select, signal, socket, sys, threading
        from pycontain import containers
        from pycontain.managed import starter

        forks = starter.launch()
        assert forks is not None
        if sys.argv[2] == "lost":   # a starter that crashed and may not come back
            starter.MAX_RESTARTS = 0
            os.kill(forks.pid, signal.SIGKILL)
            fd = os.pidfd_open(forks.pid)
            select.select([fd], [], [], 10)
        threading.Thread(target=threading.Event().wait, daemon=True).start()   # threads: no fork here now
        mine = socket.socket(fileno=int(sys.argv[3]))
        c = containers.get(sys.argv[1])
        c.start(attach_sock=mine)
        mine.close()
        print(json.dumps({"stats": forks.stats(), "monitor": c.record.monitor_pid}))
    """)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        r = subprocess.run([sys.executable, "-c", code, c.id, mode, str(theirs.fileno())], capture_output=True,
                           text=True, timeout=60, pass_fds=(theirs.fileno(),))
    finally:
        theirs.close()
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    if mode == "warm":
        assert report["stats"]["starts"] == 1
    else:   # the starter is gone for good: cmonitor's own path (a new interpreter) started it
        assert report["stats"] is None
    c.reload()
    assert c.record.monitor_pid == report["monitor"]
    with open(f"/proc/{report['monitor']}/cmdline", "rb") as f:
        assert f.read().startswith(b"pycontain-monitor\0")
    # the socket the starter's worker passed on is the C monitor's client from the first byte
    mine.settimeout(10)
    got = b""
    while b"first\n" not in got:
        data = mine.recv(4096)
        assert data, got
        got += data
    mine.sendall(attach.frame("d", b"hello\n"))
    while True:
        data = mine.recv(4096)
        if not data:
            break
        got += data
    mine.close()
    assert got == b"first\ngot hello\n"
    assert c.wait(timeout=10) == 0
    assert wait_for(lambda: c.reload().status == "exited", 10)
    c.remove()


def test_a_process_with_threads_gets_no_starter_nor_one_that_asks_for_none():
    """launch() must run before the first thread: later, a fork would copy
    locks other threads hold; cmonitor keeps its own path then."""
    threaded = ("import threading, time; from pycontain.managed import cmonitor, starter\n"
                "threading.Thread(target=time.sleep, args=(1,)).start()\n"
                "assert starter.launch() is None and cmonitor.threaded_starter is None\n")
    unwanted = ("import os; from pycontain.managed import cmonitor, starter\n"
                "os.environ['PYCONTAIN_STARTER'] = '0'\n"
                "assert starter.launch() is None and cmonitor.threaded_starter is None\n")
    for code in (threaded, unwanted):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
