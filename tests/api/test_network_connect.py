"""POST /networks/{id}/connect and /disconnect, driven by the docker CLI and
docker-py against `pycontain system service`, in a network namespace of the
test's own (the service, its containers and the clients all in it)."""
import json
import subprocess
import sys

from apitools import DOCKER

from pycontain import containers

CLIENT = r'''
import json, os, subprocess, sys, time
import docker as dockerpy
sock, image, docker_cli = sys.argv[1:4]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
service = subprocess.Popen([sys.executable, "-m", "pycontain", "system", "service", "--socket", "unix://" + sock,
                            "--time", "0"])
env = dict(os.environ, DOCKER_HOST="unix://" + sock, DOCKER_CONFIG=os.path.dirname(sock) + "/cfg")
out = {}

def docker(*args):
    r = subprocess.run([docker_cli, *args], capture_output=True, text=True, timeout=60, env=env)
    return [r.returncode, r.stdout.strip(), r.stderr.strip()]

try:
    while not os.path.exists(sock):
        time.sleep(0.05)
    docker("network", "create", "--subnet", "10.211.1.0/24", "--label", "team=a", "na")
    docker("network", "create", "--subnet", "10.211.2.0/24", "nb")
    out["run1"] = docker("run", "-d", "--name", "s1", "--network", "na", image, "sleep", "300")
    out["run2"] = docker("run", "-d", "--name", "s2", "--network", "nb", image, "sleep", "300")
    out["run3"] = docker("run", "-d", "--name", "s3", "--network", "na", "--network-alias", "db", image, "sleep", "300")
    out["ping_db"] = docker("exec", "s1", "ping", "-c", "1", "-W", "2", "db")
    out["aliases"] = docker("inspect", "-f", "{{json (index .NetworkSettings.Networks \"na\").Aliases}}", "s3")
    out["connect"] = docker("network", "connect", "--alias", "web", "na", "s2")
    out["ip"] = docker("inspect", "-f", "{{(index .NetworkSettings.Networks \"na\").IPAddress}}", "s2")[1]
    out["ping"] = docker("exec", "s1", "ping", "-c", "1", "-W", "2", "web")
    out["again"] = docker("network", "connect", "na", "s2")
    out["none"] = docker("network", "connect", "na", "nosuch")
    out["nonet"] = docker("network", "connect", "nosuchnet", "s2")
    out["ls"] = docker("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", "na")
    out["disconnect"] = docker("network", "disconnect", "na", "s2")
    out["ping_after"] = docker("exec", "s1", "ping", "-c", "1", "-W", "1", out["ip"])
    out["not_connected"] = docker("network", "disconnect", "na", "s2")
    client = dockerpy.DockerClient(base_url="unix://" + sock, timeout=60)
    net = client.networks.get("na")
    net.connect("s2", aliases=["py"], ipv4_address="10.211.1.99")
    s2 = client.containers.get("s2")
    out["py_networks"] = sorted(s2.attrs["NetworkSettings"]["Networks"])
    out["py_ip"] = s2.attrs["NetworkSettings"]["Networks"]["na"]["IPAddress"]
    out["py_ping"] = client.containers.get("s1").exec_run(["ping", "-c", "1", "-W", "2", "py"]).exit_code
    try:
        net.connect("s2")
    except dockerpy.errors.APIError as e:
        out["py_again"] = [e.status_code, e.explanation]
    net.disconnect("s2")
    bad = []
    for body in ("not json", "[1]", '{"Container": 5}', '{"Container": "s2", "Bogus": 1}',
                 '{"Container": "s2", "EndpointConfig": {"Aliases": "x"}}',
                 '{"Container": "s2", "EndpointConfig": {"MacAddress": "02:42:ac:11:00:02"}}',
                 '{"Container": "s2", "EndpointConfig": {"IPAMConfig": {"IPv6Address": "fd00::2"}}}'):
        r = client.api._post(client.api._url("/networks/na/connect"), data=body,
                             headers={"Content-Type": "application/json"})
        bad.append([r.status_code, r.json().get("message", "")])
    r = client.api._post(client.api._url("/networks/na/disconnect"), data='{"Container": "s2", "Force": "yes"}',
                         headers={"Content-Type": "application/json"})
    bad.append([r.status_code, r.json().get("message", "")])
    out["bad_bodies"] = bad
    out["after_bad"] = sorted(client.containers.get("s2").attrs["NetworkSettings"]["Networks"])
    try:
        net.disconnect("s2")
    except dockerpy.errors.APIError as e:
        out["py_not_connected"] = [e.status_code, e.explanation]
    try:   # the docker CLI refuses this itself; the service refuses it too
        api = client.api
        api.create_container(image, "true", host_config=api.create_host_config(network_mode="bridge"),
                             networking_config=api.create_networking_config(
                                 {"bridge": api.create_endpoint_config(aliases=["x"])}))
    except dockerpy.errors.APIError as e:
        out["bad_alias"] = [e.status_code, e.explanation]
    out["py_after"] = sorted(client.containers.get("s2").attrs["NetworkSettings"]["Networks"])
    client.close()
    out["by_label"] = docker("network", "ls", "--filter", "label=team=a", "--format", "{{.Name}}")
    out["labels"] = docker("network", "inspect", "-f", "{{json .Labels}}", "na")
    docker("volume", "create", "--label", "team=a", "va")
    docker("volume", "create", "vb")
    out["volumes_by_label"] = docker("volume", "ls", "--filter", "label=team", "--format", "{{.Name}}")
    docker("volume", "rm", "va", "vb")
    out["rm"] = docker("rm", "-f", "s1", "s2", "s3")
    out["netrm"] = docker("network", "rm", "na", "nb")
finally:
    service.terminate()
    service.wait()
print(json.dumps(out))
'''


