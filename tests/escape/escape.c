/* The escape battery: run as root inside a container, it tries what root
 * in a container must not be able to do to the host and prints one line
 * per attempt: "NAME: BLOCKED (why)" or "NAME: ESCAPED (what worked)".
 * The link attempts print "CREATED" or "CHANGED" with the network
 * namespace when they succeed: whether that is an escape depends on
 * whether it is the host's, which only the host can tell.
 *
 * Built static by the tests (gcc -static), so it runs in any tree.
 *
 *   escape LOOP_MAJOR:LOOP_MINOR HOST_FILE REVERSED_MARKER LINK_NAME
 *
 * HOST_FILE exists on the host only; the marker (given reversed, so this
 * process's own command line does not contain it) is the argument of a
 * process on the host and the value of NSPAWN_TEST_SECRET in the caller's
 * environment. Attempts never change the host: values written are the ones
 * read, files opened for writing are not written. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void report(const char *name, int escaped, const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    printf("%s: %s (%s)\n", name, escaped ? "ESCAPED" : "BLOCKED", why);
    fflush(stdout);
}

/* A call that needs a privilege: "escaped" unless it failed with one of
 * the errors that mean "not allowed" (EPERM, EACCES, ENOSYS, EROFS). */
static int denied(int e) { return e == EPERM || e == EACCES || e == ENOSYS || e == EROFS; }

static void inherited_fds(void) {
    char list[256] = "";
    int n = 0;
    for (int fd = 3; fd < 1024; fd++) {
        if (fcntl(fd, F_GETFD) < 0) continue;
        char link[64], target[128] = "";
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t l = readlink(link, target, sizeof target - 1);
        if (l > 0) target[l] = 0;
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%d->%s", n++ ? " " : "", fd, target);
    }
    report("inherited-fds", n > 0, "%s", n ? list : "only 0, 1, 2");
}

static void pid1_fds(void) {
    if (getpid() == 1) {
        report("pid1-fds", 0, "we are PID 1");
        return;
    }
    DIR *d = opendir("/proc/1/fd");
    if (!d) {
        report("pid1-fds", 0, "opendir: %s", strerror(errno));
        return;
    }
    char list[256] = "";
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd <= 2) continue;
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%d", n++ ? " " : "", fd);
    }
    closedir(d);
    report("pid1-fds", n > 0, "%s", n ? list : "only 0, 1, 2");
}

/* Make a device node where the mount allows device nodes: /dev and / are
 * not "nodev" (an open on a nodev mount would fail for that reason alone,
 * and prove nothing about the device policy). */
static int make_node(const char *name, mode_t type, unsigned maj, unsigned min, char *path, size_t size) {
    static const char *const dirs[] = {"/dev", "", "/tmp", NULL};
    int err = 0;
    for (int i = 0; dirs[i]; i++) {
        snprintf(path, size, "%s/esc-%s", dirs[i], name);
        unlink(path);
        if (mknod(path, type | 0600, makedev(maj, min)) == 0) return 0;
        if (!err || err == EROFS) err = errno;
    }
    errno = err;
    return -1;
}

static void block_device(unsigned maj, unsigned min) {
    char node[64];
    if (make_node("blk", S_IFBLK, maj, min, node, sizeof node) < 0) {
        report("blockdev-read", 0, "mknod %u:%u: %s", maj, min, strerror(errno));
        report("blockdev-mount", 0, "mknod %u:%u: %s", maj, min, strerror(errno));
        return;
    }
    int fd = open(node, O_RDONLY);
    if (fd < 0) {
        report("blockdev-read", 0, "open %s: %s", node, strerror(errno));
    } else {
        char buf[1024];
        ssize_t n = pread(fd, buf, sizeof buf, 1024);
        if (n > 0) report("blockdev-read", 1, "read %zd bytes of the host's loop device", n);
        else report("blockdev-read", 0, "read: %s", strerror(errno));
        close(fd);
    }
    mkdir("/tmp", 01777);
    mkdir("/tmp/esc-mnt", 0700);
    if (mount(node, "/tmp/esc-mnt", "ext2", MS_RDONLY, NULL) == 0) {
        report("blockdev-mount", 1, "mounted the host's loop device");
        umount("/tmp/esc-mnt");
    } else {
        report("blockdev-mount", 0, "mount: %s", strerror(errno));
    }
    unlink(node);
}

