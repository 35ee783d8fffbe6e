/* pycontain-monitor: the monitor of a detached container, as conmon is
 * podman's.
 *
 * The starting Python process prepares and launches the container in a
 * process it forked (pycontain/managed/cmonitor.py); that process then
 * executes this program from a sealed memfd. exec keeps the process's
 * children, so this program is the container's init's parent: its reaper,
 * and the one whose death kills it (the launcher's pdeathsig). It keeps the
 * pid and start time the record names as the container's monitor.
 *
 * While the container runs it:
 *   - copies the container's stdout/stderr (pipes, or a terminal's master)
 *     into the json-file log, one JSON object per line, rotated by size as
 *     pycontain/logs.py's JsonFileWriter (same format, same rules);
 *   - serves pycontain/attach.py's wire protocol on the listening socket it
 *     was handed: output goes raw to every client, clients send frames
 *     b"d"+len+bytes (input), b"w"+len+winsize (resize), b"e" (input ended);
 *   - forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 to the init;
 *   - runs the health check every interval: `python -m pycontain.managed.health
 *     STORE ID` (one probe, which records its result itself).
 * When the init has ended it writes the exit file (exit status, finish time,
 * OOM, dropped log lines) into the container's directory, appends the oom
 * and die events to <store>/events.jsonl, and executes the exit command
 * (Python: the record, the teardown, --rm) in its own place, so that the
 * record's monitor stays alive until the teardown is done.
 *
 * Usage: pycontain-monitor --pid N --dir DIR --log PATH [--max-size N]
 *        [--max-file N] (--stdout FD --stderr FD | --tty FD) [--stdin FD]
 *        [--attach FD] [--client FD] [--report FD] [--oom PATH] [--events PATH --id ID --name NAME
 *        --image IMAGE] [--health-interval NS --python PATH --root STORE]
 *        -- EXIT COMMAND...
 *
 * Built like pycontain-init: static, without libc where rawsys.h can, so
 * that a machine full of detached containers pays ~100 KiB per monitor.
 */
#include "rawsys.h"
#ifndef PC_NOLIBC
#include <string.h>
#endif

#if defined(PC_NOLIBC) && defined(__x86_64__)
#define M_NR_read 0
#define M_NR_close 3
#define M_NR_lseek 8
#define M_NR_ioctl 16
#define M_NR_sendto 44
#define M_NR_getsockopt 55
#define M_NR_fcntl 72
#define M_NR_ftruncate 77
#define M_NR_getuid 102
#define M_NR_clock_gettime 228
#define M_NR_openat 257
#define M_NR_unlinkat 263
#define M_NR_ppoll 271
#define M_NR_accept4 288
#define M_NR_signalfd4 289
#define M_NR_dup3 292
#define M_NR_renameat2 316
#elif defined(PC_NOLIBC) && defined(__aarch64__)
#define M_NR_read 63
#define M_NR_close 57
#define M_NR_lseek 62
#define M_NR_ioctl 29
#define M_NR_sendto 206
#define M_NR_getsockopt 209
#define M_NR_fcntl 25
#define M_NR_ftruncate 46
#define M_NR_getuid 174
#define M_NR_clock_gettime 113
#define M_NR_openat 56
#define M_NR_unlinkat 35
#define M_NR_ppoll 73
#define M_NR_accept4 242
#define M_NR_signalfd4 74
#define M_NR_dup3 24
#define M_NR_renameat2 276
#else
#define M_NR_read SYS_read
#define M_NR_close SYS_close
#define M_NR_lseek SYS_lseek
#define M_NR_ioctl SYS_ioctl
#define M_NR_sendto SYS_sendto
#define M_NR_getsockopt SYS_getsockopt
#define M_NR_fcntl SYS_fcntl
#define M_NR_ftruncate SYS_ftruncate
#define M_NR_getuid SYS_getuid
#define M_NR_clock_gettime SYS_clock_gettime
#define M_NR_openat SYS_openat
#define M_NR_unlinkat SYS_unlinkat
#define M_NR_ppoll SYS_ppoll
#define M_NR_accept4 SYS_accept4
#define M_NR_signalfd4 SYS_signalfd4
#define M_NR_dup3 SYS_dup3
#define M_NR_renameat2 SYS_renameat2
#endif

