/* A stand-in for testcontainers' Ryuk reaper (testcontainers/ryuk), for the
 * tests: no internet here, so the test builds this into an image itself.
 *
 * Ryuk's protocol: listen on TCP 8080; a client sends lines of filters
 * ("label=KEY=VALUE", several joined by '&'), each answered "ACK\n". While a
 * client is connected nothing happens. When the last one has gone and none
 * came back within RYUK_RECONNECTION_TIMEOUT (Go duration: "10s", "500ms"),
 * or on SIGTERM/SIGINT, every container, network, volume and image
 * matching the filters is removed through the Engine API on the
 * mounted /var/run/docker.sock, and the reaper exits. It logs
 * "... Started!" once listening, as testcontainers waits for.
 *
 * Built with gcc -static into a scratch image: one file, one process, poll().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 16
#define MAX_FILTERS 32
#define DOCKER_SOCK "/var/run/docker.sock"

static char *filters[MAX_FILTERS];     /* "label=KEY=VALUE" */
static int nfilters;
static volatile sig_atomic_t stopping;

static void on_signal(int sig) { (void)sig; stopping = 1; }

static long duration_ms(const char *s)
{
    char *end;
    double v;
    if (!s || !*s)
        return 10000;
    v = strtod(s, &end);
    if (!strcmp(end, "ms"))
        return (long)v;
    if (!strcmp(end, "m"))
        return (long)(v * 60000);
    return (long)(v * 1000);    /* "s" or a bare number */
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static void add_filter(const char *f)
{
    int i;
    if (!*f || nfilters == MAX_FILTERS)
        return;
    for (i = 0; i < nfilters; i++)
        if (!strcmp(filters[i], f))
            return;
    filters[nfilters++] = strdup(f);
}

/* One line from a client: filters joined by '&'. */
static void take_line(char *line)
{
    char *save, *part;
    for (part = strtok_r(line, "&", &save); part; part = strtok_r(NULL, "&", &save))
        add_filter(part);
}

/* ---- the Engine API over the unix socket -------------------------------- */

/* One HTTP/1.0 request; the body of the answer in buf (NUL-terminated). */
static int api(const char *method, const char *path, char *buf, size_t size)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char req[8192];
    size_t got = 0;
    ssize_t n;
    char *body;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    strncpy(sa.sun_path, DOCKER_SOCK, sizeof(sa.sun_path) - 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "reaper: connect %s: %s\n", DOCKER_SOCK, strerror(errno));
        close(fd);
        return -1;
    }
    n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: docker\r\nContent-Length: 0\r\n\r\n", method, path);
    if (write(fd, req, n) != n) {
        close(fd);
        return -1;
    }
    while (got + 1 < size && (n = read(fd, buf + got, size - 1 - got)) > 0)
        got += n;
    close(fd);
    buf[got] = 0;
    body = strstr(buf, "\r\n\r\n");
    if (!body)
        return -1;
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return 0;
}

static void urlencode(const char *in, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *in && o + 4 < size; in++) {
        unsigned char c = *in;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-_.~", c)) {
            out[o++] = c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
}

/* filters={"label":{"K=V":true}} for one "label=K=V" filter, URL-encoded:
 * the map form Ryuk's Go client sends. */
static int query_for(const char *filter, char *out, size_t size)
{
    char json[2048];
    const char *eq = strchr(filter, '=');
    if (!eq)
        return -1;
    snprintf(json, sizeof(json), "{\"%.*s\":{\"%s\":true}}", (int)(eq - filter), filter, eq + 1);
    urlencode(json, out, size);
    return 0;
}

/* Every value of "KEY": "..." in a JSON text, in turn. */
static const char *next_value(const char *p, const char *key, char *val, size_t size)
{
    size_t i;
    while ((p = strstr(p, key))) {
        p += strlen(key);
        while (*p == ' ' || *p == ':')
            p++;
        if (*p != '"')
            continue;
        p++;
        for (i = 0; *p && *p != '"' && i + 1 < size; p++)
            val[i++] = *p;
        val[i] = 0;
        return p;
    }
    return NULL;
}

