/* leak_po_ref: the reference page_owner_sort (Linux 6.1 tools/vm/page_owner_sort.c) compiled
 * statically for the guest, when its source is where tools/build-reference.sh puts it
 * (~/.cache/pgtool-ref/src, as root: /root/.cache/...). The source is not copied into this
 * project. Without it this program prints "unavailable" and exits 77 (the guest test then
 * reports SKIP). */
#if defined(__has_include)
#if __has_include("/root/.cache/pgtool-ref/src/tools/vm/page_owner_sort.c")
#include "/root/.cache/pgtool-ref/src/tools/vm/page_owner_sort.c"
#define HAVE_REF 1
#endif
#endif
#ifndef HAVE_REF
#include <stdio.h>
int main(void)
{
	puts("unavailable: page_owner_sort.c not found at build time (run tools/build-reference.sh)");
	return 77;
}
#endif
