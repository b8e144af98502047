/* leak_msg MODE RATE SECONDS [SIZE]: SysV message workload for the pgtool leak guest test.
 * MODE leak: sends RATE messages a second of SIZE bytes (default 208: 48-byte struct msg_msg
 *   + 208 = 256, exactly one kmalloc-cg-256 object each, allocated by load_msg/alloc_msg) and
 *   never receives them; when a queue is full (msgmnb) it opens another one.
 * MODE balanced: sends and receives each message at once: the same allocations, all freed.
 * Runs SECONDS seconds (0: until killed), then removes its queues (the kernel frees the
 * messages) and exits; SIGINT/SIGTERM also remove them. Prints "leak_msg PID ready" at start
 * and "leak_msg sent N" at the end. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/msg.h>

#define MAXQ 4096
static int queues[MAXQ];
static int nq;
static volatile sig_atomic_t stop;

static void on_sig(int s) { (void)s; stop = 1; }

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int newq(void)
{
	if (nq == MAXQ)
		return -1;
	int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (q < 0) {
		perror("msgget");
		return -1;
	}
	queues[nq++] = q;
	return q;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: leak_msg leak|balanced RATE SECONDS [SIZE]\n");
		return 2;
	}
	int balanced = strcmp(argv[1], "balanced") == 0;
	long rate = atol(argv[2]);
	double secs = atof(argv[3]);
	/* The default fills the object: bytes of it past the message would keep whatever an
	 * earlier user left there, different from object to object, and split the leaked
	 * messages into many groups when `leak --similar` groups the cache's objects. */
	long size = argc > 4 ? atol(argv[4]) : 208;
	struct { long mtype; char text[65536]; } *m = calloc(1, sizeof(*m));
	long sent = 0;
	if (!m || rate <= 0 || size <= 0 || size > 65536)
		return 2;
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	memset(m->text, 'x', size);
	m->mtype = 1;
	int q = newq();
	if (q < 0)
		return 1;
	printf("leak_msg %d ready\n", (int)getpid());
	fflush(stdout);
	double t0 = now();
	while (!stop && (secs <= 0 || now() - t0 < secs)) {
		/* due: the messages that should have been sent by now */
		long due = (long)((now() - t0) * rate);
		while (sent < due && !stop) {
			if (msgsnd(q, m, size, IPC_NOWAIT) != 0) {
				if (errno == EAGAIN && !balanced && (q = newq()) >= 0)
					continue;
				perror("msgsnd");
				stop = 1;
				break;
			}
			sent++;
			if (balanced && msgrcv(q, m, size, 0, IPC_NOWAIT) < 0) {
				perror("msgrcv");
				stop = 1;
			}
		}
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
	}
	for (int i = 0; i < nq; i++)
		msgctl(queues[i], IPC_RMID, NULL);
	printf("leak_msg sent %ld\n", sent);
	return 0;
}
