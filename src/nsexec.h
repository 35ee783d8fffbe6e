/* The launch plan: the only thing that crosses from Python to C.
 *
 * Python (pycontain/_launch.py) decides everything and fills these structs;
 * _nsexec.c executes them after clone. This header is also the cffi cdef
 * (build_nsexec.py drops the preprocessor lines), so keep it plain C
 * declarations: no macros, no expressions.
 */
#ifndef PYCONTAIN_NSEXEC_H
#define PYCONTAIN_NSEXEC_H

#include <stdint.h>

/* What a failed step reports: which step, on what, with which errno. */
struct pc_error {
    int err;            /* errno of the failed step; 0 = no failure */
    char stage[64];     /* e.g. "pivot_root", "mount", "exec" */
    char detail[1024];  /* e.g. the path it failed on */
};

/* One mount, before pivot_root. `target` is a path inside the container
 * (resolved inside the new root, symlinks cannot leave it). */
struct pc_mount {
    const char *source;     /* host path for binds; a name for special fs */
    const char *target;     /* absolute path inside the container */
    const char *fstype;     /* NULL for a bind mount */
    const char *data;       /* fs options, or NULL */
    unsigned long flags;    /* MS_* passed to mount(2) */
    unsigned long remount;  /* binds: MS_* applied by a bind remount after (ro, nosuid...) */
    int mkdir;              /* 0: target must exist; 1: create a directory; 2: create a file */
    int tree_fd;            /* -1, or a detached mount tree the parent made (pc_bind_tree: an
                                       idmapped bind), attached at target instead of mounting source */
};

/* A device node created with mknod inside the container's /dev. */
struct pc_node {
    const char *path;       /* absolute path inside the container */
    unsigned int mode;      /* S_IFCHR | permissions */
    unsigned int major;
    unsigned int minor;
};

/* A directory (content NULL) or a small file made in the scratch tmpfs. */
struct pc_file {
    const char *path;       /* host path under plan->scratch */
    const char *content;
    unsigned int len;
    unsigned int mode;
};

struct pc_symlink {
    const char *target;     /* what the link points to */
    const char *path;       /* absolute path inside the container */
};

struct pc_rlimit {
    int resource;
    uint64_t soft;
    uint64_t hard;
};

/* An OCI bundle's hook that runs inside the container (config.json's
 * createContainer and startContainer): forked by the container's process,
 * the state on its stdin, its output kept for the error if it fails. */
struct pc_hook {
    int when;                       /* 1: after the mounts, before pivot_root (createContainer: the path
                                       is the host's); 2: before exec (startContainer: the container's) */
    const char *path;
    const char *const *argv;
    const char *const *envp;
    int timeout;                    /* seconds; 0: none */
    const char *state_head;         /* the state JSON on stdin is state_head, the process's own pid */
    const char *state_tail;         /* (as the container sees it), state_tail */
};

/* A namespace to join with setns before anything else (shared network, exec). */
struct pc_join {
    int fd;
    int nstype;             /* CLONE_NEW* */
};

struct pc_plan {
    /* clone */
    unsigned long clone_flags;      /* CLONE_NEW* (cgroup ns is unshared later, see below) */
    int vfork;                      /* 1: CLONE_VFORK, no sync points; the fast path */
    int pdeathsig;                  /* signal sent to the container when its launcher thread dies; 0 none */
    unsigned int umask;             /* the child's umask, set before anything is created (022 usually) */
    const struct pc_join *joins;
    int n_joins;
    int fork_after_join;            /* continue in a forked child: only children enter a joined pid
                                       namespace (set by pc_join, only the join helper does it) */
    unsigned long unshare_flags;    /* CLONE_NEW* unshared right after the joins, so that a joined
                                       user namespace owns them (clone_flags are made before the joins) */
    int pid_ns_fd;                  /* -1, or a pid namespace to clone the child into (an OCI bundle's,
                                       joined by path): the calling thread's for the clone only, with our
                                       dumpable flag cleared first (the child shares our memory there) */

    /* sync points, on a socket shared with the parent (-1: none).
     * wait_maps: after clone, wait for one byte (uid/gid maps, network ready).
     * wait_start: write 'R', then wait for one byte (created state): PC_WAIT_CREATED after
     * the mounts and the working directory, PC_WAIT_BEFORE_EXEC after every step but the
     * exec (ids, capabilities, seccomp: a warm pool's container), 0 not at all. */
    int sync_fd;
    int wait_maps;
    int wait_start;
    int wait_mounted;               /* say 'H' with the mounts made, before pivot_root, and wait for
                                       one byte (an OCI runtime's prestart, createRuntime hooks) */

    /* cgroups: open cgroup.procs files; the child writes "0" to join each,
     * then unshares the cgroup namespace so its cgroup becomes its root. */
    const int *cgroup_fds;
    int n_cgroup_fds;
    int unshare_cgroupns;

    int loopback_up;                /* bring "lo" up (a new network namespace starts with it down) */

    /* scratch: a tmpfs mounted on this host directory inside the new mount
     * namespace (so it exists nowhere else and vanishes with the container),
     * then filled with `files` (the overlay's upper and work directories,
     * generated /etc files). NULL: none. */
    const char *scratch;
    const char *scratch_data;
    const struct pc_file *files;
    int n_files;

