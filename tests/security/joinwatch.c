/* joinwatch: runs inside a container while the host execs into it, and
 * attacks every new process of the container's pid namespace the way a
 * hostile container would (runc's CVE-2016-9962 and CVE-2019-5736):
 *
 *   mem      open /proc/PID/mem O_RDWR
 *   exe      open /proc/PID/exe O_RDONLY
 *   exepath  open /proc/PID/exe O_PATH, then reopen it for writing
 *   ptrace   ptrace(PTRACE_ATTACH)
 *
 * and says, for each success, what the process's executable was:
 *   own      a file of the container's root (its own command: allowed)
 *   sealed   a memfd sealed against writes (the launcher's join helper)
 *   host     anything else: a file from outside the container
 * Nothing is ever written into a process or a file: the open is the escape.
 * A sealed executable is also reopened for writing and written to (1 byte,
 * the same byte): that must fail.
 *
 * Usage: joinwatch DIR. Writes DIR/ready once watching; stops when DIR/stop
 * exists, writes its counts to DIR/result ("name value" lines) and waits
 * to be killed.
 * Built static by the test suite (gcc -static). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_SEAL_WRITE
#define F_SEAL_WRITE 0x0008
#endif

enum { OWN, SEALED, HOST, UNKNOWN, NCLASS };
static const char *class_names[NCLASS] = {"own", "sealed", "host", "unknown"};
enum { MEM, EXE, EXEPATH, EXEWRITE, PTRACE, NATTACK };
static const char *attack_names[NATTACK] = {"mem", "exe", "exepath", "exewrite", "ptrace"};

static long hits[NATTACK][NCLASS];
static long seen, seen_before_exec, sealed_written;

static void count(int attack, int class)
{
    hits[attack][class < 0 ? UNKNOWN : class]++;
}

/* What the file behind fd (an executable of some process) is. */
static int classify_fd(int fd)
{
    char link[64], target[4096];
    struct stat st, there;
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n < 0 || fstat(fd, &st) < 0)
        return UNKNOWN;
    target[n] = 0;
    if (strncmp(target, "/memfd:", 7) == 0) {
        int rd = open(link, O_RDONLY | O_CLOEXEC);
        int seals = rd >= 0 ? fcntl(rd, F_GET_SEALS) : -1;
        if (rd >= 0)
            close(rd);
        return seals >= 0 && (seals & F_SEAL_WRITE) ? SEALED : HOST;
    }
    if (stat(target, &there) == 0 && there.st_dev == st.st_dev && there.st_ino == st.st_ino)
        return OWN;
    return HOST;
}

/* The class of pid's executable; UNKNOWN when we may not see it, -1 when
 * the process has ended (or is a zombie, with no executable any more). */
static int classify_pid(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/exe", pid);
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? -1 : UNKNOWN;
    int c = classify_fd(fd);
    close(fd);
    return c;
}

/* A sealed executable must refuse every write. */
static void try_write_sealed(int pathfd)
{
    char link[64];
    unsigned char b;
    snprintf(link, sizeof(link), "/proc/self/fd/%d", pathfd);
    int fd = open(link, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    if (pread(fd, &b, 1, 0) == 1 && pwrite(fd, &b, 1, 0) == 1)
        sealed_written++;
    if (ftruncate(fd, 0) == 0)
        sealed_written++;
    close(fd);
}

/* One round of every attack on pid. Returns its class at the end (OWN once
 * it has executed the container's command). */
static int attack(int pid)
{
    char path[64];
    int fd, c;

    snprintf(path, sizeof(path), "/proc/%d/mem", pid);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        count(MEM, classify_pid(pid));
        close(fd);
    }

    snprintf(path, sizeof(path), "/proc/%d/exe", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        count(EXE, classify_fd(fd));
        close(fd);
    }

    fd = open(path, O_PATH | O_CLOEXEC);
    if (fd >= 0) {
        c = classify_fd(fd);
        count(EXEPATH, c);
        if (c == SEALED) {
            try_write_sealed(fd);
            /* never reopened for writing when it may be a host file, nor
             * the container's own (a concurrent exec of it would fail with
             * ETXTBSY) */
            char link[64];
            snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
            int w = open(link, O_WRONLY | O_CLOEXEC);
            if (w >= 0) {
                count(EXEWRITE, c);
                close(w);
            }
        }
        close(fd);
    }

    if (ptrace(PTRACE_ATTACH, pid, 0, 0) == 0) {
        int st;
        waitpid(pid, &st, __WALL);
        count(PTRACE, classify_pid(pid));
        ptrace(PTRACE_DETACH, pid, 0, 0);
        /* the attach's SIGSTOP may still be pending (the first stop seen
         * was another, e.g. the exec's SIGTRAP): never leave it stopped */
        kill(pid, SIGCONT);
    }
    return classify_pid(pid);
}

/* A new process: attack it again and again until it has executed the
 * container's command or is gone (the window is between its arrival in the
 * namespace and its exec), or once if it is already the container's own. */
static void handle(int pid)
{
    seen++;
    int first = classify_pid(pid);
    if (first == SEALED || first == HOST || first == UNKNOWN)
        seen_before_exec++;
    if (first == OWN) {
        attack(pid);
        return;
    }
    for (int i = 0; i < 500 && first >= 0; i++) {
        int now = attack(pid);
        if (now == OWN || now < 0)
            break;
    }
}

static int exists(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: joinwatch DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    int newest = getpid();
    char path[4096];
    snprintf(path, sizeof(path), "%s/ready", dir);
    close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));

    DIR *proc = opendir("/proc");
    if (!proc) {
        perror("/proc");
        return 1;
    }
    for (long round = 0;; round++) {
        char next[32];
        snprintf(next, sizeof(next), "/proc/%d", newest + 1);
        /* pids of a pid namespace are handed out in order: the next
         * process is almost always newest + 1, a stat away; a listing now
         * and then catches up with any that were missed */
        if (access(next, F_OK) == 0) {
            handle(newest + 1);
            newest++;
            continue;
        }
        if (round % 512)
            continue;
        if (exists(dir, "stop"))
            break;
        rewinddir(proc);
        struct dirent *d;
        while ((d = readdir(proc)) != NULL) {
            int pid = atoi(d->d_name);
            if (pid > newest) {
                handle(pid);
                newest = pid;
            }
        }
    }

    snprintf(path, sizeof(path), "%s/result.tmp", dir);
    FILE *out = fopen(path, "w");
    if (!out)
        return 1;
    fprintf(out, "seen %ld\nseen_before_exec %ld\nsealed_written %ld\n", seen, seen_before_exec, sealed_written);
    for (int a = 0; a < NATTACK; a++)
        for (int c = 0; c < NCLASS; c++)
            fprintf(out, "%s_%s %ld\n", attack_names[a], class_names[c], hits[a][c]);
    fclose(out);
    char final[4096];
    snprintf(final, sizeof(final), "%s/result", dir);
    rename(path, final);
    for (;;)  /* the host reads the result by exec: the container stays up */
        pause();
}
