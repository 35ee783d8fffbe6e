"""The Dockerfile executor: stages, steps, layers, the build cache.

    image_id = build(store, context, dockerfile="Dockerfile", tags=["app:1"], progress=print)

Docker's classic builder is the model (what `DOCKER_BUILDKIT=0 docker build`
does with dockerd 20.10), with BuildKit's choice of stages:
- only the stages the target needs are built, in order;
- every instruction after FROM makes an image in the store (no name): its
  config, and its history entry with docker's `created_by` text and
  `empty_layer` for steps that change no file;
- RUN runs in a pycontain Container started from the step's image with the
  stage's Env (plus the build arguments), User, WorkingDir and SHELL and
  docker's default security; its layer is what it wrote (deletions as
  whiteouts), minus the mount points the launcher made;
- COPY and ADD write their files into a fresh directory that becomes the layer;
- the cache: a step is reused when an image made earlier from the same parent
  image by the same step exists: "the same step" is docker's container config
  of it (the instruction's text, for COPY/ADD with the content hash of the
  sources, for RUN with the build arguments in use), so a changed source
  file, argument or instruction misses and so does everything after it;
- names are applied only when the whole build succeeded.
"""
from __future__ import annotations

import bz2
import copy
import dataclasses
import datetime
import fcntl
import fnmatch
import hashlib
import json
import lzma
import os
import shutil
import sqlite3
import stat
import tempfile
import time

from .. import rootless
from .._sqlite import database_error, open_read_only_when_full
from ..errors import ConfigError, ContainerError, ImageNotFound
from ..users import read_in_layers, resolve_user
from ..image import reference as refmod
from ..image.make import write_diff_tar
from ..image.merged import merged_dir
from ..image.store import (MEDIA_OCI_CONFIG, MEDIA_OCI_LAYER, MEDIA_OCI_MANIFEST, ImageStore, host_platform,
                           sha256_bytes)
from ..image.unpack import GZIP_MAGIC, ZSTD_MAGIC, LayerError, unpack_layer
from . import dockerfile as dfmod
from .context import BuildContext, ContextError, file_sum, has_wildcards, multi_hash
from .dockerfile import BUILTIN_ARGS, DockerfileError, ExpansionError, expand_word

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]
# What the launcher may create in a RUN step's writable layer as mount points,
# where docker has its "init" layer: never part of the step's layer.
MOUNT_STUBS = ("proc", "sys", "dev", "etc/hostname", "etc/hosts", "etc/resolv.conf")


class BuildError(ContainerError):
    """A step failed; the message names the step and why."""

    def __init__(self, message: str, exit_status: int = 1):
        super().__init__(message)
        self.exit_status = exit_status


@dataclasses.dataclass
class BuildOptions:
    tags: tuple = ()
    buildargs: dict = dataclasses.field(default_factory=dict)   # name -> value (None: unset)
    target: str | None = None
    nocache: bool = False
    pull: bool = False
    network: str = "none"
    labels: dict = dataclasses.field(default_factory=dict)
    platform: str | None = None
    secrets: dict = dataclasses.field(default_factory=dict)     # id -> host file (RUN --mount=type=secret)


# ---- the cache: (parent image, step) -> image ------------------------------------------


_CACHE_SCHEMA = "CREATE TABLE IF NOT EXISTS steps (key TEXT PRIMARY KEY, image_id TEXT NOT NULL, used REAL)"


class BuildCache:
    """<store root>/builder/cache.db: the image each step made, keyed by the
    parent image id and docker's container config of the step."""

    def __init__(self, store_root):
        d = os.path.join(store_root, "builder")
        os.makedirs(d, mode=0o700, exist_ok=True)
        self.path = os.path.join(d, "cache.db")
        self.db = None
        try:
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(_CACHE_SCHEMA)
        except sqlite3.Error as e:
            # a full disk: the cache is read as it is (images, df answer),
            # and every write is refused in one line (_write)
            if self.db is not None:
                self.db.close()
            self.db = open_read_only_when_full(self.path, e)
            if self.db is None:
                raise database_error(e, self.path, "opening the build cache") from None
            if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name='steps'").fetchone():
                self.db.close()     # never written: an empty cache
                self.db = sqlite3.connect(":memory:", isolation_level=None)
                self.db.execute(_CACHE_SCHEMA)

    def _write(self, sql, args=()):
        try:
            return self.db.execute(sql, args)
        except sqlite3.Error as e:
            raise database_error(e, self.path, "writing the build cache") from None

    @staticmethod
    def key(parent: str | None, probe: dict) -> str:
        blob = json.dumps({"parent": parent or "", "config": probe}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT image_id FROM steps WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, image_id: str) -> None:
        self._write("INSERT OR REPLACE INTO steps VALUES (?,?,?)", (key, image_id, time.time()))

    def drop(self, key: str) -> None:
        self._write("DELETE FROM steps WHERE key=?", (key,))

    def image_ids(self) -> list:
        return [r[0] for r in self.db.execute("SELECT DISTINCT image_id FROM steps")]

    def clear(self) -> int:
        n = self.db.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
        self._write("DELETE FROM steps")
        return n

    def close(self):
        self.db.close()


# ---- state of a stage -------------------------------------------------------------------


@dataclasses.dataclass
class StageState:
    name: str
    image_id: str | None = None          # the current image (None: scratch, nothing committed)
    config: dict = dataclasses.field(default_factory=dict)   # the whole image config
    layers: list = dataclasses.field(default_factory=list)   # manifest layer descriptors
    chain_ids: list = dataclasses.field(default_factory=list)
    args: dict = dataclasses.field(default_factory=dict)     # declared ARGs: name -> default (None: none)
    maintainer: str = ""
    cmd_set: bool = False

    @property
    def run_config(self) -> dict:
        return self.config.setdefault("config", {})

    def layer_dirs(self, store: ImageStore) -> list:
        return [str(store.layer_path(c)) for c in reversed(self.chain_ids)]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _env_map(env_list) -> dict:
    out: dict = {}
    for e in env_list or ():
        k, _, v = e.partition("=")
        out.setdefault(k, v)
    return out