    /* root filesystem: mounted at root_path (an empty host directory); with
     * root_path NULL there is no new root (a process that only needs a mount
     * namespace of its own, scratch included) */
    const char *root_path;
    const char *root_source;
    const char *root_fstype;        /* "overlay", or NULL to bind root_source */
    const char *root_data;
    /* A root served through a device by a process of the parent's (FUSE:
     * "/dev/fuse"; NULL: none). The child opens it once in its own user
     * namespace (the kernel wants the mount made in the namespace that opened
     * it) and before joining its cgroups (whose device rules are the
     * container's), mounts with root_data followed by ",fd=N", sends the
     * descriptor to the parent over sync_fd (tag 'D'), closes its own copy and
     * waits for one byte: the parent starts the serving process in between. */
    const char *root_device;
    unsigned long root_flags;       /* MS_* for the root mount (e.g. MS_NODEV) */
    unsigned long root_propagation; /* MS_REC|MS_SLAVE or MS_REC|MS_PRIVATE for "/"; with MS_SHARED (an OCI
                                       bundle's rootfsPropagation) also the new root's, after pivot_root */
    const char *root_parent;        /* with MS_SHARED: the mount holding root_path, made private first
                                       (our bind of the root must not reach the host; pivot_root needs it) */
    int root_readonly;

    const struct pc_mount *mounts;
    int n_mounts;
    int no_openat2;                 /* resolve mount targets as kernels before 5.6 must (tests) */
    const struct pc_node *nodes;
    int n_nodes;
    const struct pc_symlink *symlinks;
    int n_symlinks;
    /* after pivot_root */
    const char *const *masked_paths;
    int n_masked_paths;
    const char *const *readonly_paths;
    int n_readonly_paths;

    /* process */
    const char *hostname;           /* NULL: keep */
    const char *domainname;         /* NULL: keep */
    unsigned long personality;      /* personality(2) just before exec, when set_personality */
    int set_personality;
    const struct pc_hook *hooks;    /* hooks run by the container's process (never in a joined plan) */
    int n_hooks;
    const struct pc_rlimit *rlimits;
    int n_rlimits;
    int oom_score_adj;
    int set_oom_score_adj;
    const char *cwd;
    int mkdir_cwd;                  /* create cwd (owned by uid:gid) when missing */
    unsigned int uid;
    unsigned int gid;
    const unsigned int *groups;
    int n_groups;
    int set_groups;                 /* 0 in a user namespace whose setgroups is denied */
    int last_cap;                   /* /proc/sys/kernel/cap_last_cap */
    uint64_t cap_bounding;
    uint64_t cap_effective;
    uint64_t cap_permitted;
    uint64_t cap_inheritable;
    uint64_t cap_ambient;
    int no_new_privs;
    const unsigned char *seccomp_bpf;   /* struct sock_filter[], or NULL */
    int seccomp_len;                     /* in instructions */
    int stdio[3];                   /* fds to become 0, 1, 2; -1 inherits */
    int tty;                        /* open a terminal in the container's devpts, send its master
                                       to the parent over sync_fd, make it the controlling tty and 0-2 */
    int close_fds;                  /* close every other fd at exec */

    /* exec */
    const char *const *argv;
    const char *const *envp;
    int cmd_index;                  /* argv[cmd_index] is the command looked up in PATH */
    const char *path_env;           /* PATH used to find it; NULL: the usual default */
    int init_fd;                    /* -1, or an fd of the static pid-1 reaper, executed in front */
    int exec_fd;                    /* -1, or an fd of the command's program (a sealed copy of one of
                                       ours), executed once argv[cmd_index] is found in the container */
};

struct pc_child {
    int pid;
    int pidfd;                      /* -1 when the kernel has no CLONE_PIDFD */
    void *stack;                    /* owned until the child has exec'd or died */
    unsigned long stack_size;
    int launching;                  /* the child may still share our memory: our dumpable
                                       flag is put back by pc_child_release() */
    int report_fd;                  /* pc_join of a plan that waits: the reports still to come
                                       (pc_join_reports), closed by pc_child_release(); else -1 */
};

/* Starts the container's first process. Returns 0, or -1 with err filled.
 * With plan->vfork the child has exec'd (or failed: err says how) when this
 * returns. Without it the child is running concurrently on a stack that the
 * caller must keep (and the plan with it) until pc_child_release().
 * Refuses plans with fork_after_join: those go through pc_join. */
int pc_spawn(const struct pc_plan *plan, struct pc_child *child, struct pc_error *err);
void pc_child_release(struct pc_child *child);

/* Starts a process inside the namespaces of plan->joins (a running
 * container's: exec), one of them a pid namespace. Shares no memory with the
 * caller: the join helper program (helper_fd, a sealed memfd) is executed,
 * gets a copy of the plan over a socket, joins, and forks the process that
 * runs the command (a child of the caller's, in child->pid). Returns when
 * that process exec'd or failed (err says how), like pc_spawn with vfork;
 * plan->sync_fd may carry the terminal (plan->tty) meanwhile. Returns -1
 * with err filled when nothing was started. */
int pc_join(const struct pc_plan *plan, int helper_fd, struct pc_child *child, struct pc_error *err);

/* A plan that waits (wait_start, wait_mounted) returns from pc_join as soon
 * as its process exists; its failure, if any, comes later: this reads the
 * reports to their end (the process exec'd or died: call it then) into err. */
void pc_join_reports(struct pc_child *child, struct pc_error *err);

/* A detached bind of source (its submounts too with recursive), with the
 * MOUNT_ATTR_* bits attrs set and, when userns_fd >= 0, idmapped with that
 * user namespace's maps (on its submounts too with idmap_recursive): made by
 * the parent, which holds the capabilities over the source's filesystem that
 * a child in a user namespace of its own lacks. Returns the tree's fd or -1. */
int pc_bind_tree(const char *source, int recursive, unsigned long attrs, int userns_fd, int idmap_recursive,
                 struct pc_error *err);

/* Small helpers for the parent side. */
int pc_unshare(int flags, struct pc_error *err);
int pc_setns(int fd, int nstype, struct pc_error *err);

#endif
