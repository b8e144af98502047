/* kpf get PFN        print /proc/kpageflags of PFN as hex
 * kpf find BIT [SKIP] print the first PFN (after SKIP matches) whose flag BIT is set
 * A tiny independent reader used by the kernel tests to check what pgtool did. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc < 3) { fprintf(stderr, "usage: kpf get PFN | kpf find BIT [SKIP]\n"); return 2; }
	int fd = open("/proc/kpageflags", O_RDONLY);
	if (fd < 0) { perror("/proc/kpageflags"); return 2; }
	if (argv[1][0] == 'g') {
		uint64_t pfn = strtoull(argv[2], NULL, 0), v;
		if (pread(fd, &v, 8, pfn * 8) != 8) { perror("pread"); return 1; }
		printf("0x%llx\n", (unsigned long long)v);
		return 0;
	}
	int bit = atoi(argv[2]);
	long skip = argc > 3 ? atol(argv[3]) : 0;
	static uint64_t buf[65536];
	uint64_t pfn = 0;
	ssize_t n;
	while ((n = pread(fd, buf, sizeof buf, pfn * 8)) > 0) {
		for (long i = 0; i < n / 8; i++)
			if (buf[i] >> bit & 1) {
				if (skip-- > 0) continue;
				printf("0x%llx\n", (unsigned long long)(pfn + i));
				return 0;
			}
		pfn += n / 8;
	}
	return 1;
}
