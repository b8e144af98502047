/* kmem_pipes N: open N pipes (2N struct file objects in the filp cache, each with
 * f_op = &pipefifo_fops), print "kmem_pipes PID ready", then sleep until killed. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/resource.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000;
	struct rlimit rl = { 2 * n + 64, 2 * n + 64 };
	int p[2];

	if (setrlimit(RLIMIT_NOFILE, &rl))
		perror("setrlimit");
	for (long i = 0; i < n; i++)
		if (pipe(p)) {
			perror("pipe");
			return 1;
		}
	printf("kmem_pipes %d ready\n", (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}