/* kernel ABI constants (the same on x86_64 and aarch64) */
#define AT_FDCWD -100
#define O_RDONLY 0
#define O_WRONLY 1
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_APPEND 02000
#define O_NONBLOCK 04000
#define O_CLOEXEC 02000000
#define SEEK_END 2
#define POLLIN 1
#define POLLERR 8
#define POLLHUP 16
#define SOL_SOCKET 1
#define SO_PEERCRED 17
#define MSG_NOSIGNAL 0x4000
#define SOCK_CLOEXEC 02000000
#define TIOCSWINSZ 0x5414
#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define E_AGAIN 11
#define E_NOSPC 28
#define E_DQUOT 122
#define E_FBIG 27
#define E_PIPE 32
#define E_IO 5
#define SIGHUP 1
#define SIGINT 2
#define SIGQUIT 3
#define SIGUSR1 10
#define SIGUSR2 12
#define SIGPIPE 13
#define SIGTERM 15
#define F_SETFD 2
#define FD_CLOEXEC 1

struct m_timespec { long tv_sec, tv_nsec; };
struct m_pollfd { int fd; short events, revents; };
struct m_ucred { int pid, uid, gid; };
/* struct signalfd_siginfo is 128 bytes; the signal number comes first */
struct m_sfd_info { unsigned int ssi_signo; unsigned char pad[124]; };

static long sys(long n, long a, long b, long c, long d, long e) { return rs_syscall(n, a, b, c, d, e); }
static long m_read(int fd, void *buf, long n) { return sys(M_NR_read, fd, (long)buf, n, 0, 0); }
static void m_close(int fd) { if (fd >= 0) sys(M_NR_close, fd, 0, 0, 0, 0); }
static int m_open(const char *path, int flags, int mode)
{
    return (int)sys(M_NR_openat, AT_FDCWD, (long)path, flags | O_CLOEXEC, mode, 0);
}

static long long parse_num(const char *s)
{
    long long v = 0;
    int neg = 0;
    if (*s == '-')
        neg = 1, s++;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0');
    return neg ? -v : v;
}

/* ---- a small output buffer ------------------------------------------------ */

#define MAX_LINE (16 * 1024)           /* docker's: a partial line is cut here */
/* one log entry: every input byte may become a 6-byte \u escape, plus the frame */
static char line_buf[MAX_LINE * 6 + 256];

struct out { char *p; rs_size_t n; };

static void put(struct out *o, const char *s, rs_size_t n)
{
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void puts_(struct out *o, const char *s) { put(o, s, rs_strlen(s)); }

static void put_uint(struct out *o, unsigned long long v, int width)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i < width)
        tmp[i++] = '0';
    while (i)
        o->p[o->n++] = tmp[--i];
}

static const char HEX[] = "0123456789abcdef";

/* Length of the valid UTF-8 sequence at s (1-4), or 0 with *skip the
 * bytes Python's "replace" turns into one U+FFFD (the maximal subpart). */
static int utf8_seq(const unsigned char *s, rs_size_t n, rs_size_t *skip)
{
    unsigned char c = s[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *skip = 1;
        return 0;
    }
    for (int i = 1; i < len; i++) {
        if ((rs_size_t)i >= n || s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xBF)) {
            *skip = (rs_size_t)i;
            return 0;
        }
    }
    return len;
}

/* A JSON string as Python's json.dumps(ensure_ascii=False) writes it, the
 * bytes decoded as UTF-8 with invalid ones replaced (U+FFFD). */
static void put_json_string(struct out *o, const unsigned char *s, rs_size_t n)
{
    o->p[o->n++] = '"';
    rs_size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            rs_size_t skip = 1;
            int len = utf8_seq(s + i, n - i, &skip);
            if (len) {
                put(o, (const char *)s + i, (rs_size_t)len);
                i += (rs_size_t)len;
            } else {
                put(o, "\xef\xbf\xbd", 3);
                i += skip;
            }
            continue;
        }
        i++;
        switch (c) {
        case '"': put(o, "\\\"", 2); break;
        case '\\': put(o, "\\\\", 2); break;
        case '\n': put(o, "\\n", 2); break;
        case '\r': put(o, "\\r", 2); break;
        case '\t': put(o, "\\t", 2); break;
        case '\b': put(o, "\\b", 2); break;
        case '\f': put(o, "\\f", 2); break;
        default:
            if (c < 0x20) {
                char esc[6] = {'\\', 'u', '0', '0', HEX[c >> 4], HEX[c & 15]};
                put(o, esc, 6);
            } else {
                o->p[o->n++] = (char)c;
            }
        }
    }
    o->p[o->n++] = '"';
}

