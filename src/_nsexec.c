/* _nsexec.c: executes a pycontain launch plan after clone.
 *
 * Python decides everything (pycontain/_launch.py) and hands over a flat
 * struct pc_plan (nsexec.h). This file runs it, top to bottom:
 *
 *   pc_spawn            parent: block signals, clone(CLONE_VM [|CLONE_VFORK]) on a fresh stack
 *   child_main          child, in order:
 *     reset signals, close every descriptor not in the plan, the umask (0022),
 *     pdeathsig, setns joins, [unshare], [wait for parent],
 *     [open the root's device], cgroup join, cgroup namespace, mount tree:
 *     propagation, scratch, root [and wait while the parent serves it], mounts, nodes, symlinks,
 *     masked paths (the host's /dev/null) and read-only paths, pivot_root,
 *     read-only root, hostname, rlimits, oom_score_adj, cwd (resolved in the
 *     root), [created: wait for start], stdio, fds, bounding set, groups and
 *     ids, capabilities, pdeathsig again, no_new_privs, seccomp, [a pool's
 *     container: wait for start here instead], exec (both waits non-dumpable)
 *
 * There is no policy here: what to mount, which ids, which capabilities, all
 * come from the plan. The child shares the parent's memory (CLONE_VM: no copy
 * of the Python heap, which makes fork cost grow with it), so it obeys the
 * rules of a vfork child: raw system calls only (glibc wrappers would write
 * errno, the parent thread's), no malloc, no locks, no stdio. Failures are
 * written into the caller's struct pc_error; the parent learns that the child
 * exec'd or died from EOF on close-on-exec descriptors, or from CLONE_VFORK.
 *
 * Joining a running container (exec) is the other path, and shares nothing:
 *
 *   pc_join             parent: flattens the plan, vfork-execs the join helper
 *                       (this same file built as the static program
 *                       pycontain-join, src/join.c) from a sealed memfd, sends
 *                       it the flat plan, reads its reports until EOF
 *   child_main          in the helper: non-dumpable, setns joins, then a plain
 *                       fork (CLONE_PARENT) into the joined pid namespace
 *   child_continue      in the helper's child, as above, down to exec
 *
 * A process in the container's pid namespace must never share the memory of
 * a host process nor have a host binary as /proc/PID/exe (runc's
 * CVE-2016-9962 and CVE-2019-5736): the helper is a fresh program whose
 * executable is a sealed memfd, and failures travel over a pipe.
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
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <poll.h>
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
#include <time.h>

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

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424   /* the same number on every architecture */
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
/* The new mount API's flags, under names of our own: newer glibc headers
 * define some of them, older ones none. */
#define PC_OPEN_TREE_CLONE 1
#define PC_AT_RECURSIVE 0x8000
#define PC_MOVE_MOUNT_F_EMPTY_PATH 0x04
#define PC_MOVE_MOUNT_T_EMPTY_PATH 0x40
#define PC_MOUNT_ATTR_RDONLY 0x1
#define PC_MOUNT_ATTR_IDMAP 0x00100000
#define PC_BPF_MAXINSNS 4096
#define PC_DEV_NULL_RDEV 0x103  /* makedev(1, 3) */
#define PC_WAIT_CREATED 1       /* plan->wait_start: _launch.WAIT_CREATED */
#define PC_WAIT_BEFORE_EXEC 2   /* _launch.WAIT_BEFORE_EXEC */

struct pc_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

struct open_how_compat {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

#define CHILD_STACK_SIZE (256 * 1024)
#define MAX_PLAN_FDS 128
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
    int rootfd;              /* O_PATH fd of the new root, before pivot_root */
    int root_device_fd;      /* plan->root_device, opened before the cgroup's device rules apply */
    int parent_pidfd;        /* the launching process, to see that it still lives; -1: unknown */
    int null_fd;             /* the host's /dev/null (O_PATH), what masked files are covered with */
    int report_fd;           /* the join helper's pipe to the parent (-1: e is the parent's memory) */
    int undumpable_wait;     /* clear the dumpable flag before a wait (launched by root) */
};

/* What the join helper and its child write on report_fd: a tag, then the
 * grandchild's pid ('P', an int) or a failure ('E', a struct pc_error). */
#define REPORT_PID 'P'
#define REPORT_ERROR 'E'

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
    if (c->report_fd >= 0) {  /* one write of under PIPE_BUF bytes: never interleaved */
        char msg[1 + sizeof(struct pc_error)];
        msg[0] = REPORT_ERROR;
        memcpy(msg + 1, c->e, sizeof(struct pc_error));
        S3(SYS_write, c->report_fd, msg, sizeof(msg));
    }
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
    long fd = -ENOSYS;
    /* openat2 answers EAGAIN when a rename raced the lookup: try again */
    for (int tries = 0; !c->p->no_openat2 && tries < 16; tries++) {
        fd = S4(SYS_openat2, c->rootfd, path, &how, sizeof(how));
        if (fd != -EAGAIN)
            break;
    }
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

/* mkdir -p inside the new root; with chown_created, the directories it
 * makes (never one that existed, never through a symlink) get the plan's
 * uid and gid, as docker does for a missing working directory. */
static void mkdir_p_in_root(struct ctx *c, const char *path, unsigned int mode, int chown_created)
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
        if (r == 0 && chown_created)
            r = S5(SYS_fchownat, dfd, name, c->p->uid, c->p->gid, AT_SYMLINK_NOFOLLOW);
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
        mkdir_p_in_root(c, dirbuf, 0755, 0);
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
    /* neither noatime nor relatime: strictatime, which a remount must name
     * (left out, the kernel picks relatime, refused where atime is locked) */
    if (!(st.f_flags & (ST_NOATIME | ST_RELATIME)))
        f |= MS_STRICTATIME;
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

/* Mounts the detached tree `tree` (open_tree) on the file or directory that
 * `target` is open on: fd onto fd, no path is looked up again. */
static long attach_tree(long tree, long target)
{
    return S5(SYS_move_mount, tree, "", target, "", PC_MOVE_MOUNT_F_EMPTY_PATH | PC_MOVE_MOUNT_T_EMPTY_PATH);
}

/* A bind mount made fd onto fd, as crun does: the source cloned (with its
 * submounts for MS_REC), made read-only, nodev... while still detached (on
 * every submount too), then attached on the target already resolved in the
 * root. No second lookup of the target that a concurrent rename could
 * redirect. Nonzero where the kernel cannot (before 5.12) or the plan asks
 * for more than a plain bind: the caller goes the path-based way. */
static long bind_by_fd(const struct pc_mount *m, long target)
{
    const unsigned long attrs = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC; /* = MOUNT_ATTR_* */
    if (m->fstype || !m->source || !(m->flags & MS_BIND) || (m->flags & ~(unsigned long)(MS_BIND | MS_REC)) ||
        (m->remount & ~attrs))
        return -ENOSYS;
    unsigned int rec = (m->flags & MS_REC) ? PC_AT_RECURSIVE : 0;
    long tree = S3(SYS_open_tree, AT_FDCWD, m->source, PC_OPEN_TREE_CLONE | O_CLOEXEC | rec);
    if (tree < 0)
        return tree;
    long r = 0;
    if (m->remount) {
        struct pc_mount_attr attr = {.attr_set = m->remount};
        r = S5(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | rec, &attr, sizeof(attr));
    }
    if (r == 0)
        r = attach_tree(tree, target);
    S1(SYS_close, tree);
    return r;
}

