"""The Docker Engine API door: `pycontain system service`.

    pycontain system service --socket unix:///run/pycontain/docker.sock
    DOCKER_HOST=unix:///run/pycontain/docker.sock docker run --rm busybox echo hi

One asyncio process (aiohttp) that converts each request once
(api/convert.py) and calls the library: pycontain.containers for
containers and exec, pycontain.image for images. Containers keep their own
monitors: stopping the service stops none of them, and `pycontain ps`
sees what the API made (and the reverse).
"""