static void now(int clock, struct m_timespec *ts)
{
    sys(M_NR_clock_gettime, clock, (long)ts, 0, 0, 0);
}

/* RFC 3339 with nanoseconds, UTC: 2024-05-01T10:00:00.123456789Z */
static void put_time(struct out *o, const struct m_timespec *ts)
{
    long long days = ts->tv_sec / 86400, secs = ts->tv_sec % 86400;
    /* civil from days (Howard Hinnant's algorithm) */
    long long z = days + 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long y = yoe + era * 400;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    long long d = doy - (153 * mp + 2) / 5 + 1;
    long long m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    put_uint(o, (unsigned long long)y, 4);
    o->p[o->n++] = '-';
    put_uint(o, (unsigned long long)m, 2);
    o->p[o->n++] = '-';
    put_uint(o, (unsigned long long)d, 2);
    o->p[o->n++] = 'T';
    put_uint(o, (unsigned long long)(secs / 3600), 2);
    o->p[o->n++] = ':';
    put_uint(o, (unsigned long long)(secs / 60 % 60), 2);
    o->p[o->n++] = ':';
    put_uint(o, (unsigned long long)(secs % 60), 2);
    o->p[o->n++] = '.';
    put_uint(o, (unsigned long long)ts->tv_nsec, 9);
    o->p[o->n++] = 'Z';
}

/* ---- the json-file log (pycontain/logs.py's JsonFileWriter) ------------- */

static const char *log_path;
static int log_fd = -1;
static long long log_size, max_size;
static int max_file = 1;
static long long dropped, dropped_total;

struct stream {
    int fd;                      /* -1 once it ended */
    const char *name;            /* "stdout" or "stderr" */
    unsigned char partial[MAX_LINE];
    rs_size_t have;
};
static struct stream streams[2];

static char path_buf[4096 + 16];

/* path + "." + n, in path_buf or path_buf2 */
static const char *numbered(char *buf, int n)
{
    struct out o = {buf, 0};
    puts_(&o, log_path);
    o.p[o.n++] = '.';
    put_uint(&o, (unsigned long long)n, 1);
    o.p[o.n] = 0;
    return buf;
}

static void rotate(void)
{
    static char older[sizeof path_buf];
    m_close(log_fd);
    if (max_file <= 1) {
        log_fd = m_open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0640);
    } else {
        for (int n = max_file - 1; n >= 1; n--) {
            numbered(older, n);
            if (n + 1 < max_file)
                sys(M_NR_renameat2, AT_FDCWD, (long)older, AT_FDCWD, (long)numbered(path_buf, n + 1), 0);
            else
                sys(M_NR_unlinkat, AT_FDCWD, (long)older, 0, 0, 0);
        }
        sys(M_NR_renameat2, AT_FDCWD, (long)log_path, AT_FDCWD, (long)numbered(path_buf, 1), 0);
        log_fd = m_open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0640);
    }
    log_size = 0;
}

/* One entry, whole or not at all: a full disk drops the line (counted), it
 * never stops the container that logs it. */
static int write_line(const char *stream, const unsigned char *data, rs_size_t n)
{
    struct m_timespec ts;
    struct out o = {line_buf, 0};
    now(CLOCK_REALTIME, &ts);
    puts_(&o, "{\"log\": ");
    put_json_string(&o, data, n);
    puts_(&o, ", \"stream\": \"");
    puts_(&o, stream);
    puts_(&o, "\", \"time\": \"");
    put_time(&o, &ts);
    puts_(&o, "\"}\n");
    if (log_fd < 0)
        return 0;
    rs_ssize_t w = rs_write(log_fd, o.p, o.n);
    if (w != (rs_ssize_t)o.n) {
        sys(M_NR_ftruncate, log_fd, log_size, 0, 0, 0);   /* no half entry stays */
        return 0;
    }
    log_size += (long long)o.n;
    if (max_size && log_size >= max_size)
        rotate();
    return 1;
}

static void log_entry(const char *stream, const unsigned char *data, rs_size_t n)
{
    if (dropped) {   /* space is back: say first what was lost */
        static unsigned char note[128];
        struct out o = {(char *)note, 0};
        puts_(&o, "pycontain: ");
        put_uint(&o, (unsigned long long)dropped, 1);
        puts_(&o, " log lines dropped: no space left on device\n");
        if (!write_line("stderr", note, o.n)) {
            dropped++, dropped_total++;
            return;
        }
        dropped = 0;
    }
    if (!write_line(stream, data, n))
        dropped++, dropped_total++;
}