static int prune_kind(const char *list_path, const char *key, const char *delete_fmt, const char *filter)
{
    static char buf[1 << 20];
    char q[4096], path[8192], val[512], answer[4096];
    const char *p;
    int removed = 0;
    if (query_for(filter, q, sizeof(q)) < 0)
        return 0;
    snprintf(path, sizeof(path), "%s%sfilters=%s", list_path, strchr(list_path, '?') ? "&" : "?", q);
    if (api("GET", path, buf, sizeof(buf)) < 0)
        return 0;
    for (p = buf; (p = next_value(p, key, val, sizeof(val)));) {
        snprintf(path, sizeof(path), delete_fmt, val);
        if (api("DELETE", path, answer, sizeof(answer)) == 0)
            removed++;
    }
    return removed;
}

static void prune(void)
{
    int i, c = 0, n = 0, v = 0, m = 0;
    for (i = 0; i < nfilters; i++) {
        c += prune_kind("/containers/json?all=1", "\"Id\"", "/containers/%s?force=1&v=1", filters[i]);
        n += prune_kind("/networks", "\"Id\"", "/networks/%s", filters[i]);
        v += prune_kind("/volumes", "\"Name\"", "/volumes/%s", filters[i]);
        m += prune_kind("/images/json", "\"Id\"", "/images/%s", filters[i]);
    }
    printf("reaper: removed %d containers, %d networks, %d volumes, %d images\n", c, n, v, m);
    fflush(stdout);
}

/* ---- the listener -------------------------------------------------------- */

int main(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(8080), .sin_addr.s_addr = htonl(INADDR_ANY)};
    struct pollfd fds[1 + MAX_CLIENTS];
    char lines[MAX_CLIENTS][4096];
    size_t used[MAX_CLIENTS];
    long timeout = duration_ms(getenv("RYUK_RECONNECTION_TIMEOUT"));
    long last_left = -1;
    int nclients = 0, ever = 0, one = 1, i;
    struct sigaction act = {.sa_handler = on_signal};

    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    fds[0].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(fds[0].fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fds[0].fd < 0 || bind(fds[0].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fds[0].fd, 8) < 0) {
        fprintf(stderr, "reaper: listen on 8080: %s\n", strerror(errno));
        return 1;
    }
    fds[0].events = POLLIN;
    printf("reaper: Started!\n");

    while (!stopping) {
        int wait = -1;
        if (ever && nclients == 0) {
            wait = (int)(last_left + timeout - now_ms());
            if (wait <= 0)
                break;    /* nobody came back in time */
        }
        if (poll(fds, 1 + nclients, wait) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[0].revents & POLLIN) {
            int c = accept4(fds[0].fd, NULL, NULL, SOCK_CLOEXEC);
            if (c >= 0 && nclients < MAX_CLIENTS) {
                fds[1 + nclients] = (struct pollfd){.fd = c, .events = POLLIN};
                used[nclients++] = 0;
                ever = 1;
                printf("reaper: client connected (%d)\n", nclients);
            } else if (c >= 0) {
                close(c);
            }
        }
        for (i = 0; i < nclients; i++) {
            ssize_t n;
            char *nl;
            if (!(fds[1 + i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            n = read(fds[1 + i].fd, lines[i] + used[i], sizeof(lines[i]) - 1 - used[i]);
            if (n <= 0) {    /* gone: the session ended or its process died */
                close(fds[1 + i].fd);
                fds[1 + i] = fds[nclients];
                used[i] = used[nclients - 1];
                memcpy(lines[i], lines[nclients - 1], sizeof(lines[i]));
                nclients--;
                i--;
                last_left = now_ms();
                printf("reaper: client left (%d)\n", nclients);
                continue;
            }
            used[i] += n;
            lines[i][used[i]] = 0;
            while ((nl = strchr(lines[i], '\n'))) {
                *nl = 0;
                if (nl > lines[i] && nl[-1] == '\r')
                    nl[-1] = 0;
                take_line(lines[i]);
                if (write(fds[1 + i].fd, "ACK\n", 4) != 4)
                    break;
                used[i] -= nl + 1 - lines[i];
                memmove(lines[i], nl + 1, used[i] + 1);
            }
            if (used[i] == sizeof(lines[i]) - 1)
                used[i] = 0;    /* a line too long: dropped */
        }
    }
    prune();
    return 0;
}