class Builder:
    def __init__(self, store: ImageStore, ctx: BuildContext, df: dfmod.Dockerfile, opts: BuildOptions, progress=None):
        self.store = store
        self.ctx = ctx
        self.df = df
        self.opts = opts
        self.emit = progress if progress is not None else (lambda event: None)
        self.cache = None
        self.build_id = os.urandom(8).hex()
        self.done: dict = {}           # stage index -> StageState
        self.used_args: set = set()
        self.holds: list = []
        self.scratch: list = []        # temporary directories to remove when the build ends
        self.step_no = 0

    # ---- the plan ---------------------------------------------------------------

    def meta_args(self) -> dict:
        """The ARGs before the first FROM, --build-arg overriding their defaults."""
        values: dict = {}
        for inst in self.df.meta_args:
            for key, default in inst.pairs:
                value = self.opts.buildargs.get(key)
                if value is None and default is not None:
                    value = self._expand(default, values, inst)
                values[key] = value
                if key in self.opts.buildargs:
                    self.used_args.add(key)
        return values

    def _stage_ref(self, word: str, before: int) -> dfmod.Stage | None:
        for st in self.df.stages[:before]:
            if st.name == word.lower() or str(st.index) == word:
                return st
        return None

    def needed_stages(self, target: dfmod.Stage, meta: dict) -> list:
        """The target and every stage it depends on (FROM, COPY --from,
        RUN --mount from=), in Dockerfile order."""
        need, todo = set(), [target]
        while todo:
            st = todo.pop()
            if st.index in need:
                continue
            need.add(st.index)
            refs = [self._expand(st.base, meta, st.from_instruction)]
            for inst in st.instructions:
                if inst.keyword == "COPY" and "from" in inst.flags:
                    refs.append(inst.flags["from"])
                for m in inst.flags.get("mount", []) if inst.keyword == "RUN" else ():
                    for part in m.split(","):
                        if part.startswith("from="):
                            refs.append(part[5:])
            for ref in refs:
                dep = self._stage_ref(ref, st.index)
                if dep is not None:
                    todo.append(dep)
        return [st for st in self.df.stages if st.index in need]

    def run(self) -> str:
        meta = self.meta_args()
        target = self.df.stage(self.opts.target)
        if self.opts.labels:
            label_inst = dfmod.Instruction("LABEL", [], "LABEL", 0, 0, literal=True,
                                           pairs=tuple((k, v) for k, v in sorted(self.opts.labels.items())))
            target.instructions = list(target.instructions) + [label_inst]
        stages = self.needed_stages(target, meta)
        self.cache = BuildCache(self.store.root)
        try:
            for st in stages:
                self.done[st.index] = self.build_stage(st, meta)
            final = self.done[target.index]
            if final.image_id is None:
                raise BuildError("No image was generated. Is your Dockerfile empty?")
            unused = sorted(set(self.opts.buildargs) - self.used_args - set(BUILTIN_ARGS))
            if unused:
                self.emit({"type": "warning",
                           "message": f"One or more build-args {unused} were not consumed"})
            for t in self.opts.tags:
                self.store.tag(final.image_id, t)
            return final.image_id
        finally:
            for d in self.scratch:
                rootless.remove_tree(d, ignore_errors=True)
            for holder in self.holds:
                self.store.release(holder)
            self.cache.close()

    # ---- a stage ----------------------------------------------------------------

    def build_stage(self, st: dfmod.Stage, meta: dict) -> StageState:
        label = st.name or f"stage-{st.index}"
        total = len(st.instructions) + 1
        base_word = self._expand(st.base, meta, st.from_instruction)
        state = StageState(label)
        if st.platform:
            plat = self._expand(st.platform, meta, st.from_instruction)
            os_name, arch, _ = host_platform()
            if plat.split("/")[:2] != [os_name, arch]:
                self._fail(st.from_instruction, f"platform {plat!r} is not this machine's ({os_name}/{arch})")
        t0 = time.monotonic()
        self._step(label, 1, total, st.from_instruction.original, t0)
        dep = self._stage_ref(base_word, st.index)
        if dep is not None:
            src = self.done[dep.index]
            state.image_id, state.config = src.image_id, copy.deepcopy(src.config)
            state.layers, state.chain_ids = list(src.layers), list(src.chain_ids)
        elif base_word.lower() == "scratch":
            os_name, arch, variant = host_platform()
            state.config = {"architecture": arch, "os": os_name, "config": {},
                            "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
        else:
            self._load_base(state, base_word, st.from_instruction)
        rc = state.run_config
        env = list(rc.get("Env") or [])
        if "PATH" not in _env_map(env):
            rc["Env"] = env + [f"PATH={DEFAULT_PATH}"]
        self._done(state, label, 1, t0)
        self._hold(state)
        triggers = list(rc.get("OnBuild") or [])
        if triggers:
            rc["OnBuild"] = []
            for text in triggers:
                try:
                    trig = dfmod.parse(f"FROM scratch\n{text}\n", f"ONBUILD trigger of {base_word}").stages[0].instructions[0]
                except DockerfileError as e:
                    raise BuildError(str(e)) from None
                trig.line = st.from_instruction.line
                self.dispatch(state, trig, label, 1, total, meta)
        for n, inst in enumerate(st.instructions, start=2):
            self.dispatch(state, inst, label, n, total, meta)
        return state

    def _load_base(self, state: StageState, ref: str, inst) -> None:
        # The registry client (http, ssl) is loaded only when a base image must be pulled.
        from ..image import registry

        try:
            refmod.parse(ref)
        except ConfigError as e:
            self._fail(inst, f"invalid base image {ref!r}: {e}")
        img = None
        if not self.opts.pull:
            try:
                img = self.store.lookup(ref)
            except ImageNotFound:
                img = None
        if img is None:
            try:
                image_id = registry.pull(self.store, ref, platform=self.opts.platform)
            except (ImageNotFound, registry.RegistryError, OSError) as e:
                self._fail(inst, f"base image {ref!r} is not in the store and pulling it failed: {e}")
            img = self.store.lookup(image_id)
        state.image_id = img.id
        state.config = self.store.config(img.id)
        state.config.setdefault("config", {})
        state.layers = list(self.store.manifest(img)["layers"])
        state.chain_ids = list(img.chain_ids)

    # ---- steps ------------------------------------------------------------------

    def _step(self, stage, n, total, text, t0, cached=False):
        self.step_no += 1
        self.emit({"type": "step", "id": self.step_no, "stage": stage, "n": n, "total": total,
                   "instruction": " ".join(text.split()) if len(text) < 4096 else text[:4096], "time": t0})

    def _done(self, state, stage, n, t0, cached=False):
        # image: the step's image (docker's classic builder prints " ---> <short id>" after each step)
        self.emit({"type": "done", "id": self.step_no, "stage": stage, "n": n, "cached": cached,
                   "duration": time.monotonic() - t0, "image": state.image_id})

    def _fail(self, inst, message):
        where = f"{self.df.filename}:{inst.line}: " if inst is not None and inst.line else ""
        raise BuildError(f"{where}{message}")

    def _expand(self, word: str, env: dict, inst) -> str:
        try:
            return expand_word(word, {k: v for k, v in env.items() if v is not None}, self.df.escape)
        except ExpansionError as e:
            self._fail(inst, str(e))

    def _build_args(self, state: StageState) -> dict:
        """docker's BuildArgs.GetAllAllowed: the stage's declared ARGs with a
        value, and the predefined proxy ones given by --build-arg."""
        out = {}
        for key, default in state.args.items():
            v = self.opts.buildargs.get(key)
            if v is None:
                v = default
            if v is not None:
                out[key] = v
        for key in BUILTIN_ARGS:
            if key not in out and self.opts.buildargs.get(key) is not None:
                out[key] = self.opts.buildargs[key]
        return out

    def _word_env(self, state: StageState) -> dict:
        env = _env_map(state.run_config.get("Env"))
        for k, v in self._build_args(state).items():
            env.setdefault(k, v)
        return env

    def dispatch(self, state: StageState, inst, stage: str, n: int, total: int, meta: dict) -> None:
        t0 = time.monotonic()
        self._step(stage, n, total, inst.original, t0)
        kw = inst.keyword
        rc = state.run_config
        env = self._word_env(state)
        shell = list(rc.get("Shell") or DEFAULT_SHELL)

        def expand(word):
            if inst.literal:
                return word
            return self._expand(word, env, inst)

        comment, layer_fn, probe_cmd = None, None, None
        if kw == "ENV":
            pairs = [(expand(k), expand(v)) for k, v in inst.pairs]
            cur = list(rc.get("Env") or [])
            for k, v in pairs:
                cur = [e for e in cur if e.partition("=")[0] != k] + [f"{k}={v}"]
            rc["Env"] = cur
            comment = "ENV " + " ".join(f"{k}={v}" for k, v in pairs)
        elif kw == "LABEL":
            labels = dict(rc.get("Labels") or {})
            parts = []
            for k, v in inst.pairs:
                k, v = expand(k), expand(v)
                labels[k] = v
                parts.append(f"{k}={v}")
            rc["Labels"] = labels
            comment = "LABEL " + " ".join(parts)
        elif kw == "MAINTAINER":
            state.maintainer = inst.args[0]
            comment = "MAINTAINER " + inst.args[0]
        elif kw == "EXPOSE":
            ports = [expand(p) for p in inst.args]
            exposed = dict(rc.get("ExposedPorts") or {})
            for p in ports:
                for spec in _port_specs(p, lambda m: self._fail(inst, m)):
                    exposed[spec] = {}
            rc["ExposedPorts"] = exposed
            comment = "EXPOSE " + " ".join(ports)
        elif kw in ("CMD", "ENTRYPOINT"):
            cmd = list(inst.args) if inst.json else (shell + inst.args if inst.args else [])
            if kw == "CMD":
                rc["Cmd"] = cmd
                state.cmd_set = state.cmd_set or bool(inst.args)
            else:
                rc["Entrypoint"] = cmd
                if not state.cmd_set:
                    rc["Cmd"] = None
            comment = f"{kw} {dfmod.go_quote_list(cmd)}"
        elif kw == "VOLUME":
            vols = [expand(v) for v in inst.args]
            if any(v == "" for v in vols):
                self._fail(inst, "VOLUME specified can not be an empty string")
            volumes = dict(rc.get("Volumes") or {})
            for v in vols:
                volumes[v] = {}
            rc["Volumes"] = volumes
            comment = "VOLUME [" + " ".join(vols) + "]"
        elif kw == "USER":
            rc["User"] = expand(inst.args[0])
            comment = "USER " + rc["User"]
        elif kw == "STOPSIGNAL":
            sig = expand(inst.args[0])
            _check_signal(sig, lambda m: self._fail(inst, m))
            rc["StopSignal"] = sig
            comment = "STOPSIGNAL " + sig
        elif kw == "HEALTHCHECK":
            hc = {"Test": list(inst.args)}
            for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                              ("start-interval", "StartInterval")):
                if flag in inst.flags:
                    ns = dfmod.parse_duration(inst.flags[flag], f"--{flag}")
                    if ns:
                        hc[key] = ns
            if "retries" in inst.flags:
                hc["Retries"] = int(inst.flags["retries"])
            rc["Healthcheck"] = hc
            comment = "HEALTHCHECK " + _health_text(hc)
        elif kw == "ONBUILD":
            rc["OnBuild"] = list(rc.get("OnBuild") or []) + [inst.expression]
            comment = "ONBUILD " + inst.expression
        elif kw == "SHELL":
            rc["Shell"] = list(inst.args)
            shell = list(inst.args)   # docker's history text starts with the new shell already
            comment = "SHELL [" + " ".join(inst.args) + "]"
        elif kw == "ARG":
            parts = []
            for key, default in inst.pairs:
                key = expand(key)
                value = expand(default) if default is not None else None
                if value is None and key in meta:
                    value = meta[key]
                state.args[key] = value
                if key in self.opts.buildargs:
                    self.used_args.add(key)
                parts.append(key if default is None else f"{key}={value}")
            comment = "ARG " + " ".join(parts)
        elif kw == "WORKDIR":
            path = expand(inst.args[0])
            cur = rc.get("WorkingDir") or ""
            if not path.startswith("/"):
                path = os.path.join("/", cur, path)
            rc["WorkingDir"] = os.path.normpath(path).replace("//", "/")
            probe_cmd = shell + ["#(nop) WORKDIR " + rc["WorkingDir"]]
            workdir = rc["WorkingDir"]
            layer_fn = lambda staging: self._make_workdir(state, staging, workdir)  # noqa: E731
        elif kw == "RUN":
            self._run(state, inst, stage, n, shell, env, t0)
            return
        elif kw in ("COPY", "ADD"):
            self._copy(state, inst, expand, shell, t0, stage, n)
            return
        else:
            self._fail(inst, f"unknown instruction: {kw}")
        if probe_cmd is None:
            probe_cmd = shell + ["#(nop) ", comment]
        hit = self.commit(state, layer_fn, comment, probe=probe_cmd)
        self._done(state, stage, n, t0, cached=hit)

    # ---- committing a step --------------------------------------------------------

    def _probe(self, state: StageState, cmd: list) -> dict:
        probe = copy.deepcopy(state.run_config)
        probe["Cmd"] = cmd
        probe["__maintainer"] = state.maintainer
        return probe

    def commit(self, state: StageState, layer_fn, comment: str, *, probe) -> bool:
        """Makes the step's image (from the cache when it has it). layer_fn
        fills a staging directory that becomes the layer (None: no layer).
        Returns True on a cache hit."""
        key = None
        if probe is not None:
            key = self.cache.key(state.image_id, self._probe(state, probe))
            if not self.opts.nocache:
                hit = self._cached(state, key)
                if hit:
                    return True
        staging = None
        try:
            diff = None
            if layer_fn is not None:
                staging = tempfile.mkdtemp(dir=self.store.tmp_dir, prefix="build-")
                layer_fn(staging)
                diff = staging
            self._commit_image(state, diff, " ".join(probe) if probe else "", key, adopt=True)
        finally:
            if staging is not None and os.path.exists(staging):
                rootless.remove_tree(staging, ignore_errors=True)
        return False

    def _cached(self, state: StageState, key: str) -> bool:
        image_id = self.cache.get(key)
        if image_id is None:
            return False
        try:
            img = self.store.lookup(image_id)
            cfg = self.store.config(img.id)
            layers = list(self.store.manifest(img)["layers"])
        except (ImageNotFound, ConfigError, OSError, ValueError):
            self.cache.drop(key)
            return False
        if not all(self.store.has_layer(c) for c in img.chain_ids):
            self.cache.drop(key)
            return False
        state.image_id, state.config, state.layers, state.chain_ids = img.id, cfg, layers, list(img.chain_ids)
        state.config.setdefault("config", {})
        return True

    def _hold(self, state: StageState) -> None:
        """Keeps the stage's current image from a concurrent prune until the build ends."""
        if state.image_id is None:
            return
        holder = f"build-{self.build_id}-{state.name}"
        self.store.hold(state.image_id, holder)
        if holder not in self.holds:
            self.holds.append(holder)

    def _commit_image(self, state: StageState, diff_dir: str | None, created_by: str, key: str | None,
                      adopt: bool = False) -> None:
        """The step's image; diff_dir (if any) holds its layer's files. With
        adopt, diff_dir (a staging directory of this build, in the layer
        form) becomes the layer itself, saving an unpack of the blob."""
        layer = None
        if diff_dir is not None and _has_entries(diff_dir):
            with self.store.blob_writer() as w:
                write_diff_tar(diff_dir, w)
                blob = w.commit()
                size = w.size
            parent = state.chain_ids[-1] if state.chain_ids else None
            diff_id = blob      # the blob is the plain tar: its digest is the diff id
            if adopt:
                chain = self.store.adopt_layer(diff_dir, parent, diff_id, size)
            else:
                chain, _ = self.store.ensure_layer(blob, parent, diff_id)
            layer = {"mediaType": MEDIA_OCI_LAYER, "digest": blob, "size": size}
        cfg = state.config
        now = _now()
        cfg["created"] = now
        history = {"created": now, "created_by": created_by}
        if state.maintainer:
            cfg["author"] = history["author"] = state.maintainer
        if layer is None:
            history["empty_layer"] = True
        else:
            cfg.setdefault("rootfs", {"type": "layers", "diff_ids": []})
            cfg["rootfs"]["diff_ids"] = list(cfg["rootfs"].get("diff_ids") or []) + [diff_id]
            state.layers = state.layers + [layer]
            state.chain_ids = state.chain_ids + [chain]
        cfg["history"] = list(cfg.get("history") or []) + [history]
        for gone in ("container", "container_config", "docker_version"):
            cfg.pop(gone, None)
        cfg_bytes = json.dumps(cfg, separators=(",", ":")).encode()
        cfg_digest = sha256_bytes(cfg_bytes)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": cfg_digest, "size": len(cfg_bytes)},
            "layers": state.layers,
        }, separators=(",", ":")).encode()
        state.image_id = self.store.add_image(cfg_bytes, manifest)
        if key is not None:
            self.cache.put(key, state.image_id)
        self._hold(state)

    # ---- WORKDIR ------------------------------------------------------------------

    def _make_workdir(self, state: StageState, staging: str, path: str) -> None:
        layers = state.layer_dirs(self.store)
        real = _resolve_in_view(layers, path)
        if _lstat_in_view(layers, real) is not None:
            return
        _ensure_dirs(layers, staging, real, (0, 0))

    # ---- RUN ----------------------------------------------------------------------

    def _run(self, state: StageState, inst, stage: str, n: int, shell: list, env: dict, t0: float) -> None:
        rc = state.run_config
        if inst.json:
            cmd = list(inst.args)
        else:
            cmd = shell + [_heredoc_script(inst, self._fail)]
        build_args = self._build_args(state)
        for k in build_args:
            if k in self.opts.buildargs:
                self.used_args.add(k)
        env_keys = _env_map(rc.get("Env"))
        allowed = {k: v for k, v in build_args.items() if k not in env_keys}
        shown = sorted(f"{k}={v}" for k, v in allowed.items() if k in state.args or k not in BUILTIN_ARGS)
        save_cmd = ([f"|{len(shown)}"] + shown + cmd) if allowed else cmd
        mount_specs = [_parse_mount(m, lambda msg: self._fail(inst, msg)) for m in inst.flags.get("mount", [])]
        for m in mount_specs:
            if m["type"] == "secret" and m["id"] in self.opts.secrets:
                m["secret-file"] = self.opts.secrets[m["id"]]
        probe = self._probe(state, save_cmd)
        if mount_specs:   # what is mounted is part of the step (a secret's content is not)
            probe["__mounts"] = [{k: v for k, v in m.items() if k != "secret-file"} for m in mount_specs]
        key = self.cache.key(state.image_id, probe)
        if not self.opts.nocache and self._cached(state, key):
            self._done(state, stage, n, t0, cached=True)
            return
        if state.image_id is None or not state.chain_ids:
            self._fail(inst, "RUN needs a base image with files (this stage is FROM scratch with no layer yet)")
        layers = state.layer_dirs(self.store)
        stubs = [s for s in MOUNT_STUBS if _lstat_in_view(layers, "/" + s) is None]
        etc_before = _lstat_in_view(layers, "/etc")
        # The launcher's modules are loaded when a RUN step runs: a cached build starts no container.
        from ..container import Container

        from ..config import Mount

        network = inst.flags.get("network") or self.opts.network
        if network not in ("none", "host", "bridge", "default"):
            self._fail(inst, f"RUN --network={network}: one of none, host, bridge, default")
        network = self.opts.network if network == "default" else network
        mounts, scratch, locks = [], [], []
        c = None
        r = w = None
        try:
            for m in mount_specs:
                mounts.append(self._run_mount(m, state, inst, scratch, locks, Mount))
            targets = [m.target for m in mounts]
            stubs += [t.lstrip("/") for t in _new_paths(layers, targets)]
            try:
                c = Container(image=state.image_id, command=cmd, entrypoint=[],
                              env=[f"{k}={v}" for k, v in allowed.items()], mounts=mounts,
                              user=rc.get("User") or None, workdir=rc.get("WorkingDir") or None,
                              network=network, writable_layer="disk", remove=False, root=self.store.root,
                              pull="never")
            except ContainerError as e:
                raise BuildError(f"{self.df.filename}:{inst.line}: [{stage} {n}] RUN failed: {e}") from None
            r, w = os.pipe()
            try:
                c.start(stdin=-3, stdout=w, stderr=w)
            except BuildError:
                raise
            except ContainerError as e:   # the command cannot run (no such program, no such user...)
                raise BuildError(f"{self.df.filename}:{inst.line}: [{stage} {n}] RUN failed: {e}") from None
            finally:
                os.close(w)
            self._pump_output(r, stage, n)
            status = c.wait()
            if status != 0:
                shown_status = status if status >= 0 else 128 - status
                raise BuildError(f"{self.df.filename}:{inst.line}: [{stage} {n}] RUN failed: the command "
                                 f"'{' '.join(cmd)}' returned a non-zero code: {shown_status}", exit_status=1)
            upper = c._rootfs.upper
            _clean_mount_stubs(upper, stubs, etc_before)
            self._commit_image(state, upper, " ".join(save_cmd), key)
        finally:
            if r is not None:
                os.close(r)
            if c is not None:
                c.remove()
            for fd in locks:
                os.close(fd)
            for d in scratch:
                rootless.remove_tree(d, ignore_errors=True)
        self._done(state, stage, n, t0)

    def _run_mount(self, m: dict, state: StageState, inst, scratch: list, locks: list, mount_cls):
        """One RUN --mount as a container mount: a cache directory kept under
        <store>/builder/cache-mounts, a tmpfs, a secret file, or a copy of
        context or stage files (a copy: the step must not change them)."""
        kind, target = m["type"], m["target"]
        if kind == "tmpfs":
            return mount_cls(None, target, type="tmpfs", options=(f"size={m['size']}",) if m.get("size") else ())
        if kind == "cache":
            name = hashlib.sha256(m.get("id", target).encode()).hexdigest()[:32]
            d = os.path.join(self.store.root, "builder", "cache-mounts", name)
            if not os.path.isdir(d):
                os.makedirs(os.path.dirname(d), mode=0o700, exist_ok=True)
                tmp = tempfile.mkdtemp(dir=os.path.dirname(d), prefix=".new-")
                os.chmod(tmp, int(m.get("mode", "755"), 8))
                os.chown(tmp, int(m.get("uid", 0)), int(m.get("gid", 0)))
                try:
                    os.rename(tmp, d)
                except OSError:
                    os.rmdir(tmp)   # another build made it first
            if m.get("sharing") == "locked":
                fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                locks.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
            return mount_cls(d, target, read_only=m.get("readonly", False))
        if kind == "secret":
            src = m.get("secret-file")
            if src is None:
                if m.get("required"):
                    self._fail(inst, f"secret {m['id']!r} is required: give it with --secret id={m['id']},src=FILE")
                tmp = tempfile.mkdtemp(dir=self.store.tmp_dir, prefix="secret-")
                scratch.append(tmp)
                src = os.path.join(tmp, "empty")
                open(src, "w").close()
            return mount_cls(os.path.abspath(src), target, read_only=True)
        # bind: a copy of context files or of a stage's or image's files
        tmp = tempfile.mkdtemp(dir=self.store.tmp_dir, prefix="bind-")
        scratch.append(tmp)
        source = m.get("source", "/")
        ref = m.get("from")
        if ref is None:
            try:
                rel = self.ctx.resolve(source)
            except ContextError as e:
                self._fail(inst, f"RUN --mount: {e}")
            src_path = os.path.join(self.ctx.root, rel) if rel else self.ctx.root
            st = os.lstat(src_path)
            if stat.S_ISDIR(st.st_mode):
                self._copy_tree(src_path, tmp, rel, self.ctx.visible, None, True, None)
                return mount_cls(tmp, target, read_only=not m.get("rw", False))
            dst = os.path.join(tmp, "file")
            _copy_entry(src_path, dst, st, None, None)
            return mount_cls(dst, target, read_only=not m.get("rw", False))
        dep = self._stage_ref(ref, len(self.df.stages))
        if dep is not None and dep.index in self.done:
            src_layers = self.done[dep.index].layer_dirs(self.store)
        else:
            src_state = StageState(f"from-{ref}")
            self._load_base(src_state, ref, inst)
            src_layers = src_state.layer_dirs(self.store)
        real = _resolve_in_view(src_layers, source if source.startswith("/") else "/" + source)
        host = _host_path_in_view(src_layers, real)
        if host is None:
            self._fail(inst, f"RUN --mount: {source} does not exist in {ref}")
        st = os.lstat(host)
        if stat.S_ISDIR(st.st_mode):
            self._copy_view_tree(src_layers, real, tmp, None, None, None, True, None)
            return mount_cls(tmp, target, read_only=not m.get("rw", False))
        dst = os.path.join(tmp, "file")
        _copy_entry(host, dst, st, None, None)
        return mount_cls(dst, target, read_only=not m.get("rw", False))

    def _pump_output(self, fd: int, stage: str, n: int) -> None:
        buf = b""
        step = self.step_no
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self.emit({"type": "output", "id": step, "stage": stage, "n": n,
                           "line": line.decode("utf-8", "replace")})
        if buf:
            self.emit({"type": "output", "id": step, "stage": stage, "n": n, "line": buf.decode("utf-8", "replace")})

    # ---- COPY and ADD -------------------------------------------------------------

    def _copy(self, state: StageState, inst, expand, shell: list, t0: float, stage: str, n: int) -> None:
        kw = inst.keyword
        for flag in ("parents", "exclude", "keep-git-dir"):
            if inst.flags.get(flag):
                self._fail(inst, f"{kw} --{flag} is not supported by this builder")
        args = [expand(a) for a in inst.args] if not inst.heredocs else list(inst.args)
        dest = args[-1] if not inst.heredocs else expand(args[-1])
        raw_dest = dest
        sources = args[:-1]
        workdir = state.run_config.get("WorkingDir") or "/"
        dest_dir_form = dest.endswith("/") or dest in (".", "") or dest.endswith("/.")
        if not dest.startswith("/"):
            dest = os.path.join(workdir, dest)
        dest = "/" + os.path.normpath(dest).lstrip("/") if dest not in ("/",) else "/"
        chown = expand(inst.flags["chown"]) if "chown" in inst.flags else None
        chmod = None
        if "chmod" in inst.flags:
            try:
                chmod = int(inst.flags["chmod"], 8)
            except ValueError:
                self._fail(inst, f"invalid --chmod {inst.flags['chmod']!r}: an octal mode is expected")
            if not 0 <= chmod <= 0o7777:
                self._fail(inst, f"invalid --chmod {inst.flags['chmod']!r}")
        layers = state.layer_dirs(self.store)
        heredocs = {h.name: h for h in inst.heredocs}

        # where the sources come from: the context, a stage or an image
        owner_keep, src_layers = False, None
        if kw == "COPY" and "from" in inst.flags:
            ref = inst.flags["from"]
            dep = self._stage_ref(ref, len(self.df.stages))
            if dep is not None and dep.index in self.done:
                src_state = self.done[dep.index]
            else:
                src_state = StageState(f"from-{ref}")
                self._load_base(src_state, ref, inst)
            src_layers = src_state.layer_dirs(self.store)
            owner_keep = chown is None

        items = []     # (kind, where, name, hash): kind context|view|heredoc|download
        downloads = self.scratch    # temporary directories of ADD <url>, removed when the build ends
        hashes = []
        for src in sources:
            if src in [f"<<{h}" for h in heredocs] or src.lstrip("<-").strip("'\"") in heredocs and src.startswith("<<"):
                h = heredocs[src.lstrip("<-").strip("'\"")]
                content = h.content if not h.expand else self._expand_heredoc(h.content, state, inst)
                items.append(("heredoc", content, h.name, None))
                hashes.append("file:" + hashlib.sha256(content.encode()).hexdigest())
                continue
            if kw == "ADD" and src.startswith(("http://", "https://")):
                path = self._download(src, inst, downloads)
                name = os.path.basename(path)
                items.append(("download", path, name, None))
                hashes.append("file:" + file_sum(path, name, os.lstat(path), (0, 0), image=True))
                continue
            if kw == "ADD" and (src.startswith("git@") or src.endswith(".git")):
                self._fail(inst, f"ADD from git ({src}) is not supported by this builder; clone it into the context")
            if src_layers is not None:
                matches = self._view_sources(src_layers, src, inst)
                for real, name in matches:
                    h = _view_hash(src_layers, real)
                    items.append(("view", real, name, h))
                    hashes.append(h)
                continue
            try:
                matches = self.ctx.glob(src) if has_wildcards(src) else [self.ctx.resolve(src)]
            except ContextError as e:
                self._fail(inst, f"{kw} failed: {e}")
            if not matches:
                self._fail(inst, f"{kw} failed: no source files were specified" if not src else
                           f"{kw} failed: no files match {src!r} in the build context")
            for rel in matches:
                h = self.ctx.hash_of(rel)
                # a file keeps the name it was given (a symlink's, not its target's)
                name = os.path.basename(rel) if has_wildcards(src) else (
                    os.path.basename(os.path.normpath(src)) or os.path.basename(rel))
                items.append(("context", rel, name, h))
                hashes.append(h)
        if len(items) > 1 and not raw_dest.endswith("/"):
            self._fail(inst, f"When using {kw} with more than one source file, the destination must be a "
                             "directory and end with a /")
        chown_text = f"--chown={chown}" if chown else ""
        comment = f"{kw} {chown_text}{multi_hash(hashes)} in {raw_dest} "
        probe_cmd = shell + ["#(nop) " + comment]
        if chmod is not None:
            probe_cmd = probe_cmd + [f"--chmod={chmod:o}"]
        owner = (0, 0)
        if chown:
            owner = _chown_ids(chown, layers, lambda m: self._fail(inst, m))

        def fill(staging):
            for kind, where, name, _ in items:
                self._place(kind, where, name, staging, layers, dest, dest_dir_form, owner, owner_keep, chmod,
                            kw == "ADD", src_layers, inst)

        hit = self.commit(state, fill, comment, probe=probe_cmd)
        self._done(state, stage, n, t0, cached=hit)

    def _download(self, url: str, inst, downloads: list) -> str:
        """ADD <url>: the file, fetched (http or https, 60 s without data ends
        it, never more than the store's free space), named after the URL's
        last path element, mode 0600 and the server's Last-Modified time, as
        docker does. --checksum=sha256:... is checked when given."""
        import email.utils
        import urllib.error
        import urllib.parse
        import urllib.request

        tmp = tempfile.mkdtemp(dir=self.store.tmp_dir, prefix="add-url-")
        downloads.append(tmp)
        name = os.path.basename(urllib.parse.urlsplit(url).path.rstrip("/")) or "__unnamed__"
        path = os.path.join(tmp, name)
        free = os.statvfs(tmp)
        limit = free.f_bavail * free.f_frsize
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(path, "wb") as out:
                size = 0
                while True:
                    chunk = resp.read(1 << 20)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > limit:
                        self._fail(inst, f"ADD {url}: larger than the free space of the store")
                    digest.update(chunk)
                    out.write(chunk)
                modified = resp.headers.get("Last-Modified")
        except (urllib.error.URLError, OSError, ValueError) as e:
            self._fail(inst, f"ADD failed: cannot download {url}: {getattr(e, 'reason', e)}")
        want = inst.flags.get("checksum")
        if want and want != "sha256:" + digest.hexdigest():
            self._fail(inst, f"ADD {url}: checksum mismatch: expected {want}, got sha256:{digest.hexdigest()}")
        os.chmod(path, 0o600)
        if modified:
            try:
                t = email.utils.parsedate_to_datetime(modified).timestamp()
                os.utime(path, (t, t))
            except (TypeError, ValueError):
                pass
        return path

    def _expand_heredoc(self, content: str, state: StageState, inst) -> str:
        env = self._word_env(state)
        out = []
        for line in content.split("\n"):
            try:
                out.append(_expand_heredoc_line(line, env))
            except ExpansionError as e:
                self._fail(inst, str(e))
        return "\n".join(out)

    def _view_sources(self, layers, src: str, inst) -> list:
        """(real path in the view, name) for a COPY --from source (wildcards per element)."""
        if not has_wildcards(src):
            real = _resolve_in_view(layers, src if src.startswith("/") else "/" + src)
            if _lstat_in_view(layers, real) is None:
                self._fail(inst, f"COPY failed: stat {src}: file does not exist")
            return [(real, os.path.basename(os.path.normpath(src)) or "")]
        found = ["/"]
        for part in [p for p in src.split("/") if p]:
            nxt = []
            for base in found:
                for name in sorted(_list_view(layers, base)):
                    if fnmatch.fnmatchcase(name, part):
                        nxt.append(os.path.join(base, name))
            found = nxt
        if not found:
            self._fail(inst, f"COPY failed: no source files were specified (no match for {src!r})")
        return [(p, os.path.basename(p)) for p in found]

    def _place(self, kind, where, name, staging, layers, dest, dest_dir_form, owner, owner_keep, chmod,
               is_add, src_layers, inst) -> None:
        if kind == "heredoc":
            target = os.path.join(dest, name) if dest_dir_form else dest
            target = _resolve_in_view(layers, target, last=False)
            parent = _ensure_dirs(layers, staging, os.path.dirname(target), owner)
            p = os.path.join(parent, os.path.basename(target))
            _remove_any(p)
            with open(p, "w", encoding="utf-8") as f:
                f.write(where)
            os.chmod(p, chmod if chmod is not None else 0o644)
            os.lchown(p, *owner)
            return
        if kind == "context":
            src_path = os.path.join(self.ctx.root, where) if where else self.ctx.root
            visible = self.ctx.visible
        elif kind == "download":
            src_path, visible = where, None
        else:
            src_path = _host_path_in_view(src_layers, where)
            visible = None
        st = os.lstat(src_path) if src_path else None
        if st is None:
            self._fail(inst, f"COPY failed: {where} does not exist")
        if stat.S_ISDIR(st.st_mode):
            target = _resolve_in_view(layers, dest)
            existed = _lstat_in_view(layers, target) is not None
            top = _ensure_dirs(layers, staging, target, owner)
            if not existed:
                os.chmod(top, 0o755 if chmod is None else chmod)
            if kind == "context":
                self._copy_tree(src_path, top, where, visible, owner, owner_keep, chmod)
            else:
                self._copy_view_tree(src_layers, where, top, layers, target, owner, owner_keep, chmod)
            return
        if is_add and kind == "context" and stat.S_ISREG(st.st_mode) and _archive_kind(src_path):
            target = _resolve_in_view(layers, dest)
            top = _ensure_dirs(layers, staging, target, (0, 0))
            self._extract(src_path, top, inst)
            return
        if dest_dir_form or _is_dir_in_view(layers, dest):
            target = os.path.join(dest, name)
        else:
            target = dest
        target = _resolve_in_view(layers, target, last=False)
        parent = _ensure_dirs(layers, staging, os.path.dirname(target), owner)
        p = os.path.join(parent, os.path.basename(target))
        _copy_entry(src_path, p, st, None if owner_keep else owner, chmod)

    def _copy_tree(self, src_root, dst_root, rel_root, visible, owner, owner_keep, chmod) -> None:
        for dirpath, dirnames, filenames in os.walk(src_root):
            rel_dir = os.path.relpath(dirpath, src_root)
            out_dir = dst_root if rel_dir == "." else os.path.join(dst_root, rel_dir)
            ctx_dir = rel_root if rel_dir == "." else (f"{rel_root}/{rel_dir}" if rel_root else rel_dir)
            keep_dirs = []
            for d in sorted(dirnames):
                crel = f"{ctx_dir}/{d}" if ctx_dir else d
                p = os.path.join(dirpath, d)
                if os.path.islink(p):
                    filenames.append(d)
                    continue
                if visible is not None and not visible(crel):
                    if visible(crel, walking=True):
                        keep_dirs.append(d)   # an exception may bring something under it back
                    continue
                keep_dirs.append(d)
                _copy_entry(p, os.path.join(out_dir, d), os.lstat(p), None if owner_keep else owner, chmod)
            dirnames[:] = keep_dirs
            for f in sorted(filenames):
                crel = f"{ctx_dir}/{f}" if ctx_dir else f
                if visible is not None and not visible(crel):
                    continue
                p = os.path.join(dirpath, f)
                q = os.path.join(out_dir, f)
                os.makedirs(out_dir, exist_ok=True)
                _copy_entry(p, q, os.lstat(p), None if owner_keep else owner, chmod)
        _fix_dir_times(src_root, dst_root)

    def _copy_view_tree(self, src_layers, src_path, dst_root, layers, target, owner, owner_keep, chmod) -> None:
        todo = [("", src_path)]
        while todo:
            rel, view_path = todo.pop()
            for name in sorted(_list_view(src_layers, view_path)):
                vp = view_path.rstrip("/") + "/" + name
                hp = _host_path_in_view(src_layers, vp)
                st = os.lstat(hp)
                out = os.path.join(dst_root, rel, name)
                _copy_entry(hp, out, st, None if owner_keep else owner, chmod)
                if stat.S_ISDIR(st.st_mode):
                    todo.append((os.path.join(rel, name), vp))

    def _extract(self, archive: str, dest: str, inst) -> None:
        tmp = tempfile.mkdtemp(dir=self.store.tmp_dir, prefix="add-")
        try:
            kind = _archive_kind(archive)
            opener = {"bzip2": bz2.open, "xz": lzma.open}.get(kind, open)
            with opener(archive, "rb") as f:
                try:
                    res = unpack_layer(f, tmp)
                except (LayerError, ValueError, OSError, EOFError, lzma.LZMAError) as e:
                    self._fail(inst, f"ADD failed: cannot extract {os.path.basename(archive)}: {e}")
            rootless.chown_tree(tmp, res.owners)
            _merge_move(tmp, dest)
        finally:
            rootless.remove_tree(tmp, ignore_errors=True)


