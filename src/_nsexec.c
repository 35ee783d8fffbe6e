/* _nsexec.c: executes a pycontain launch plan after clone.
 *
 * Python decides everything (pycontain/_launch.py) and hands over a flat
 * struct pc_plan (nsexec.h). This file runs it, top to bottom:
 *
 *   pc_spawn            parent: block signals, clone(CLONE_VM [|CLONE_VFORK]) on a fresh stack
 *   child_main          child, in order:
 *     reset signals, pdeathsig, setns joins, [unshare], [wait for parent],
 *     [open the root's device], cgroup join, cgroup namespace, mount tree:
 *     propagation, scratch, root [and wait while the parent serves it], mounts, nodes, symlinks,
 *     pivot_root, masked and read-only paths, read-only root, hostname,
 *     rlimits, oom_score_adj, cwd, [created: wait for start], stdio, fds,
 *     bounding set, groups and ids, capabilities, no_new_privs, seccomp, exec
 *
 * There is no policy here: what to mount, which ids, which capabilities, all
 * come from the plan. The child shares the parent's memory (CLONE_VM: no copy
 * of the Python heap, which makes fork cost grow with it), so it obeys the
 * rules of a vfork child: raw system calls only (glibc wrappers would write
 * errno, the parent thread's), no malloc, no locks, no stdio. Failures are
 * written into the caller's struct pc_error; the parent learns that the child
 * exec'd or died from EOF on close-on-exec descriptors, or from CLONE_VFORK.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>

#include "nsexec.h"
#include "raw_syscall.h"

/* Old kernel headers (manylinux) lack these; the numbers are the same on
 * every architecture since the syscall table was unified at 424. */
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_execveat
#  if defined(__x86_64__)
#    define SYS_execveat 322
#  elif defined(__aarch64__)
#    define SYS_execveat 281
#  endif
#endif
#ifndef SYS_seccomp
#  if defined(__x86_64__)
#    define SYS_seccomp 317
#  elif defined(__aarch64__)
#    define SYS_seccomp 277
#  endif
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef PR_SET_NO_NEW_PRIVS
#define PR_SET_NO_NEW_PRIVS 38
#endif
#ifndef SECCOMP_SET_MODE_FILTER
#define SECCOMP_SET_MODE_FILTER 1
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
#ifndef MS_SLAVE
#define MS_SLAVE (1 << 19)
#endif
#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#endif
#ifndef RESOLVE_IN_ROOT
#define RESOLVE_IN_ROOT 0x10
#endif