/* devtmpfs is one instance for the whole system: mounting it again shows
 * the host's device nodes, the loop device among them. */
static void devtmpfs(unsigned maj, unsigned min) {
    mkdir("/tmp", 01777);
    mkdir("/tmp/esc-devtmpfs", 0700);
    if (mount("devtmpfs", "/tmp/esc-devtmpfs", "devtmpfs", 0, NULL) < 0) {
        report("devtmpfs", 0, "mount: %s", strerror(errno));
        return;
    }
    DIR *d = opendir("/tmp/esc-devtmpfs");
    struct dirent *e;
    char found[300] = "";
    while (d && (e = readdir(d))) {
        char p[300];
        struct stat st;
        snprintf(p, sizeof p, "/tmp/esc-devtmpfs/%s", e->d_name);
        if (lstat(p, &st) == 0 && S_ISBLK(st.st_mode) && major(st.st_rdev) == maj && minor(st.st_rdev) == min)
            snprintf(found, sizeof found, "%s", p);
    }
    if (d) closedir(d);
    int fd = found[0] ? open(found, O_RDONLY) : -1;
    char b[512];
    if (!found[0]) report("devtmpfs", 0, "mounted, but no %u:%u in it", maj, min);
    else if (fd < 0) report("devtmpfs", 0, "open %s: %s", found, strerror(errno));
    else if (pread(fd, b, sizeof b, 1024) > 0) report("devtmpfs", 1, "read the host's loop device via %s", found);
    else report("devtmpfs", 0, "read: %s", strerror(errno));
    if (fd >= 0) close(fd);
    umount2("/tmp/esc-devtmpfs", MNT_DETACH);
}

/* CVE-2022-0492: a cgroup v1 hierarchy mounted again shows its
 * release_agent, which the kernel runs as root on the host. Opened for
 * writing, never written. */
static void release_agent(void) {
    static const char *const ctrl[] = {"memory", "pids", "cpu", "freezer", "devices", "rdma", "blkio", NULL};
    mkdir("/tmp", 01777);
    mkdir("/tmp/esc-cgroup", 0700);
    char why[256] = "no v1 hierarchy could be mounted";
    for (int i = 0; ctrl[i]; i++) {
        if (mount("cgroup", "/tmp/esc-cgroup", "cgroup", 0, ctrl[i]) < 0) continue;
        int fd = open("/tmp/esc-cgroup/release_agent", O_WRONLY);
        int e = errno;
        umount2("/tmp/esc-cgroup", MNT_DETACH);
        if (fd >= 0) {
            close(fd);
            report("release-agent", 1, "%s release_agent open for writing", ctrl[i]);
            return;
        }
        snprintf(why, sizeof why, "%s mounted, release_agent: %s", ctrl[i], strerror(e));
    }
    report("release-agent", 0, "%s", why);
}

/* With CAP_SYS_ADMIN in the host's user namespace, the read-only /proc/sys
 * and /sys can be remounted, or mounted afresh, writable. Checked by
 * opening for writing, never written. */
static void fresh_mounts(void) {
    if (mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL) == 0) {
        int fd = open("/proc/sys/kernel/core_pattern", O_WRONLY);
        report("proc-sys-remount", fd >= 0, fd >= 0 ? "remounted /proc/sys writable" : "remounted, still: %s", strerror(errno));
        if (fd >= 0) close(fd);
        mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
    } else {
        report("proc-sys-remount", 0, "%s", strerror(errno));
    }
    static const char *const what[][3] = {
        {"fresh-proc", "proc", "/sys/kernel/core_pattern"},
        {"fresh-sysfs", "sysfs", "/power/state"},
    };
    for (int i = 0; i < 2; i++) {
        char dir[64], file[128];
        snprintf(dir, sizeof dir, "/tmp/esc-%s", what[i][1]);
        snprintf(file, sizeof file, "%s%s", dir, what[i][2]);
        mkdir("/tmp", 01777);
        mkdir(dir, 0700);
        if (mount(what[i][1], dir, what[i][1], 0, NULL) < 0) {
            report(what[i][0], 0, "mount: %s", strerror(errno));
            continue;
        }
        int fd = open(file, O_WRONLY);
        if (fd >= 0) report(what[i][0], 1, "%s open for writing", file), close(fd);
        else report(what[i][0], 0, "%s: %s", file, strerror(errno));
        umount2(dir, MNT_DETACH);
    }
}

