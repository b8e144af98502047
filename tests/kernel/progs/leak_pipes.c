/* leak_pipes [STEPS [INTERVAL_MS [PAGES]]]: a deliberately leaking workload for the pgtool
 * guest tests. Every step it creates 8 pipes, 4 socketpairs and opens /dev/null 8 times, and
 * never closes any of them; at start it also maps PAGES anonymous pages (default 2048 = 8 MiB)
 * and touches them, so page_owner records its page allocations. Then it sleeps forever
 * (kill it). Prints "leak_pipes PID ready" once the pages are touched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/resource.h>

int main(int argc, char **argv)
{
	long steps = argc > 1 ? atol(argv[1]) : 200;
	long interval_ms = argc > 2 ? atol(argv[2]) : 20;
	long pages = argc > 3 ? atol(argv[3]) : 2048;
	struct rlimit rl;
	struct timespec ts = { interval_ms / 1000, (interval_ms % 1000) * 1000000L };
	long ps = sysconf(_SC_PAGESIZE);
	char *mem;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	mem = mmap(NULL, pages * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (long i = 0; i < pages; i++)
		mem[i * ps] = (char)(i + 1);
	printf("leak_pipes %d ready\n", (int)getpid());
	fflush(stdout);
	for (long s = 0; s < steps; s++) {
		int p[2], sv[2];
		for (int k = 0; k < 8; k++)
			if (pipe(p) != 0)
				break;
		for (int k = 0; k < 4; k++)
			if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
				break;
		for (int k = 0; k < 8; k++)
			if (open("/dev/null", O_RDONLY) < 0)
				break;
		nanosleep(&ts, NULL);
	}
	for (;;)
		pause();
}