/* Lines as docker's json-file driver cuts them: at each newline, and at
 * MAX_LINE bytes for a longer one (logs.py keeps a line that came whole in
 * one read whole; whichever way, every byte is logged once, in order). */
static void log_data(struct stream *s, const unsigned char *data, rs_size_t n)
{
    while (n > 0) {
        rs_size_t room = MAX_LINE - s->have, i = 0;
        while (i < n && i < room && data[i] != '\n')
            i++;
        int newline = i < n && i < room && data[i] == '\n';
        rs_size_t take = i + (newline ? 1 : 0);
        memcpy(s->partial + s->have, data, take);
        s->have += take, data += take, n -= take;
        if (newline || s->have == MAX_LINE) {
            log_entry(s->name, s->partial, s->have);
            s->have = 0;
        }
    }
}

/* How many bytes at the end of p begin a UTF-8 character not yet whole
 * (logs.py's _incomplete_utf8_tail). */
static rs_size_t incomplete_utf8_tail(const unsigned char *p, rs_size_t n)
{
    for (rs_size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char b = p[n - back];
        if ((b & 0xC0) != 0x80) {   /* a lead byte (or ASCII): how long its character is */
            rs_size_t need = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
            return need > back ? back : 0;
        }
    }
    return 0;
}

/* A terminal's prompt has no newline: what is left of its line is logged at
 * once (followers see it), but for a character whose bytes did not all come
 * yet (logs.py's flush_partial(whole_characters=True)). */
static void flush_partial(struct stream *s)
{
    rs_size_t keep = incomplete_utf8_tail(s->partial, s->have);
    if (s->have <= keep)
        return;
    log_entry(s->name, s->partial, s->have - keep);
    for (rs_size_t i = 0; i < keep; i++)   /* at most 3 bytes, moved forward */
        s->partial[i] = s->partial[s->have - keep + i];
    s->have = keep;
}

/* ---- attach: pycontain/attach.py's server side ------------------------------- */

#define MAX_CLIENTS 32
struct client {
    int fd;
    unsigned char hdr[5];
    int hdr_have;
    unsigned char kind;
    unsigned long left;          /* payload bytes of the current frame still to come */
    unsigned char win[8];
    int win_have;
};
static struct client clients[MAX_CLIENTS];
static int listen_fd = -1, stdin_fd = -1, tty_fd = -1;
static unsigned my_uid;

static void drop(struct client *c)
{
    m_close(c->fd);
    c->fd = -1;
}

static void add_client(int fd)
{
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (clients[i].fd < 0) {
            memset(&clients[i], 0, sizeof clients[i]);
            clients[i].fd = fd;
            return;
        }
    }
    m_close(fd);
}

static void accept_client(void)
{
    int fd = (int)sys(M_NR_accept4, listen_fd, 0, 0, SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    struct m_ucred cred;
    unsigned len = sizeof cred;
    /* only the container's owner may attach (the directory is 0700 already) */
    if (sys(M_NR_getsockopt, fd, SOL_SOCKET, SO_PEERCRED, (long)&cred, (long)&len) < 0
            || (cred.uid != 0 && (unsigned)cred.uid != my_uid)) {
        m_close(fd);
        return;
    }
    add_client(fd);
}

static void send_all(int fd, const unsigned char *p, rs_size_t n, int sock)
{
    while (n > 0) {
        rs_ssize_t w = sock ? sys(M_NR_sendto, fd, (long)p, (long)n, MSG_NOSIGNAL, 0)
                            : rs_write(fd, p, n);
        if (w == -RS_EINTR)
            continue;
        if (w == -E_AGAIN) {
            struct m_pollfd p1 = {fd, 4 /* POLLOUT */, 0};
            sys(M_NR_ppoll, (long)&p1, 1, 0, 0, RS_SIGSET_SIZE);
            continue;
        }
        if (w <= 0)
            return;   /* the reader left (EPIPE, EIO): quietly, as attach.py's peer_may_leave */
        p += w, n -= (rs_size_t)w;
    }
}

static void broadcast(const unsigned char *data, rs_size_t n)
{
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (clients[i].fd < 0)
            continue;
        rs_size_t left = n;
        const unsigned char *p = data;
        while (left > 0) {
            rs_ssize_t w = sys(M_NR_sendto, clients[i].fd, (long)p, (long)left, MSG_NOSIGNAL, 0);
            if (w == -RS_EINTR)
                continue;
            if (w <= 0) {
                drop(&clients[i]);
                break;
            }
            p += w, left -= (rs_size_t)w;
        }
    }
}

