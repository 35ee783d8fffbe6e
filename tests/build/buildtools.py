"""Helpers of the builder tests: the base image's name, contexts, progress events."""
import textwrap

BASE = "bbase:1"   # the tests' base image, the same in pycontain's store and in dockerd


def make_ctx(path, files, dockerfile=None):
    path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        p = path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    if dockerfile is not None:
        (path / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    return path


class Events(list):
    """A progress callback that keeps the events."""

    def __call__(self, e):
        self.append(e)

    def cached(self):
        """[(instruction, cached)] of the steps after FROM."""
        steps = {e["id"]: e for e in self if e["type"] == "step"}
        return [(steps[e["id"]]["instruction"], e["cached"]) for e in self
                if e["type"] == "done" and not steps[e["id"]]["instruction"].startswith("FROM")]

    def output(self):
        return [e["line"] for e in self if e["type"] == "output"]
