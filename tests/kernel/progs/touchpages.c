/* touchpages NPAGES INFOFILE: test program for `pgtool idle mark/read` and `hwpoison`.
 * Maps NPAGES anonymous 4 KiB pages (no THP) and writes "PID ADDR_HEX NPAGES" to INFOFILE.
 * Each SIGUSR1 advances one step and then writes INFOFILE.<step>:
 *   step 1: touch (write) every page
 *   step 2: flush this process's TLB (mprotect), touch the first half, flush again
 *   step 3+: read the first page (to take a SIGBUS on a poisoned page)
 * After touching it drains this CPU's LRU-add batch (mlock/munlock of a spare page) so the
 * pages are on the LRU and can be marked idle. A SIGBUS prints its si_code and exits 42.
 * SIGTERM exits 0. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile sig_atomic_t steps;
static char *buf;
static long npages;
static const char *info;
static char spare[8192] __attribute__((aligned(4096)));

static void on_usr1(int s) { (void)s; steps++; }
static void on_term(int s) { (void)s; _exit(0); }
static void on_bus(int s, siginfo_t *si, void *u) {
	(void)s; (void)u;
	char m[128];
	int n = snprintf(m, sizeof m, "SIGBUS si_code=%d addr=%p\n", si->si_code, si->si_addr);
	write(1, m, n);
	_exit(42);
}
static void drain(void) {
	if (mlock(spare, 4096) == 0) munlock(spare, 4096);
}
static void flush(void) {
	mprotect(buf, npages * 4096, PROT_READ);
	mprotect(buf, npages * 4096, PROT_READ | PROT_WRITE);
}
static void done(int step) {
	char p[256];
	snprintf(p, sizeof p, "%s.%d", info, step);
	FILE *f = fopen(p, "w");
	if (f) { fprintf(f, "done\n"); fclose(f); }
}

int main(int argc, char **argv) {
	if (argc < 3) { fprintf(stderr, "usage: touchpages NPAGES INFOFILE\n"); return 2; }
	npages = atol(argv[1]);
	info = argv[2];
	buf = mmap(NULL, npages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) { perror("mmap"); return 1; }
	madvise(buf, npages * 4096, MADV_NOHUGEPAGE);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1; sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_term; sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = NULL; sa.sa_sigaction = on_bus; sa.sa_flags = SA_SIGINFO; sigaction(SIGBUS, &sa, NULL);
	char tmp[256];
	snprintf(tmp, sizeof tmp, "%s.tmp", info);
	FILE *f = fopen(tmp, "w");
	if (!f) { perror(tmp); return 1; }
	fprintf(f, "%d %lx %ld\n", getpid(), (unsigned long)buf, npages);
	fclose(f);
	rename(tmp, info);
	int seen = 0;
	for (;;) {
		while (seen == steps) pause();
		seen++;
		if (seen == 1) {
			for (long i = 0; i < npages; i++) buf[i * 4096] = (char)i;
			drain();
		} else if (seen == 2) {
			flush();
			for (long i = 0; i < npages / 2; i++) buf[i * 4096] += 1;
			drain();
			flush();
		} else {
			volatile char c = buf[0];
			(void)c;
		}
		done(seen);
	}
}