/* The container's stdin ends: /dev/null takes the pipe's place. */
static void end_input(void)
{
    int null = m_open("/dev/null", O_RDONLY, 0);
    if (null >= 0) {
        sys(M_NR_dup3, null, stdin_fd, O_CLOEXEC, 0, 0);
        m_close(null);
    }
}

static void client_input(struct client *c)
{
    static unsigned char buf[65536];
    long n = m_read(c->fd, buf, sizeof buf);
    if (n <= 0) {
        if (n != -RS_EINTR)
            drop(c);
        return;
    }
    unsigned char *p = buf;
    while (n > 0) {
        if (c->hdr_have < 5) {
            c->hdr[c->hdr_have++] = *p++, n--;
            if (c->hdr_have == 5) {
                c->kind = c->hdr[0];
                c->left = ((unsigned long)c->hdr[1] << 24) | ((unsigned long)c->hdr[2] << 16)
                          | ((unsigned long)c->hdr[3] << 8) | c->hdr[4];
                c->win_have = 0;
                if (c->left == 0)
                    goto frame_done;
            }
            continue;
        }
        {
            rs_size_t take = (rs_size_t)n < c->left ? (rs_size_t)n : c->left;
            if (c->kind == 'd' && stdin_fd >= 0)
                send_all(stdin_fd, p, take, 0);
            else if (c->kind == 'w') {
                for (rs_size_t i = 0; i < take && c->win_have < 8; i++)
                    c->win[c->win_have++] = p[i];
            }
            p += take, n -= (long)take, c->left -= take;
            if (c->left)
                continue;
        }
frame_done:
        if (c->kind == 'w' && c->win_have == 8 && !(c->hdr[1] | c->hdr[2] | c->hdr[3]) && c->hdr[4] == 8
                && tty_fd >= 0)
            sys(M_NR_ioctl, tty_fd, TIOCSWINSZ, (long)c->win, 0, 0);
        else if (c->kind == 'e' && stdin_fd >= 0 && tty_fd < 0)
            end_input();
        c->hdr_have = 0;
    }
}

/* ---- the end: exit file, events ------------------------------------------------ */

static int read_oom(const char *path)
{
    static char buf[4096];
    if (!path)
        return 0;
    int fd = m_open(path, O_RDONLY, 0);
    if (fd < 0)
        return 0;
    long n = m_read(fd, buf, sizeof buf - 1);
    m_close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    /* "oom_kill N" in memory.events (v2) and memory.oom_control (v1) */
    for (char *line = buf; *line;) {
        char *end = line;
        while (*end && *end != '\n')
            end++;
        const char *key = "oom_kill ";
        int i = 0;
        while (key[i] && line[i] == key[i])
            i++;
        if (!key[i] && parse_num(line + i) > 0)
            return 1;
        line = *end ? end + 1 : end;
    }
    return 0;
}

static void put_str(struct out *o, const char *s)
{
    put_json_string(o, (const unsigned char *)s, rs_strlen(s));
}

static void append_event(const char *events, const char *action, const char *id, const char *name,
                         const char *image, int code, const struct m_timespec *ts)
{
    struct out o = {line_buf, 0};
    puts_(&o, "{\"Type\": \"container\", \"Action\": \"");
    puts_(&o, action);
    puts_(&o, "\", \"Actor\": {\"ID\": ");
    put_str(&o, id);
    puts_(&o, ", \"Attributes\": {\"name\": ");
    put_str(&o, name);
    puts_(&o, ", \"image\": ");
    put_str(&o, image);
    if (code >= 0) {
        puts_(&o, ", \"exitCode\": \"");
        put_uint(&o, (unsigned long long)code, 1);
        puts_(&o, "\"");
    }
    puts_(&o, "}}, \"scope\": \"local\", \"time\": ");
    put_uint(&o, (unsigned long long)ts->tv_sec, 1);
    puts_(&o, ", \"timeNano\": ");
    put_uint(&o, (unsigned long long)ts->tv_sec, 1);
    put_uint(&o, (unsigned long long)ts->tv_nsec, 9);
    puts_(&o, "}\n");
    int fd = m_open(events, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        rs_write(fd, o.p, o.n);   /* one write() per line: lines never interleave */
        m_close(fd);
    }
}