# ---- file helpers ----------------------------------------------------------------------


def _has_entries(d: str) -> bool:
    with os.scandir(d) as it:
        return any(True for _ in it)


def _remove_any(p: str) -> None:
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(p)
    else:
        os.unlink(p)


def _copy_entry(src: str, dst: str, st, owner, chmod) -> None:
    """One file, directory (itself only), symlink or node, with its mode,
    times and (owner None) its own owner, else the given one."""
    mode = st.st_mode
    uid, gid = (st.st_uid, st.st_gid) if owner is None else owner
    if stat.S_ISREG(mode):
        _copy_file(src, dst, st, uid, gid, chmod if chmod is not None else stat.S_IMODE(mode))
        return
    if stat.S_ISDIR(mode):
        try:
            dst_st = os.lstat(dst)
            if not stat.S_ISDIR(dst_st.st_mode):
                os.unlink(dst)
                os.mkdir(dst)
        except FileNotFoundError:
            os.mkdir(dst)
    else:
        _remove_any(dst)
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(dst)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            os.mknod(dst, mode, st.st_rdev)
        else:
            return  # sockets are not copied
    os.lchown(dst, uid, gid)
    if not stat.S_ISLNK(mode):
        os.chmod(dst, chmod if chmod is not None else stat.S_IMODE(mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _copy_file(src: str, dst: str, st, uid: int, gid: int, mode: int) -> None:
    """A regular file, on descriptors (a COPY of thousands of files is
    mostly this: one open each side, an in-kernel copy, three f-calls)."""
    try:
        out = os.open(dst, _CREATE, 0o600)
    except FileExistsError:
        _remove_any(dst)
        out = os.open(dst, _CREATE, 0o600)
    try:
        size = st.st_size
        if size:
            fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
            try:
                done = 0
                while done < size:
                    try:
                        n = os.copy_file_range(fd, out, size - done)
                    except OSError:
                        n = 0
                    if n == 0:   # no in-kernel copy here (or the file shrank): read and write
                        os.lseek(fd, done, os.SEEK_SET)
                        os.lseek(out, done, os.SEEK_SET)
                        while True:
                            chunk = os.read(fd, 1 << 20)
                            if not chunk:
                                break
                            os.write(out, chunk)
                        break
                    done += n
            finally:
                os.close(fd)
        os.fchown(out, uid, gid)
        os.fchmod(out, mode)
        os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        os.close(out)


def _fix_dir_times(src_root, dst_root) -> None:
    for dirpath, _dirnames, _files in os.walk(src_root):
        rel = os.path.relpath(dirpath, src_root)
        out = dst_root if rel == "." else os.path.join(dst_root, rel)
        if rel != "." and os.path.isdir(out) and not os.path.islink(out):
            st = os.lstat(dirpath)
            os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))