static void char_device(const char *name, const char *path, unsigned maj, unsigned min) {
    char node[64];
    /* Use the node if the file system has it, else make one. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        if (make_node(name, S_IFCHR, maj, min, node, sizeof node) < 0) {
            report(name, 0, "no %s, mknod %u:%u: %s", path, maj, min, strerror(errno));
            return;
        }
        fd = open(node, O_RDONLY | O_NONBLOCK);
        int e = errno;
        unlink(node);
        errno = e;
    }
    if (fd < 0) {
        report(name, 0, "open: %s", strerror(errno));
        return;
    }
    report(name, 1, "opened %s", path);
    close(fd);
}

static void clocks(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (settimeofday(&tv, NULL) == 0) report("settimeofday", 1, "set the clock");
    else report("settimeofday", 0, "%s", strerror(errno));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (clock_settime(CLOCK_REALTIME, &ts) == 0) report("clock_settime", 1, "set the clock");
    else report("clock_settime", 0, "%s", strerror(errno));
}

static void modules(void) {
    long r = syscall(SYS_delete_module, "esc_no_such_module", O_NONBLOCK);
    if (r < 0 && denied(errno)) report("delete_module", 0, "%s", strerror(errno));
    else report("delete_module", 1, "allowed (%s)", r < 0 ? strerror(errno) : "ok");
    r = syscall(SYS_finit_module, -1, "", 0);
    if (r < 0 && denied(errno)) report("finit_module", 0, "%s", strerror(errno));
    else report("finit_module", 1, "allowed (%s)", r < 0 ? strerror(errno) : "ok");
    r = syscall(SYS_init_module, NULL, 0, "");
    if (r < 0 && denied(errno)) report("init_module", 0, "%s", strerror(errno));
    else report("init_module", 1, "allowed (%s)", r < 0 ? strerror(errno) : "ok");
}

/* Which network namespace we are in: a link made or changed is only an
 * escape if this is the host's. */
static const char *netns(void) {
    static char ns[64];
    ssize_t n = readlink("/proc/self/ns/net", ns, sizeof ns - 1);
    ns[n > 0 ? n : 0] = 0;
    return ns;
}

static void links(const char *name) {
    int fd = open("/dev/net/tun", O_RDWR);
    if (fd < 0) {
        report("link-add", 0, "open /dev/net/tun: %s", strerror(errno));
    } else {
        struct ifreq ifr = {0};
        ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
        snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0) report("link-add", 0, "TUNSETIFF: %s", strerror(errno));
        else if (ioctl(fd, TUNSETPERSIST, 1) < 0) report("link-add", 0, "TUNSETPERSIST: %s", strerror(errno));
        else printf("link-add: CREATED (%s in %s)\n", name, netns()), fflush(stdout);
        close(fd);
    }
    /* Change a link's flags to what they are. */
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, IFNAMSIZ, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
        report("link-change", 0, "SIOCGIFFLAGS: %s", strerror(errno));
    } else if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
        report("link-change", 0, "SIOCSIFFLAGS lo: %s", strerror(errno));
    } else {
        printf("link-change: CHANGED (lo in %s)\n", netns()), fflush(stdout);
    }
    if (s >= 0) close(s);
}

static void open_for_write(const char *name, const char *const paths[]) {
    const char *why = "none of the files exists";
    static char buf[256];
    for (int i = 0; paths[i]; i++) {
        int fd = open(paths[i], O_WRONLY);
        if (fd >= 0) {
            close(fd);
            report(name, 1, "%s open for writing", paths[i]);
            return;
        }
        if (errno != ENOENT) {
            snprintf(buf, sizeof buf, "%s: %s", paths[i], strerror(errno));
            why = buf;
        }
    }
    report(name, 0, "%s", why);
}

