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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    sigset_t all, old;
    int first = 1;

    if (argc > 1 && strcmp(argv[1], "--") == 0)
        first = 2;
    if (first >= argc) {
        fputs("pycontain-init: no command given\n", stderr);
        return 125;
    }

    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    if (getpid() != 1)  /* no pid namespace: still adopt the orphans */
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

    pid_t child = fork();
    if (child < 0) {
        perror("pycontain-init: fork");
        return 125;
    }
    if (child == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[first], argv + first);
        int e = errno;
        fprintf(stderr, "pycontain-init: exec \"%s\": %s\n", argv[first], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }

    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0)
            continue;
        if (sig != SIGCHLD) {
            kill(child, sig);
            continue;
        }
        for (;;) {
            int status;
            pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid <= 0)
                break;
            if (pid == child) {
                /* Leaving ends the namespace: the kernel kills what is left. */
                if (WIFEXITED(status))
                    return WEXITSTATUS(status);
                return 128 + WTERMSIG(status);
            }
        }
    }
}
