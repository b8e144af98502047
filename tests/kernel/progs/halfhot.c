/* halfhot MB INFO: map MB MiB of anonymous memory, touch all of it once, then touch the first
 * half every 50 ms and the second half never. The first half gets MADV_NOHUGEPAGE, which makes
 * it a VMA of its own (the refs method of pgtool idle heatmap resolves one VMA); the second half
 * keeps the default flags. Writes "START_HEX LEN_DEC" to INFO when ready. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: halfhot MB INFO\n");
		return 2;
	}
	size_t len = (size_t)atoi(argv[1]) << 20, half = len / 2;
	volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || madvise((void *)p, half, MADV_NOHUGEPAGE) != 0) {
		perror("halfhot: mmap/madvise");
		return 1;
	}
	for (size_t o = 0; o < len; o += 4096)
		p[o] = 1;
	char tmp[256];
	snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%lx %zu\n", (unsigned long)p, len) < 0 || fclose(f) != 0 || rename(tmp, argv[2]) != 0) {
		perror("halfhot: info");
		return 1;
	}
	for (;;) {
		for (size_t o = 0; o < half; o += 4096)
			p[o]++;
		usleep(50000);
	}
}