static void write_exit_file(const char *dir, int code, int oom, const struct m_timespec *ts)
{
    static char tmp[sizeof path_buf], final[sizeof path_buf];
    struct out o = {line_buf, 0};
    struct out t = {tmp, 0}, f = {final, 0};
    puts_(&t, dir);
    puts_(&t, "/exit.tmp");
    tmp[t.n] = 0;
    puts_(&f, dir);
    puts_(&f, "/exit");
    final[f.n] = 0;
    puts_(&o, "{\"exit_code\": ");
    put_uint(&o, (unsigned long long)code, 1);
    puts_(&o, ", \"finished_ns\": ");
    put_uint(&o, (unsigned long long)ts->tv_sec, 1);
    put_uint(&o, (unsigned long long)ts->tv_nsec, 9);
    puts_(&o, ", \"oom_killed\": ");
    puts_(&o, oom ? "true" : "false");
    puts_(&o, ", \"log_lines_dropped\": ");
    put_uint(&o, (unsigned long long)dropped_total, 1);
    puts_(&o, "}\n");
    int fd = m_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return;
    rs_write_all(fd, o.p, o.n);
    m_close(fd);
    sys(M_NR_renameat2, AT_FDCWD, (long)tmp, AT_FDCWD, (long)final, 0);
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(const char *why)
{
    rs_puts(2, "pycontain-monitor: ");
    rs_puts(2, why);
    rs_puts(2, "\n");
    rs_exit(125);
}

int pc_main(int argc, char **argv, char **envp)
{
    int pid = 0;
    const char *dir = 0, *oom_path = 0, *events = 0, *id = "", *name = "", *image = "";
    const char *python = 0, *root = 0;
    long long health_ns = 0;
    int report_fd = -1, client_fd = -1;
    char **exit_cmd = 0;
    streams[0].fd = streams[1].fd = -1;
    streams[0].name = "stdout";
    streams[1].name = "stderr";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (rs_streq(a, "--")) {
            exit_cmd = argv + i + 1;
            break;
        }
        if (i + 1 >= argc)
            usage("an option without its value");
        const char *v = argv[++i];
        if (rs_streq(a, "--pid")) pid = (int)parse_num(v);
        else if (rs_streq(a, "--dir")) dir = v;
        else if (rs_streq(a, "--log")) log_path = v;
        else if (rs_streq(a, "--max-size")) max_size = parse_num(v);
        else if (rs_streq(a, "--max-file")) max_file = (int)parse_num(v);
        else if (rs_streq(a, "--stdout")) streams[0].fd = (int)parse_num(v);
        else if (rs_streq(a, "--stderr")) streams[1].fd = (int)parse_num(v);
        else if (rs_streq(a, "--tty")) streams[0].fd = tty_fd = (int)parse_num(v);
        else if (rs_streq(a, "--stdin")) stdin_fd = (int)parse_num(v);
        else if (rs_streq(a, "--attach")) listen_fd = (int)parse_num(v);
        else if (rs_streq(a, "--client")) client_fd = (int)parse_num(v);   /* attached before the start */
        else if (rs_streq(a, "--oom")) oom_path = v;
        else if (rs_streq(a, "--events")) events = v;
        else if (rs_streq(a, "--id")) id = v;
        else if (rs_streq(a, "--name")) name = v;
        else if (rs_streq(a, "--image")) image = v;
        else if (rs_streq(a, "--health-interval")) health_ns = parse_num(v);
        else if (rs_streq(a, "--python")) python = v;
        else if (rs_streq(a, "--root")) root = v;
        else if (rs_streq(a, "--report")) report_fd = (int)parse_num(v);
        else usage("unknown option");
    }
    if (pid <= 0 || !dir || !log_path)
        usage("--pid, --dir and --log are required");
    if (tty_fd >= 0 && stdin_fd < 0)
        stdin_fd = tty_fd;   /* a terminal's input is its master too */
    if (health_ns > 0 && (!python || !root))
        usage("--health-interval needs --python and --root");
    my_uid = (unsigned)sys(M_NR_getuid, 0, 0, 0, 0, 0);
    /* what we were handed is ours alone: no health probe inherits it */
    int handed[] = {streams[0].fd, streams[1].fd, stdin_fd, listen_fd, client_fd};
    for (unsigned i = 0; i < sizeof handed / sizeof handed[0]; i++)
        if (handed[i] >= 0)
            sys(M_NR_fcntl, handed[i], F_SETFD, FD_CLOEXEC, 0, 0);
    for (int i = 0; i < MAX_CLIENTS; i++)
        clients[i].fd = -1;
    /* run -t, start -ai: a client connected before the start sees all the output */
    if (client_fd >= 0)
        add_client(client_fd);

    log_fd = m_open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0640);
    if (log_fd >= 0) {
        long end = sys(M_NR_lseek, log_fd, 0, SEEK_END, 0, 0);
        log_size = end > 0 ? end : 0;
    }

    /* the signals to forward come through a signalfd; SIGPIPE is blocked so
     * that a reader who left is an EPIPE, not our death */
    rs_sigset_t fwd = (1ULL << (SIGTERM - 1)) | (1ULL << (SIGINT - 1)) | (1ULL << (SIGHUP - 1))
                      | (1ULL << (SIGQUIT - 1)) | (1ULL << (SIGUSR1 - 1)) | (1ULL << (SIGUSR2 - 1));
    rs_sigset_t watched = fwd | (1ULL << (RS_SIGCHLD - 1));   /* SIGCHLD: a health probe ended */
    rs_sigset_t blocked = watched | (1ULL << (SIGPIPE - 1)), old = 0;
    rs_sigprocmask(RS_SIG_BLOCK, &blocked, &old);
    int sfd = (int)sys(M_NR_signalfd4, -1, (long)&watched, RS_SIGSET_SIZE, O_CLOEXEC | O_NONBLOCK, 0);

    /* health checks: `python -m pycontain.managed.health ROOT ID` runs one
     * probe and records it; one every interval while the container runs,
     * never two at once */
    char *probe_argv[] = {(char *)python, "-m", "pycontain.managed.health", (char *)root, (char *)id, 0};
    int probe_pid = 0;
    struct m_timespec next_probe = {0, 0};
    if (health_ns > 0) {
        now(CLOCK_MONOTONIC, &next_probe);
        next_probe.tv_sec += health_ns / 1000000000, next_probe.tv_nsec += health_ns % 1000000000;
        if (next_probe.tv_nsec >= 1000000000)
            next_probe.tv_sec++, next_probe.tv_nsec -= 1000000000;
    }

    if (report_fd >= 0) {   /* the starter waits for this: the container runs, under us */
        struct out o = {line_buf, 0};
        puts_(&o, "{\"ok\": true, \"pid\": ");
        put_uint(&o, (unsigned long long)pid, 1);
        puts_(&o, "}");
        rs_write_all(report_fd, o.p, o.n);
        m_close(report_fd);
    }

    /* The init ends (SIGCHLD, or already before we ran); its output is
     * copied until its last writer closed it (a pid namespace's processes
     * end with its init). Until both, signals are forwarded and attach served. */
    int status = 0, reaped = rs_wait4(pid, &status, RS_WNOHANG) == pid;
    static unsigned char buf[65536];
    struct m_pollfd pfds[3 + MAX_CLIENTS];
    struct client *owner[3 + MAX_CLIENTS];
    while (streams[0].fd >= 0 || streams[1].fd >= 0 || !reaped) {
        if (sfd < 0 && streams[0].fd < 0 && streams[1].fd < 0)
            break;   /* no signalfd to say when it ends: wait4 below blocks instead */
        int n = 0;
        for (int s = 0; s < 2; s++)
            if (streams[s].fd >= 0) {
                pfds[n] = (struct m_pollfd){streams[s].fd, POLLIN, 0};
                owner[n++] = 0;
            }
        if (sfd >= 0) {
            pfds[n] = (struct m_pollfd){sfd, POLLIN, 0};
            owner[n++] = 0;
        }
        if (listen_fd >= 0) {
            pfds[n] = (struct m_pollfd){listen_fd, POLLIN, 0};
            owner[n++] = 0;
        }
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (clients[i].fd >= 0) {
                pfds[n] = (struct m_pollfd){clients[i].fd, POLLIN, 0};
                owner[n++] = &clients[i];
            }
        struct m_timespec wait_for, t;
        struct m_timespec *timeout = 0;
        if (health_ns > 0 && !reaped) {
            now(CLOCK_MONOTONIC, &t);
            long long left = (next_probe.tv_sec - t.tv_sec) * 1000000000LL + (next_probe.tv_nsec - t.tv_nsec);
            if (left <= 0) {
                if (!probe_pid) {
                    int child = rs_fork();
                    if (child == 0) {
                        rs_sigprocmask(RS_SIG_SETMASK, &old, 0);
                        rs_execve(python, probe_argv, envp);
                        rs_exit(127);
                    }
                    probe_pid = child > 0 ? child : 0;
                }
                next_probe = t;
                next_probe.tv_sec += health_ns / 1000000000, next_probe.tv_nsec += health_ns % 1000000000;
                if (next_probe.tv_nsec >= 1000000000)
                    next_probe.tv_sec++, next_probe.tv_nsec -= 1000000000;
                left = health_ns;
            }
            wait_for.tv_sec = left / 1000000000, wait_for.tv_nsec = left % 1000000000;
            timeout = &wait_for;
        }
        long r = sys(M_NR_ppoll, (long)pfds, n, (long)timeout, 0, RS_SIGSET_SIZE);
        if (r <= 0)
            continue;
        for (int k = 0; k < n; k++) {
            if (!pfds[k].revents)
                continue;
            int fd = pfds[k].fd;
            if (owner[k]) {
                if (owner[k]->fd == fd)
                    client_input(owner[k]);
                continue;
            }
            if (fd == sfd) {
                struct m_sfd_info si;
                while (m_read(sfd, &si, sizeof si) == (long)sizeof si) {
                    if (si.ssi_signo != RS_SIGCHLD) {
                        if (!reaped)
                            rs_kill(pid, (int)si.ssi_signo);
                        continue;
                    }
                    if (probe_pid && rs_wait4(probe_pid, 0, RS_WNOHANG) == probe_pid)
                        probe_pid = 0;
                    if (!reaped && rs_wait4(pid, &status, RS_WNOHANG) == pid)
                        reaped = 1;
                }
                continue;
            }
            if (fd == listen_fd) {
                accept_client();
                continue;
            }
            for (int s = 0; s < 2; s++) {
                if (streams[s].fd != fd)
                    continue;
                long got = m_read(fd, buf, sizeof buf);
                if (got == -RS_EINTR || got == -E_AGAIN)
                    break;
                if (got <= 0) {   /* its end, or EIO: a terminal whose last slave closed */
                    if (fd != stdin_fd)
                        m_close(fd);
                    streams[s].fd = -1;
                    break;
                }
                log_data(&streams[s], buf, (rs_size_t)got);
                if (fd == tty_fd)
                    flush_partial(&streams[s]);
                broadcast(buf, (rs_size_t)got);
            }
        }
    }
    for (int s = 0; s < 2; s++)
        if (streams[s].have) {
            log_entry(streams[s].name, streams[s].partial, streams[s].have);
            streams[s].have = 0;
        }

    int code;
    while (!reaped && rs_wait4(pid, &status, 0) == -RS_EINTR)
        ;
    if (probe_pid) {   /* a probe of a container that is gone has nothing to say */
        rs_kill(probe_pid, RS_SIGKILL);
        while (rs_wait4(probe_pid, 0, 0) == -RS_EINTR)
            ;
    }
    if ((status & 0x7f) == 0)
        code = (status >> 8) & 0xff;          /* exited */
    else
        code = 128 + (status & 0x7f);         /* killed by a signal */
    struct m_timespec ts;
    now(CLOCK_REALTIME, &ts);
    int oom = read_oom(oom_path);
    write_exit_file(dir, code, oom, &ts);
    if (events) {
        if (oom)
            append_event(events, "oom", id, name, image, -1, &ts);
        append_event(events, "die", id, name, image, code, &ts);
    }
    m_close(log_fd);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].fd >= 0)
            drop(&clients[i]);
    m_close(stdin_fd);
    m_close(sfd);
    if (!exit_cmd || !exit_cmd[0])
        return code;
    /* The exit command takes our place (same pid, same start time: the
     * record's monitor), with the signal mask we were given; it removes the
     * attach socket's file. */
    m_close(listen_fd);
    rs_sigprocmask(RS_SIG_SETMASK, &old, 0);
    rs_execve(exit_cmd[0], exit_cmd, envp);
    rs_puts(2, "pycontain-monitor: cannot execute the exit command\n");
    return code;
}