def _merge_move(src: str, dst: str) -> None:
    for name in os.listdir(src):
        s, d = os.path.join(src, name), os.path.join(dst, name)
        s_st = os.lstat(s)
        try:
            d_st = os.lstat(d)
        except FileNotFoundError:
            d_st = None
        if d_st is not None and stat.S_ISDIR(s_st.st_mode) and stat.S_ISDIR(d_st.st_mode):
            _merge_move(s, d)
            os.chmod(d, stat.S_IMODE(s_st.st_mode))
            os.lchown(d, s_st.st_uid, s_st.st_gid)
            continue
        if d_st is not None:
            _remove_any(d)
        os.rename(s, d)


def _archive_kind(path: str) -> str | None:
    """What docker's ADD extracts: a tar, plain or gzip/bzip2/xz compressed."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def _expand_heredoc_line(line: str, env: dict) -> str:
    """A heredoc line with $v and ${v...} expanded; quotes are text here."""
    out, i = [], 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line) and line[i + 1] in "$\\":
            out.append(line[i + 1])
            i += 2
        elif ch == "$":
            value, i = dfmod._dollar(line, i + 1, env, "\\")
            out.append(value)
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _heredoc_script(inst, fail) -> str:
    """BuildKit's RUN with heredocs: a lone heredoc is the script the shell
    runs; anything more is handed to the shell with the bodies appended."""
    line = inst.args[0] if inst.args else ""
    if not inst.heredocs:
        return line
    words = line.split()
    if len(inst.heredocs) == 1 and len(words) == 1 and words[0].lstrip("<-").strip("'\"") == inst.heredocs[0].name:
        return inst.heredocs[0].content
    full = line
    for h in inst.heredocs:
        full += "\n" + h.content + h.name
    return full


# ---- the image's files, seen as a container sees them (layers top first) --------------


def _lstat_in_view(layers, path: str):
    """lstat of path (its parents resolved in the view) or None."""
    parent, name = os.path.split(path.rstrip("/") or "/")
    if not name:
        return os.lstat(layers[0]) if layers else None
    for d in merged_dir(layers, parent) if layers else []:
        try:
            st = os.lstat(os.path.join(d, name))
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return None
        return st
    return None


def _host_path_in_view(layers, path: str) -> str | None:
    parent, name = os.path.split(path.rstrip("/") or "/")
    if not name:
        return layers[0]
    for d in merged_dir(layers, parent):
        p = os.path.join(d, name)
        try:
            st = os.lstat(p)
        except (FileNotFoundError, NotADirectoryError):
            continue
        return None if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 else p
    return None


def _is_dir_in_view(layers, path: str) -> bool:
    return bool(layers) and bool(merged_dir(layers, path))


def _list_view(layers, path: str) -> set:
    names, hidden = set(), set()
    for d in merged_dir(layers, path):
        try:
            entries = os.listdir(d)
        except OSError:
            continue
        for name in entries:
            if name in names or name in hidden:
                continue
            st = os.lstat(os.path.join(d, name))
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                hidden.add(name)
            else:
                names.add(name)
    return names


def _resolve_in_view(layers, path: str, last: bool = True) -> str:
    """path with symlinks followed inside the view (never above its root);
    with last=False the final component is kept as it is."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    keep = parts.pop() if (not last and parts) else None
    done: list = []
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            if done:
                done.pop()
            continue
        cur = "/" + "/".join(done + [name])
        st = _lstat_in_view(layers, cur) if layers else None
        if st is not None and stat.S_ISLNK(st.st_mode) and hops < 40:
            hops += 1
            target = os.readlink(_host_path_in_view(layers, cur))
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(name)
    if keep is not None:
        done.append(keep)
    return "/" + "/".join(done)


