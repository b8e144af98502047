/* idle: the guest half of bench/idle.sh (run inside the qemu kernel, which has page_idle).
 *   idle MARK_MIB WSS_MIB RUNS PGTOOL
 * 1. A child touches MARK_MIB of private anonymous 4 KiB pages (MADV_NOHUGEPAGE: one bitmap bit
 *    per page, nothing for pgtool to widen to a folio head) and stops.
 * 2. RUNS alternating runs of: the floor of marking those pages idle (one pagemap pread per
 *    64 Ki pages, then one pwrite per window of at most 512 bitmap words holding only the bits
 *    of the pages: what any marker must do), `PGTOOL idle mark --pid P --addr A+LEN`, the floor
 *    of reading them (the same pagemap reads, preads of the same word windows, the bits
 *    counted), `PGTOOL idle read --pid P --addr A+LEN`, `PGTOOL --version` (the cost of
 *    starting a process at all) and the kpageflags reads a correct tool adds to the floor
 *    (page_idle ignores a THP tail's PFN: each page's flags say whether to use its head's
 *    bit). Medians printed per page and as ratios to the floor, with and without those.
 *    Before timing, pgtool's read must agree with the floor's: after a mark, every page idle.
 * 3. A child touches WSS_MIB and keeps touching it; `PGTOOL idle wss --count 5 --interval
 *    200ms` samples it: the CPU time pgtool spends per interval (rusage of the child), and its
 *    wall time beyond the 5 intervals it sleeps.
 * Exit status 1 when anything fails (a command, a disagreement); the ratios are judged by
 * bench/idle.sh. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define PM_CHUNK (64UL << 10)      /* pagemap entries per pread */
#define MAX_WORDS 512              /* the kernel's limit per bitmap read/write */
#define PFN_MASK ((1ULL << 55) - 1)

static const char *bitmap_path = "/sys/kernel/mm/page_idle/bitmap";

static void die(const char *m) { fprintf(stderr, "idle bench: %s\n", m); exit(1); }
static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}
static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}
static double median(double *v, int n)
{
	qsort(v, n, sizeof *v, cmp_d);
	return v[n / 2];
}

/* A child that touches MIB of anon memory; with `keep` it goes on writing one byte per page
 * forever, else it stops itself. Returns its pid, the mapping's address through *addr. */
static pid_t hog(size_t mib, int keep, uint64_t *addr)
{
	int fd[2];
	if (pipe(fd)) die("pipe");
	pid_t p = fork();
	if (p < 0) die("fork");
	if (p == 0) {
		size_t len = mib << 20;
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) _exit(1);
		madvise(m, len, MADV_NOHUGEPAGE);
		for (size_t i = 0; i < len; i += PAGE) m[i] = 1;
		uint64_t a = (uint64_t)(uintptr_t)m;
		if (write(fd[1], &a, sizeof a) != sizeof a) _exit(1);
		if (!keep) raise(SIGSTOP);
		for (;;)
			for (size_t i = 0; i < len; i += PAGE) m[i]++;
	}
	close(fd[1]);
	if (read(fd[0], addr, sizeof *addr) != sizeof *addr) die("the hog died before it was ready");
	close(fd[0]);
	return p;
}

/* The PFNs of npages pages at addr (0 where not present), in address order. */
static void pfns_of(int pm, uint64_t addr, size_t npages, uint64_t *pfn)
{
	static uint64_t buf[PM_CHUNK];
	for (size_t i = 0; i < npages; i += PM_CHUNK) {
		size_t n = npages - i < PM_CHUNK ? npages - i : PM_CHUNK;
		if (pread(pm, buf, n * 8, (addr / PAGE + i) * 8) != (ssize_t)(n * 8)) die("pagemap pread");
		for (size_t k = 0; k < n; k++)
			pfn[i + k] = buf[k] >> 63 ? buf[k] & PFN_MASK : 0;
	}
}

/* Walk the PFNs in windows of at most MAX_WORDS bitmap words: with `mark`, pwrite each window
 * with the pages' bits set; else pread it and count the pages' idle bits. */