static void read_kernel(void) {
    int fd = open("/proc/kcore", O_RDONLY);
    char b[64];
    if (fd < 0) report("kcore", 0, "open: %s", strerror(errno));
    else {
        ssize_t n = read(fd, b, sizeof b);
        report("kcore", n > 0, n > 0 ? "read kernel memory" : "read: nothing");
        close(fd);
    }
    FILE *f = fopen("/proc/kallsyms", "r");
    if (!f) {
        report("kallsyms", 0, "open: %s", strerror(errno));
        return;
    }
    char line[256] = "";
    int real = 0;
    while (fgets(line, sizeof line, f)) {
        if (strspn(line, "0") < 16) { real = 1; break; }
    }
    fclose(f);
    report("kallsyms", real, real ? "kernel addresses visible" : "no addresses");
}

static void kexec(void) {
    /* Too many segments: fails with EINVAL after the permission check. */
    long r = syscall(SYS_kexec_load, 0, 1000, NULL, 0);
    if (r < 0 && denied(errno)) report("kexec_load", 0, "%s", strerror(errno));
    else report("kexec_load", 1, "allowed (%s)", r < 0 ? strerror(errno) : "ok");
}

static void by_handle(void) {
    struct { struct file_handle h; unsigned char b[128]; } fh;
    fh.h.handle_bytes = 128;
    int mnt;
    if (name_to_handle_at(AT_FDCWD, "/", &fh.h, &mnt, 0) < 0) {
        report("open_by_handle_at", 0, "name_to_handle_at: %s", strerror(errno));
        return;
    }
    int root = open("/", O_RDONLY | O_DIRECTORY);
    int fd = open_by_handle_at(root, &fh.h, O_RDONLY);
    if (fd >= 0) report("open_by_handle_at", 1, "opened a file by handle"), close(fd);
    else report("open_by_handle_at", 0, "%s", strerror(errno));
    close(root);
}

static void keys_bpf_perf_swap(void) {
    long r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 1);
    if (r < 0) report("keyctl", 0, "%s", strerror(errno));
    else report("keyctl", 1, "got the session keyring %ld", r);
    r = syscall(SYS_add_key, "user", "esc", "x", 1, -3);
    if (r < 0 && denied(errno)) report("add_key", 0, "%s", strerror(errno));
    else report("add_key", 1, "allowed (%s)", r < 0 ? strerror(errno) : "added");
    if (r >= 0) syscall(SYS_keyctl, 3 /* KEYCTL_REVOKE */, r);

    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = 4;
    a.value_size = 4;
    a.max_entries = 1;
    r = syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a);
    if (r < 0) report("bpf", 0, "%s", strerror(errno));
    else report("bpf", 1, "created a map"), close(r);

    struct perf_event_attr pa;
    memset(&pa, 0, sizeof pa);
    pa.size = sizeof pa;
    pa.type = PERF_TYPE_SOFTWARE;
    pa.config = PERF_COUNT_SW_CPU_CLOCK;
    r = syscall(SYS_perf_event_open, &pa, 0, -1, -1, 0);
    if (r < 0) report("perf_event_open", 0, "%s", strerror(errno));
    else report("perf_event_open", 1, "opened a perf event"), close(r);

    r = swapoff("/esc-no-such-swap");
    if (r < 0 && denied(errno)) report("swapoff", 0, "%s", strerror(errno));
    else report("swapoff", 1, "allowed (%s)", r < 0 ? strerror(errno) : "ok");
}

static void host_processes(const char *marker) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    int seen = 0, found = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        seen++;
        char path[300], cmd[256];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t n = read(fd, cmd, sizeof cmd - 1);
        close(fd);
        for (ssize_t i = 0; i < n; i++) if (!cmd[i]) cmd[i] = ' ';
        if (n > 0) cmd[n] = 0;
        if (n > 0 && strstr(cmd, marker)) found = atoi(e->d_name);
    }
    if (d) closedir(d);
    if (found) report("host-processes", 1, "host process %d visible", found);
    else report("host-processes", 0, "%d processes, none of the host's", seen);
}