def _ensure_dirs(layers, staging: str, path: str, owner) -> str:
    """staging/path as a directory: parents the image has are recreated with
    the image's metadata (the layer must not change them), new ones are 0755
    and owned by owner. Returns the host path."""
    cur_view = ""
    cur = staging
    for name in [p for p in path.split("/") if p]:
        cur_view += "/" + name
        cur = os.path.join(cur, name)
        try:
            st = os.lstat(cur)
            if stat.S_ISDIR(st.st_mode):
                continue
            os.unlink(cur)
        except FileNotFoundError:
            pass
        lower = _lstat_in_view(layers, cur_view) if layers else None
        os.mkdir(cur)
        if lower is not None and stat.S_ISDIR(lower.st_mode):
            os.lchown(cur, lower.st_uid, lower.st_gid)
            os.chmod(cur, stat.S_IMODE(lower.st_mode))
            os.utime(cur, ns=(lower.st_atime_ns, lower.st_mtime_ns))
        else:
            os.lchown(cur, *owner)
            os.chmod(cur, 0o755)
    return cur


def _view_hash(layers, path: str) -> str:
    """docker's hash of a COPY --from source: its files with their own owners."""
    host = _host_path_in_view(layers, path)
    st = os.lstat(host)
    if not stat.S_ISDIR(st.st_mode):
        return "file:" + file_sum(host, path.lstrip("/"), st, image=True)
    sums = [file_sum(host, path.strip("/") + "/", st, image=True)] if path.strip("/") else []
    todo = [path]
    while todo:
        vp = todo.pop()
        for name in _list_view(layers, vp):
            p = vp.rstrip("/") + "/" + name
            hp = _host_path_in_view(layers, p)
            s = os.lstat(hp)
            sums.append(file_sum(hp, p.lstrip("/"), s, image=True))
            if stat.S_ISDIR(s.st_mode):
                todo.append(p)
    sums.sort()
    return "dir:" + hashlib.sha256(",".join(sums).encode()).hexdigest()


