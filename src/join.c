/* pycontain-join: the join helper. The launcher (pc_join in _nsexec.c)
 * executes it from a sealed memfd to start a process inside a running
 * container (exec): it reads the flat plan, becomes non-dumpable, joins the
 * namespaces, and forks the process that runs the command; from there on it
 * is the launcher's own child code, compiled in here.
 *
 * Why a program of its own: whatever enters the container's pid namespace
 * must share no memory with a host process (the caller, a Python
 * interpreter running as root) and must not have a host binary as its
 * /proc/PID/exe, which a container could otherwise write through
 * (CVE-2016-9962, CVE-2019-5736). A fresh static program has memory of its
 * own, and a sealed memfd is an executable nobody can write.
 *
 * Built like pycontain-init: static, without libc where rawsys.h can.
 */
#define PC_JOIN_HELPER 1
#include "rawsys.h"
#include "_nsexec.c"