static int reachable(const char *path) { return access(path, F_OK) == 0; }

static void chroot_dotdot(const char *host_file) {
    pid_t p = fork();
    if (p == 0) {
        mkdir("/tmp", 01777);
        mkdir("/tmp/esc-jail", 0700);
        if (chroot("/tmp/esc-jail") < 0) _exit(2);
        for (int i = 0; i < 64; i++) chdir("..");
        chroot(".");
        _exit(reachable(host_file) ? 0 : 1);
    }
    int st = 0;
    waitpid(p, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) report("chroot-dotdot", 1, "reached %s", host_file);
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 2) report("chroot-dotdot", 0, "chroot refused");
    else report("chroot-dotdot", 0, "%s not reachable", host_file);
}

static void proc1_root(const char *host_file) {
    char p[512];
    snprintf(p, sizeof p, "/proc/1/root%s", host_file);
    if (reachable(p)) report("proc1-root", 1, "reached %s", p);
    else report("proc1-root", 0, "%s: %s", p, strerror(errno));
}

static void proc1_exe(void) {
    unsigned char c;
    int r = open("/proc/1/exe", O_RDONLY);
    if (r < 0 || pread(r, &c, 1, 0) != 1) {
        report("proc1-exe-write", 0, "cannot read /proc/1/exe: %s", strerror(errno));
        if (r >= 0) close(r);
        return;
    }
    close(r);
    int w = open("/proc/1/exe", O_WRONLY);
    if (w < 0) {
        report("proc1-exe-write", 0, "open for writing: %s", strerror(errno));
        return;
    }
    /* The byte that is there already. */
    if (pwrite(w, &c, 1, 0) == 1) report("proc1-exe-write", 1, "wrote to PID 1's binary");
    else report("proc1-exe-write", 0, "write: %s", strerror(errno));
    close(w);
}

static void env_secret(const char *marker) {
    const char *v = getenv("NSPAWN_TEST_SECRET");
    int found = v && strstr(v, marker);
    char buf[65536];
    int fd = open("/proc/1/environ", O_RDONLY);
    if (!found && fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        for (ssize_t i = 0; i < n; i++) if (!buf[i]) buf[i] = ' ';
        if (n > 0) buf[n] = 0;
        found = n > 0 && strstr(buf, marker);
    }
    if (fd >= 0) close(fd);
    report("env-secret", found, found ? "the caller's secret is visible" : "not in our or PID 1's environment");
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MAJOR:MINOR HOST_FILE REVERSED_MARKER LINK\n", argv[0]);
        return 2;
    }
    /* First, before we open anything ourselves. */
    inherited_fds();
    unsigned maj = 0, min = 0;
    sscanf(argv[1], "%u:%u", &maj, &min);
    const char *host_file = argv[2];
    size_t len = strlen(argv[3]);
    char marker[64] = "";
    for (size_t i = 0; i < len && i < sizeof marker - 1; i++) marker[i] = argv[3][len - 1 - i];

    pid1_fds();
    block_device(maj, min);
    devtmpfs(maj, min);
    release_agent();
    char_device("dev-mem", "/dev/mem", 1, 1);
    char_device("dev-kmsg", "/dev/kmsg", 1, 11);
    clocks();
    modules();
    links(argv[4]);
    static const char *const proc_sys[] = {"/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", NULL};
    open_for_write("proc-sys-write", proc_sys);
    static const char *const sys[] = {"/sys/kernel/uevent_helper", "/sys/power/state",
                                      "/sys/class/net/lo/mtu", NULL};
    open_for_write("sys-write", sys);
    static const char *const sysrq[] = {"/proc/sysrq-trigger", NULL};
    open_for_write("sysrq-trigger", sysrq);
    fresh_mounts();
    read_kernel();
    kexec();
    by_handle();
    keys_bpf_perf_swap();
    host_processes(marker);
    chroot_dotdot(host_file);
    proc1_root(host_file);
    proc1_exe();
    env_secret(marker);
    return 0;
}