def _parse_mount(spec: str, fail) -> dict:
    """One RUN --mount=... (BuildKit's CSV of key=value) as a dict with
    type and target always set."""
    m: dict = {"type": "bind"}
    for field in spec.split(","):
        k, sep, v = field.strip().partition("=")
        k = k.lower()
        if k in ("ro", "readonly", "rw", "required"):
            value = (v.lower() in ("true", "1", "")) if sep else True
            if k == "rw":
                m["rw"] = value
            elif k == "required":
                m["required"] = value
            else:
                m["readonly"] = value
            continue
        if not sep:
            fail(f"RUN --mount: invalid field {field!r} (KEY=VALUE expected)")
        k = {"dst": "target", "destination": "target", "src": "source"}.get(k, k)
        if k not in ("type", "target", "source", "from", "id", "sharing", "mode", "uid", "gid", "size"):
            fail(f"RUN --mount: unknown key {k!r}")
        m[k] = v
    if m["type"] not in ("bind", "cache", "tmpfs", "secret"):
        fail(f"RUN --mount: unsupported type {m['type']!r} (bind, cache, tmpfs or secret)")
    if m["type"] == "secret":
        m.setdefault("id", os.path.basename(m.get("target", "")) or None)
        if not m["id"]:
            fail("RUN --mount=type=secret needs an id")
        m.setdefault("target", f"/run/secrets/{m['id']}")
    if not m.get("target", "").startswith("/"):
        fail(f"RUN --mount: target must be an absolute path, not {m.get('target', '')!r}")
    if m.get("sharing", "shared") not in ("shared", "private", "locked"):
        fail(f"RUN --mount: sharing must be shared, private or locked, not {m['sharing']!r}")
    for key in ("mode",):
        if key in m:
            try:
                int(m[key], 8)
            except ValueError:
                fail(f"RUN --mount: {key}={m[key]!r} is not an octal mode")
    for key in ("uid", "gid"):
        if key in m and not m[key].isdigit():
            fail(f"RUN --mount: {key}={m[key]!r} is not a number")
    return m


