/* probe: makes one syscall a container should (or should not) be allowed to
 * make, and reports what the kernel said, as one line:
 *     OK            the call succeeded
 *     ERR <errno>   it failed with that errno
 * Built static by the test suite (gcc -static), so it runs in any rootfs.
 * Syscalls are made through syscall(2) with the numbers of this machine, so a
 * libc without a wrapper (keyctl, bpf, kexec_load, clone3) does not matter. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_io_uring_setup  /* the same numbers on every architecture */
#define SYS_io_uring_setup 425
#define SYS_io_uring_enter 426
#define SYS_io_uring_register 427
#endif

static int report(long r)
{
    if (r < 0) {
        printf("ERR %d\n", errno);
        return 1;
    }
    printf("OK\n");
    return 0;
}

static void *thread_main(void *arg) { return arg; }

/* threads and processes the way ordinary programs make them */
static int spawn_things(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0 || pthread_join(t, NULL) != 0) {
        printf("ERR thread\n");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0)
        return report(-1);
    if (pid == 0)
        _exit(7);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 7) {
        printf("ERR wait\n");
        return 1;
    }
    /* clone(2) without namespace flags, as fork does through glibc */
    long r = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (r == 0)
        _exit(0);
    if (r < 0)
        return report(-1);
    waitpid((pid_t)r, &st, 0);
    return report(0);
}

/* shocker: open_by_handle_at turns a file handle into an open file without
 * any path lookup, so a handle for the host's root directory, used on a
 * descriptor of any host file bind-mounted in (/etc/hostname is one), opens
 * the host's root. The handle: the real one of that file when the filesystem
 * gives one, else the classic forged one (inode 2, ext4's root). */
static int shocker(void)
{
    struct file_handle *h = malloc(sizeof(*h) + MAX_HANDLE_SZ);
    int mount_id;
    int mfd = open("/etc/hostname", O_RDONLY);
    if (mfd < 0)
        mfd = open("/", O_RDONLY | O_DIRECTORY);
    h->handle_bytes = MAX_HANDLE_SZ;
    if (syscall(SYS_name_to_handle_at, mfd, "", h, &mount_id, AT_EMPTY_PATH) < 0) {
        uint32_t forged[2] = {2, 0}; /* FILEID_INO32_GEN: inode, generation */
        h->handle_bytes = sizeof forged;
        h->handle_type = 1;
        memcpy(h->f_handle, forged, sizeof forged);
    }
    return report(syscall(SYS_open_by_handle_at, mfd, h, O_RDONLY));
}

