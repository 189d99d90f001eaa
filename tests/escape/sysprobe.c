/* Try system calls and print one line per operation: "NAME ok" or
 * "NAME ERRNO_NAME". Built static by the tests, like escape.c.
 *
 *   sysprobe OP...
 *
 * OPs: fsync, open-dsync, uname, settimeofday (to the current time),
 * chown (a new file to 1:1), mknod-null (a 1:3 node), pty (allocate a
 * pseudo terminal and pass a byte through it), tun (open /dev/net/tun),
 * audit (a NETLINK_AUDIT socket), nosys (an unknown system call), fds
 * (list the open descriptors, "fds 0 1 2"), euid (print the effective
 * user id). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EACCES: return "EACCES";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENOENT: return "ENOENT";
    default: return strerror(e);
    }
}

static int op(const char *o) {
    if (!strcmp(o, "fsync")) {
        int fd = open("/tmp/sysprobe-fsync", O_WRONLY | O_CREAT, 0600);
        int r = fd < 0 ? -1 : fsync(fd);
        int e = errno;
        unlink("/tmp/sysprobe-fsync");
        errno = e;
        return r;
    }
    if (!strcmp(o, "open-dsync")) {
        int fd = open("/tmp/sysprobe-dsync", O_WRONLY | O_CREAT | O_DSYNC, 0600);
        int e = errno;
        unlink("/tmp/sysprobe-dsync");
        errno = e;
        return fd < 0 ? -1 : close(fd);
    }
    if (!strcmp(o, "uname")) { struct utsname u; return uname(&u); }
    if (!strcmp(o, "settimeofday")) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        return settimeofday(&tv, NULL);
    }
    if (!strcmp(o, "chown")) {
        int fd = open("/tmp/sysprobe-chown", O_WRONLY | O_CREAT, 0600);
        int r = fd < 0 ? -1 : fchown(fd, 1, 1);
        int e = errno;
        unlink("/tmp/sysprobe-chown");
        errno = e;
        return r;
    }
    if (!strcmp(o, "mknod-null")) {
        unlink("/tmp/sysprobe-null");
        int r = mknod("/tmp/sysprobe-null", S_IFCHR | 0600, makedev(1, 3));
        int e = errno;
        unlink("/tmp/sysprobe-null");
        errno = e;
        return r;
    }
    if (!strcmp(o, "pty")) {
        int m = posix_openpt(O_RDWR | O_NOCTTY);
        if (m < 0 || unlockpt(m) < 0) return -1;
        int s = open(ptsname(m), O_RDWR | O_NOCTTY);
        if (s < 0) return -1;
        char c = 'x', d = 0;
        if (write(m, "x\n", 2) != 2 || read(s, &d, 1) != 1 || d != c) { errno = EIO; return -1; }
        return 0;
    }
    if (!strcmp(o, "tun")) {
        int fd = open("/dev/net/tun", O_RDWR);
        return fd < 0 ? -1 : close(fd);
    }
    if (!strcmp(o, "audit")) {
        int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
        return fd < 0 ? -1 : close(fd);
    }
    if (!strcmp(o, "nosys")) return syscall(1000);
    errno = EINVAL;
    return -1;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "euid")) {
            printf("euid %d\n", (int)geteuid());
            continue;
        }
        if (!strcmp(argv[i], "fds")) {
            printf("fds");
            for (int fd = 0; fd < 1024; fd++)
                if (fcntl(fd, F_GETFD) >= 0) printf(" %d", fd);
            printf("\n");
            continue;
        }
        errno = 0;
        int r = op(argv[i]);
        printf("%s %s\n", argv[i], r < 0 ? ename(errno) : "ok");
    }
    return 0;
}
