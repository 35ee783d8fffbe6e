"""POST /build, the classic builder protocol: DOCKER_BUILDKIT=0 docker build and
docker-py's images.build, through pycontain.build."""
import io
import subprocess
import tarfile

import docker as docker_py
import pytest
from apitools import DOCKER, IMAGE

from pycontain import image


def _context_tar(files: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:    # docker accepts compressed contexts too
        for name, text in files.items():
            data = text.encode()
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_classic_docker_build(docker, docker_env, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "greeting.txt").write_text("copied\n")
    (ctx / "Dockerfile").write_text(f"FROM {IMAGE}\nARG WHO=nobody\nCOPY greeting.txt /\n"
                                    "RUN echo \"built for $WHO\" > /built.txt\nCMD [\"cat\", \"/greeting.txt\", \"/built.txt\"]\n")
    env = dict(docker_env, DOCKER_BUILDKIT="0")

    def classic_build(*args):
        return subprocess.run([DOCKER, "build", *args], capture_output=True, text=True, timeout=120, env=env)

    r = classic_build("-t", "apitest/built:1", "--build-arg", "WHO=api", str(ctx))
    try:
        assert r.returncode == 0, r.stderr
        assert "Step 1/5 : FROM" in r.stdout and "Successfully tagged apitest/built:1" in r.stdout
        r = docker("run", "--rm", "--network", "none", "apitest/built:1")
        assert (r.returncode, r.stdout) == (0, "copied\nbuilt for api\n"), r.stderr
        # a failing step: docker's exit status and the step named, no image tagged
        (ctx / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN exit 7\n")
        r = classic_build("-t", "apitest/broken:1", str(ctx))
        assert r.returncode != 0 and "exit 7" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert docker("image", "inspect", "apitest/broken:1").returncode != 0
    finally:
        docker("rmi", "apitest/built:1")


def test_docker_py_build_and_refusals(service):
    client = docker_py.DockerClient(base_url=f"unix://{service}")
    try:
        ctx = _context_tar({"sub/Dockerfile.api": f"FROM {IMAGE}\nLABEL from=docker-py\nRUN echo step-output\n"})
        img, logs = client.images.build(fileobj=io.BytesIO(ctx), custom_context=True, encoding="gzip",
                                        dockerfile="sub/Dockerfile.api", tag="apitest/pybuilt:1",
                                        labels={"suite": "api"})
        try:
            assert img.labels == {"from": "docker-py", "suite": "api"}
            assert "step-output\n" in [m.get("stream") for m in logs]
            assert image.get("apitest/pybuilt:1").id.endswith(img.id.split(":")[-1])
        finally:
            client.images.remove("apitest/pybuilt:1")
        # a Dockerfile outside the context, BuildKit's protocol, a limit the builder does not apply
        for kwargs, says in ((dict(dockerfile="../../etc/Dockerfile"), "inside the build context"),
                             (dict(container_limits={"memory": 1 << 30}), "memory")):
            with pytest.raises(docker_py.errors.APIError) as e:
                client.images.build(fileobj=io.BytesIO(ctx), custom_context=True, encoding="gzip", **kwargs)
            assert e.value.status_code == 400 and says in e.value.explanation
        resp = client.api.post(client.api._url("/build"), params={"version": "2"}, data=ctx)
        assert resp.status_code == 400 and "DOCKER_BUILDKIT=0" in resp.json()["message"]
        # a context that is no tar: the error in the stream, one line
        with pytest.raises(docker_py.errors.BuildError) as e:
            client.images.build(fileobj=io.BytesIO(b"no tar here" * 100), custom_context=True)
        assert "not a valid tar" in str(e.value)
    finally:
        client.close()


def _step_results(out: str) -> list:
    """Each step's lines of the classic builder's output, docker's shape:
    "Step N/M : ...", then (for a cached step) " ---> Using cache", and
    " ---> <short image id>" last."""
    steps = []
    for line in out.splitlines():
        if line.startswith("Step "):
            steps.append([])
        elif line.startswith(" ---> ") and steps:
            steps[-1].append(line[len(" ---> "):])
    return steps


def test_classic_build_prints_each_step_s_image_as_dockerd(docker, docker_env, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {IMAGE}\nENV A=1\nRUN echo step > /f\n")
    env = dict(docker_env, DOCKER_BUILDKIT="0")
    try:
        for cached in (False, True):
            r = subprocess.run([DOCKER, "build", "-t", "apitest/steps:1", str(ctx)], capture_output=True, text=True,
                               timeout=120, env=env)
            assert r.returncode == 0, r.stderr
            steps = _step_results(r.stdout)
            assert len(steps) == 3, r.stdout
            for n, lines in enumerate(steps):
                short = lines[-1]
                assert len(short) == 12 and all(ch in "0123456789abcdef" for ch in short), r.stdout
                assert lines[:-1] == (["Using cache"] if cached and n else []), r.stdout
            built = next(line for line in r.stdout.splitlines() if line.startswith("Successfully built "))
            assert built == f"Successfully built {steps[-1][-1]}"
            assert image.inspect("apitest/steps:1")["Id"].split(":")[-1].startswith(steps[-1][-1])
    finally:
        docker("rmi", "apitest/steps:1")
