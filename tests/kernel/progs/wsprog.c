/* wsprog SMALL_PAGES THP_MB CTLFILE INFOFILE: a process with a known, changing working set.
 * Region A: SMALL_PAGES anonymous 4 KiB pages (MADV_NOHUGEPAGE).
 * Region B: THP_MB MiB anonymous, 2 MiB aligned, MADV_HUGEPAGE (transparent huge pages).
 * Both are fully touched first; then INFOFILE gets "PID A_HEX A_PAGES B_HEX B_PAGES".
 * Forever: read CTLFILE ("PCT_A PCT_B"), write one byte in each page of the first PCT_A % of
 * A and the first PCT_B % of B, flush the TLB (mprotect on both regions) and sleep 20 ms.
 * After a change of CTLFILE it writes INFOFILE.ack with the percentages applied. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc < 5) { fprintf(stderr, "usage: wsprog SMALL_PAGES THP_MB CTLFILE INFOFILE\n"); return 2; }
	long na = atol(argv[1]);
	long bbytes = atol(argv[2]) << 20;
	const char *ctl = argv[3], *info = argv[4];
	char *a = mmap(NULL, na * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *raw = mmap(NULL, bbytes + (2 << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED || raw == MAP_FAILED) { perror("mmap"); return 1; }
	char *b = (char *)(((unsigned long)raw + (2 << 20) - 1) & ~((2UL << 20) - 1));
	/* trim so region B is exactly its own VMA */
	if (b > raw) munmap(raw, b - raw);
	munmap(b + bbytes, raw + bbytes + (2 << 20) - (b + bbytes));
	madvise(a, na * 4096, MADV_NOHUGEPAGE);
	madvise(b, bbytes, MADV_HUGEPAGE);
	long nb = bbytes / 4096;
	for (long i = 0; i < na; i++) a[i * 4096] = 1;
	for (long i = 0; i < nb; i++) b[i * 4096] = 1;
	char tmp[256];
	snprintf(tmp, sizeof tmp, "%s.tmp", info);
	FILE *f = fopen(tmp, "w");
	if (!f) { perror(tmp); return 1; }
	fprintf(f, "%d %lx %ld %lx %ld\n", getpid(), (unsigned long)a, na, (unsigned long)b, nb);
	fclose(f);
	rename(tmp, info);
	int pa = -1, pb = -1;
	struct timespec ts = {0, 20 * 1000 * 1000};
	for (;;) {
		int ca = 0, cb = 0;
		f = fopen(ctl, "r");
		if (f) { if (fscanf(f, "%d %d", &ca, &cb) != 2) { ca = pa; cb = pb; } fclose(f); }
		if (ca < 0) ca = 0;
		if (cb < 0) cb = 0;
		for (long i = 0; i < na * ca / 100; i++) a[i * 4096] += 1;
		for (long i = 0; i < nb * cb / 100; i++) b[i * 4096] += 1;
		mprotect(a, na * 4096, PROT_READ); mprotect(a, na * 4096, PROT_READ | PROT_WRITE);
		mprotect(b, bbytes, PROT_READ); mprotect(b, bbytes, PROT_READ | PROT_WRITE);
		if (ca != pa || cb != pb) {
			pa = ca; pb = cb;
			snprintf(tmp, sizeof tmp, "%s.ack", info);
			f = fopen(tmp, "w");
			if (f) { fprintf(f, "%d %d\n", ca, cb); fclose(f); }
		}
		nanosleep(&ts, NULL);
	}
}
