/* hog: a process to benchmark `page-types -p` against.
 *   hog anon MIB              touch MIB of private anonymous memory
 *   hog sparse GIB TOUCH_MIB  map GIB with MAP_NORESERVE, touch TOUCH_MIB spread over it
 * Prints "ready" on stdout when done and then stops itself (SIGSTOP); kill it when finished. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: hog anon MIB | hog sparse GIB TOUCH_MIB\n");
		return 2;
	}
	long page = sysconf(_SC_PAGESIZE);
	if (!strcmp(argv[1], "anon")) {
		size_t len = (size_t)atol(argv[2]) << 20;
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) { perror("mmap"); return 1; }
		for (size_t i = 0; i < len; i += page)
			p[i] = 1;
	} else if (!strcmp(argv[1], "sparse") && argc > 3) {
		size_t len = (size_t)atol(argv[2]) << 30;
		size_t touch = (size_t)atol(argv[3]) << 20;
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) { perror("mmap"); return 1; }
		/* 64 KiB clusters spread evenly over the mapping */
		size_t cluster = 64 << 10, n = touch / cluster, stride = len / n;
		for (size_t c = 0; c < n; c++)
			for (size_t i = 0; i < cluster; i += page)
				p[c * stride + i] = 1;
	} else {
		fprintf(stderr, "hog: unknown mode %s\n", argv[1]);
		return 2;
	}
	printf("ready\n");
	fflush(stdout);
	raise(SIGSTOP);
	return 0;
}
