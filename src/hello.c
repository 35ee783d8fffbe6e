/* The built-in hello-world image: a static program, so it runs in a root
 * filesystem that holds nothing else. Built without libc (rawsys.h). */
#include "rawsys.h"

static const char message[] =
"\n"
"Hello from pycontain!\n"
"This message shows that your installation appears to be working correctly.\n"
"\n"
"To generate this message, pycontain took the following steps:\n"
" 1. Python resolved the built-in \"hello-world\" image and wrote a launch plan.\n"
" 2. The C launcher cloned a process into new mount, pid, uts, ipc and network\n"
"    namespaces and mounted a copy-on-write overlay as its root filesystem.\n"
" 3. It mounted /proc, /dev and /sys, masked the sensitive kernel files,\n"
"    called pivot_root, dropped capabilities and set no_new_privs.\n"
" 4. It executed this program as pid 1 of its own pid namespace, which wrote\n"
"    this message to your terminal. No daemon was involved.\n"
"\n"
"To try something more ambitious, run a shell in a busybox container:\n"
" $ pycontain run -it busybox sh\n"
"\n";

int pc_main(int argc, char **argv, char **envp)
{
    (void)argc, (void)argv, (void)envp;
    return rs_write_all(1, message, sizeof(message) - 1) == 0 ? 0 : 1;
}