static size_t window_io(int bm, const uint64_t *pfn, size_t n, int mark)
{
	static uint64_t w[MAX_WORDS];
	size_t idle = 0, i = 0;
	while (i < n) {
		if (!pfn[i]) { i++; continue; }
		uint64_t w0 = pfn[i] / 64;
		size_t j = i, hi = 0;
		memset(w, 0, sizeof w);
		for (; j < n; j++) {   /* the run of pages whose words fall in this window */
			if (!pfn[j]) continue;
			uint64_t k = pfn[j] / 64;
			if (k < w0 || k >= w0 + MAX_WORDS) break;
			w[k - w0] |= 1ULL << (pfn[j] % 64);
			if (k - w0 + 1 > hi) hi = k - w0 + 1;
		}
		if (mark) {
			if (pwrite(bm, w, hi * 8, w0 * 8) != (ssize_t)(hi * 8)) die("bitmap pwrite");
		} else {
			uint64_t r[MAX_WORDS];
			if (pread(bm, r, hi * 8, w0 * 8) != (ssize_t)(hi * 8)) die("bitmap pread");
			for (size_t k = 0; k < hi; k++) idle += __builtin_popcountll(r[k] & w[k]);
		}
		i = j;
	}
	return idle;
}

/* The kpageflags words of the PFNs, one pread per run of consecutive PFNs: what telling a
 * THP's tail pages from small pages costs (the kernel's page_idle refuses a tail page's PFN,
 * so a correct marker must look each page up and use its head's bit). Returns the tails. */
static size_t flags_of(int kf, const uint64_t *pfn, size_t n)
{
	static uint64_t f[PM_CHUNK];
	size_t tails = 0, i = 0;
	while (i < n) {
		size_t j = i + 1;
		while (j < n && j - i < PM_CHUNK && pfn[j] == pfn[j - 1] + 1) j++;
		if (pread(kf, f, (j - i) * 8, pfn[i] * 8) != (ssize_t)((j - i) * 8)) die("kpageflags pread");
		for (size_t k = 0; k < j - i; k++) tails += f[k] >> 16 & 1;   /* KPF_COMPOUND_TAIL */
		i = j;
	}
	return tails;
}

/* Run argv with stdout to `out` (NULL: /dev/null); wall ns returned, CPU ns through *cpu. */
static double run(char *const argv[], const char *out, double *cpu)
{
	double t0 = now();
	pid_t p = fork();
	if (p < 0) die("fork");
	if (p == 0) {
		int fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0) _exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	struct rusage ru;
	if (wait4(p, &st, 0, &ru) != p) die("wait4");
	double t = now() - t0;
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "idle bench: %s %s %s failed (status %#x)\n", argv[0], argv[1],
			argv[2] ? argv[2] : "", st);
		exit(1);
	}
	if (cpu)
		*cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
		       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
	return t;
}

/* The value of "key": N in a JSON document (the first occurrence), -1 when absent. */
static long json_num(const char *path, const char *key)
{
	static char doc[1 << 16];
	int fd = open(path, O_RDONLY);
	if (fd < 0) return -1;
	ssize_t n = read(fd, doc, sizeof doc - 1);
	close(fd);
	if (n <= 0) return -1;
	doc[n] = 0;
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":", key);
	char *s = strstr(doc, pat);
	return s ? strtol(s + strlen(pat), NULL, 10) : -1;
}