def _new_paths(layers, targets) -> list:
    """The mount targets (and their parents) the image does not have: the
    launcher makes them, the step's layer must not keep them."""
    out = []
    for t in targets:
        cur = ""
        for part in [p for p in t.split("/") if p]:
            cur += "/" + part
            if cur not in out and _lstat_in_view(layers, cur) is None:
                out.append(cur)
    return out


def _clean_mount_stubs(upper: str, stubs: list, etc_before) -> None:
    """Removes what the launcher made as mount points in a RUN's writable
    layer (docker keeps those in its init layer, outside the image)."""
    for rel in sorted(stubs, key=lambda s: -s.count("/")):
        p = os.path.join(upper, rel)
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode) and not os.listdir(p):
            os.rmdir(p)
        elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
            os.unlink(p)
    etc = os.path.join(upper, "etc")
    try:
        st = os.lstat(etc)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode) or os.listdir(etc):
        return
    for name in os.listxattr(etc, follow_symlinks=False):
        if name.endswith("overlay.opaque"):
            return
    if etc_before is None or (stat.S_ISDIR(etc_before.st_mode) and etc_before.st_mode == st.st_mode
                              and (etc_before.st_uid, etc_before.st_gid) == (st.st_uid, st.st_gid)):
        os.rmdir(etc)