def test_connect_and_disconnect_through_the_docker_cli_and_docker_py(tmp_path, api_image):
    (tmp_path / "client.py").write_text(CLIENT)
    r = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", sys.executable,
                        str(tmp_path / "client.py"), str(tmp_path / "s.sock"), api_image, DOCKER],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    for step in ("run1", "run2", "run3", "ping_db", "connect", "ping", "disconnect", "rm", "netrm"):
        assert out[step][0] == 0, (step, out[step])
    assert out["ip"].startswith("10.211.1.")
    # --network-alias (create's NetworkingConfig): a name on its first network; user-defined networks only
    assert "db" in json.loads(out["aliases"][1]), out["aliases"]
    assert out["bad_alias"][0] == 400 and "user-defined networks" in out["bad_alias"][1], out
    assert sorted(out["ls"][1].split()) == ["s1", "s2", "s3"]
    assert out["again"][:1] == [1] and "endpoint with name s2 already exists in network na" in out["again"][2]
    assert out["none"][:1] == [1] and "No such container: nosuch" in out["none"][2].replace("no such", "No such")
    assert out["nonet"][:1] == [1] and "nosuchnet" in out["nonet"][2] and "not found" in out["nonet"][2]
    assert out["ping_after"][0] != 0                     # no route to its old address
    assert out["not_connected"][:1] == [1] and "is not connected to network na" in out["not_connected"][2]
    assert out["py_networks"] == ["na", "nb"] and out["py_ip"] == "10.211.1.99" and out["py_ping"] == 0
    # dockerd's statuses: 403 for already connected, 500 (sic) for not connected
    assert out["py_again"][0] == 403 and "already exists" in out["py_again"][1]
    assert out["py_not_connected"][0] == 500 and "is not connected to network na" in out["py_not_connected"][1]
    assert out["py_after"] == ["nb"]
    # malformed or unsupported bodies: a 400 with a message each, and nothing changed
    assert [status for status, _ in out["bad_bodies"]] == [400] * 8, out["bad_bodies"]
    assert all(message for _, message in out["bad_bodies"]), out["bad_bodies"]
    assert out["after_bad"] == ["nb"]
    # labels on networks, and the label filter on networks and volumes (testcontainers and its reaper use them)
    assert out["by_label"][1] == "na" and out["labels"][1] == '{"team":"a"}', out
    assert out["volumes_by_label"][1] == "va", out
    assert containers.list(all=True) == []
