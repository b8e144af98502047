/* leak_pagepipe RATE SECONDS: leaks whole pages for the pgtool leak guest test. RATE times a
 * second it creates a pipe and writes one page into it, and never reads or closes it: each
 * pipe holds one page from the buddy allocator (pipe_write -> alloc_page, order 0), which
 * /proc/meminfo counts in no category (it is "unaccounted"), plus a filp and a pipe_inode_info.
 * Runs SECONDS seconds (0: until killed), then sleeps until killed, holding the pages.
 * Prints "leak_pagepipe PID ready" at start and "leak_pagepipe pipes N" at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: leak_pagepipe RATE SECONDS\n");
		return 2;
	}
	long rate = atol(argv[1]), secs = atol(argv[2]), n = 0;
	long ps = sysconf(_SC_PAGESIZE);
	char *page = malloc(ps);
	struct rlimit rl = { 1 << 20, 1 << 20 };

	if (rate <= 0 || !page)
		return 2;
	memset(page, 0x5a, ps);
	/* as root, up to fs.nr_open (1M by default); else as high as the hard limit allows */
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	printf("leak_pagepipe %d ready\n", (int)getpid());
	fflush(stdout);
	double t0 = now();
	while (secs == 0 || now() - t0 < secs) {
		int p[2];
		/* paced against the clock, so the count in any window is rate x its length */
		double due = t0 + (double)n / rate;
		double wait = due - now();
		if (wait > 0) {
			struct timespec ts = { (time_t)wait, (long)((wait - (time_t)wait) * 1e9) };
			nanosleep(&ts, NULL);
		}
		if (pipe(p) != 0) {
			perror("pipe");
			break;
		}
		if (write(p[1], page, ps) != ps) {
			perror("write");
			break;
		}
		n++;
	}
	printf("leak_pagepipe pipes %ld\n", n);
	fflush(stdout);
	for (;;)
		pause();
}