int main(int argc, char **argv)
{
	if (argc != 5) die("usage: idle MARK_MIB WSS_MIB RUNS PGTOOL");
	size_t mib = atol(argv[1]), wss_mib = atol(argv[2]);
	int runs = atoi(argv[3]);
	char *pg = argv[4];
	if (!mib || !wss_mib || runs < 1 || runs > 99) die("bad arguments");
	/* Under TCG a program loaded at a new address each run is translated anew each run (the
	 * translation cache is keyed by virtual address): with ASLR pgtool's start alone costs
	 * ~120 ms here, without it ~15 ms (natively 1 ms either way). The guest is a throwaway. */
	int aslr = open("/proc/sys/kernel/randomize_va_space", O_WRONLY);
	if (aslr < 0 || write(aslr, "0", 1) != 1) die("cannot turn ASLR off in the guest");
	close(aslr);

	uint64_t addr;
	pid_t p = hog(mib, 0, &addr);
	size_t npages = (mib << 20) / PAGE;
	char pm_path[64], pid_s[16], range[64];
	snprintf(pm_path, sizeof pm_path, "/proc/%d/pagemap", p);
	snprintf(pid_s, sizeof pid_s, "%d", p);
	snprintf(range, sizeof range, "0x%llx+0x%zx", (unsigned long long)addr, mib << 20);
	int pm = open(pm_path, O_RDONLY), bm = open(bitmap_path, O_RDWR);
	int kf = open("/proc/kpageflags", O_RDONLY);
	if (kf < 0) die("cannot open /proc/kpageflags");
	if (pm < 0) die("cannot open the hog's pagemap");
	if (bm < 0) die("cannot open /sys/kernel/mm/page_idle/bitmap (CONFIG_IDLE_PAGE_TRACKING)");
	uint64_t *pfn = malloc(npages * 8);
	if (!pfn) die("malloc");

	char *mark[] = {pg, "idle", "mark", "--pid", pid_s, "--addr", range, NULL};
	char *readc[] = {pg, "idle", "read", "--pid", pid_s, "--addr", range, "--json", NULL};
	char *version[] = {pg, "--version", NULL};

	/* agreement first: the hog is stopped, so after a mark every present page reads idle */
	pfns_of(pm, addr, npages, pfn);
	size_t present = 0;
	for (size_t i = 0; i < npages; i++) present += pfn[i] != 0;
	if (present != npages) die("not every page of the hog is present");
	run(mark, NULL, NULL);
	size_t floor_idle = window_io(bm, pfn, npages, 0);
	run(readc, "/tmp/idle.json", NULL);
	long pg_idle = json_num("/tmp/idle.json", "idle_pages");
	printf("pages: %zu   idle after pgtool's mark: floor read %zu, pgtool read %ld\n", npages,
	       floor_idle, pg_idle);
	if (floor_idle != npages || pg_idle != (long)npages) die("pgtool and the floor disagree");

	double fm[99], fr[99], gm[99], gr[99], gv[99], fk[99];
	for (int r = 0; r < runs; r++) {
		double t = now();
		pfns_of(pm, addr, npages, pfn);
		window_io(bm, pfn, npages, 1);
		fm[r] = now() - t;
		gm[r] = run(mark, NULL, NULL);
		t = now();
		pfns_of(pm, addr, npages, pfn);
		if (window_io(bm, pfn, npages, 0) != npages) die("the floor read pages not idle");
		fr[r] = now() - t;
		gr[r] = run(readc, NULL, NULL);
		gv[r] = run(version, NULL, NULL);
		t = now();
		if (flags_of(kf, pfn, npages)) die("a tail page in a MADV_NOHUGEPAGE mapping");
		fk[r] = now() - t;
	}
	double FM = median(fm, runs), FR = median(fr, runs), GM = median(gm, runs),
	       GR = median(gr, runs), GV = median(gv, runs), FK = median(fk, runs);
	printf("floor mark: %.2f ms (%.0f ns/page)   pgtool idle mark: %.2f ms (%.0f ns/page)   "
	       "ratio %.2f\n", FM / 1e6, FM / npages, GM / 1e6, GM / npages, GM / FM);
	printf("floor read: %.2f ms (%.0f ns/page)   pgtool idle read: %.2f ms (%.0f ns/page)   "
	       "ratio %.2f\n", FR / 1e6, FR / npages, GR / 1e6, GR / npages, GR / FR);
	printf("pgtool --version (process start): %.2f ms\n", GV / 1e6);
	printf("floor + kpageflags of every page (telling THP tails, which page_idle refuses, from "
	       "small pages): %.2f ms more; pgtool against it: mark %.2f read %.2f\n", FK / 1e6,
	       GM / (FM + FK), GR / (FR + FK));
	printf("RATIO mark %.3f read %.3f\n", GM / FM, GR / FR);
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);

	/* wss: the sampling cost per interval on a process that keeps touching WSS_MIB */
	pid_t w = hog(wss_mib, 1, &addr);
	snprintf(pid_s, sizeof pid_s, "%d", w);
	char *wss[] = {pg, "idle", "wss", "--pid", pid_s, "--interval", "200ms", "--count", "5",
		       "--csv", NULL};
	double cpu, wall = run(wss, NULL, &cpu);
	printf("wss of %zu MiB: %.1f ms CPU per interval, %.1f ms wall beyond the 5 x 200 ms "
	       "intervals\n", wss_mib, cpu / 5 / 1e6, (wall - 5 * 200e6) / 5 / 1e6);
	kill(w, SIGKILL);
	waitpid(w, NULL, 0);
	return 0;
}
