/* kmem_msgs N [SIZE]: create a private SysV message queue and send it N identical messages of
 * SIZE bytes (default 208: with the 48-byte struct msg_msg header, one 256-byte kmalloc object
 * each, all of it written, so objects are byte-identical but for their list links). The payload
 * is "PGTOOL-KMEM-MSG!" repeated. The messages are never received: the queue outlives the
 * program. Prints "kmem_msgs QID sent N". Raise /proc/sys/kernel/msgmnb first (N * SIZE).
 * kmem_msgs rm QID: remove the queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>

int main(int argc, char **argv)
{
	static const char pat[] = "PGTOOL-KMEM-MSG!";
	struct { long mtype; char mtext[8192]; } m;
	long n, size, i;
	int q;

	if (argc == 3 && strcmp(argv[1], "rm") == 0)
		return msgctl(atoi(argv[2]), IPC_RMID, NULL) ? (perror("msgctl"), 1) : 0;
	if (argc < 2) {
		fprintf(stderr, "usage: kmem_msgs N [SIZE] | kmem_msgs rm QID\n");
		return 2;
	}
	n = atol(argv[1]);
	size = argc > 2 ? atol(argv[2]) : 208;
	if (size < 1 || size > (long)sizeof(m.mtext))
		return 2;
	for (i = 0; i < size; i++)
		m.mtext[i] = pat[i % 16];
	m.mtype = 0x4b4d454d; /* "MEMK" */
	q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (q < 0) {
		perror("msgget");
		return 1;
	}
	for (i = 0; i < n; i++)
		if (msgsnd(q, &m, size, IPC_NOWAIT)) {
			fprintf(stderr, "msgsnd %ld: ", i);
			perror("");
			return 1;
		}
	printf("kmem_msgs %d sent %ld\n", q, n);
	return 0;
}
