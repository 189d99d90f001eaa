/* Benchmark helper: N stat(2) calls on one path, timed inside the process
 * so that container start-up does not count. Prints the mean ns per call.
 *
 *   statloop [N [PATH]]     (default 1000000 calls on "/")
 *
 * Built static (gcc -static -O2), see BENCHMARKS.md "d. Seccomp cost". */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    const char *path = argc > 2 ? argv[2] : "/";
    struct stat st;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++)
        if (stat(path, &st) < 0) { perror("stat"); return 1; }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("%.1f\n", ns / n);
    return 0;
}