static void do_mount(struct ctx *c, const struct pc_mount *m)
{
    char what[1024], target[64];
    describe_mount(what, sizeof(what), m);
    long fd = open_in_root(c, m->target, O_PATH);
    if (fd == -ENOENT && m->mkdir) {
        /* a missing mount point is made (in the overlay's upper layer) */
        if (m->mkdir == 1)
            mkdir_p_in_root(c, m->target, 0755, 0);
        else
            create_file_in_root(c, m->target);
        fd = open_in_root(c, m->target, O_PATH);
    }
    if (fd < 0)
        fail(c, "mount", what, fd);
    if (m->tree_fd >= 0) {  /* the parent's tree: attached as made */
        long r = attach_tree(m->tree_fd, fd);
        S1(SYS_close, fd);
        if (r < 0)
            fail(c, "mount", what, r);
        return;
    }
    if (bind_by_fd(m, fd) == 0) {
        S1(SYS_close, fd);
        return;
    }
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

/* ---- masked and read-only paths, before pivot_root ---------------------- */

/* The host's own /dev/null, opened before pivot_root and checked to be the
 * character device 1:3. The container's /dev is not to be trusted: an image
 * VOLUME or a symlink there would make every masked path a bind of whatever
 * the container calls /dev/null (CVE-2025-31133; runc's verifyDevNull, crun
 * opens it the same way). */
static void open_host_null(struct ctx *c)
{
    long fd = S4(SYS_openat, AT_FDCWD, "/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0)
        fail(c, "mask", "open the host's /dev/null", fd);
    struct stat st;
    long r = rsys(SYS_newfstatat, fd, (long)"", (long)&st, AT_EMPTY_PATH, 0, 0);
    if (r == 0 && (!S_ISCHR(st.st_mode) || st.st_rdev != PC_DEV_NULL_RDEV))
        r = -ENODEV;
    if (r < 0)
        fail(c, "mask", "the host's /dev/null is not the null device", r);
    c->null_fd = (int)fd;
}

/* Hides path (inside the new root): a directory under an empty read-only
 * tmpfs, anything else under the host's /dev/null, bound fd onto fd
 * (open_tree + move_mount, as crun; before Linux 5.2 through the two
 * descriptors' /proc/self/fd paths, as runc). */
static void mask_path(struct ctx *c, const char *path)
{
    long fd = open_in_root(c, path, O_PATH);
    if (fd == -ENOENT || fd == -ENOTDIR)
        return;
    if (fd < 0)
        fail(c, "mask", path, fd);
    struct stat st;
    long r = rsys(SYS_newfstatat, fd, (long)"", (long)&st, AT_EMPTY_PATH, 0, 0);
    char target[64], source[64];
    fd_path(target, sizeof(target), fd);
    if (r < 0) {
        /* fails below */
    } else if (S_ISDIR(st.st_mode)) {
        r = S5(SYS_mount, "tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0");
    } else {
        long tree = S3(SYS_open_tree, c->null_fd, "", PC_OPEN_TREE_CLONE | AT_EMPTY_PATH | O_CLOEXEC);
        if (tree >= 0) {
            r = attach_tree(tree, fd);
            S1(SYS_close, tree);
        } else if (tree == -ENOSYS) {
            fd_path(source, sizeof(source), c->null_fd);
            r = S5(SYS_mount, source, target, NULL, MS_BIND, NULL);
        } else {
            r = tree;
        }
    }
    S1(SYS_close, fd);
    if (r < 0)
        fail(c, "mask", path, r);
}

/* Makes path (inside the new root) read-only: a recursive clone of the mount
 * there, made read-only while detached and attached on the same descriptor
 * (crun's way); before Linux 5.12 a bind of the path onto itself, remounted
 * read-only with the flags a user namespace may not drop. */
static void readonly_path(struct ctx *c, const char *path)
{
    long fd = open_in_root(c, path, O_PATH);
    if (fd == -ENOENT || fd == -ENOTDIR)
        return;
    if (fd < 0)
        fail(c, "readonly", path, fd);
    long r = -ENOSYS;
    long tree = S3(SYS_open_tree, fd, "", PC_OPEN_TREE_CLONE | PC_AT_RECURSIVE | AT_EMPTY_PATH | O_CLOEXEC);
    if (tree >= 0) {
        struct pc_mount_attr attr = {.attr_set = PC_MOUNT_ATTR_RDONLY};
        r = S5(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | PC_AT_RECURSIVE, &attr, sizeof(attr));
        if (r == 0)
            r = attach_tree(tree, fd);
        S1(SYS_close, tree);
    }
    if (r == -ENOSYS) {
        char target[64];
        fd_path(target, sizeof(target), fd);
        r = S5(SYS_mount, target, target, NULL, MS_BIND | MS_REC, NULL);
        if (r == 0) {
            /* the descriptor sees what is under the new mount: look again */
            S1(SYS_close, fd);
            fd = open_in_root(c, path, O_PATH);
            if (fd < 0)
                fail(c, "readonly", path, fd);
            fd_path(target, sizeof(target), fd);
            unsigned long keep = locked_flags(target);
            r = S5(SYS_mount, NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL);
        }
    }
    S1(SYS_close, fd);
    if (r < 0)
        fail(c, "readonly", path, r);
}

/* ---- exec --------------------------------------------------------------- */

/* Skips slashes and "." components; returns the next component's length. */
static size_t next_component(const char **q)
{
    for (;;) {
        while (**q == '/')
            (*q)++;
        if ((*q)[0] == '.' && ((*q)[1] == '/' || (*q)[1] == 0)) {
            (*q)++;
            continue;
        }
        break;
    }
    size_t n = 0;
    while ((*q)[n] && (*q)[n] != '/')
        n++;
    return n;
}

static int component_is(const char *q, size_t n, const char *word)
{
    /* a loop, not memcmp: the join helper is built without libc */
    if (n != slen(word))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (q[i] != word[i])
            return 0;
    return 1;
}

/* True for /proc/self/fd/..., /proc/thread-self/fd/... and /proc/N/fd/...:
 * a command reached through a descriptor's magic link, which is where a
 * descriptor of the launching process would lead out of the container.
 * runc refuses them too. `dir` prefixes a relative path (the working
 * directory). */
static int through_proc_fd(const char *dir, const char *path)
{
    char full[4096];
    size_t pos = 0;
    full[0] = 0;
    if (path[0] != '/') {
        sappend(full, sizeof(full), &pos, dir ? dir : "/");
        sappend(full, sizeof(full), &pos, "/");
    }
    sappend(full, sizeof(full), &pos, path);
    const char *q = full;
    size_t n = next_component(&q);
    if (!component_is(q, n, "proc"))
        return 0;
    q += n;
    n = next_component(&q);
    int pid = n > 0;
    for (size_t i = 0; i < n; i++)
        if (q[i] < '0' || q[i] > '9')
            pid = 0;
    if (!pid && !component_is(q, n, "self") && !component_is(q, n, "thread-self"))
        return 0;
    q += n;
    n = next_component(&q);
    return component_is(q, n, "fd");
}

/* The child is about to execve: the "killed before it ran" that pc_spawn
 * left in the error is withdrawn (a failed execve writes its own). */
static void exec_starts(struct ctx *c)
{
    __atomic_store_n(&c->e->err, 0, __ATOMIC_SEQ_CST);
}

/* Finds argv[cmd_index] the way execvp does, in the container's PATH. With an
 * init in front only checks it (init executes it), so that "not found" and
 * "not executable" are still reported here, with their own exit codes; with
 * exec_fd likewise, then executes that program in its place (the built-in
 * hello-world image: never the installed file). */
__attribute__((noreturn)) static void exec_command(struct ctx *c)
{
    const struct pc_plan *p = c->p;
    const char *cmd = p->argv[p->cmd_index];
    const char *const *envp = p->envp;
    char path[4096];
    long r, saw_eacces = 0;
    int check_only = p->init_fd >= 0 || p->exec_fd >= 0;

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
        if (through_proc_fd(p->cwd, path)) {
            if (direct)
                fail(c, "exec", "a command under /proc/*/fd is refused", -EPERM);
            continue;  /* a PATH entry there is skipped */
        }

        if (check_only) {
            struct stat st;
            r = S4(SYS_newfstatat, AT_FDCWD, path, &st, 0);
            if (r == 0 && !S_ISREG(st.st_mode))
                r = -EACCES;
            if (r == 0)
                r = S3(SYS_faccessat, AT_FDCWD, path, X_OK);
            if (r == 0 && p->init_fd >= 0) {
                exec_starts(c);
                rsys(SYS_execveat, p->init_fd, (long)"", (long)p->argv, (long)envp, AT_EMPTY_PATH, 0);
                fail(c, "exec", "pycontain-init", -EIO);
            }
            if (r == 0) {
                exec_starts(c);
                r = rsys(SYS_execveat, p->exec_fd, (long)"", (long)(p->argv + p->cmd_index), (long)envp,
                         AT_EMPTY_PATH, 0);
                fail(c, "exec", cmd, r < 0 ? r : -EIO);
            }
        } else {
            exec_starts(c);
            r = S3(SYS_execve, path, p->argv + p->cmd_index, envp);
        }
        if (r == -EACCES)
            saw_eacces = 1;
        else if (r != -ENOENT && r != -ENOTDIR)
            fail(c, "exec", cmd, r);
    }
    fail(c, "exec", cmd, saw_eacces ? -EACCES : -ENOENT);
}

/* ---- hooks inside the container (an OCI bundle's) ---------------------- */

#define PC_HOOK_BEFORE_PIVOT 1  /* struct pc_hook.when: createContainer */
#define PC_HOOK_BEFORE_EXEC 2   /* startContainer */

static const char *hook_kind(int when)
{
    return when == PC_HOOK_BEFORE_PIVOT ? "createContainer hook" : "startContainer hook";
}

/* Runs one hook as runc and crun do: a child of the container's process, with
 * everything that process has at this point (namespaces, cgroup, ids), the
 * state on stdin, stdout and stderr kept (the last bytes go into the error).
 * It fails the launch when the hook cannot run, exits non-zero or outlives
 * its timeout (then it is killed). Every signal is blocked here (the
 * launcher's mask), so a hook that does not read its stdin is EPIPE, not
 * SIGPIPE. */
/* What is left of a hook's timeout (ms, 0 once past it) since start. */
static long hook_ms_left(const struct timespec *start, int timeout)
{
    struct timespec now;
    S2(SYS_clock_gettime, CLOCK_MONOTONIC, &now);
    long spent = (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
    return spent >= timeout * 1000L ? 0 : timeout * 1000L - spent;
}

static void run_hook(struct ctx *c, const struct pc_hook *h)
{
    const char *kind = hook_kind(h->when);
    int in[2], out[2];
    CHECK(c, S2(SYS_pipe2, in, O_CLOEXEC), "pipe", kind);
    CHECK(c, S2(SYS_pipe2, out, O_CLOEXEC), "pipe", kind);
#ifdef RAW_SYSCALL_NATIVE
    long pid = S5(SYS_clone, SIGCHLD, 0, 0, 0, 0);
#else
    long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    pid = pid < 0 ? -errno : pid;
#endif
    if (pid == 0) {  /* a copy of our memory: ours to use until execve */
        S3(SYS_dup3, in[0], 0, 0);
        S3(SYS_dup3, out[1], 1, 0);
        S3(SYS_dup3, out[1], 2, 0);
        uint64_t none = 0;
        S4(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
        long r = S3(SYS_execve, h->path, h->argv, h->envp);
        char msg[64];
        size_t pos = 0;
        msg[0] = 0;
        sappend(msg, sizeof(msg), &pos, r == -ENOENT ? "cannot execute: no such file" : "cannot execute: errno ");
        if (r != -ENOENT)
            sappend_int(msg, sizeof(msg), &pos, -r);
        S3(SYS_write, 1, msg, pos);
        die_quietly(127);
    }
    S1(SYS_close, in[0]);
    S1(SYS_close, out[1]);
    if (pid < 0)
        fail(c, "clone", kind, pid);

    char num[24];
    size_t pos = 0;
    num[0] = 0;
    sappend_int(num, sizeof(num), &pos, S0(SYS_getpid));
    S3(SYS_write, in[1], h->state_head, slen(h->state_head));
    S3(SYS_write, in[1], num, pos);
    S3(SYS_write, in[1], h->state_tail, slen(h->state_tail));
    S1(SYS_close, in[1]);

    /* its output until EOF (or the timeout), then its status */
    char tail[256];
    size_t kept = 0;
    long pidfd = S2(SYS_pidfd_open, pid, 0);
    struct timespec start;
    S2(SYS_clock_gettime, CLOCK_MONOTONIC, &start);
    int timed_out = 0, open_out = 1;
    while (open_out) {
        long wait_ms = h->timeout > 0 ? hook_ms_left(&start, h->timeout) : -1;
        struct pollfd pf = {out[0], POLLIN, 0};
        long n;
        if (wait_ms >= 0) {
            struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
            n = S5(SYS_ppoll, &pf, 1, &ts, NULL, 0);
        } else {
            n = S5(SYS_ppoll, &pf, 1, NULL, NULL, 0);
        }
        if (n == -EINTR)
            continue;
        if (n == 0) {
            timed_out = 1;
            break;
        }
        char buf[512];
        long r = S3(SYS_read, out[0], buf, sizeof(buf));
        if (r <= 0) {
            open_out = 0;
            break;
        }
        for (long i = 0; i < r; i++) {  /* the last bytes, newlines as spaces */
            if (kept == sizeof(tail) - 1) {  /* no libc in the join helper's build: no memmove */
                for (size_t k = 1; k < kept; k++)
                    tail[k - 1] = tail[k];
                kept--;
            }
            tail[kept++] = buf[i] == '\n' ? ' ' : buf[i];
        }
    }
    S1(SYS_close, out[0]);
    /* its output closed: the timeout still holds until it exits */
    while (!timed_out && h->timeout > 0 && pidfd >= 0) {
        long wait_ms = hook_ms_left(&start, h->timeout);
        struct pollfd pf = {(int)pidfd, POLLIN, 0};
        struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
        long n = S5(SYS_ppoll, &pf, 1, &ts, NULL, 0);
        if (n == -EINTR)
            continue;
        timed_out = n == 0;
        break;
    }
    if (timed_out) {
        if (pidfd >= 0)
            S4(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        else
            S2(SYS_kill, pid, SIGKILL);
    }
    int status = 0;
    long w;
    do
        w = S4(SYS_wait4, pid, &status, 0, NULL);
    while (w == -EINTR);
    if (pidfd >= 0)
        S1(SYS_close, pidfd);
    while (kept && tail[kept - 1] == ' ')
        kept--;
    tail[kept] = 0;

    char detail[sizeof(c->e->detail)];
    pos = 0;
    detail[0] = 0;
    sappend(detail, sizeof(detail), &pos, h->path);
    if (timed_out) {
        sappend(detail, sizeof(detail), &pos, ": did not finish within ");
        sappend_int(detail, sizeof(detail), &pos, h->timeout);
        sappend(detail, sizeof(detail), &pos, " s");
        fail(c, kind, detail, -ETIME);
    }
    if (w < 0)
        fail(c, kind, detail, w);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return;
    if (WIFEXITED(status)) {
        sappend(detail, sizeof(detail), &pos, ": exited with status ");
        sappend_int(detail, sizeof(detail), &pos, WEXITSTATUS(status));
    } else {
        sappend(detail, sizeof(detail), &pos, ": killed by signal ");
        sappend_int(detail, sizeof(detail), &pos, WTERMSIG(status));
    }
    if (kept) {
        sappend(detail, sizeof(detail), &pos, ": ");
        sappend(detail, sizeof(detail), &pos, tail);
    }
    fail(c, kind, detail, -ECANCELED);
}

static void run_hooks(struct ctx *c, int when)
{
    for (int i = 0; i < c->p->n_hooks; i++)
        if (c->p->hooks[i].when == when)
            run_hook(c, &c->p->hooks[i]);
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

/* Without close_range (before Linux 5.9): every descriptor /proc/self/fd
 * lists but `keep` (and the listing's own) closed, or with cloexec_only
 * marked close-on-exec. */
static void each_listed_fd(struct ctx *c, const int *keep, int n_keep, int cloexec_only)
{
    long dfd = S4(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dfd < 0)
        fail(c, "close fds", "/proc/self/fd", dfd);
    char buf[4096];
    for (;;) {
        long got = S3(SYS_getdents64, dfd, buf, sizeof(buf));
        if (got <= 0)
            break;
        for (long off = 0; off < got;) {
            unsigned short reclen = *(unsigned short *)(buf + off + 16);
            const char *name = buf + off + 19;
            long fd = 0;
            int ok = *name != 0;
            for (const char *q = name; *q; q++) {
                if (*q < '0' || *q > '9')
                    ok = 0;
                fd = fd * 10 + (*q - '0');
            }
            for (int i = 0; ok && i < n_keep; i++)
                if (keep[i] == fd)
                    ok = 0;
            if (ok && fd != dfd) {
                if (cloexec_only)
                    S3(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
                else
                    S1(SYS_close, fd);
            }
            off += reclen;
        }
    }
    S1(SYS_close, dfd);
}

/* Right after clone, before any path is followed: every descriptor but the
 * plan's own (stdio, the sync socket, namespaces to join, cgroup files, the
 * init program, the parent's pidfd) is closed. Without CLONE_FILES the child
 * holds a copy of each descriptor the launching process had open, and one of
 * a host directory (a volume's, held for its lock) is a way out through
 * /proc/self/fd/N (CVE-2024-21626; runc and crun close them too). */
static void close_leaked_fds(struct ctx *c)
{
    const struct pc_plan *p = c->p;
    int keep[MAX_PLAN_FDS];
    int n = 0;
#define KEEP(fd)                                                   \
    do {                                                           \
        if ((fd) >= 0) {                                           \
            if (n == MAX_PLAN_FDS)                                 \
                fail(c, "close fds", "too many descriptors", -EMFILE); \
            keep[n++] = (fd);                                      \
        }                                                          \
    } while (0)
    for (int i = 0; i < 3; i++) {
        KEEP(i);
        KEEP(p->stdio[i]);
    }
    KEEP(p->sync_fd);
    KEEP(p->init_fd);
    KEEP(p->exec_fd);
    KEEP(c->parent_pidfd);
    KEEP(c->report_fd);
    for (int i = 0; i < p->n_joins; i++)
        KEEP(p->joins[i].fd);
    for (int i = 0; i < p->n_cgroup_fds; i++)
        KEEP(p->cgroup_fds[i]);
    for (int i = 0; i < p->n_mounts; i++)
        KEEP(p->mounts[i].tree_fd);
#undef KEEP
    for (int i = 1; i < n; i++) /* insertion sort: a handful of numbers */
        for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    unsigned int lo = 0;
    long r = 0;
    for (int i = 0; i <= n && r == 0; i++) {
        unsigned int hi = i < n ? (unsigned int)keep[i] : ~0U;
        if (hi > lo)
            r = S3(SYS_close_range, lo, hi - 1 + (i == n), 0);
        if (i < n && (unsigned int)keep[i] + 1 > lo)
            lo = (unsigned int)keep[i] + 1;
    }
    if (r == 0)
        return;
    /* before Linux 5.9: each descriptor /proc/self/fd lists (the host's /proc) */
    each_listed_fd(c, keep, n, 0);
}

/* The parent-death signal, (re)armed: clone does not carry it, and changing
 * ids or raising capabilities clears it (commit_creds). The parent may have
 * died before it was armed: its pidfd says so (runc compares getppid, which
 * a new pid namespace answers with 0 either way). */
static void arm_pdeathsig(struct ctx *c)
{
    const struct pc_plan *p = c->p;
    if (!p->pdeathsig)
        return;
    CHECK(c, S2(SYS_prctl, PR_SET_PDEATHSIG, p->pdeathsig), "prctl", "parent-death signal");
    if (c->parent_pidfd < 0)
        return;
    struct pollfd pfd = {.fd = c->parent_pidfd, .events = POLLIN};
    struct { long sec, nsec; } now = {0, 0};
    if (S5(SYS_ppoll, &pfd, 1, &now, NULL, 8) > 0)
        die_quietly(125);  /* nobody is left to start this container for */
}

static void close_other_fds(struct ctx *c)
{
    /* Everything but 0, 1, 2 closes at exec: no descriptor of the launching
     * process (a way out of the container) may survive into it. */
    long r = S3(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
    if (r == 0)
        return;
    static const int stdio[] = {0, 1, 2};
    each_listed_fd(c, stdio, 3, 1);
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
    /* sock_fprog's length is an unsigned short: a longer filter would load
     * truncated, a different program from the one the plan holds */
    if (p->seccomp_len <= 0 || p->seccomp_len > PC_BPF_MAXINSNS)
        fail(c, "seccomp", "filter length", -EINVAL);
    struct sock_fprog prog = {
        .len = (unsigned short)p->seccomp_len,
        .filter = (struct sock_filter *)p->seccomp_bpf,
    };
    CHECK(c, S3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog), "seccomp", "load filter");
}

/* The working directory, resolved inside the container's root ("/" by now)
 * so that neither a symlink nor a magic link (/proc/self/fd/N: a descriptor
 * of the launching process, CVE-2024-21626) leads out, then checked the way
 * runc's verifyCwd and crun's libcrun_safe_chdir do: getcwd must name a path
 * inside the root ("(unreachable)/..." otherwise). A missing one is made,
 * owned by the container's user, as docker and runc do. Before Linux 5.6:
 * chdir by path (every other descriptor is closed by now) and the check. */
static void enter_cwd(struct ctx *c)
{
    const struct pc_plan *p = c->p;
    long r = S4(SYS_openat, AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    if (r < 0)
        fail(c, "chdir", "/", r);
    c->rootfd = (int)r;
    long fd = open_in_root(c, p->cwd, O_PATH | O_DIRECTORY);
    if (fd == -ENOENT && p->mkdir_cwd) {
        mkdir_p_in_root(c, p->cwd, 0755, 1);
        fd = open_in_root(c, p->cwd, O_PATH | O_DIRECTORY);
    }
    if (fd == -ELOOP && (p->no_openat2 || S4(SYS_openat2, -1, "", NULL, 0) == -ENOSYS))
        fd = S4(SYS_openat, AT_FDCWD, p->cwd, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    S1(SYS_close, c->rootfd);
    c->rootfd = -1;
    if (fd < 0)
        fail(c, "chdir", p->cwd, fd);
    r = S1(SYS_fchdir, fd);
    S1(SYS_close, fd);
    if (r < 0)
        fail(c, "chdir", p->cwd, r);
    char here[4096];
    r = S2(SYS_getcwd, here, sizeof(here));
    if (r >= 0 && here[0] != '/')
        r = -EPERM;
    if (r < 0) {
        char what[4200];
        size_t pos = 0;
        what[0] = 0;
        sappend(what, sizeof(what), &pos, p->cwd);
        sappend(what, sizeof(what), &pos, ": outside the container's root");
        fail(c, "chdir", what, r);
    }
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

    if (p->close_fds)
        close_leaked_fds(c);
    /* what the container creates gets the plan's modes, whatever the
     * launcher's umask (022 unless asked: runc and crun default to it too,
     * an OCI bundle may say process.user.umask) */
    S1(SYS_umask, p->umask & 0777);
    arm_pdeathsig(c);

    /* Before the first setns and until execve (which sets it again): no
     * process of a joined namespace may read or trace this one (as runc's
     * nsexec). Made dumpable again only while the parent writes the id maps
     * of a user namespace of ours (it needs our /proc files). */
    if (p->n_joins)
        S2(SYS_prctl, PR_SET_DUMPABLE, 0);

    int joined_user = 0;
    for (int i = 0; i < p->n_joins; i++) {
        CHECK(c, S2(SYS_setns, p->joins[i].fd, p->joins[i].nstype), "setns", "join namespace");
        joined_user |= p->joins[i].nstype == CLONE_NEWUSER;
    }
    if (joined_user && (p->unshare_flags & CLONE_NEWNS)) {
        /* an OCI bundle in a joined user namespace, with a root of its own to
         * make: as that namespace's root (our ids are the host's, unmapped
         * there: files could not be made), as runc's nsexec does */
        CHECK(c, S3(SYS_setresgid, 0, 0, 0), "setgid", "root of the joined user namespace");
        CHECK(c, S3(SYS_setresuid, 0, 0, 0), "setuid", "root of the joined user namespace");
    }
    if (p->unshare_flags)
        CHECK(c, S1(SYS_unshare, p->unshare_flags), "unshare", "namespaces after the joins");

    if (p->fork_after_join) {
        /* Only the join helper gets here (pc_spawn refuses such plans): its
         * memory is its own. setns into a pid namespace only places our
         * children in it: go on in a forked child that is our parent's child
         * (CLONE_PARENT), say its pid, and leave. The namespace descriptors
         * stay behind. */
        for (int i = 0; i < p->n_joins; i++)
            S1(SYS_close, p->joins[i].fd);
#ifdef RAW_SYSCALL_NATIVE
        long pid = S5(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
#else
        long pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
        pid = pid < 0 ? -errno : pid;
#endif
        if (pid == 0)
            return child_continue(c);
        if (pid < 0)
            fail(c, "clone", "into the joined namespaces", pid);
        char msg[1 + sizeof(int)];
        int ipid = (int)pid;
        msg[0] = REPORT_PID;
        memcpy(msg + 1, &ipid, sizeof(int));
        S3(SYS_write, c->report_fd, msg, sizeof(msg));
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
    /* the peer of this very master, not whatever /dev/pts/N names
     * (TIOCGPTPEER, Linux 4.13); by path before that */
    long s = S3(SYS_ioctl, m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s == -EINVAL || s == -ENOTTY)
        s = S4(SYS_openat, AT_FDCWD, path, O_RDWR | O_NOCTTY | O_CLOEXEC, 0);
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

/* A wait for the parent: says `say` ('R': the "created" state; 'H': mounts
 * made, before pivot_root), then waits for the parent's one byte.
 *
 * However long it waits, the child shares its launcher's memory (CLONE_VM),
 * and the dumpable flag that decides who may ptrace it or open its
 * /proc/PID/mem belongs to that memory: the caller's (1), unless an id
 * change cleared it. A pool's container waits with its ids and capabilities
 * already narrowed, so a host process of its uid (root without
 * CAP_SYS_PTRACE, or the container's user) would pass the ptrace checks
 * and could write into a root Python. Non-dumpable until execve (which gives
 * the command memory and a flag of its own); launch_end() gives the caller
 * its flag back once no launch sharing its memory is before its exec. Not
 * for an unprivileged launcher: its memory is no more than its own user
 * may trace, and newuidmap would refuse its other children's id maps (the
 * flag is shared by all of them). */
static void wait_for_parent(struct ctx *c, char say)
{
    char b = say;
    if (c->undumpable_wait)
        S2(SYS_prctl, PR_SET_DUMPABLE, 0);
    if (S3(SYS_write, c->p->sync_fd, &b, 1) != 1)
        die_quietly(125);
    if (S3(SYS_read, c->p->sync_fd, &b, 1) != 1)
        die_quietly(125);
}

static int child_continue(void *arg)
{
    struct ctx *c = arg;
    const struct pc_plan *p = c->p;
    long r;

    if (p->fork_after_join)  /* not inherited by a new process */
        arm_pdeathsig(c);

    if (p->wait_maps) {
        char b;
        if (p->n_joins)  /* newuidmap writes only to a dumpable process's maps */
            S2(SYS_prctl, PR_SET_DUMPABLE, 1);
        r = S3(SYS_read, p->sync_fd, &b, 1);
        if (r != 1)
            die_quietly(125); /* the parent gave up; it reports why */
        if (p->n_joins)
            S2(SYS_prctl, PR_SET_DUMPABLE, 0);
    }
    if (p->wait_maps && (p->clone_flags & CLONE_NEWUSER)) {
        /* the maps are written: become the new user namespace's root (our
         * ids are the launcher's, which the maps need not contain: root's
         * when root made it for an OCI bundle); a no-op when they map to 0 */
        CHECK(c, S3(SYS_setresgid, 0, 0, 0), "setgid", "root of the user namespace");
        CHECK(c, S3(SYS_setresuid, 0, 0, 0), "setuid", "root of the user namespace");
        arm_pdeathsig(c);  /* cleared by the id change */
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
        if ((p->root_propagation & MS_SHARED) && p->root_path) {
            /* shared: mounts keep their host peers, but neither the namespace's
             * root nor the one our root is bound in (pivot_root refuses shared
             * parents; the bind would appear on the host), as runc does */
            CHECK(c, S5(SYS_mount, NULL, "/", NULL, MS_PRIVATE, NULL), "mount", "make / private");
            if (p->root_parent)
                CHECK(c, S5(SYS_mount, NULL, p->root_parent, NULL, MS_PRIVATE, NULL), "mount", p->root_parent);
        }
        if (p->scratch)
            make_scratch(c);
    }
    if (((p->clone_flags | p->unshare_flags) & CLONE_NEWNS) && p->root_path) {
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

        /* before pivot_root, while the host's /dev/null is at hand; targets
         * resolved inside the new root like every mount's */
        if (p->n_masked_paths) {
            open_host_null(c);
            for (int i = 0; i < p->n_masked_paths; i++)
                mask_path(c, p->masked_paths[i]);
            S1(SYS_close, c->null_fd);
            c->null_fd = -1;
        }
        for (int i = 0; i < p->n_readonly_paths; i++)
            readonly_path(c, p->readonly_paths[i]);

        /* an OCI runtime's prestart and createRuntime hooks run now, in the
         * parent, before the createContainer ones (the spec's order) */
        if (p->wait_mounted)
            wait_for_parent(c, 'H');
        /* createContainer: in the container's mount namespace with every
         * mount made, the host's paths still at hand (runc, crun) */
        run_hooks(c, PC_HOOK_BEFORE_PIVOT);

        /* pivot_root(".", ".") stacks the old root on the new one; detaching
         * it leaves only the new root, with no directory for the old one. */
        long oldroot = -1;
        if (p->root_propagation & MS_SHARED) {
            oldroot = S4(SYS_openat, AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
            if (oldroot < 0)
                fail(c, "open", "/", oldroot);
        }
        CHECK(c, S1(SYS_fchdir, c->rootfd), "chdir", p->root_path);
        CHECK(c, S2(SYS_pivot_root, ".", "."), "pivot_root", p->root_path);
        /* the old root, with its submounts still peers of the host's under
         * shared propagation: slave before it goes, or its unmounting would
         * unmount them on the host too. Reached through a descriptor, as runc
         * does: "." is the new root for mount(2) (only umount follows to the
         * mount on top), and the new root's binds must stay the host's peers. */
        if (p->root_propagation & MS_SHARED) {
            CHECK(c, S1(SYS_fchdir, oldroot), "chdir", "the old root");
            CHECK(c, S5(SYS_mount, NULL, ".", NULL, MS_SLAVE | MS_REC, NULL), "mount", "make the old root a slave");
        }
        CHECK(c, S2(SYS_umount2, ".", MNT_DETACH), "umount", "old root");
        if (oldroot >= 0)
            S1(SYS_close, oldroot);
        CHECK(c, S1(SYS_chdir, "/"), "chdir", "/");
        S1(SYS_close, c->rootfd);
        c->rootfd = -1;
        if (p->root_propagation & MS_SHARED)
            CHECK(c, S5(SYS_mount, NULL, "/", NULL, p->root_propagation, NULL), "mount", "make / shared");

        if (p->root_readonly) {
            unsigned long keep = locked_flags("/");
            CHECK(c, S5(SYS_mount, NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL),
                  "remount", "/ read-only");
        }
    }

    if (p->hostname)
        CHECK(c, S2(SYS_sethostname, p->hostname, slen(p->hostname)), "sethostname", p->hostname);
    if (p->domainname)
        CHECK(c, S2(SYS_setdomainname, p->domainname, slen(p->domainname)), "setdomainname", p->domainname);

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

    if (p->cwd)
        enter_cwd(c);

    /* the terminal exists at "created" (the parent receives its master
     * before the created message, as an OCI runtime's create hands it out) */
    if (p->tty)
        setup_tty(c);

    if (p->wait_start == PC_WAIT_CREATED)
        wait_for_parent(c, 'R');

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
    if (p->wait_start == PC_WAIT_BEFORE_EXEC && c->undumpable_wait)
        S2(SYS_prctl, PR_SET_DUMPABLE, 0);  /* before they narrow: see wait_for_parent */
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
    /* (uid_t)-1 means "leave unchanged" to setresuid: the process would stay root */
    if (p->uid == ~0U || p->gid == ~0U)
        fail(c, "setuid", "4294967295 is not a user or group id", -EINVAL);
    for (int i = 0; i < p->n_groups; i++)
        if (p->groups[i] == ~0U)
            fail(c, "setgroups", "4294967295 is not a group id", -EINVAL);
    if (p->set_groups)
        CHECK(c, S2(SYS_setgroups, p->n_groups, p->groups), "setgroups", "");
    CHECK(c, S2(SYS_prctl, PR_SET_KEEPCAPS, 1), "prctl", "keep capabilities");
    CHECK(c, S3(SYS_setresgid, p->gid, p->gid, p->gid), "setgid", "");
    CHECK(c, S3(SYS_setresuid, p->uid, p->uid, p->uid), "setuid", "");
    set_capabilities(c);
    arm_pdeathsig(c);  /* cleared by the id and capability changes just made */
    if (p->no_new_privs)
        CHECK(c, S5(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl", "no_new_privs");
    if (p->seccomp_bpf && p->no_new_privs)
        load_seccomp(c);

    /* A warm pool's container waits here, everything done but the exec and
     * with every signal but SIGKILL still blocked: the command it gets (argv
     * in the plan, written by the parent meanwhile) runs at once. Its filter
     * must allow read and write (Docker's does). */
    if (p->wait_start == PC_WAIT_BEFORE_EXEC)
        wait_for_parent(c, 'R');
    /* startContainer: inside the container, as its process, before its
     * command (runc, crun); then the personality, which the hooks must not get */
    run_hooks(c, PC_HOOK_BEFORE_EXEC);
    if (p->set_personality)
        CHECK(c, S1(SYS_personality, p->personality), "personality", "");
    /* pycontain-init takes over blocked: a signal sent before it waits for
     * signals stays pending for it to forward, instead of hitting a pid 1
     * that has no default actions. It unblocks for the command it runs. */
    if (p->init_fd < 0) {
        uint64_t none = 0;
        S4(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
    }
    exec_command(c);
}

/* ---- the flat plan: what crosses to the join helper ----------------------- */

/* A plan copied into one buffer, every pointer an offset from its start (the
 * plan itself sits at 0, so offset 0 is NULL). One walk over every pointer of
 * a plan serves all four steps: measure, copy, to offsets (parent), back to
 * pointers (helper). A new pointer field in struct pc_plan goes here too. */
enum { PLAN_MEASURE, PLAN_COPY, PLAN_TO_OFFSETS, PLAN_FROM_OFFSETS };

struct plan_walk {
    int mode;
    char *buf;      /* the flat plan (PLAN_COPY: being filled) */
    size_t used;    /* PLAN_MEASURE, PLAN_COPY: bytes so far */
};

#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

/* Handles the pointer in *slot (to len bytes) and returns where its target
 * can be read now, to walk the pointers it holds in turn. */
static void *plan_slot(struct plan_walk *w, void *slot_addr, size_t len)
{
    void **slot = slot_addr;
    void *old = *slot;
    if (!old)
        return NULL;
    switch (w->mode) {
    case PLAN_MEASURE:
        w->used += ALIGN8(len);
        return old;
    case PLAN_COPY: {
        char *dst = w->buf + w->used;
        memcpy(dst, old, len);
        w->used += ALIGN8(len);
        *slot = dst;
        return dst;
    }
    case PLAN_TO_OFFSETS:
        *slot = (void *)((char *)old - w->buf);
        return old;
    default:
        *slot = w->buf + (uintptr_t)old;
        return *slot;
    }
}

/* the length of what a pointer points to, where the walk needs it */
#define LEN(w, n) ((w)->mode <= PLAN_COPY ? (size_t)(n) : 0)
#define STR(w, f) plan_slot((w), &(f), LEN((w), slen((const char *)(f)) + 1))

static void plan_walk_strings(struct plan_walk *w, void *slot, int n)
{
    /* NULL-terminated when n < 0 (argv, envp); n entries plus a NULL otherwise */
    char **arr = (char **)*(void **)slot;
    size_t count = 0;
    if (arr && w->mode <= PLAN_COPY)
        while (n < 0 ? arr[count] != NULL : count < (size_t)n)
            count++;
    arr = plan_slot(w, slot, LEN(w, (count + 1) * sizeof(char *)));
    for (size_t i = 0; arr && (n < 0 ? arr[i] != NULL : i < (size_t)n); i++)
        STR(w, arr[i]);
}

static void plan_walk(struct plan_walk *w, struct pc_plan *p)
{
    plan_slot(w, &p->joins, LEN(w, p->n_joins * sizeof(struct pc_join)));
    plan_slot(w, &p->cgroup_fds, LEN(w, p->n_cgroup_fds * sizeof(int)));
    STR(w, p->scratch);
    STR(w, p->scratch_data);
    struct pc_file *files = plan_slot(w, &p->files, LEN(w, p->n_files * sizeof(struct pc_file)));
    for (int i = 0; files && i < p->n_files; i++) {
        STR(w, files[i].path);
        plan_slot(w, &files[i].content, LEN(w, files[i].len));
    }
    STR(w, p->root_path);
    STR(w, p->root_source);
    STR(w, p->root_fstype);
    STR(w, p->root_data);
    STR(w, p->root_device);
    STR(w, p->root_parent);
    struct pc_mount *mounts = plan_slot(w, &p->mounts, LEN(w, p->n_mounts * sizeof(struct pc_mount)));
    for (int i = 0; mounts && i < p->n_mounts; i++) {
        STR(w, mounts[i].source);
        STR(w, mounts[i].target);
        STR(w, mounts[i].fstype);
        STR(w, mounts[i].data);
    }
    struct pc_node *nodes = plan_slot(w, &p->nodes, LEN(w, p->n_nodes * sizeof(struct pc_node)));
    for (int i = 0; nodes && i < p->n_nodes; i++)
        STR(w, nodes[i].path);
    struct pc_symlink *links = plan_slot(w, &p->symlinks, LEN(w, p->n_symlinks * sizeof(struct pc_symlink)));
    for (int i = 0; links && i < p->n_symlinks; i++) {
        STR(w, links[i].target);
        STR(w, links[i].path);
    }
    plan_walk_strings(w, &p->masked_paths, p->n_masked_paths);
    plan_walk_strings(w, &p->readonly_paths, p->n_readonly_paths);
    STR(w, p->hostname);
    STR(w, p->domainname);
    struct pc_hook *hooks = plan_slot(w, &p->hooks, LEN(w, p->n_hooks * sizeof(struct pc_hook)));
    for (int i = 0; hooks && i < p->n_hooks; i++) {
        STR(w, hooks[i].path);
        plan_walk_strings(w, &hooks[i].argv, -1);
        plan_walk_strings(w, &hooks[i].envp, -1);
        STR(w, hooks[i].state_head);
        STR(w, hooks[i].state_tail);
    }
    plan_slot(w, &p->rlimits, LEN(w, p->n_rlimits * sizeof(struct pc_rlimit)));
    STR(w, p->cwd);
    plan_slot(w, &p->groups, LEN(w, p->n_groups * sizeof(unsigned int)));
    plan_slot(w, &p->seccomp_bpf, LEN(w, p->seccomp_len * 8));
    plan_walk_strings(w, &p->argv, -1);
    plan_walk_strings(w, &p->envp, -1);
    STR(w, p->path_env);
}

#ifdef PC_JOIN_HELPER
/* ---- the join helper's own start (src/join.c builds it) ------------------- */

static int parse_fd(const char *s)
{
    int v = 0;
    if (!s || !*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 1000000)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

static long read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        long r = S3(SYS_read, fd, (char *)buf + got, n - got);
        if (r == -EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? r : -EIO;
        got += (size_t)r;
    }
    return 0;
}

static void set_cloexec(int fd)
{
    if (fd > 2)
        S3(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
}

/* pycontain-join PLAN_FD REPORT_FD: reads the flat plan, then goes on as the
 * launcher's child would (child_main), with fork_after_join. */
int pc_main(int argc, char **argv, char **envp)
{
    (void)envp;
    /* first of all: nothing may read this process once it has joined */
    S2(SYS_prctl, PR_SET_DUMPABLE, 0);
    struct pc_error e;
    memset(&e, 0, sizeof(e));
    struct ctx c = {.p = NULL, .e = &e, .rootfd = -1, .root_device_fd = -1, .report_fd = -1,
                    .parent_pidfd = -1, .null_fd = -1};
    if (argc != 3)
        return 125;
    int plan_fd = parse_fd(argv[1]);
    c.report_fd = parse_fd(argv[2]);
    if (plan_fd < 0 || c.report_fd < 0)
        return 125;
    set_cloexec(c.report_fd);

    uint64_t size = 0;
    long r = read_full(plan_fd, &size, sizeof(size));
    if (r < 0)
        fail(&c, "join", "read the plan", r);
    if (size < sizeof(struct pc_plan) || size > (64u << 20))
        fail(&c, "join", "read the plan", -EINVAL);
    long addr = rsys(SYS_mmap, 0, (long)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (addr < 0 && addr > -4096)
        fail(&c, "join", "memory for the plan", addr);
    r = read_full(plan_fd, (void *)addr, size);
    if (r < 0)
        fail(&c, "join", "read the plan", r);
    S1(SYS_close, plan_fd);

    struct pc_plan *p = (struct pc_plan *)addr;
    struct plan_walk w = {.mode = PLAN_FROM_OFFSETS, .buf = (char *)addr, .used = 0};
    plan_walk(&w, p);
    c.p = p;

    /* The launcher cleared close-on-exec on the descriptors the plan names
     * so that they reached this program; they close at the command's exec
     * again, as they would have without this program in between. */
    set_cloexec(p->sync_fd);
    for (int i = 0; i < p->n_cgroup_fds; i++)
        set_cloexec(p->cgroup_fds[i]);
    for (int i = 0; i < p->n_mounts; i++)
        set_cloexec(p->mounts[i].tree_fd);
    for (int i = 0; i < 3; i++)
        set_cloexec(p->stdio[i]);
    set_cloexec(p->init_fd);
    set_cloexec(p->exec_fd);
    return child_main(&c);
}

#else
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

/* The caller's dumpable flag. A CLONE_VM child shares it (it belongs to the
 * memory): the child clears it before it joins a namespace, and the kernel
 * clears it when the child changes its ids. Put back once no launch that
 * shares our memory is still before its exec. */
static char dumpable_lock;
static int launches_in_flight;
static int caller_dumpable;

static void launch_begin(struct pc_child *child)
{
    while (__atomic_test_and_set(&dumpable_lock, __ATOMIC_ACQUIRE))
        ;
    if (launches_in_flight++ == 0)
        caller_dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    __atomic_clear(&dumpable_lock, __ATOMIC_RELEASE);
    child->launching = 1;
}

static void launch_end(struct pc_child *child)
{
    if (!child->launching)
        return;
    child->launching = 0;
    while (__atomic_test_and_set(&dumpable_lock, __ATOMIC_ACQUIRE))
        ;
    if (--launches_in_flight == 0 && caller_dumpable >= 0 &&
        prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != caller_dumpable)
        prctl(PR_SET_DUMPABLE, caller_dumpable, 0, 0, 0);
    __atomic_clear(&dumpable_lock, __ATOMIC_RELEASE);
}

static void init_child(struct pc_child *child)
{
    child->pid = -1;
    child->pidfd = -1;
    child->stack = NULL;
    child->stack_size = 0;
    child->launching = 0;
    child->report_fd = -1;
}

int pc_spawn(const struct pc_plan *plan, struct pc_child *child, struct pc_error *err)
{
    memset(err, 0, sizeof(*err));
    init_child(child);
    if (plan->fork_after_join) {
        /* a process in a joined pid namespace must not share our memory */
        set_error(err, "clone", "a plan that joins a pid namespace goes through pc_join", EINVAL);
        return -1;
    }

    /* A guard page below the stack: an overflow faults instead of writing
     * over whatever the parent's heap has there. */
    size_t guard = (size_t)sysconf(_SC_PAGESIZE);
    size_t mapped = CHILD_STACK_SIZE + guard;
    void *stack = mmap(NULL, mapped, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (stack == MAP_FAILED) {
        set_error(err, "mmap", "child stack", errno);
        return -1;
    }
    if (mprotect(stack, guard, PROT_NONE) < 0) {
        set_error(err, "mprotect", "child stack guard", errno);
        munmap(stack, mapped);
        return -1;
    }
    char *usable = (char *)stack + guard;
    /* The context lives at the top of the child's own stack: in the non-vfork
     * mode it must outlive this function. */
    struct ctx *c = (struct ctx *)(usable + CHILD_STACK_SIZE - sizeof(struct ctx));
    c->p = plan;
    c->e = err;
    c->rootfd = -1;
    c->root_device_fd = -1;
    c->null_fd = -1;
    c->report_fd = -1;
    c->undumpable_wait = geteuid() == 0;
    /* Until the child reaches execve, the error says it was killed: a child
     * that dies without a word of its own (SIGKILL, the OOM killer) did not
     * start the container, whichever way the parent learns of its end. */
    set_error(err, "launch", "the container process was killed before it ran its command", EINTR);
    /* the child checks that its launcher still lives once it armed pdeathsig */
    c->parent_pidfd = plan->pdeathsig ? (int)syscall(SYS_pidfd_open, getpid(), 0) : -1;
    if (c->parent_pidfd < 0)
        c->parent_pidfd = -1;
    char *top = (char *)c - 64;
    top = (char *)((uintptr_t)top & ~(uintptr_t)15);

    unsigned long flags = (plan->clone_flags & ~(unsigned long)CLONE_NEWCGROUP) | CLONE_VM | SIGCHLD;
    if (plan->vfork)
        flags |= CLONE_VFORK;

    launch_begin(child);
    /* Into a joined pid namespace: setns only places our next children there,
     * so this thread's, around the clone. Its processes must not trace the
     * child, which shares our memory until execve: non-dumpable before it
     * exists there (launch_end gives the flag back). */
    int own_pidns = -1;
    if (plan->pid_ns_fd >= 0) {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        own_pidns = open("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC);
        if (own_pidns < 0 || setns(plan->pid_ns_fd, CLONE_NEWPID) < 0) {
            set_error(err, "setns", "the pid namespace to join", errno);
            if (own_pidns >= 0)
                close(own_pidns);
            launch_end(child);
            munmap(stack, mapped);
            return -1;
        }
    }
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
    if (own_pidns >= 0) {  /* back: cannot fail, our own active namespace */
        setns(own_pidns, CLONE_NEWPID);
        close(own_pidns);
    }
    if (c->parent_pidfd >= 0 && !plan->vfork)
        close(c->parent_pidfd);  /* the child has its own copy */

    if (pid < 0) {
        if (c->parent_pidfd >= 0 && plan->vfork)
            close(c->parent_pidfd);
        launch_end(child);
        munmap(stack, mapped);
        set_error(err, "clone", "", clone_errno);
        return -1;
    }
    child->pid = pid;
    child->pidfd = pidfd;
    if (plan->vfork) {
        /* suspended until the child exec'd or died: its stack is free */
        if (c->parent_pidfd >= 0)
            close(c->parent_pidfd);
        launch_end(child);
        munmap(stack, mapped);
    } else {
        child->stack = stack;
        child->stack_size = mapped;
    }
    return 0;
}

void pc_child_release(struct pc_child *child)
{
    if (child->report_fd >= 0) {
        close(child->report_fd);
        child->report_fd = -1;
    }
    launch_end(child);
    if (child->stack) {
        munmap(child->stack, child->stack_size);
        child->stack = NULL;
    }
}

/* ---- the join path ----------------------------------------------------------- */

#define JOIN_MAX_FDS 64

/* What the short-lived process that executes the join helper needs. It is a
 * CLONE_VM|CLONE_VFORK child, like posix_spawn's: our memory until its
 * execve, which comes before it joins anything. */
struct join_exec {
    struct ctx c;               /* for fail(): c.e is the caller's struct */
    int helper_fd;
    int keep[JOIN_MAX_FDS];     /* descriptors the helper gets (close-on-exec cleared) */
    int n_keep;
    char plan_arg[24], report_arg[24];
    char *argv[4];
    char *envp[1];
};

static int join_exec_main(void *arg)
{
    struct join_exec *j = arg;
    if (j->c.p->close_fds)  /* nothing else of ours reaches the helper (the command closes them anyway) */
        S3(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
    for (int i = 0; i < j->n_keep; i++)
        CHECK(&j->c, S3(SYS_fcntl, j->keep[i], F_SETFD, 0), "join", "a descriptor of the plan");
    long r = rsys(SYS_execveat, j->helper_fd, (long)"", (long)j->argv, (long)j->envp, AT_EMPTY_PATH, 0);
    fail(&j->c, "exec join helper", "pycontain-join", r);
}

static int join_keep(struct join_exec *j, int fd)
{
    if (fd < 0)
        return 0;
    if (j->n_keep >= JOIN_MAX_FDS)
        return -1;
    j->keep[j->n_keep++] = fd;
    return 0;
}

static void int_arg(char *buf, size_t cap, long v)
{
    size_t pos = 0;
    buf[0] = 0;
    sappend_int(buf, cap, &pos, v);
}

static int send_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t r = send(fd, buf, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Reads the helper's reports until EOF: the grandchild's pid, a failure. */
/* 0 once n bytes are read; -1 at EOF or an error before */
static long read_exactly(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void read_reports(int fd, struct pc_child *child, struct pc_error *err)
{
    char buf[4096];
    size_t len = 0;
    for (;;) {
        char *dst = len < sizeof(buf) ? buf + len : buf;  /* more than we expect: drained */
        size_t room = len < sizeof(buf) ? sizeof(buf) - len : sizeof(buf);
        ssize_t r = read(fd, dst, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (len < sizeof(buf))
            len += (size_t)r;
    }
    for (size_t off = 0; off < len;) {
        if (buf[off] == REPORT_PID && off + 1 + sizeof(int) <= len) {
            memcpy(&child->pid, buf + off + 1, sizeof(int));
            off += 1 + sizeof(int);
        } else if (buf[off] == REPORT_ERROR && off + 1 + sizeof(struct pc_error) <= len) {
            memcpy(err, buf + off + 1, sizeof(struct pc_error));
            err->stage[sizeof(err->stage) - 1] = 0;
            err->detail[sizeof(err->detail) - 1] = 0;
            off += 1 + sizeof(struct pc_error);
        } else {
            break;
        }
    }
}

int pc_join(const struct pc_plan *plan, int helper_fd, struct pc_child *child, struct pc_error *err)
{
    memset(err, 0, sizeof(*err));
    init_child(child);
    struct pc_plan measure = *plan;
    struct plan_walk w = {.mode = PLAN_MEASURE, .buf = NULL, .used = ALIGN8(sizeof(struct pc_plan))};
    plan_walk(&w, &measure);
    size_t size = w.used;
    char *flat = calloc(1, size);
    if (!flat) {
        set_error(err, "join", "memory for the plan", ENOMEM);
        return -1;
    }
    struct pc_plan *copy = (struct pc_plan *)flat;
    *copy = *plan;
    copy->fork_after_join = 1;
    w = (struct plan_walk){.mode = PLAN_COPY, .buf = flat, .used = ALIGN8(sizeof(struct pc_plan))};
    plan_walk(&w, copy);
    w.mode = PLAN_TO_OFFSETS;
    plan_walk(&w, copy);

    int plan_sv[2] = {-1, -1}, report[2] = {-1, -1};
    void *stack = MAP_FAILED;
    struct join_exec *j = NULL;
    int pid = -1, rc = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, plan_sv) < 0 || pipe2(report, O_CLOEXEC) < 0) {
        set_error(err, "join", "pipes to the join helper", errno);
        goto out;
    }
    stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (stack == MAP_FAILED) {
        set_error(err, "mmap", "child stack", errno);
        goto out;
    }
    j = (struct join_exec *)((char *)stack + CHILD_STACK_SIZE - sizeof(struct join_exec));
    memset(j, 0, sizeof(*j));
    j->c.p = plan;
    j->c.e = err;
    j->c.rootfd = j->c.root_device_fd = j->c.report_fd = j->c.parent_pidfd = j->c.null_fd = -1;
    j->helper_fd = helper_fd;
    int over = join_keep(j, plan_sv[1]) | join_keep(j, report[1]) | join_keep(j, plan->sync_fd) |
               join_keep(j, plan->init_fd) | join_keep(j, plan->exec_fd);
    for (int i = 0; i < plan->n_joins; i++)
        over |= join_keep(j, plan->joins[i].fd);
    for (int i = 0; i < plan->n_cgroup_fds; i++)
        over |= join_keep(j, plan->cgroup_fds[i]);
    for (int i = 0; i < plan->n_mounts; i++)
        over |= join_keep(j, plan->mounts[i].tree_fd);
    for (int i = 0; i < 3; i++)
        over |= join_keep(j, plan->stdio[i]);
    if (over) {
        set_error(err, "join", "too many descriptors in the plan", EMFILE);
        goto out;
    }
    int_arg(j->plan_arg, sizeof(j->plan_arg), plan_sv[1]);
    int_arg(j->report_arg, sizeof(j->report_arg), report[1]);
    j->argv[0] = "pycontain-join";
    j->argv[1] = j->plan_arg;
    j->argv[2] = j->report_arg;
    j->argv[3] = NULL;
    j->envp[0] = NULL;
    char *top = (char *)((uintptr_t)((char *)j - 64) & ~(uintptr_t)15);

    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid = clone(join_exec_main, top, CLONE_VM | CLONE_VFORK | SIGCHLD, j);
    int clone_errno = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(plan_sv[1]);
    close(report[1]);
    plan_sv[1] = report[1] = -1;
    if (pid < 0) {
        set_error(err, "clone", "the join helper", clone_errno);
        goto out;
    }
    if (err->err) {  /* it could not execute the helper */
        waitpid(pid, NULL, 0);
        goto out;
    }

    /* The helper reads it all before it does anything: if it died instead,
     * its report (or its status) says why, not this send. */
    uint64_t hdr = size;
    if (send_all(plan_sv[0], (const char *)&hdr, sizeof(hdr)) == 0)
        send_all(plan_sv[0], flat, size);
    close(plan_sv[0]);
    plan_sv[0] = -1;

    if (plan->wait_start || plan->wait_mounted) {
        /* its process waits for us: the pid (or the helper's failure) now,
         * the rest once it exec'd or died (pc_join_reports) */
        char head[1 + sizeof(int)];
        long got = read_exactly(report[0], head, sizeof(head));
        if (got == 0 && head[0] == REPORT_PID) {
            memcpy(&child->pid, head + 1, sizeof(int));
            child->report_fd = report[0];
            report[0] = -1;
        } else if (got == 0 && head[0] == REPORT_ERROR) {
            char rest[sizeof(struct pc_error)];
            memcpy(rest, head + 1, sizeof(int));
            if (read_exactly(report[0], rest + sizeof(int), sizeof(rest) - sizeof(int)) == 0) {
                memcpy(err, rest, sizeof(struct pc_error));
                err->stage[sizeof(err->stage) - 1] = 0;
                err->detail[sizeof(err->detail) - 1] = 0;
            }
        }
    } else {
        read_reports(report[0], child, err);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!err->err && child->pid <= 0)
        set_error(err, "join", WIFSIGNALED(status) ? "the join helper was killed" : "the join helper ended early",
                  EIO);
    if (child->pid > 0)
        child->pidfd = (int)syscall(434 /* pidfd_open */, child->pid, 0);
    rc = 0;
out:
    if (stack != MAP_FAILED)
        munmap(stack, CHILD_STACK_SIZE);
    for (int i = 0; i < 2; i++) {
        if (plan_sv[i] >= 0)
            close(plan_sv[i]);
        if (report[i] >= 0)
            close(report[i]);
    }
    free(flat);
    return rc;
}

int pc_bind_tree(const char *source, int recursive, unsigned long attrs, int userns_fd, int idmap_recursive,
                 struct pc_error *err)
{
    memset(err, 0, sizeof(*err));
    unsigned int rec = recursive ? PC_AT_RECURSIVE : 0;
    long tree = syscall(SYS_open_tree, AT_FDCWD, source, PC_OPEN_TREE_CLONE | O_CLOEXEC | rec);
    if (tree < 0) {
        set_error(err, "open_tree", source, errno);
        return -1;
    }
    if (attrs) {
        struct pc_mount_attr attr = {.attr_set = attrs};
        if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | rec, &attr, sizeof(attr)) < 0) {
            set_error(err, "mount_setattr", source, errno);
            close((int)tree);
            return -1;
        }
    }
    if (userns_fd >= 0) {
        struct pc_mount_attr attr = {.attr_set = PC_MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns_fd};
        if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (idmap_recursive ? PC_AT_RECURSIVE : 0), &attr,
                    sizeof(attr)) < 0) {
            set_error(err, "idmapped mount", source, errno);
            close((int)tree);
            return -1;
        }
    }
    return (int)tree;
}

void pc_join_reports(struct pc_child *child, struct pc_error *err)
{
    if (child->report_fd < 0)
        return;
    struct pc_child ignored;
    init_child(&ignored);
    read_reports(child->report_fd, &ignored, err);
    close(child->report_fd);
    child->report_fd = -1;
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
#endif /* PC_JOIN_HELPER */