static int caps_line(void)
{
    /* what a setuid binary got: its ids and effective capabilities */
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    printf("euid=%d ", (int)geteuid());
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "CapEff:", 7))
            printf("CapEff=%s", line + 8);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: probe WHAT [ARG]\n");
        return 2;
    }
    const char *w = argv[1];
    long arg = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
    setvbuf(stdout, NULL, _IONBF, 0);

    if (!strcmp(w, "keyctl")) /* KEYCTL_GET_KEYRING_ID of the session keyring, create it */
        return report(syscall(SYS_keyctl, 0, -3, 1, 0, 0));
    if (!strcmp(w, "add_key"))
        return report(syscall(SYS_add_key, "user", "pycontain", "x", 1, -3));
    if (!strcmp(w, "bpf")) { /* BPF_MAP_CREATE of a tiny array map */
        uint32_t attr[16] = {2 /* BPF_MAP_TYPE_ARRAY */, 4, 4, 1};
        return report(syscall(SYS_bpf, 0, attr, sizeof attr));
    }
    if (!strcmp(w, "perf_event_open")) { /* software cpu-clock counter on self */
        uint32_t attr[32] = {0};
        attr[0] = 1;            /* PERF_TYPE_SOFTWARE */
        attr[1] = 128;          /* size */
        return report(syscall(SYS_perf_event_open, attr, 0, -1, -1, 0));
    }
    if (!strcmp(w, "io_uring_setup")) { /* one entry, default parameters: an io_uring fd if allowed */
        uint32_t params[30] = {0};      /* struct io_uring_params, 120 bytes */
        return report(syscall(SYS_io_uring_setup, 1, params));
    }
    if (!strcmp(w, "io_uring_enter")) /* no ring: EBADF from the kernel, EPERM from a filter */
        return report(syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0));
    if (!strcmp(w, "io_uring_register"))
        return report(syscall(SYS_io_uring_register, -1, 0, NULL, 0));
    if (!strcmp(w, "kexec_load")) /* no segments: a no-op unload if it were allowed */
        return report(syscall(SYS_kexec_load, 0, 0, NULL, 0));
    if (!strcmp(w, "open_by_handle_at"))
        return shocker();
    if (!strcmp(w, "unshare_user"))
        return report(unshare(CLONE_NEWUSER));
    if (!strcmp(w, "unshare_user_mount")) { /* the classic: own a user ns, then mount */
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
            return report(-1);
        return report(mount("none", "/tmp", "tmpfs", 0, NULL));
    }
    if (!strcmp(w, "unshare_mount"))
        return report(unshare(CLONE_NEWNS));
    if (!strcmp(w, "mount_tmpfs"))
        return report(mount("none", "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(w, "mount_proc"))
        return report(mount("proc", "/tmp", "proc", 0, NULL));
    if (!strcmp(w, "remount_root_rw"))
        return report(mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL));
    if (!strcmp(w, "ptrace_attach"))
        return report(ptrace(PTRACE_ATTACH, (pid_t)arg, NULL, NULL));
    if (!strcmp(w, "kill"))
        return report(kill((pid_t)arg, SIGKILL));
    if (!strcmp(w, "finit_module")) { /* any fd: the call must not get as far as reading it */
        int fd = open("/bin/busybox", O_RDONLY);
        return report(syscall(SYS_finit_module, fd, "", 0));
    }
    if (!strcmp(w, "init_module")) {
        static char image[64];
        return report(syscall(SYS_init_module, image, sizeof image, ""));
    }
    if (!strcmp(w, "delete_module"))
        return report(syscall(SYS_delete_module, "loop", O_NONBLOCK));
    if (!strcmp(w, "mknod_block")) /* /dev/sda's numbers */
        return report(mknod("/tmp/probe-blk", S_IFBLK | 0600, makedev(8, 0)));
    if (!strcmp(w, "mknodat_block"))
        return report(mknodat(AT_FDCWD, "/tmp/probe-blk", S_IFBLK | 0600, makedev(8, 0)));
    if (!strcmp(w, "mknod_mem")) /* /dev/mem: not in docker's device list */
        return report(mknod("/tmp/probe-mem", S_IFCHR | 0600, makedev(1, 1)));
    if (!strcmp(w, "mknod_null"))
        return report(mknod("/tmp/probe-null", S_IFCHR | 0666, makedev(1, 3)));
    if (!strcmp(w, "mknod_fifo"))
        return report(mknod("/tmp/probe-fifo", S_IFIFO | 0600, 0));
    if (!strcmp(w, "clone3")) {
        uint64_t args[11] = {0};
        args[4] = SIGCHLD; /* exit_signal */
        long r = syscall(SYS_clone3, args, sizeof args);
        if (r == 0)
            _exit(0);
        if (r > 0)
            waitpid((pid_t)r, NULL, 0);
        return report(r);
    }
    if (!strcmp(w, "clone_newns")) {
        long r = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
        if (r == 0)
            _exit(0);
        if (r > 0)
            waitpid((pid_t)r, NULL, 0);
        return report(r);
    }
    if (!strcmp(w, "spawn"))
        return spawn_things();
    if (!strcmp(w, "sethostname"))
        return report(sethostname("pycontain-escaped", 17));
    if (!strcmp(w, "setns")) { /* join another mount namespace: our own pid 1's */
        int fd = open("/proc/1/ns/mnt", O_RDONLY);
        return report(syscall(SYS_setns, fd, 0));
    }
    if (!strcmp(w, "chroot"))
        return report(chroot("/tmp"));
    if (!strcmp(w, "socket_vsock"))
        return report(syscall(SYS_socket, 40, 1, 0));
    if (!strcmp(w, "socket_unix"))
        return report(syscall(SYS_socket, 1, 1, 0));
    if (!strcmp(w, "personality_bad")) /* READ_IMPLIES_EXEC: not in the allowed list */
        return report(syscall(SYS_personality, 0x0400000));
    if (!strcmp(w, "personality_query"))
        return report(syscall(SYS_personality, 0xffffffffUL));
    if (!strcmp(w, "mkdir"))
        return report(mkdir("/tmp/probe-dir", 0755));
    if (!strcmp(w, "caps"))
        return caps_line();
    if (!strcmp(w, "open")) /* open(argv[2], O_RDONLY): a device node, say */
        return report(argc > 2 ? open(argv[2], O_RDONLY | O_NONBLOCK) : -1);
    if (!strcmp(w, "pdeathsig")) { /* the parent-death signal the process runs with */
        int sig = -1;
        if (prctl(PR_GET_PDEATHSIG, &sig) < 0)
            return report(-1);
        printf("%d\n", sig);
        return 0;
    }
    fprintf(stderr, "probe: unknown test %s\n", w);
    return 2;
}
