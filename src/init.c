/* pycontain-init: the optional pid 1 of a container (init=True, --init).
 *
 * A process that is pid 1 of a pid namespace gets no default signal actions
 * and inherits every orphan. Most programs are not written for that: SIGTERM
 * does nothing and zombies pile up. This program stands in front of the
 * command: it runs it as its only child, forwards every signal it receives to
 * it, reaps every process that ends, and exits with the command's status
 * (128+N when a signal N ended it). The launcher executes it from a file
 * descriptor, so nothing of it is inside the image.
 *
 * Usage: pycontain-init -- COMMAND [ARG]...
 * The launcher has already checked that COMMAND resolves in $PATH.
 *
 * Built without libc (rawsys.h): it must be static, and starts in a tenth of
 * the time a static glibc program takes.
 */
#include "rawsys.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define PATH_BUF 4096

static const char *error_text(int err)
{
    switch (err) {
    case RS_ENOENT: return "No such file or directory";
    case RS_EACCES: return "Permission denied";
    case RS_ENOEXEC: return "Exec format error";
    case RS_ENOTDIR: return "Not a directory";
    case 7: return "Argument list too long";          /* E2BIG */
    case 12: return "Cannot allocate memory";         /* ENOMEM */
    case 26: return "Text file busy";                 /* ETXTBSY */
    case 21: return "Is a directory";                 /* EISDIR */
    case 40: return "Too many levels of symbolic links"; /* ELOOP */
    case 36: return "File name too long";             /* ENAMETOOLONG */
    default: return "exec failed";
    }
}

static const char *getenv_path(char **envp)
{
    for (; envp && *envp; envp++) {
        const char *e = *envp;
        if (e[0] == 'P' && e[1] == 'A' && e[2] == 'T' && e[3] == 'H' && e[4] == '=')
            return e + 5;
    }
    return DEFAULT_PATH;
}

/* A file without a #! line that the kernel refuses (ENOEXEC) is a shell
 * script by POSIX's rule for execvp: run it with /bin/sh. */
static int exec_file(const char *path, char **argv, char **envp)
{
    int r = rs_execve(path, argv, envp);
    if (r != -RS_ENOEXEC)
        return r;
    int n = 0;
    while (argv[n])
        n++;
    char *sh_argv[n + 2];
    sh_argv[0] = "/bin/sh";
    sh_argv[1] = (char *)path;
    for (int i = 1; i <= n; i++)
        sh_argv[i + 1] = argv[i];
    rs_execve("/bin/sh", sh_argv, envp);
    return r;
}

/* execvp(): search $PATH like glibc does. Returns -errno (it only returns
 * on failure). */
static int exec_search(char **argv, char **envp)
{
    const char *file = argv[0];
    for (const char *c = file; *c; c++)
        if (*c == '/')
            return exec_file(file, argv, envp);

    rs_size_t flen = rs_strlen(file);
    const char *p = getenv_path(envp);
    int seen_eacces = 0, last = -RS_ENOENT;
    char buf[PATH_BUF];
    for (;;) {
        const char *end = p;
        while (*end && *end != ':')
            end++;
        rs_size_t dlen = (rs_size_t)(end - p);
        /* dir (or "." for an empty entry), '/', file, NUL; longer ones are skipped */
        if ((dlen ? dlen : 1) + 1 + flen + 1 <= sizeof(buf)) {
            rs_size_t pos = 0;
            if (dlen == 0)                  /* an empty entry is the current directory */
                buf[pos++] = '.';
            for (rs_size_t i = 0; i < dlen; i++)
                buf[pos++] = p[i];
            buf[pos++] = '/';
            for (rs_size_t i = 0; i <= flen; i++)
                buf[pos++] = file[i];
            last = exec_file(buf, argv, envp);
            if (last == -RS_EACCES)
                seen_eacces = 1;
            else if (last != -RS_ENOENT && last != -RS_ENOTDIR && last != -116 /* ESTALE */ &&
                     last != -19 /* ENODEV */ && last != -110 /* ETIMEDOUT */)
                return last;
        }
        if (!*end)
            break;
        p = end + 1;
    }
    return seen_eacces ? -RS_EACCES : last;
}

int pc_main(int argc, char **argv, char **envp)
{
    rs_sigset_t all = ~0ULL, none = 0;
    rs_siginfo_t info;
    int first = 1;

    if (argc > 1 && rs_streq(argv[1], "--"))
        first = 2;
    if (first >= argc) {
        rs_puts(2, "pycontain-init: no command given\n");
        return 125;
    }

    /* Every signal stays pending until sigwaitinfo takes it (the kernel
     * ignores the bits for SIGKILL and SIGSTOP). */
    rs_sigprocmask(RS_SIG_BLOCK, &all, 0);
    if (rs_getpid() != 1)  /* no pid namespace: still adopt the orphans */
        rs_prctl(RS_PR_SET_CHILD_SUBREAPER, 1);

    int child = rs_fork();
    if (child < 0) {
        rs_puts(2, "pycontain-init: fork failed\n");
        return 125;
    }
    if (child == 0) {
        rs_sigprocmask(RS_SIG_SETMASK, &none, 0);
        int e = -exec_search(argv + first, envp);
        rs_puts(2, "pycontain-init: exec \"");
        rs_puts(2, argv[first]);
        rs_puts(2, "\": ");
        rs_puts(2, error_text(e));
        rs_puts(2, "\n");
        rs_exit(e == RS_ENOENT ? 127 : 126);
    }

    for (;;) {
        int sig = rs_sigwaitinfo(&all, &info);
        if (sig < 0)
            continue;
        if (sig != RS_SIGCHLD) {
            rs_kill(child, sig);
            continue;
        }
        for (;;) {
            int status;
            int pid = rs_wait4(-1, &status, RS_WNOHANG);
            if (pid <= 0)
                break;
            if (pid == child) {
                /* Leaving ends the namespace: the kernel kills what is left. */
                if ((status & 0x7f) == 0)
                    return (status >> 8) & 0xff;
                return 128 + (status & 0x7f);
            }
        }
    }
}
