"""A caller shaped like containerd's shim: a child subreaper that runs
`RUNTIME create` and `RUNTIME start`, then reaps the container's process
itself (the pid from --pid-file) and prints what it saw as JSON.

    subreaper.py RUNTIME ROOT BUNDLE ID OUTPUT_FILE
"""
import ctypes
import json
import os
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36

runtime, root, bundle, cid, output = sys.argv[1:6]
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
pid_file = os.path.join(os.path.dirname(output), f"{cid}.pid")
seen = {}
# Files, not pipes: the container inherits create's stdio (as with runc), so
# a pipe would not reach EOF before the container ends.
err_path = output + ".create-stderr"
with open(output, "wb") as out, open(err_path, "wb") as err:
    r = subprocess.run([runtime, "--root", root, "create", "--bundle", bundle, "--pid-file", pid_file, cid],
                       stdin=subprocess.DEVNULL, stdout=out, stderr=err)
seen["create"] = [r.returncode, open(err_path).read()]
if r.returncode == 0:
    pid = int(open(pid_file).read())
    seen["pid"] = pid
    seen["state_created"] = json.loads(subprocess.run([runtime, "--root", root, "state", cid],
                                                      capture_output=True, check=True).stdout)
    r = subprocess.run([runtime, "--root", root, "start", cid], capture_output=True)
    seen["start"] = [r.returncode, r.stderr.decode()]
    # reap everything that comes to us until the container's own exit
    while True:
        got, status = os.waitpid(-1, 0)
        if got == pid:
            seen["exit"] = os.waitstatus_to_exitcode(status)
            break
    seen["state_after"] = json.loads(subprocess.run([runtime, "--root", root, "state", cid],
                                                    capture_output=True, check=True).stdout)
    r = subprocess.run([runtime, "--root", root, "delete", cid], capture_output=True)
    seen["delete"] = [r.returncode, r.stderr.decode()]
    try:   # the waiting process, if it has not been reaped yet
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
print(json.dumps(seen))