def _chown_ids(spec: str, layers, fail) -> tuple:
    """docker's --chown: user[:group], names from the image's files; a
    missing group part means the group of the same name (or number)."""
    user, _, group = spec.partition(":")
    group = group or user
    if user.isdigit():
        uid = int(user)
    else:
        try:
            uid = resolve_user(user, layers).uid if layers else fail(f"unable to find user {user}")
        except ConfigError:
            fail(f"unable to convert uid/gid chown string to host mapping: can't find uid for user {user}")
    if group.isdigit():
        gid = int(group)
    else:
        data = read_in_layers(layers, "/etc/group") if layers else None
        gid = None
        for line in (data or b"").decode("utf-8", "replace").splitlines():
            f = line.split(":")
            if len(f) >= 3 and f[0] == group and f[2].isdigit():
                gid = int(f[2])
                break
        if gid is None:
            fail(f"unable to convert uid/gid chown string to host mapping: can't find gid for group {group}")
    return uid, gid


# ---- docker's small formats -------------------------------------------------------------


def _port_specs(p: str, fail) -> list:
    port, _, proto = p.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        fail(f"invalid proto: {proto}")
    lo, _, hi = port.partition("-")
    if not lo.isdigit() or (hi and not hi.isdigit()):
        fail(f"invalid containerPort: {port}")
    a, b = int(lo), int(hi or lo)
    if a > 65535 or b > 65535 or b < a:
        fail(f"invalid port range: {port}")
    return [f"{x}/{proto}" for x in range(a, b + 1)]


def _check_signal(sig: str, fail) -> None:
    import signal as sigmod

    s = sig.upper().removeprefix("SIG")
    if sig.isdigit():
        if not 0 < int(sig) < 65:
            fail(f"Invalid signal: {sig}")
        return
    if not hasattr(sigmod, "SIG" + s) and not s.startswith("RTMIN") and not s.startswith("RTMAX"):
        fail(f"Invalid signal: {sig}")


def _health_text(hc: dict) -> str:
    """What Go's %q prints for docker's *HealthConfig (the classic builder's history text)."""
    fmt = dfmod.format_duration
    return ("&{" + dfmod.go_quote_list(hc["Test"]) + " " + dfmod.go_quote(fmt(hc.get("Interval", 0))) + " "
            + dfmod.go_quote(fmt(hc.get("Timeout", 0))) + " " + dfmod.go_quote(fmt(hc.get("StartPeriod", 0))) + " "
            + dfmod.go_quote_rune(hc.get("Retries", 0)) + "}")


# ---- the entry point -----------------------------------------------------------------


def build(store: ImageStore, context, *, dockerfile: str = "Dockerfile", dockerfile_text=None,
          opts: BuildOptions | None = None, progress=None) -> str:
    """Builds the Dockerfile in context (a directory, a tar path or a binary
    file object); returns the image id. dockerfile_text (str or bytes) stands
    in for the file (docker's `-f -`)."""
    opts = opts or BuildOptions()
    for t in opts.tags:
        r = refmod.parse(t)
        if r.digest:
            raise ConfigError(f"invalid tag {t!r}: a tag cannot have a digest")
    # Held for the whole build: the staging directories live in the store's
    # tmp/, which a writer finding the store idle would clear.
    with store.writing():
        return _build_held(store, context, dockerfile, dockerfile_text, opts, progress)


def _build_held(store, context, dockerfile, dockerfile_text, opts, progress) -> str:
    ctx = BuildContext.open(context, str(store.tmp_dir))
    try:
        df_path = None
        if dockerfile_text is None:
            df_path = dockerfile if os.path.isabs(dockerfile) else os.path.join(ctx.root, dockerfile)
            try:
                with open(df_path, "rb") as f:
                    dockerfile_text = f.read()
            except (FileNotFoundError, NotADirectoryError):
                raise ConfigError(f"unable to prepare context: the Dockerfile {dockerfile!r} was not found "
                                  f"(looked at {df_path})") from None
            except IsADirectoryError:
                raise ConfigError(f"the Dockerfile {dockerfile!r} is a directory") from None
        ctx.load_ignore(df_path)
        df = dfmod.parse(dockerfile_text, os.path.basename(dockerfile) if dockerfile != "-" else "Dockerfile")
        return Builder(store, ctx, df, opts, progress).run()
    finally:
        ctx.close()


def prune_cache(store: ImageStore) -> tuple[int, int]:
    """pycontain builder prune: forgets every cached step and removes the
    images only the cache kept. Returns (steps forgotten, images removed)."""
    cache = BuildCache(store.root)
    try:
        ids = cache.image_ids()
        n = cache.clear()
    finally:
        cache.close()
    # the holds a killed build could not release (a running build's go too:
    # its step images may then be pruned under it, as docker's would)
    with store.transaction() as db:
        db.execute("DELETE FROM holds WHERE holder LIKE 'build-%'")
    removed = 0
    named = {i.id for i in store.images() if i.names}
    for image_id in ids:
        if image_id in named:
            continue
        try:
            store.remove(image_id)
            removed += 1
        except (ImageNotFound, ContainerError):
            pass
    return n, removed


__all__ = ["build", "BuildOptions", "BuildError", "BuildCache", "prune_cache"]
