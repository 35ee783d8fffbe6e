"""A client of the OCI distribution API (pull and push) on the standard library.

Auth follows the registry's WWW-Authenticate challenge: anonymous first,
then Basic, or a Bearer token fetched from the realm it names (with the
user's credentials if there are any). Plain HTTP only for loopback and
registries marked insecure (reference.is_insecure). Every blob and manifest
fetched by digest is verified; layers download in parallel with retries
(resuming with a Range request) and are unpacked as soon as they are complete.
"""
from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from ..errors import ConfigError, ContainerError, ImageNotFound
from . import auth as authmod
from . import reference as refmod
from .store import (HashingReader, damaged_blob, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
                    ImageStore, chain_ids, host_platform, sha256_bytes)

MANIFEST_ACCEPT = ", ".join([MEDIA_OCI_MANIFEST, MEDIA_OCI_INDEX, MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_LIST])
INDEX_TYPES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST)
MAX_MANIFEST = 4 << 20
MAX_SMALL_BODY = 16 << 20
RETRIES = 3
PARALLEL = 4
USER_AGENT = "pycontain/0.1"


class RegistryError(ContainerError):
    """The registry refused or failed a request."""


class AuthError(RegistryError):
    """The registry wants credentials we do not have or it refused them."""


def _parse_challenge(header: str) -> tuple[str, dict]:
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


def _http_url(url: str, base: str = "") -> urllib.parse.SplitResult | None:
    """url (relative to base) split, if it is an http or https URL with a
    host (and a numeric port, if any)."""
    try:
        u = urllib.parse.urlsplit(urllib.parse.urljoin(base, url))
        port_ok = u.port is None or u.port >= 0   # a port that is not a number raises here
    except ValueError:
        return None
    return u if port_ok and u.scheme in ("http", "https") and u.hostname else None


