/* rawsys.h: the few system calls pycontain's two static programs need
 * (pycontain-init and the hello-world program), without a C library.
 *
 * Why no libc: both programs run inside containers whose root filesystem
 * holds no libc of ours, so they must be static. Static glibc is not
 * installed on the manylinux build images (glibc-static is a separate
 * package there) nor on many developers' machines, and a static glibc
 * program pays ~0.5 ms of start-up (CPUID probing, IRELATIVE relocs) where a
 * libc-free one starts in under 0.1 ms: pycontain-init stands in front of
 * every --init container. Built with -nostdlib, these programs need nothing
 * but a C compiler for the target: no libc.a, no kernel headers.
 *
 * Two modes, chosen by setup.py from the compiler's target (`cc -dumpmachine`):
 *   PC_NOLIBC defined  x86_64 and aarch64: our own _start and inline-asm
 *                      system calls (numbers below, stable kernel ABI).
 *   otherwise          any other architecture: the same functions on top of
 *                      libc's syscall(), linked with -static (needs libc.a).
 * The programs define pc_main() instead of main().
 */
#ifndef PYCONTAIN_RAWSYS_H
#define PYCONTAIN_RAWSYS_H

typedef unsigned long rs_size_t;
typedef long rs_ssize_t;

/* Kernel ABI constants, identical on x86_64 and aarch64 (asm-generic). */
#define RS_SIGKILL 9
#define RS_SIGCHLD 17
#define RS_SIG_BLOCK 0
#define RS_SIG_SETMASK 2
#define RS_WNOHANG 1
#define RS_PR_SET_CHILD_SUBREAPER 36
#define RS_EINTR 4
#define RS_ENOENT 2
#define RS_ENOEXEC 8
#define RS_EACCES 13
#define RS_ENOTDIR 20
#define RS_ESRCH 3

/* The kernel's sigset_t (what rt_sig* take), not glibc's 128-byte one. */
typedef unsigned long long rs_sigset_t;
#define RS_SIGSET_SIZE 8
/* siginfo_t is 128 bytes on every Linux architecture. */
typedef struct { int si_signo, si_errno, si_code; int pad[29]; } rs_siginfo_t;

int pc_main(int argc, char **argv, char **envp);

#ifdef PC_NOLIBC
#include "raw_syscall.h"

#if defined(__x86_64__)
#define RS_NR_write 1
#define RS_NR_rt_sigprocmask 14
#define RS_NR_getpid 39
#define RS_NR_clone 56
#define RS_NR_execve 59
#define RS_NR_wait4 61
#define RS_NR_kill 62
#define RS_NR_rt_sigtimedwait 128
#define RS_NR_prctl 157
#define RS_NR_exit_group 231

static inline long rs_syscall(long n, long a, long b, long c, long d, long e)
{
    return raw_syscall6(n, a, b, c, d, e, 0);
}

/* Entry: the stack holds argc, argv[], NULL, envp[], NULL. Align it to 16
 * bytes for the C call (the ABI's rule) and never return. */
__asm__(".text\n"
        ".global _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call rs_start_c\n"
        "  hlt\n");

#elif defined(__aarch64__)
#define RS_NR_write 64
#define RS_NR_exit_group 94
#define RS_NR_kill 129
#define RS_NR_rt_sigprocmask 135
#define RS_NR_rt_sigtimedwait 137
#define RS_NR_prctl 167
#define RS_NR_getpid 172
#define RS_NR_clone 220
#define RS_NR_execve 221
#define RS_NR_wait4 260

static inline long rs_syscall(long n, long a, long b, long c, long d, long e)
{
    return raw_syscall6(n, a, b, c, d, e, 0);
}

__asm__(".text\n"
        ".global _start\n"
        ".type _start,%function\n"
        "_start:\n"
        "  mov x29, #0\n"
        "  mov x30, #0\n"
        "  mov x0, sp\n"
        "  and sp, x0, #-16\n"
        "  bl rs_start_c\n"
        "  brk #0\n");

#else
#error "PC_NOLIBC supports x86_64 and aarch64 only; build without it (static libc) elsewhere"
#endif

