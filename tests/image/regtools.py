"""A real registry on loopback for the tests: Debian's docker-registry
(distribution 2.8), without auth, with htpasswd (bcrypt) or with token auth
served by a small RS256 token server; plus OCI layouts built from real
files, copied in with skopeo, and a throttling proxy to kill a pull half way."""
import base64
import datetime
import gzip
import hashlib
import io
import json
import os
import socket
import subprocess
import tarfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REGISTRY_BIN = "/usr/bin/docker-registry"
USER, PASSWORD = "tester", "s3cret-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TokenServer:
    """Issues RS256 JWTs (certificate in the x5c header) for Basic-authenticated users."""

    def __init__(self, workdir):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pycontain-test-token")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = workdir / "token-cert.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()
        self.port = free_port()
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                from urllib.parse import parse_qs, urlsplit
                q = parse_qs(urlsplit(self.path).query)
                authz = self.headers.get("Authorization", "")
                user = None
                if authz.startswith("Basic "):
                    u, _, p = base64.b64decode(authz[6:]).decode().partition(":")
                    if (u, p) != (USER, PASSWORD):
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = u
                server.requests.append((user, q.get("scope", [])))
                access = []
                for scope in q.get("scope", []):
                    typ, name, actions = scope.split(":")
                    # anonymous users may pull "public/" repositories only
                    allowed = actions.split(",") if user else (["pull"] if name.startswith("public/") else [])
                    access.append({"type": typ, "name": name, "actions": [a for a in actions.split(",") if a in allowed]})
                token = server.sign(user or "", q.get("service", [""])[0], access)
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def sign(self, sub, service, access):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def b64(d):
            return base64.urlsafe_b64encode(d).rstrip(b"=").decode()
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]}
        claims = {"iss": "pycontain-test", "sub": sub, "aud": service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64(sig)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Registry:
    """docker-registry serve on 127.0.0.1:<free port>, storage in a temp dir."""

    def __init__(self, workdir, auth=None):
        self.dir = workdir
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.token_server = None
        auth_cfg = ""
        if auth == "htpasswd":
            htp = workdir / "htpasswd"
            subprocess.run(["htpasswd", "-Bbc", str(htp), USER, PASSWORD], check=True, capture_output=True)
            auth_cfg = f"auth:\n  htpasswd:\n    realm: test\n    path: {htp}\n"
        elif auth == "token":
            self.token_server = TokenServer(workdir)
            auth_cfg = ("auth:\n  token:\n"
                        f"    realm: http://127.0.0.1:{self.token_server.port}/token\n"
                        "    service: test-registry\n    issuer: pycontain-test\n"
                        f"    rootcertbundle: {self.token_server.cert_path}\n")
        cfg = workdir / "config.yml"
        cfg.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n" + auth_cfg)
        self.log = open(workdir / "registry.log", "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # 401: up, and wants auth
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("docker-registry did not start: " + (workdir / "registry.log").read_text()) from None
                time.sleep(0.03)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.token_server:
            self.token_server.stop()


# ---- test images ----------------------------------------------------------------

def _tar_gz(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return gzip.compress(buf.getvalue(), mtime=0)


def _ti(name, type=tarfile.REGTYPE, data=None, linkname="", mode=0o644):  # noqa: A002  (TarInfo.type)
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode, ti.mtime = type, linkname, mode, 1700000000
    if data is not None:
        ti.size = len(data)
    return ti, data


def layer_of_dir(src) -> bytes:
    raw = subprocess.run(["tar", "--numeric-owner", "--sort=name", "--mtime=@1700000000", "-c", "-C", str(src), "."],
                         check=True, capture_output=True).stdout
    return gzip.compress(raw, mtime=0)


def changes_layer(arch: str) -> bytes:
    """Deletes /etc/group (a file) and /home/user (a directory), makes /var/opaque
    opaque with new content, adds a hardlink and a per-platform marker."""
    return _tar_gz([
        _ti("etc/", tarfile.DIRTYPE, mode=0o755),
        _ti("etc/.wh.group", data=b""),
        _ti("home/", tarfile.DIRTYPE, mode=0o755),
        _ti("home/.wh.user", data=b""),
        _ti("var/", tarfile.DIRTYPE, mode=0o755),
        _ti("var/opaque/", tarfile.DIRTYPE, mode=0o755),
        _ti("var/opaque/.wh..wh..opq", data=b""),
        _ti("var/opaque/new", data=b"new content\n"),
        _ti("arch", data=arch.encode() + b"\n"),
        _ti("arch-link", tarfile.LNKTYPE, linkname="arch"),
    ])


def base_extra_layer() -> bytes:
    return _tar_gz([
        _ti("var/", tarfile.DIRTYPE, mode=0o755),
        _ti("var/opaque/", tarfile.DIRTYPE, mode=0o755),
        _ti("var/opaque/old", data=b"old content\n"),
    ])


def write_oci_layout(dest, images):
    """An OCI image layout holding one index: images is [(platform_arch, [layer bytes], config_extra)]."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return {"digest": f"sha256:{d}", "size": len(data)}

    manifests = []
    for arch, layers, extra in images:
        diff_ids = ["sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest() for layer in layers]
        cfg = {"architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
               "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], **extra},
               "rootfs": {"type": "layers", "diff_ids": diff_ids},
               "history": [{"created_by": f"layer {i}"} for i in range(len(layers))]}
        cdesc = {"mediaType": "application/vnd.oci.image.config.v1+json", **put(json.dumps(cfg).encode())}
        ldescs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(layer)} for layer in layers]
        man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "config": cdesc, "layers": ldescs}).encode()
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **put(man),
                          "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": manifests}).encode()
    idesc = put(index)
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", **idesc,
                                           "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}))
    return dest


def skopeo(*args, creds=None):
    cmd = ["skopeo", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode:
        raise AssertionError(f"skopeo {' '.join(args)} failed: {r.stderr}")
    return r.stdout


class ThrottlingProxy:
    """TCP proxy to a registry that sends at most `rate` bytes/s back: a pull
    through it is slow enough to be killed half way."""

    def __init__(self, target_port, rate=2 << 20):
        self.port = free_port()
        self.target = target_port
        self.rate = rate
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(c, u, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, self.rate), daemon=True).start()

    def _pipe(self, a, b, rate):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.stopped = True
        self.sock.close()


class HostileRegistry:
    """A "registry" on loopback that answers each repository with its own
    malformed answer: GET /v2/CASE/{manifests,blobs}/REF gets answers[CASE][(kind,
    REF)] (or [(kind, "*")]), raw bytes written as they are, then the connection
    closes. /token/CASE serves the token answers the same way."""

    def __init__(self, answers: dict):
        self.answers = answers
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with c, c.makefile("rb") as f:
            try:
                request = f.readline().decode("latin-1").split()
                while f.readline() not in (b"\r\n", b"\n", b""):
                    pass
                parts = request[1].split("?")[0].strip("/").split("/") if len(request) > 1 else []
                if parts[:1] == ["token"]:
                    answer = self.answers[parts[1]][("token", "*")]
                elif parts[:1] == ["v2"] and len(parts) >= 4:
                    case, kind, ref = parts[1], parts[-2], parts[-1]
                    table = self.answers.get(case, {})
                    answer = table.get((kind, ref), table.get((kind, "*")))
                else:
                    answer = None
                c.sendall(answer if answer is not None else http_answer(404, b'{"errors": []}'))
            except OSError:
                pass

    def stop(self):
        self.sock.close()


def http_answer(status: int, body: bytes = b"", headers: dict | None = None, length: int | None = None) -> bytes:
    """A raw HTTP/1.1 answer; length overrides Content-Length (a truncated body)."""
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body) if length is None else length}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body