class RegistryClient:
    def __init__(self, registry: str, repository: str, *, credentials=None, insecure=(), push=False, timeout=60):
        self.registry = registry
        self.repository = repository
        self.host = "registry-1.docker.io" if registry == refmod.DEFAULT_REGISTRY else registry
        self.secure = not refmod.is_insecure(registry, insecure)
        self.credentials = credentials if credentials is not None else authmod.lookup(registry)
        self.scope = f"repository:{repository}:" + ("pull,push" if push else "pull")
        self.timeout = timeout
        self._auth_header = None
        self._auth_lock = threading.Lock()
        self._local = threading.local()

    # ---- connections ------------------------------------------------------------

    def _conn(self, host=None, secure=None):
        host = host or self.host
        secure = self.secure if secure is None else secure
        key = (host, secure)
        conns = self._local.__dict__.setdefault("conns", {})
        c = conns.get(key)
        if c is None:
            if secure:
                c = http.client.HTTPSConnection(host, timeout=self.timeout, context=ssl.create_default_context())
            else:
                c = http.client.HTTPConnection(host, timeout=self.timeout)
            conns[key] = c
        return c

    def close(self):
        for c in self._local.__dict__.get("conns", {}).values():
            c.close()

    def _send(self, method, url_or_path, headers, body=None, host=None, secure=None):
        """One request on this thread's keep-alive connection (retried once on a stale connection)."""
        for attempt in (0, 1):
            c = self._conn(host, secure)
            try:
                c.request(method, url_or_path, body=body, headers={"User-Agent": USER_AGENT, **headers})
                return c.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest) as e:
                c.close()
                self._local.conns.pop((host or self.host, self.secure if secure is None else secure), None)
                if attempt or (body is not None and not isinstance(body, bytes)):
                    raise RegistryError(f"{self.registry}: {host or self.host} closed the connection: {e}") from None
            except http.client.HTTPException as e:   # a status line or header that is not HTTP
                c.close()
                self._local.conns.pop((host or self.host, self.secure if secure is None else secure), None)
                raise RegistryError(f"{self.registry}: {host or self.host} sent a malformed HTTP answer "
                                    f"({type(e).__name__}: {str(e)[:80]!r})") from None
            except OSError as e:
                c.close()
                self._local.conns.pop((host or self.host, self.secure if secure is None else secure), None)
                raise RegistryError(f"cannot reach registry {self.registry}: {e}") from None

    def request(self, method, path, headers=None, body=None, stream=False, ok=(200,)):
        """A request with auth handled; follows redirects (blob storage).
        Returns the response (body unread when stream) or raises."""
        headers = dict(headers or {})
        for _ in range(3):
            h = dict(headers)
            if self._auth_header:
                h["Authorization"] = self._auth_header
            resp = self._send(method, path, h, body)
            if resp.status == 401:
                challenge = resp.getheader("WWW-Authenticate", "")
                self._read(resp)
                if not self._authenticate(challenge):
                    raise AuthError(f"{self.registry}: authentication required for {self.repository} (use pycontain login {self.registry})")
                if body is not None and not isinstance(body, (bytes, type(None))):
                    raise AuthError(f"{self.registry}: authentication needed mid-upload")
                continue
            if resp.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
                loc = resp.getheader("Location")
                self._read(resp)
                return self._follow(method, loc, headers, stream, ok)
            if resp.status not in ok:
                raise self._error(method, path, resp.status, self._read(resp, 65536))
            if not stream:
                resp.data = self._read_capped(resp)
            return resp
        raise AuthError(f"{self.registry}: authentication failed for {self.repository}")

    def _follow(self, method, loc, headers, stream, ok):
        if not loc:
            raise RegistryError(f"{self.registry}: a redirect without a Location")
        u = _http_url(loc, f"{'https' if self.secure else 'http'}://{self.host}/")
        # Blob storage is reached over HTTP(S) only; any other scheme is refused before connecting.
        if u is None:
            raise RegistryError(f"{self.registry}: refusing a redirect to {loc[:100]!r}: not an http or https URL with a host")
        secure = u.scheme == "https"
        if not secure and not refmod.is_insecure(u.netloc):
            raise RegistryError(f"{self.registry}: refusing a redirect to plain HTTP ({u.netloc})")
        path = u.path + (f"?{u.query}" if u.query else "")
        h = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        resp = self._send(method, path, h, None, host=u.netloc, secure=secure)
        if resp.status not in ok:
            raise self._error(method, loc, resp.status, self._read(resp, 65536))
        if not stream:
            resp.data = self._read_capped(resp)
        return resp

    def _read(self, resp, limit: int | None = None) -> bytes:
        """A body, whole or its first limit bytes; one cut short is a RegistryError."""
        try:
            return resp.read(limit)
        except (http.client.HTTPException, OSError) as e:
            resp.close()
            raise RegistryError(f"{self.registry}: the answer was cut short ({type(e).__name__})") from None

    def _read_capped(self, resp) -> bytes:
        """Manifests, configs and errors are small: a registry sending more is refused."""
        data = self._read(resp, MAX_SMALL_BODY + 1)
        if len(data) > MAX_SMALL_BODY:
            resp.close()
            raise RegistryError(f"{self.registry}: response of more than {MAX_SMALL_BODY} bytes refused")
        return data

    def _error(self, method, path, status, data):
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        errs = body.get("errors") if isinstance(body, dict) else None
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errs if isinstance(e, dict)) \
            if isinstance(errs, list) else ""
        detail = detail or data[:200].decode("utf-8", "replace")
        if status == 404:
            return ImageNotFound(f"{self.registry}/{self.repository}: not found ({detail or path})")
        if status in (401, 403):
            return AuthError(f"{self.registry}/{self.repository}: access denied ({detail})")
        return RegistryError(f"{self.registry}: {method} {path} failed: HTTP {status} {detail}")

    def _authenticate(self, challenge: str) -> bool:
        with self._auth_lock:
            scheme, params = _parse_challenge(challenge)
            if scheme == "basic":
                if not self.credentials or self._auth_header:
                    return False
                user, pw = self.credentials
                self._auth_header = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
                return True
            if scheme == "bearer":
                return self._fetch_token(params)
            return False

    def _fetch_token(self, params) -> bool:
        realm = params.get("realm")
        if not realm:
            return False
        q = {}
        if params.get("scope") or self.scope:
            q["scope"] = params.get("scope") or self.scope
        if params.get("service"):
            q["service"] = params["service"]
        u = _http_url(realm)
        if u is None:
            raise AuthError(f"{self.registry}: refusing the token realm {realm[:100]!r}: not an http or https URL with a host")
        if u.scheme != "https" and not refmod.is_insecure(u.netloc):
            raise AuthError(f"{self.registry}: refusing to fetch a token over plain HTTP from {u.netloc}")
        path = (u.path or "/") + "?" + (u.query + "&" if u.query else "") + urllib.parse.urlencode(q)
        headers = {}
        if self.credentials:
            user, pw = self.credentials
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
        resp = self._send("GET", path, headers, host=u.netloc, secure=u.scheme == "https")
        data = self._read_capped(resp)
        if resp.status != 200:
            raise AuthError(f"{self.registry}: the token server {u.netloc} refused: HTTP {resp.status}")
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self.registry}: the token server gave no token")
        self._auth_header = f"Bearer {token}"
        return True

    # ---- API --------------------------------------------------------------------

    def _path(self, kind, ref):
        return f"/v2/{self.repository}/{kind}/{ref}"

    def get_manifest(self, reference: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index; verified when asked by digest."""
        resp = self.request("GET", self._path("manifests", reference), {"Accept": MANIFEST_ACCEPT})
        data = resp.data
        if len(data) > MAX_MANIFEST:
            raise RegistryError(f"{self.registry}: manifest of {len(data)} bytes refused")
        digest = sha256_bytes(data)
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"{self.registry}: manifest digest mismatch: asked {reference}, got {digest}")
        mtype = (resp.getheader("Content-Type") or "").split(";")[0].strip()
        try:
            body = json.loads(data)
        except ValueError:
            raise RegistryError(f"{self.registry}: the manifest is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("mediaType", ""), str):
            raise RegistryError(f"{self.registry}: the manifest is not a JSON object with a string mediaType")
        mtype = body.get("mediaType") or mtype
        if body.get("schemaVersion") == 1 or "prettyjws" in mtype or mtype.endswith("v1+json") and "docker" in mtype:
            raise RegistryError(f"{self.registry}: Docker schema 1 manifests are not supported")
        if not mtype or mtype == "application/json":
            mtype = MEDIA_OCI_INDEX if "manifests" in body else MEDIA_OCI_MANIFEST
        return data, mtype, digest

    def get_blob_bytes(self, digest: str, limit: int = 16 << 20) -> bytes:
        resp = self.request("GET", self._path("blobs", digest))
        if len(resp.data) > limit or sha256_bytes(resp.data) != digest:
            raise RegistryError(f"{self.registry}: blob {digest} failed verification")
        return resp.data

    def download_blob(self, store: ImageStore, digest: str, size: int, progress=None):
        """Into the store, verified; retries resume where the last attempt stopped."""
        w = store.blob_writer(digest)
        try:
            for attempt in range(RETRIES):
                headers = {"Range": f"bytes={w.size}-"} if w.size else {}
                try:
                    resp = self.request("GET", self._path("blobs", digest), headers, stream=True, ok=(200, 206))
                    if w.size and resp.status == 200:  # no Range support: start again
                        w.abort()
                        w = store.blob_writer(digest)
                    while True:
                        data = resp.read(1 << 20)
                        if not data:
                            break
                        w.write(data)
                        if size and w.size > size:
                            raise RegistryError(f"{self.registry}: blob {digest} is longer than its {size} bytes")
                        if progress:
                            progress(digest, w.size, size)
                    if size and w.size != size:
                        raise RegistryError(f"{self.registry}: blob {digest}: short read: {w.size} of {size} bytes")
                except (RegistryError, OSError, http.client.HTTPException) as e:
                    if isinstance(e, (ImageNotFound, AuthError)) or "longer than" in str(e):
                        raise
                    if attempt == RETRIES - 1:
                        raise e if isinstance(e, RegistryError) else \
                            RegistryError(f"{self.registry}: blob {digest}: {type(e).__name__}: {e}") from None
                    self.close()
                    self._local.conns = {}
                    time.sleep(0.2 * (attempt + 1))
                    continue
                try:
                    return w.commit()
                except ContainerError as e:   # the store's digest check: what came is not the blob asked for
                    raise RegistryError(f"{self.registry}: {e}") from None
        except BaseException:
            w.abort()
            raise

    def blob_exists(self, digest: str) -> bool:
        try:
            self.request("HEAD", self._path("blobs", digest))
            return True
        except ImageNotFound:
            return False

    def upload_blob(self, path, digest: str, size: int):
        resp = self.request("POST", f"/v2/{self.repository}/blobs/uploads/", {"Content-Length": "0"}, b"", ok=(202,))
        loc = resp.getheader("Location")
        try:
            u = urllib.parse.urlsplit(loc or "")
        except ValueError:
            u = None
        if not loc or u is None:
            raise RegistryError(f"{self.registry}: no upload location, or not a URL: {str(loc)[:100]!r}")
        q = urllib.parse.parse_qsl(u.query) + [("digest", digest)]
        target = (u.path or "/") + "?" + urllib.parse.urlencode(q)
        with open(path, "rb") as f:  # streamed: layers can be big (the POST above already authenticated)
            reader = HashingReader(f)    # and verified as it goes: a damaged blob is the store's fault, said so
            try:
                self.request("PUT", target, {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                             reader, ok=(201, 204))
            except RegistryError:
                if reader.f.tell() == size and reader.digest() != digest:
                    raise damaged_blob(digest, "does not match its digest") from None
                raise
            if reader.digest() != digest:
                raise damaged_blob(digest, "does not match its digest")

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        resp = self.request("PUT", self._path("manifests", reference),
                            {"Content-Type": media_type, "Content-Length": str(len(data))}, data, ok=(201, 200))
        return resp.getheader("Docker-Content-Digest") or sha256_bytes(data)


# ---- platform choice -------------------------------------------------------------

    def login(self) -> None:
        """docker login's check: /v2/ answers 200 with these credentials."""
        self.scope = ""
        resp = self._send("GET", "/v2/", {})
        challenge = resp.getheader("WWW-Authenticate", "")
        resp.read()
        if resp.status == 401:
            if not self._authenticate(challenge):
                raise AuthError(f"{self.registry}: login refused")
            resp = self._send("GET", "/v2/", {"Authorization": self._auth_header})
            resp.read()
            if resp.status != 200:
                raise AuthError(f"{self.registry}: login refused (HTTP {resp.status}): wrong user name or password")
        elif resp.status != 200:
            raise AuthError(f"{self.registry}: /v2/ answered HTTP {resp.status}")


def check_login(registry: str, user: str, password: str, insecure=()) -> None:
    """docker login's check alone, nothing saved (the Engine API's /auth:
    the client keeps the credentials). AuthError if they are refused."""
    c = RegistryClient(registry, "", credentials=(user, password), insecure=insecure)
    try:
        c.login()
    finally:
        c.close()


def login(registry: str, user: str, password: str, insecure=()) -> None:
    """Checks the credentials against the registry (like docker login), then
    saves them (auth.py keeps them)."""
    check_login(registry, user, password, insecure)
    authmod.save(registry, user, password)


def parse_platform(platform: str | None) -> tuple[str, str, str | None]:
    if not platform:
        return host_platform()
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ConfigError(f"invalid platform {platform!r}: expected os/arch[/variant], e.g. linux/arm64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def choose_manifest(index: dict, platform: str | None, name: str) -> dict:
    want_os, want_arch, want_variant = parse_platform(platform)
    candidates = []
    for m in index.get("manifests", []):
        p = m.get("platform") or {}
        if p.get("os") != want_os or p.get("architecture") != want_arch:
            continue
        v = p.get("variant")
        if want_variant and v and v != want_variant and platform:
            continue
        candidates.append((0 if v == want_variant else 1, m))
    if not candidates:
        have = ", ".join(
            "/".join(x for x in (m.get("platform", {}).get("os"), m.get("platform", {}).get("architecture"),
                                 m.get("platform", {}).get("variant")) if x)
            for m in index.get("manifests", []))
        raise ImageNotFound(f"{name}: no image for {want_os}/{want_arch} (the index has: {have or 'nothing'})")
    return sorted(candidates, key=lambda c: c[0])[0][1]


# ---- what a registry's JSON must look like before it is used ----------------------
# (a registry is not trusted: a wrong type or a missing field is one line naming it)

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def _checked_digest(registry: str, value, what: str) -> str:
    if not isinstance(value, str) or not DIGEST_RE.fullmatch(value):
        raise RegistryError(f"{registry}: {what} has no valid sha256 digest ({str(value)[:80]!r})")
    return value


def _checked_descriptor(registry: str, desc, what: str) -> dict:
    """{"digest", "size"} of a manifest's config or layer entry, checked."""
    if not isinstance(desc, dict):
        raise RegistryError(f"{registry}: {what} is not a JSON object")
    size = desc.get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RegistryError(f"{registry}: {what} has an invalid size ({str(size)[:40]!r})")
    return {"digest": _checked_digest(registry, desc.get("digest"), what), "size": size}


def _checked_manifest(registry: str, manifest: dict) -> tuple[dict, list]:
    """(config descriptor, layer descriptors) of an image manifest."""
    layers = manifest.get("layers", [])
    if not isinstance(layers, list):
        raise RegistryError(f"{registry}: the manifest's layers are not a list")
    return (_checked_descriptor(registry, manifest.get("config"), "the manifest's config"),
            [_checked_descriptor(registry, d, f"layer {i} of the manifest") for i, d in enumerate(layers)])


def _checked_index(registry: str, index: dict) -> dict:
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise RegistryError(f"{registry}: the index's manifests are not a list")
    for i, m in enumerate(entries):
        if not isinstance(m, dict) or not isinstance(m.get("platform", {}), dict):
            raise RegistryError(f"{registry}: entry {i} of the index is not an object with a platform object")
        _checked_digest(registry, m.get("digest"), f"entry {i} of the index")
    return index


def _checked_config(registry: str, cfg_bytes: bytes) -> list:
    """The diff ids of a config blob, checked with the rest of its shape."""
    try:
        cfg = json.loads(cfg_bytes)
    except ValueError:
        raise RegistryError(f"{registry}: the image config is not JSON") from None
    rootfs = cfg.get("rootfs", {}) if isinstance(cfg, dict) else None
    if not isinstance(rootfs, dict) or not isinstance(cfg.get("config") or {}, dict):
        raise RegistryError(f"{registry}: the image config is not a JSON object with rootfs and config objects")
    diff_ids = rootfs.get("diff_ids", [])
    if not isinstance(diff_ids, list):
        raise RegistryError(f"{registry}: the image config's diff_ids are not a list")
    return [_checked_digest(registry, d, f"diff id {i} of the image config") for i, d in enumerate(diff_ids)]


# ---- pull and push ---------------------------------------------------------------


def pull(store: ImageStore, ref: str, *, progress=None, platform=None, auth=None, insecure=()) -> str:
    """Pulls ref into the store; returns the image id. progress(event: dict)
    gets {"id", "status", "current", "total"} like docker's JSON messages."""
    r = refmod.parse(ref)
    client = RegistryClient(r.registry, r.repository, credentials=auth, insecure=insecure)
    emit = progress or (lambda e: None)
    try:
        data, mtype, digest = client.get_manifest(r.reference)
        if mtype in INDEX_TYPES:
            chosen = choose_manifest(_checked_index(r.registry, json.loads(data)), platform, str(r))
            data, mtype, digest = client.get_manifest(chosen["digest"])
        if mtype not in (MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST):
            raise RegistryError(f"{r.registry}: unsupported manifest type {mtype!r} for {r}")
        config_desc, layers = _checked_manifest(r.registry, json.loads(data))
        with store.writing():
            cfg_digest = config_desc["digest"]
            cfg_bytes = store.read_blob(cfg_digest) if store.has_blob(cfg_digest) else client.get_blob_bytes(cfg_digest)
            diff_ids = _checked_config(r.registry, cfg_bytes)
            store.put_blob(cfg_bytes)
            if len(diff_ids) != len(layers):
                raise RegistryError(f"{r.registry}: the manifest of {r} lists {len(layers)} layers, its config {len(diff_ids)}")
            chains = chain_ids(diff_ids)

            def fetch(i):
                desc = layers[i]
                short = desc["digest"][7:19]
                if store.has_layer(chains[i]) and store.has_blob(desc["digest"]):
                    emit({"id": short, "status": "Already exists"})
                    return
                if not store.has_blob(desc["digest"]):
                    client.download_blob(store, desc["digest"], desc.get("size", 0),
                                         lambda d, cur, tot: emit({"id": short, "status": "Downloading", "current": cur, "total": tot}))
                emit({"id": short, "status": "Extracting"})
                store.ensure_layer(desc["digest"], chains[i - 1] if i else None, diff_ids[i])
                emit({"id": short, "status": "Pull complete"})

            with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
                for fut in [pool.submit(fetch, i) for i in range(len(layers))]:
                    fut.result()
            names = [r.with_tag(r.tag)] if r.tag else []
            names.append(f"{r.name}@{digest}")
            image_id = store.add_image(cfg_bytes, data, names)
        emit({"status": f"Digest: {digest}"})
        return image_id
    finally:
        client.close()


def push(store: ImageStore, ref: str, *, dest=None, progress=None, auth=None, insecure=()) -> str:
    """Pushes a local image to dest (default: its name ref); returns the manifest digest."""
    img = store.lookup(ref)
    d = refmod.parse(dest or ref)
    if d.digest:
        raise ConfigError(f"cannot push to a digest reference: {dest or ref!r}")
    emit = progress or (lambda e: None)
    manifest = store.manifest(img)
    manifest_bytes = store.read_blob(img.manifest_digest)
    mtype = manifest.get("mediaType") or MEDIA_OCI_MANIFEST
    try:
        descriptors = list(manifest.get("layers", [])) + [manifest["config"]]
        for desc in descriptors:
            if not store.blob_path(desc["digest"]).exists():
                raise damaged_blob(desc["digest"], "is missing")
    except (KeyError, TypeError, AttributeError):
        raise damaged_blob(img.manifest_digest, "is not a manifest") from None
    client = RegistryClient(d.registry, d.repository, credentials=auth, insecure=insecure, push=True)
    try:
        for desc in descriptors:
            short = desc["digest"][7:19]
            if client.blob_exists(desc["digest"]):
                emit({"id": short, "status": "Layer already exists"})
                continue
            emit({"id": short, "status": "Pushing", "current": 0, "total": desc.get("size", 0)})
            client.upload_blob(store.blob_path(desc["digest"]), desc["digest"], store.blob_path(desc["digest"]).stat().st_size)
            emit({"id": short, "status": "Pushed"})
        digest = client.put_manifest(d.tag or refmod.DEFAULT_TAG, manifest_bytes, mtype)
        emit({"status": f"{d.tag or refmod.DEFAULT_TAG}: digest: {digest} size: {len(manifest_bytes)}"})
        return digest
    finally:
        client.close()