__attribute__((noreturn)) static void rs_exit(int code)
{
    for (;;)
        rs_syscall(RS_NR_exit_group, code, 0, 0, 0, 0);
}

/* The compiler may emit calls to these for struct copies and zeroing, even
 * freestanding; nothing else provides them here. */
void *memset(void *dst, int c, rs_size_t n)
{
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

void *memcpy(void *dst, const void *src, rs_size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

__attribute__((noreturn, used)) void rs_start_c(long *sp)
{
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    rs_exit(pc_main(argc, argv, envp));
}

#else /* !PC_NOLIBC: the same calls through libc, for other architectures */

#define _GNU_SOURCE
#include <stdlib.h>
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RS_NR_write SYS_write
#define RS_NR_rt_sigprocmask SYS_rt_sigprocmask
#define RS_NR_getpid SYS_getpid
#define RS_NR_execve SYS_execve
#define RS_NR_wait4 SYS_wait4
#define RS_NR_kill SYS_kill
#define RS_NR_rt_sigtimedwait SYS_rt_sigtimedwait
#define RS_NR_prctl SYS_prctl
#define RS_NR_exit_group SYS_exit_group

static inline long rs_syscall(long n, long a, long b, long c, long d, long e)
{
    long r = syscall(n, a, b, c, d, e);
    return r == -1 ? -errno : r;
}

__attribute__((noreturn)) static void rs_exit(int code)
{
    _exit(code);
}

int main(int argc, char **argv, char **envp)
{
    return pc_main(argc, argv, envp);
}

#endif /* PC_NOLIBC */

/* ---- the calls, returning -errno on failure like the kernel does ------- */

static inline rs_ssize_t rs_write(int fd, const void *buf, rs_size_t n)
{
    return rs_syscall(RS_NR_write, fd, (long)buf, (long)n, 0, 0);
}

static inline int rs_getpid(void)
{
    return (int)rs_syscall(RS_NR_getpid, 0, 0, 0, 0, 0);
}

/* fork() as the kernel spells it on every architecture: clone with only the
 * exit signal, no new stack (the child continues on a copy of ours). */
static inline int rs_fork(void)
{
#ifdef PC_NOLIBC
    return (int)rs_syscall(RS_NR_clone, RS_SIGCHLD, 0, 0, 0, 0);
#else
    int pid = fork();
    return pid < 0 ? -errno : pid;
#endif
}

static inline int rs_execve(const char *path, char *const argv[], char *const envp[])
{
    return (int)rs_syscall(RS_NR_execve, (long)path, (long)argv, (long)envp, 0, 0);
}

static inline int rs_wait4(int pid, int *status, int options)
{
    return (int)rs_syscall(RS_NR_wait4, pid, (long)status, options, 0, 0);
}

static inline int rs_kill(int pid, int sig)
{
    return (int)rs_syscall(RS_NR_kill, pid, sig, 0, 0, 0);
}

static inline int rs_sigprocmask(int how, const rs_sigset_t *set, rs_sigset_t *old)
{
    return (int)rs_syscall(RS_NR_rt_sigprocmask, how, (long)set, (long)old, RS_SIGSET_SIZE, 0);
}

/* sigwaitinfo(): rt_sigtimedwait with no timeout. */
static inline int rs_sigwaitinfo(const rs_sigset_t *set, rs_siginfo_t *info)
{
    return (int)rs_syscall(RS_NR_rt_sigtimedwait, (long)set, (long)info, 0, RS_SIGSET_SIZE, 0);
}

static inline int rs_prctl(int option, unsigned long arg)
{
    return (int)rs_syscall(RS_NR_prctl, option, (long)arg, 0, 0, 0);
}

/* ---- strings ------------------------------------------------------------ */

static inline rs_size_t rs_strlen(const char *s)
{
    rs_size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static inline int rs_streq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

/* Writes every byte (a short write to a pipe is not an error). */
static inline int rs_write_all(int fd, const char *p, rs_size_t left)
{
    while (left > 0) {
        rs_ssize_t n = rs_write(fd, p, left);
        if (n == -RS_EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        left -= (rs_size_t)n;
    }
    return 0;
}

static inline void rs_puts(int fd, const char *s)
{
    rs_write_all(fd, s, rs_strlen(s));
}

#endif
