"""Container start, start to exit, in process: the core benchmark.

    .venv/bin/python -m pytest bench/bench_start.py --benchmark-columns=median,min,max,rounds

The standard set-up: new mount, pid, uts, ipc and net namespaces, overlay
root with a writable layer, pivot_root, /proc, /dev, /sys, masked and
read-only paths, Docker's capabilities, no_new_privs; busybox `true`.
"""
from pycontain import Container


def test_start_standard(benchmark, busybox):
    def run():
        assert Container(rootfs=busybox, command=["/bin/true"]).run().returncode == 0

    benchmark.pedantic(run, rounds=300, warmup_rounds=20)


def test_start_host_network(benchmark, busybox):
    def run():
        Container(rootfs=busybox, command=["/bin/true"], network="host").run()

    benchmark.pedantic(run, rounds=300, warmup_rounds=20)


def test_start_with_init(benchmark, busybox):
    def run():
        Container(rootfs=busybox, command=["/bin/true"], init=True).run()

    benchmark.pedantic(run, rounds=200, warmup_rounds=10)


def test_start_disk_layer(benchmark, busybox):
    def run():
        Container(rootfs=busybox, command=["/bin/true"], writable_layer="disk").run()

    benchmark.pedantic(run, rounds=200, warmup_rounds=10)