struct open_how_compat {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

#define CHILD_STACK_SIZE (256 * 1024)
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- raw system calls: return -errno, never touch errno ---------------- */

static inline long rsys(long n, long a, long b, long c, long d, long e, long f)
{
#ifdef RAW_SYSCALL_NATIVE
    return raw_syscall6(n, a, b, c, d, e, f);
#else
    /* Other architectures: glibc's syscall() writes errno, which the child
     * shares with the parent thread. Harmless in vfork mode (the parent
     * thread is suspended), a small race otherwise. */
    long r = syscall(n, a, b, c, d, e, f);
    return r == -1 ? -errno : r;
#endif
}

#define S0(n) rsys(n, 0, 0, 0, 0, 0, 0)
#define S1(n, a) rsys(n, (long)(a), 0, 0, 0, 0, 0)
#define S2(n, a, b) rsys(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define S3(n, a, b, c) rsys(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define S4(n, a, b, c, d) rsys(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define S5(n, a, b, c, d, e) rsys(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

/* ---- tiny string helpers (no libc formatting in the child) ------------- */

static size_t slen(const char *s)
{
    size_t n = 0;
    while (s && s[n])
        n++;
    return n;
}

/* Appends s to buf (of size cap) at *pos, always NUL-terminated. */
static void sappend(char *buf, size_t cap, size_t *pos, const char *s)
{
    while (s && *s && *pos + 1 < cap)
        buf[(*pos)++] = *s++;
    buf[*pos] = 0;
}

static void sappend_int(char *buf, size_t cap, size_t *pos, long v)
{
    char tmp[24];
    int i = 0;
    unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
    do {
        tmp[i++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[i++] = '-';
    char out[24];
    int j = 0;
    while (i)
        out[j++] = tmp[--i];
    out[j] = 0;
    sappend(buf, cap, pos, out);
}

/* ---- the child's context and failure path ------------------------------ */

struct ctx {
    const struct pc_plan *p;
    struct pc_error *e;
    struct pc_child *child;  /* the parent's: where the grandchild's pid goes */
    char *stack_low;         /* the lower half of the stack, for a grandchild */
    int rootfd;              /* O_PATH fd of the new root, before pivot_root */
    int root_device_fd;      /* plan->root_device, opened before the cgroup's device rules apply */
};

__attribute__((noreturn)) static void die_quietly(int code)
{
    for (;;)
        S1(SYS_exit_group, code);
}

/* Records the failed step (stage "what" on "on") and ends the child. */
__attribute__((noreturn)) static void fail(struct ctx *c, const char *stage, const char *on, long negerr)
{
    size_t pos = 0;
    c->e->stage[0] = 0;
    sappend(c->e->stage, sizeof(c->e->stage), &pos, stage);
    pos = 0;
    c->e->detail[0] = 0;
    sappend(c->e->detail, sizeof(c->e->detail), &pos, on);
    c->e->err = negerr < 0 ? (int)-negerr : (negerr ? (int)negerr : EIO);
    die_quietly(125);
}

#define CHECK(c, call, stage, on)                 \
    do {                                          \
        long _r = (call);                         \
        if (_r < 0)                               \
            fail((c), (stage), (on), _r);         \
    } while (0)

/* ---- paths inside the new root ------------------------------------------ */

/* "/proc/self/fd/N": how a mount reaches a target opened safely. */
static void fd_path(char *buf, size_t cap, long fd)
{
    size_t pos = 0;
    buf[0] = 0;
    sappend(buf, cap, &pos, "/proc/self/fd/");
    sappend_int(buf, cap, &pos, fd);
}

/* Kernels before 5.6: walk the path one component at a time, refusing every
 * symlink and "..", so that nothing can steer the walk out of the root. The
 * mount targets the plan names are normalized paths; an image that puts a
 * symlink on one of them gets an error instead of an escape. */
static long open_in_root_walk(struct ctx *c, const char *path, int flags)
{
    long dfd = S3(SYS_fcntl, c->rootfd, F_DUPFD_CLOEXEC, 0);
    if (dfd < 0)
        return dfd;
    char comp[256];
    while (*path) {
        size_t n = 0;
        while (*path == '/')
            path++;
        while (*path && *path != '/' && n + 1 < sizeof(comp))
            comp[n++] = *path++;
        comp[n] = 0;
        if (n == 0)
            break;
        if (*path && *path != '/') {
            S1(SYS_close, dfd);
            return -ENAMETOOLONG;
        }
        if (comp[0] == '.' && comp[1] == 0)
            continue;
        if (comp[0] == '.' && comp[1] == '.' && comp[2] == 0) {
            S1(SYS_close, dfd);
            return -EINVAL;
        }
        long next = S4(SYS_openat, dfd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
        S1(SYS_close, dfd);
        if (next < 0)
            return next;
        struct stat st;
        long r = rsys(SYS_newfstatat, next, (long)"", (long)&st, AT_EMPTY_PATH, 0, 0);
        if (r == 0 && S_ISLNK(st.st_mode))
            r = -ELOOP;
        if (r < 0) {
            S1(SYS_close, next);
            return r;
        }
        dfd = next;
    }
    if (!(flags & O_PATH)) {  /* reopen with the access the caller asked for */
        char p[64];
        fd_path(p, sizeof(p), dfd);
        long fd = S4(SYS_openat, AT_FDCWD, p, flags | O_CLOEXEC, 0);
        S1(SYS_close, dfd);
        return fd;
    }
    return dfd;
}

/* Opens path (absolute inside the container) relative to the new root, with
 * symlinks resolved as if the root were "/": a hostile image cannot make a
 * mount land outside its root. Kernels before 5.6 lack openat2; there we fall
 * back to a plain lookup and rely on the image having been checked. */
static long open_in_root(struct ctx *c, const char *path, int flags)
{
    while (*path == '/')
        path++;
    if (!*path)
        path = ".";
    struct open_how_compat how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .mode = 0,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    long fd = c->p->no_openat2 ? -ENOSYS : S4(SYS_openat2, c->rootfd, path, &how, sizeof(how));
    if (fd == -ENOSYS)
        fd = open_in_root_walk(c, path, flags);
    return fd;
}

/* Splits "/a/b/c" into an fd of "/a/b" (in the root) and "c". */
static long open_parent_in_root(struct ctx *c, const char *path, char *dirbuf, size_t cap, const char **name)
{
    size_t n = slen(path), cut = n;
    while (cut > 0 && path[cut - 1] == '/')
        cut--; /* trailing slashes */
    size_t end = cut;
    while (cut > 0 && path[cut - 1] != '/')
        cut--;
    if (end - cut >= cap || cut >= cap)
        return -ENAMETOOLONG;
    for (size_t i = 0; i < cut; i++)
        dirbuf[i] = path[i];
    dirbuf[cut] = 0;
    /* name is copied after the directory part, in the same buffer */
    char *nm = dirbuf + cut + 1;
    if (cut + 1 + (end - cut) >= cap)
        return -ENAMETOOLONG;
    for (size_t i = 0; i < end - cut; i++)
        nm[i] = path[cut + i];
    nm[end - cut] = 0;
    *name = nm;
    return open_in_root(c, dirbuf, O_PATH | O_DIRECTORY);
}

/* mkdir -p inside the new root. */
static void mkdir_p_in_root(struct ctx *c, const char *path, unsigned int mode)
{
    char prefix[4096];
    size_t n = slen(path);
    if (n >= sizeof(prefix))
        fail(c, "mkdir", path, -ENAMETOOLONG);
    for (size_t i = 1; i <= n; i++) {
        if (i != n && path[i] != '/')
            continue;
        if (path[i - 1] == '/')
            continue;
        for (size_t k = 0; k < i; k++)
            prefix[k] = path[k];
        prefix[i] = 0;
        char dirbuf[4096];
        const char *name;
        long dfd = open_parent_in_root(c, prefix, dirbuf, sizeof(dirbuf), &name);
        if (dfd < 0)
            fail(c, "mkdir", prefix, dfd);
        long r = S3(SYS_mkdirat, dfd, name, mode);
        S1(SYS_close, dfd);
        if (r < 0 && r != -EEXIST)
            fail(c, "mkdir", prefix, r);
    }
}

static void create_file_in_root(struct ctx *c, const char *path)
{
    char dirbuf[4096];
    const char *name;
    long dfd = open_parent_in_root(c, path, dirbuf, sizeof(dirbuf), &name);
    if (dfd == -ENOENT) {
        mkdir_p_in_root(c, dirbuf, 0755);
        dfd = open_parent_in_root(c, path, dirbuf, sizeof(dirbuf), &name);
    }
    if (dfd < 0)
        fail(c, "mkdir", path, dfd);
    long fd = S4(SYS_openat, dfd, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    S1(SYS_close, dfd);
    if (fd >= 0)
        S1(SYS_close, fd);
    else if (fd != -EEXIST && fd != -ELOOP && fd != -EISDIR)
        fail(c, "create", path, fd);
}


/* The mount flags a bind remount must repeat (a user namespace refuses to
 * drop locked ones), from statfs. */
static unsigned long locked_flags(const char *path)
{
    struct statfs st;
    if (S2(SYS_statfs, path, &st) < 0)
        return 0;
    unsigned long f = 0;
    if (st.f_flags & ST_NOSUID) f |= MS_NOSUID;
    if (st.f_flags & ST_NODEV) f |= MS_NODEV;
    if (st.f_flags & ST_NOEXEC) f |= MS_NOEXEC;
    if (st.f_flags & ST_NOATIME) f |= MS_NOATIME;
    if (st.f_flags & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (st.f_flags & ST_RELATIME) f |= MS_RELATIME;
    if (st.f_flags & ST_RDONLY) f |= MS_RDONLY;
    return f;
}

static void describe_mount(char *buf, size_t cap, const struct pc_mount *m)
{
    size_t pos = 0;
    buf[0] = 0;
    sappend(buf, cap, &pos, m->fstype ? m->fstype : m->source);
    sappend(buf, cap, &pos, " on ");
    sappend(buf, cap, &pos, m->target);
}

static void do_mount(struct ctx *c, const struct pc_mount *m)
{
    char what[1024], target[64];
    describe_mount(what, sizeof(what), m);
    long fd = open_in_root(c, m->target, O_PATH);
    if (fd == -ENOENT && m->mkdir) {
        /* a missing mount point is made (in the overlay's upper layer) */
        if (m->mkdir == 1)
            mkdir_p_in_root(c, m->target, 0755);
        else
            create_file_in_root(c, m->target);
        fd = open_in_root(c, m->target, O_PATH);
    }
    if (fd < 0)
        fail(c, "mount", what, fd);
    fd_path(target, sizeof(target), fd);
    long r = S5(SYS_mount, m->source, target, m->fstype, m->flags, m->data);
    S1(SYS_close, fd);
    if (r < 0)
        fail(c, "mount", what, r);
    if (m->remount) {
        /* the fd saw the directory under the new mount: open it again */
        fd = open_in_root(c, m->target, O_PATH);
        if (fd < 0)
            fail(c, "remount", what, fd);
        fd_path(target, sizeof(target), fd);
        unsigned long keep = locked_flags(target) & ~MS_RDONLY;
        r = S5(SYS_mount, NULL, target, NULL, MS_BIND | MS_REMOUNT | keep | m->remount, NULL);
        S1(SYS_close, fd);
        if (r < 0)
            fail(c, "remount", what, r);
    }
}

static void make_node(struct ctx *c, const struct pc_node *n)
{
    char dirbuf[4096];
    const char *name;
    long dfd = open_parent_in_root(c, n->path, dirbuf, sizeof(dirbuf), &name);
    if (dfd < 0)
        fail(c, "mknod", n->path, dfd);
    unsigned long dev = ((unsigned long)(n->major & 0xfff) << 8) | (n->minor & 0xff) |
                        ((unsigned long)(n->minor & ~0xffu) << 12);
    long r = S4(SYS_mknodat, dfd, name, n->mode, dev);
    if (r == 0)  /* the umask must not narrow what the plan asked for */
        r = S4(SYS_fchmodat, dfd, name, n->mode & 07777, 0);
    S1(SYS_close, dfd);
    if (r < 0 && r != -EEXIST)
        fail(c, "mknod", n->path, r);
}

static void make_symlink(struct ctx *c, const struct pc_symlink *s)
{
    char dirbuf[4096];
    const char *name;
    long dfd = open_parent_in_root(c, s->path, dirbuf, sizeof(dirbuf), &name);
    if (dfd < 0)
        fail(c, "symlink", s->path, dfd);
    long r = S3(SYS_symlinkat, s->target, dfd, name);
    S1(SYS_close, dfd);
    if (r < 0 && r != -EEXIST)
        fail(c, "symlink", s->path, r);
}

static void make_scratch(struct ctx *c)
{
    const struct pc_plan *p = c->p;
    CHECK(c, S5(SYS_mount, "tmpfs", p->scratch, "tmpfs", MS_NOSUID | MS_NODEV, p->scratch_data),
          "mount scratch", p->scratch);
    for (int i = 0; i < p->n_files; i++) {
        const struct pc_file *f = &p->files[i];
        if (!f->content) {
            CHECK(c, S3(SYS_mkdirat, AT_FDCWD, f->path, f->mode), "mkdir", f->path);
            continue;
        }
        long fd = S4(SYS_openat, AT_FDCWD, f->path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, f->mode);
        if (fd < 0)
            fail(c, "create", f->path, fd);
        long r = f->len ? S3(SYS_write, fd, f->content, f->len) : 0;
        S1(SYS_close, fd);
        if (r != (long)f->len)
            fail(c, "write", f->path, r < 0 ? r : -EIO);
    }
}

/* ---- after pivot_root: paths are the container's own -------------------- */

static void mask_path(struct ctx *c, const char *path)
{
    struct stat st;
    long r = S4(SYS_newfstatat, AT_FDCWD, path, &st, 0);
    if (r == -ENOENT || r == -ENOTDIR)
        return;
    if (r < 0)
        fail(c, "mask", path, r);
    if (S_ISDIR(st.st_mode))
        r = S5(SYS_mount, "tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0");
    else
        r = S5(SYS_mount, "/dev/null", path, NULL, MS_BIND, NULL);
    if (r < 0)
        fail(c, "mask", path, r);
}

static void readonly_path(struct ctx *c, const char *path)
{
    long r = S5(SYS_mount, path, path, NULL, MS_BIND | MS_REC, NULL);
    if (r == -ENOENT || r == -ENOTDIR)
        return;
    if (r < 0)
        fail(c, "readonly", path, r);
    unsigned long keep = locked_flags(path);
    r = S5(SYS_mount, NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL);
    if (r < 0)
        fail(c, "readonly", path, r);
}

/* ---- exec --------------------------------------------------------------- */

/* Finds argv[cmd_index] the way execvp does, in the container's PATH. With an
 * init in front only checks it (init executes it), so that "not found" and
 * "not executable" are still reported here, with their own exit codes. */
__attribute__((noreturn)) static void exec_command(struct ctx *c)
{
    const struct pc_plan *p = c->p;
    const char *cmd = p->argv[p->cmd_index];
    const char *const *envp = p->envp;
    char path[4096];
    long r, saw_eacces = 0;
    int check_only = p->init_fd >= 0;

    if (!cmd || !*cmd)
        fail(c, "exec", "", -ENOENT);

    for (int i = 0;; i++) {
        const char *dirs = p->path_env ? p->path_env : DEFAULT_PATH;
        int direct = 0;
        for (const char *q = cmd; *q; q++)
            if (*q == '/')
                direct = 1;
        size_t pos = 0;
        path[0] = 0;
        if (direct) {
            if (i > 0)
                break;
            sappend(path, sizeof(path), &pos, cmd);
        } else {
            /* the i-th PATH entry; an empty entry means the current directory */
            const char *d = dirs;
            for (int k = 0; k < i && d; k++) {
                while (*d && *d != ':')
                    d++;
                d = *d ? d + 1 : NULL;
            }
            if (!d)
                break;
            const char *e = d;
            while (*e && *e != ':')
                e++;
            for (const char *q = d; q < e && pos + 1 < sizeof(path); q++)
                path[pos++] = *q;
            path[pos] = 0;
            if (pos == 0)
                sappend(path, sizeof(path), &pos, ".");
            sappend(path, sizeof(path), &pos, "/");
            sappend(path, sizeof(path), &pos, cmd);
        }

        if (check_only) {
            struct stat st;
            r = S4(SYS_newfstatat, AT_FDCWD, path, &st, 0);
            if (r == 0 && !S_ISREG(st.st_mode))
                r = -EACCES;
            if (r == 0)
                r = S3(SYS_faccessat, AT_FDCWD, path, X_OK);
            if (r == 0) {
                rsys(SYS_execveat, p->init_fd, (long)"", (long)p->argv, (long)envp, AT_EMPTY_PATH, 0);
                fail(c, "exec", "pycontain-init", -EIO);
            }
        } else {
            r = S3(SYS_execve, path, p->argv + p->cmd_index, envp);
        }
        if (r == -EACCES)
            saw_eacces = 1;
        else if (r != -ENOENT && r != -ENOTDIR)
            fail(c, "exec", cmd, r);
    }
    fail(c, "exec", cmd, saw_eacces ? -EACCES : -ENOENT);
}

/* ---- the child ---------------------------------------------------------- */

/* Sends one descriptor to the parent over sync_fd, behind a one-byte tag. */
static void send_fd(struct ctx *c, char tag, long fd, const char *what)
{
    struct iovec iov = {.iov_base = &tag, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    int ifd = (int)fd;
    memcpy(CMSG_DATA(cm), &ifd, sizeof(int));
    CHECK(c, S3(SYS_sendmsg, c->p->sync_fd, &msg, 0), "sendmsg", what);
}

/* The root of a filesystem that a process of the parent's serves through a
 * device (nsexec.h, root_device): mounted here, served once the parent says
 * so. Returns the mount's result. */
static long mount_served_root(struct ctx *c)
{
    const struct pc_plan *p = c->p;
    long fd = c->root_device_fd;
    char data[4096];
    size_t pos = 0;
    data[0] = 0;
    sappend(data, sizeof(data), &pos, p->root_data);
    if (pos)
        sappend(data, sizeof(data), &pos, ",");
    sappend(data, sizeof(data), &pos, "fd=");
    sappend_int(data, sizeof(data), &pos, fd);
    long r = S5(SYS_mount, p->root_source, p->root_path, p->root_fstype, p->root_flags, data);
    if (r < 0)
        return r;
    send_fd(c, 'D', fd, "the root's device to the parent");
    /* only the serving process may hold the device: if it dies, the kernel
     * aborts the connection and nothing waits on it forever */
    S1(SYS_close, fd);
    c->root_device_fd = -1;
    char b;
    if (S3(SYS_read, p->sync_fd, &b, 1) != 1)
        die_quietly(125); /* the parent gave up; it reports why */
    return 0;
}

static void bring_up_loopback(struct ctx *c)
{
    long s = S3(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        fail(c, "socket", "loopback", s);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_name[0] = 'l';
    ifr.ifr_name[1] = 'o';
    long r = S3(SYS_ioctl, s, SIOCGIFFLAGS, &ifr);
    if (r == 0) {
        ifr.ifr_flags |= IFF_UP;
        r = S3(SYS_ioctl, s, SIOCSIFFLAGS, &ifr);
    }
    S1(SYS_close, s);
    if (r < 0)
        fail(c, "ioctl", "bring loopback up", r);
}

struct kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

static void close_other_fds(struct ctx *c)
{
    /* Everything but 0, 1, 2 closes at exec: no descriptor of the launching
     * process (a way out of the container) may survive into it. */
    long r = S3(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
    if (r == 0)
        return;
    long dfd = S4(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dfd < 0)
        fail(c, "close fds", "/proc/self/fd", dfd);
    char buf[4096];
    for (;;) {
        long n = S3(SYS_getdents64, dfd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            unsigned short reclen = *(unsigned short *)(buf + off + 16);
            const char *name = buf + off + 19;
            long fd = 0;
            int ok = *name != 0;
            for (const char *q = name; *q; q++) {
                if (*q < '0' || *q > '9')
                    ok = 0;
                fd = fd * 10 + (*q - '0');
            }
            if (ok && fd > 2 && fd != dfd)
                S3(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
            off += reclen;
        }
    }
    S1(SYS_close, dfd);
}

static void set_capabilities(struct ctx *c)
{
    const struct pc_plan *p = c->p;
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    data[0].effective = (uint32_t)p->cap_effective;
    data[1].effective = (uint32_t)(p->cap_effective >> 32);
    data[0].permitted = (uint32_t)p->cap_permitted;
    data[1].permitted = (uint32_t)(p->cap_permitted >> 32);
    data[0].inheritable = (uint32_t)p->cap_inheritable;
    data[1].inheritable = (uint32_t)(p->cap_inheritable >> 32);
    CHECK(c, S2(SYS_capset, &hdr, data), "capset", "");
    CHECK(c, S5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "prctl", "ambient capabilities");
    for (int cap = 0; cap <= p->last_cap && cap < 64; cap++)
        if (p->cap_ambient & (1ULL << cap))
            CHECK(c, S5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0), "prctl", "raise ambient capability");
}

static void load_seccomp(struct ctx *c)
{
    const struct pc_plan *p = c->p;
    struct sock_fprog prog = {
        .len = (unsigned short)p->seccomp_len,
        .filter = (struct sock_filter *)p->seccomp_bpf,
    };
    CHECK(c, S3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog), "seccomp", "load filter");
}

static int child_continue(void *arg);

static int child_main(void *arg)
{
    struct ctx *c = arg;
    const struct pc_plan *p = c->p;

    /* Python's signal handlers must never run here: default dispositions for
     * all (the container starts as a fresh process would); the mask the
     * parent blocked stays until just before exec. */
    struct kernel_sigaction dfl = {0};
    for (int sig = 1; sig < 65; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            S4(SYS_rt_sigaction, sig, &dfl, NULL, 8);

    if (p->pdeathsig)
        S2(SYS_prctl, PR_SET_PDEATHSIG, p->pdeathsig);

    for (int i = 0; i < p->n_joins; i++)
        CHECK(c, S2(SYS_setns, p->joins[i].fd, p->joins[i].nstype), "setns", "join namespace");
    if (p->unshare_flags)
        CHECK(c, S1(SYS_unshare, p->unshare_flags), "unshare", "namespaces after the joins");

    if (p->fork_after_join) {
        /* setns into a pid namespace only places our children in it: go on
         * in a grandchild that is our parent's child (CLONE_PARENT), then
         * leave once it exec'd (CLONE_VFORK). */
        c->child->intermediate = (int)S0(SYS_getpid);
        int pid = clone(child_continue, c->stack_low,
                        CLONE_VM | CLONE_VFORK | CLONE_PARENT | SIGCHLD, c);
        if (pid < 0)
            fail(c, "clone", "into the joined namespaces", -EAGAIN);
        c->child->pid = pid;
        die_quietly(0);
    }
    return child_continue(c);
}

static void setup_tty(struct ctx *c)
{
    long m = S4(SYS_openat, AT_FDCWD, "/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC, 0);
    if (m < 0)
        fail(c, "open", "/dev/ptmx", m);
    int unlock = 0, n = -1;
    CHECK(c, S3(SYS_ioctl, m, TIOCSPTLCK, &unlock), "ioctl", "unlock the terminal");
    CHECK(c, S3(SYS_ioctl, m, TIOCGPTN, &n), "ioctl", "terminal number");
    char path[64];
    size_t pos = 0;
    path[0] = 0;
    sappend(path, sizeof(path), &pos, "/dev/pts/");
    sappend_int(path, sizeof(path), &pos, n);
    long s = S4(SYS_openat, AT_FDCWD, path, O_RDWR | O_NOCTTY | O_CLOEXEC, 0);
    if (s < 0)
        fail(c, "open", path, s);

    /* the master goes to the parent, which relays it to the user's terminal */
    send_fd(c, 'T', m, "terminal to the parent");
    S1(SYS_close, m);

    CHECK(c, S0(SYS_setsid), "setsid", "");
    CHECK(c, S3(SYS_ioctl, s, TIOCSCTTY, 0), "ioctl", "controlling terminal");
    for (int i = 0; i < 3; i++)
        CHECK(c, S3(SYS_dup3, s, i, 0), "dup", "terminal");
    S1(SYS_close, s);
}

static int child_continue(void *arg)
{
    struct ctx *c = arg;
    const struct pc_plan *p = c->p;
    long r;

    if (p->fork_after_join && p->pdeathsig)  /* not inherited by a new process */
        S2(SYS_prctl, PR_SET_PDEATHSIG, p->pdeathsig);

    if (p->wait_maps) {
        char b;
        r = S3(SYS_read, p->sync_fd, &b, 1);
        if (r != 1)
            die_quietly(125); /* the parent gave up; it reports why */
    }

    if (p->root_device) {
        /* in the container's user namespace (the kernel requires the mount
         * to be made there), before its cgroup's device rules apply: the
         * device is the engine's, never the container's */
        r = S4(SYS_openat, AT_FDCWD, p->root_device, O_RDWR | O_CLOEXEC, 0);
        if (r < 0)
            fail(c, "open", p->root_device, r);
        c->root_device_fd = (int)r;
    }

    if (p->loopback_up)
        bring_up_loopback(c);

    for (int i = 0; i < p->n_cgroup_fds; i++)
        CHECK(c, S3(SYS_write, p->cgroup_fds[i], "0", 1), "cgroup", "join the container's cgroup");
    if (p->unshare_cgroupns)
        CHECK(c, S1(SYS_unshare, CLONE_NEWCGROUP), "unshare", "cgroup namespace");

    /* ---- the mount tree ---- */
    if ((p->clone_flags | p->unshare_flags) & CLONE_NEWNS) {
        CHECK(c, S5(SYS_mount, NULL, "/", NULL, p->root_propagation, NULL), "mount", "make / private");
        if (p->scratch)
            make_scratch(c);
    }
    if ((p->clone_flags & CLONE_NEWNS) && p->root_path) {
        if (p->root_device)
            r = mount_served_root(c);
        else if (p->root_fstype)
            r = S5(SYS_mount, p->root_source, p->root_path, p->root_fstype, p->root_flags, p->root_data);
        else
            r = S5(SYS_mount, p->root_source, p->root_path, NULL, MS_BIND | MS_REC | p->root_flags, NULL);
        if (r < 0)
            fail(c, "mount rootfs", p->root_fstype ? p->root_path : p->root_source, r);
        r = S4(SYS_openat, AT_FDCWD, p->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
        if (r < 0)
            fail(c, "open rootfs", p->root_path, r);
        c->rootfd = (int)r;

        for (int i = 0; i < p->n_mounts; i++)
            do_mount(c, &p->mounts[i]);
        for (int i = 0; i < p->n_nodes; i++)
            make_node(c, &p->nodes[i]);
        for (int i = 0; i < p->n_symlinks; i++)
            make_symlink(c, &p->symlinks[i]);

        /* pivot_root(".", ".") stacks the old root on the new one; detaching
         * it leaves only the new root, with no directory for the old one. */
        CHECK(c, S1(SYS_fchdir, c->rootfd), "chdir", p->root_path);
        CHECK(c, S2(SYS_pivot_root, ".", "."), "pivot_root", p->root_path);
        CHECK(c, S2(SYS_umount2, ".", MNT_DETACH), "umount", "old root");
        CHECK(c, S1(SYS_chdir, "/"), "chdir", "/");
        S1(SYS_close, c->rootfd);

        for (int i = 0; i < p->n_masked_paths; i++)
            mask_path(c, p->masked_paths[i]);
        for (int i = 0; i < p->n_readonly_paths; i++)
            readonly_path(c, p->readonly_paths[i]);
        if (p->root_readonly) {
            unsigned long keep = locked_flags("/");
            CHECK(c, S5(SYS_mount, NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL),
                  "remount", "/ read-only");
        }
    }

    if (p->hostname)
        CHECK(c, S2(SYS_sethostname, p->hostname, slen(p->hostname)), "sethostname", p->hostname);

    for (int i = 0; i < p->n_rlimits; i++) {
        struct { uint64_t cur, max; } lim = {p->rlimits[i].soft, p->rlimits[i].hard};
        CHECK(c, S4(SYS_prlimit64, 0, p->rlimits[i].resource, &lim, NULL), "setrlimit", "");
    }

    if (p->set_oom_score_adj) {
        char num[24];
        size_t pos = 0;
        num[0] = 0;
        sappend_int(num, sizeof(num), &pos, p->oom_score_adj);
        long fd = S4(SYS_openat, AT_FDCWD, "/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC, 0);
        if (fd < 0)
            fail(c, "oom_score_adj", "/proc/self/oom_score_adj", fd);
        r = S3(SYS_write, fd, num, pos);
        S1(SYS_close, fd);
        if (r < 0)
            fail(c, "oom_score_adj", num, r);
    }

    if (p->cwd) {
        r = S1(SYS_chdir, p->cwd);
        if (r == -ENOENT && p->mkdir_cwd) {
            /* like docker and runc: a missing working directory is created */
            const char *q = p->cwd;
            char part[4096];
            size_t n = 0;
            while (*q && n + 1 < sizeof(part)) {
                part[n++] = *q++;
                part[n] = 0;
                if (*q == '/' || *q == 0) {
                    long m = S3(SYS_mkdirat, AT_FDCWD, part, 0755);
                    if (m == 0)
                        S5(SYS_fchownat, AT_FDCWD, part, p->uid, p->gid, 0);
                }
            }
            r = S1(SYS_chdir, p->cwd);
        }
        if (r < 0)
            fail(c, "chdir", p->cwd, r);
    }

    /* the terminal exists at "created" (the parent receives its master
     * before the created message, as an OCI runtime's create hands it out) */
    if (p->tty)
        setup_tty(c);

    if (p->wait_start) {
        char b = 'R';
        if (S3(SYS_write, p->sync_fd, &b, 1) != 1)
            die_quietly(125);
        if (S3(SYS_read, p->sync_fd, &b, 1) != 1)
            die_quietly(125);
    }

    for (int i = 0; i < 3; i++) {
        int fd = p->stdio[i];
        if (fd < 0 || p->tty)
            continue;
        if (fd == i)
            r = S3(SYS_fcntl, fd, F_SETFD, 0);
        else
            r = S3(SYS_dup3, fd, i, 0);
        if (r < 0)
            fail(c, "dup", "stdio", r);
    }
    if (p->close_fds)
        close_other_fds(c);

    /* ---- identity and privileges, narrowest last ---- */
    for (int cap = 0; cap <= p->last_cap && cap < 64; cap++)
        if (!(p->cap_bounding & (1ULL << cap))) {
            r = S2(SYS_prctl, PR_CAPBSET_DROP, cap);
            if (r < 0 && r != -EINVAL)
                fail(c, "prctl", "drop from the bounding set", r);
        }
    /* Without no_new_privs, only a privileged process may load a filter:
     * load it while still root, before the ids change. */
    if (p->seccomp_bpf && !p->no_new_privs)
        load_seccomp(c);
    if (p->set_groups)
        CHECK(c, S2(SYS_setgroups, p->n_groups, p->groups), "setgroups", "");
    CHECK(c, S2(SYS_prctl, PR_SET_KEEPCAPS, 1), "prctl", "keep capabilities");
    CHECK(c, S3(SYS_setresgid, p->gid, p->gid, p->gid), "setgid", "");
    CHECK(c, S3(SYS_setresuid, p->uid, p->uid, p->uid), "setuid", "");
    set_capabilities(c);
    if (p->no_new_privs)
        CHECK(c, S5(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl", "no_new_privs");
    if (p->seccomp_bpf && p->no_new_privs)
        load_seccomp(c);

    /* pycontain-init takes over blocked: a signal sent before it waits for
     * signals stays pending for it to forward, instead of hitting a pid 1
     * that has no default actions. It unblocks for the command it runs. */
    if (p->init_fd < 0) {
        uint64_t none = 0;
        S4(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
    }
    exec_command(c);
}

/* ---- parent side ---------------------------------------------------------- */

static void set_error(struct pc_error *err, const char *stage, const char *detail, int e)
{
    size_t pos = 0;
    err->stage[0] = 0;
    sappend(err->stage, sizeof(err->stage), &pos, stage);
    pos = 0;
    err->detail[0] = 0;
    sappend(err->detail, sizeof(err->detail), &pos, detail);
    err->err = e;
}

int pc_spawn(const struct pc_plan *plan, struct pc_child *child, struct pc_error *err)
{
    memset(err, 0, sizeof(*err));
    child->pid = -1;
    child->intermediate = 0;
    child->pidfd = -1;
    child->stack = NULL;
    child->stack_size = 0;

    void *stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (stack == MAP_FAILED) {
        set_error(err, "mmap", "child stack", errno);
        return -1;
    }
    /* The context lives at the top of the child's own stack: in the non-vfork
     * mode it must outlive this function. */
    struct ctx *c = (struct ctx *)((char *)stack + CHILD_STACK_SIZE - sizeof(struct ctx));
    c->p = plan;
    c->e = err;
    c->child = child;
    c->stack_low = (char *)stack + CHILD_STACK_SIZE / 2;
    c->rootfd = -1;
    c->root_device_fd = -1;
    char *top = (char *)c - 64;
    top = (char *)((uintptr_t)top & ~(uintptr_t)15);

    unsigned long flags = (plan->clone_flags & ~(unsigned long)CLONE_NEWCGROUP) | CLONE_VM | SIGCHLD;
    if (plan->vfork)
        flags |= CLONE_VFORK;

    /* sigprocmask acts on the calling thread only, like pthread_sigmask,
     * without needing libpthread on old glibc (manylinux2014) */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    int pidfd = -1;
    int pid = clone(child_main, top, flags | CLONE_PIDFD, c, &pidfd);
    if (pid < 0 && errno == EINVAL) { /* kernels before 5.2 */
        pidfd = -1;
        pid = clone(child_main, top, flags, c, NULL);
    }
    int clone_errno = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);

    if (pid < 0) {
        munmap(stack, CHILD_STACK_SIZE);
        set_error(err, "clone", "", clone_errno);
        return -1;
    }
    if (plan->fork_after_join) {
        /* the command runs in the grandchild; the pid we got is the
         * intermediate's, which has written the grandchild's (or, in the
         * non-vfork mode, will before the first message on sync_fd) */
        if (pidfd >= 0)
            close(pidfd);
        pidfd = -1;
        if (plan->vfork) {
            waitpid(pid, NULL, 0);
            child->intermediate = 0;
            if (child->pid > 0)
                pidfd = (int)syscall(434 /* pidfd_open */, child->pid, 0);
        }
    } else {
        child->pid = pid;
    }
    child->pidfd = pidfd;
    if (plan->vfork) {
        /* suspended until the child exec'd or died: its stack is free */
        munmap(stack, CHILD_STACK_SIZE);
    } else {
        child->stack = stack;
        child->stack_size = CHILD_STACK_SIZE;
    }
    return 0;
}

void pc_child_release(struct pc_child *child)
{
    if (child->stack) {
        munmap(child->stack, child->stack_size);
        child->stack = NULL;
    }
}

int pc_unshare(int flags, struct pc_error *err)
{
    if (unshare(flags) < 0) {
        set_error(err, "unshare", "", errno);
        return -1;
    }
    return 0;
}

int pc_setns(int fd, int nstype, struct pc_error *err)
{
    if (setns(fd, nstype) < 0) {
        set_error(err, "setns", "", errno);
        return -1;
    }
    return 0;
}
