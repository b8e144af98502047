# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_pgtool_global_optspecs
    string join \n root= h/help V/version
end

function __fish_pgtool_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_pgtool_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_pgtool_using_subcommand
    set -l cmd (__fish_pgtool_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c pgtool -n "__fish_pgtool_needs_command" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_needs_command" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_needs_command" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "v2p" -d 'Translate virtual addresses of a process to physical pages, with every fact about each page'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "types" -d 'page-types reimagined: summarise, list and filter pages by flags (same options and output)'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "who" -d 'Reverse lookup: which processes map these PFNs'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "cgroup" -d 'memcg inode <-> cgroup path, and resident pages per memcg'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "idle" -d 'Idle page tracking: mark pages idle, read them back, sample a process\'s working set'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "hwpoison" -d 'Inject or undo memory errors (hwpoison) on pages: guarded, needs --yes'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "snapshot" -d 'Save what the readers need from this host into a directory, for `--root` elsewhere'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "page-owner" -d 'page_owner reports: top allocation stacks, joined with what the pages are now'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "slab" -d 'Sample /proc/slabinfo: caches by size and growth, leak suspects'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "kfence" -d 'KFENCE objects grouped by allocation stack'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "leak" -d 'Is memory leaking: where it is, what grows, and (--trace) which call site allocates it'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "peek" -d 'Read a process\'s memory at an address, as a hexdump, raw bytes or JSON'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "map" -d 'Physical memory as a picture: one cell per pageblock, by page class or memcg'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "mem" -d 'Who uses the memory: RSS, PSS, USS, swap per process, mapping, library, memcg, user'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "kstruct" -d 'A kernel struct\'s layout from BTF (like pahole), or its values at a kernel address'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "ksym" -d 'Kernel symbols: address to symbol+offset, name to address, kernel base and KASLR offset'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "ktask" -d 'A process\'s task_struct in kernel memory: its address, mm, pgd, comm and any field'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "kcache" -d 'A slab cache\'s kmem_cache, CPU and node slab lists and walked free lists'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "page" -d 'The kernel\'s struct page of each PFN: flags, zone, counts, mapping, memcg, slab cache'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "generate" -d 'Write man pages or shell completions'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -l vma -d 'Every page of the mappings matching this path or name (`[stack]`, `[heap]`, `libc`, `[anon]`); may be repeated. These pages are printed before those of the ADDRs' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -l fields -d 'The fields to print, in order (comma-separated); the files read follow from them' -r -f -a "all\t''
pid\t''
vaddr\t''
pages\t''
state\t''
present\t''
swapped\t''
pfn\t''
last_pfn\t''
phys_addr\t''
soft_dirty\t''
exclusive\t''
uffd_wp\t''
file_shared\t''
guard\t''
swap_type\t''
swap_offset\t''
kpagecount\t''
flags\t''
flags_raw\t''
memcg_ino\t''
memcg_path\t''
iomem\t''
head_pfn\t''
folio_pages\t''
pagemap_raw\t''
vma\t''"
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -l each -d 'Table: one row per page instead of one per run of like pages'
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -l collapse -d 'JSON/CSV: one record per run of like pages (with pages and last_pfn) instead of one per page'
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s p -l pid -d 'Walk a process\'s address space: a PID or `self`' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s f -l file -d 'Walk the page cache of a file, or of every file under a directory' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s a -l addr -d 'Walk a range of pages (PFNs, or pages of -p/-f): N, N+COUNT, N,END, N, or ,END' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s b -l bits -d 'Select pages by flags: bit1,bit2 (any set), bit1,~bit2 (mask=value), repeatable (all)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s c -l cgroup -d 'Select pages charged to a memory cgroup: its directory or @INODE' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s d -l describe -d 'Describe flags (numbers or names, comma-separated) and exit' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s F -l kpageflags -d 'Read page flags from this file (a saved kpageflags) instead of /proc/kpageflags' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -l prometheus -d 'Also write the summary to FILE as a Prometheus textfile (pgtool_types_pages{flags}, pgtool_types_page_size_bytes), atomically, for node_exporter\'s textfile collector' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -l threads -d 'Threads for whole-range PFN summaries (default: the CPUs this process may use)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s r -l raw -d 'Raw mode, for kernel developers: show every flag, overloaded bits decoded'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s i -l mark-idle -d 'Mark the selected pages idle (page_idle bitmap)'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s l -l list -d 'List runs of pages with the same flags (offset, length, flags)'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s L -l list-each -d 'List every page (offset, flags)'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s C -l list-cgroup -d 'Add each page\'s memcg inode to the listing'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s M -l list-mapcnt -d 'Add each page\'s map count (kpagecount) to the listing'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s N -l no-summary -d 'Do not print the summary'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s X -l hwpoison -d 'Inject a memory error (hwpoison) into every selected page. Destroys data'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s x -l unpoison -d 'Unpoison every selected page'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -l json -d 'JSON Lines: one object per summary row {flags, flags_raw, flags_raw_hex, symbolic, pages, size_bytes}; with -l/-L one per listed run instead {pfn, swap_offset, pages, vaddr, file_offset, flags, flags_raw, flags_raw_hex, symbolic, kpagecount, memcg_ino}'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -l csv -d 'CSV with a header row: the same fields as --json'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l phys -d 'Physical addresses (0x hex or decimal, comma separated or repeated) to look up, by the page holding them' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l pid -d 'Only search these processes (a PID or `self`; comma separated or repeated)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l comm -d 'Only search processes with this command name (as in /proc/PID/comm)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -s j -l jobs -d 'Worker threads reading address spaces (0: one per CPU, at most 8)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l exhaustive -d 'Read every process. By default, when every PFN is a small page, the search stops once it has found as many mappings of each PFN as its kpagecount'
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -l top -d 'With --pages: show only the N memcgs with the most pages' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -l prometheus -d 'With --pages: also write the counts to FILE as a Prometheus textfile (atomically), for node_exporter\'s textfile collector' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -s j -l jobs -d 'Worker threads for --pages (0: one per CPU, at most 8)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -l pages -d 'Scan /proc/kpagecgroup with /proc/kpageflags and list memcgs by resident pages, with an anon/file/slab/other breakdown (root only)'
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss heatmap help" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss heatmap help" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss heatmap help" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss heatmap help" -f -a "mark" -d 'Mark pages idle (says which pages on stderr first)'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss heatmap help" -f -a "read" -d 'Count the pages still idle and those accessed since they were marked'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss heatmap help" -f -a "wss" -d 'Sample a process\'s working set per mapping, every interval'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss heatmap help" -f -a "heatmap" -d 'Draw a process\'s working set over time: time x address, by accessed share'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss heatmap help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -l pid -d 'The present pages of this process (a PID or `self`)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -l vma -d 'Only mappings with this name (path, file-name substring, [heap], [stack], [anon]); repeatable. With --pid' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -l addr -d 'Only this virtual address range: ADDR, ADDR+LEN (LEN may be 8K, 2M) or START-END (END exclusive), 0x hex or decimal; widened to whole pages. With --pid' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -l pfn -d 'PFNs: PFN, A+N (N pages) or A-B (B included, as in `pgtool who`), 0x hex or decimal; repeatable; `-` reads them from stdin. Holes in System RAM are skipped' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -l cgroup -d 'The pages charged to this memcg: a cgroup directory (/sys/fs/cgroup/system.slice), a path inside the memory hierarchy (/system.slice) or @INODE' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l pid -d 'The present pages of this process (a PID or `self`)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l vma -d 'Only mappings with this name (path, file-name substring, [heap], [stack], [anon]); repeatable. With --pid' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l addr -d 'Only this virtual address range: ADDR, ADDR+LEN (LEN may be 8K, 2M) or START-END (END exclusive), 0x hex or decimal; widened to whole pages. With --pid' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l pfn -d 'PFNs: PFN, A+N (N pages) or A-B (B included, as in `pgtool who`), 0x hex or decimal; repeatable; `-` reads them from stdin. Holes in System RAM are skipped' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l cgroup -d 'The pages charged to this memcg: a cgroup directory (/sys/fs/cgroup/system.slice), a path inside the memory hierarchy (/system.slice) or @INODE' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -s L -l list -d 'List every page (address, PFN, head PFN, idle) instead of counts'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l pid -d 'The process (a PID or `self`)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l vma -d 'Only mappings with this name (repeatable)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l interval -d 'Sampling interval: 250ms, 2s, 1m (bare numbers are seconds)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l count -d 'Stop after this many intervals (default: run until interrupted or the process exits)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l method -d 'How accessed pages are found' -r -f -a "idle\t'The page_idle bitmap (leaves the process alone)'
refs\t'/proc/PID/clear_refs + smaps Referenced (clears the process\'s referenced bits)'
auto\t'idle when the bitmap exists, else refs'"
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l prometheus -d 'Also write the latest sample to FILE in Prometheus text format (atomically), for node_exporter\'s textfile collector' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l labels -d 'Extra metric labels, comma-separated: pid, vma. Each multiplies the series stored (new ones per restart / per address layout); the default is comm and mapping only' -r -f -a "pid\t'The PID: new series at every restart of the process'
vma\t'The VMA\'s address range: one series per VMA, new ones at every ASLR layout'"
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l all -d 'List mappings with no resident pages too'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from heatmap" -l pid -d 'The process: a PID or `self`' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from heatmap" -l vma -d 'Only mappings with this path or name (`[heap]`, `libc`, `[anon]`); may be repeated' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from heatmap" -l interval -d 'Interval length: 250ms, 1s, 2s...' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from heatmap" -l count -d 'Number of intervals' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from heatmap" -l cells -d 'Buckets on the address axis (about)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from heatmap" -l method -d 'How accesses are seen' -r -f -a "auto\t'idle when /sys/kernel/mm/page_idle/bitmap exists, else refs'
idle\t'The page_idle bitmap'
refs\t'clear_refs + smaps Referenced'"
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from heatmap" -l zoom -d 'Columns of the picture file: all buckets, or the accessed range' -r -f -a "auto\t'From the first to the last bucket accessed in any interval'
none\t'Every bucket'"
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from heatmap" -s o -l output -d 'Write the picture to FILE.svg or FILE.png at the end' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from heatmap" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from heatmap" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from heatmap" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from heatmap" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from heatmap" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from help" -f -a "mark" -d 'Mark pages idle (says which pages on stderr first)'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from help" -f -a "read" -d 'Count the pages still idle and those accessed since they were marked'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from help" -f -a "wss" -d 'Sample a process\'s working set per mapping, every interval'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from help" -f -a "heatmap" -d 'Draw a process\'s working set over time: time x address, by accessed share'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and not __fish_seen_subcommand_from inject unpoison soft-offline help" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and not __fish_seen_subcommand_from inject unpoison soft-offline help" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and not __fish_seen_subcommand_from inject unpoison soft-offline help" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and not __fish_seen_subcommand_from inject unpoison soft-offline help" -f -a "inject" -d 'Poison pages (software-simulated memory failure): mapping processes get SIGBUS on access'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and not __fish_seen_subcommand_from inject unpoison soft-offline help" -f -a "unpoison" -d 'Undo a software-injected poison'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and not __fish_seen_subcommand_from inject unpoison soft-offline help" -f -a "soft-offline" -d 'Migrate the pages\' contents away and take them offline'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and not __fish_seen_subcommand_from inject unpoison soft-offline help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -l pid -d 'Target the page a process maps at --addr (translated to its PFN through pagemap): a PID or `self`' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -l addr -d 'Virtual address in --pid: 0x hex or decimal' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -l yes -d 'Really do it'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -l force -d 'Act even on pages the guards refuse (outside System RAM, kernel-owned)'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -l pid -d 'Target the page a process maps at --addr (translated to its PFN through pagemap): a PID or `self`' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -l addr -d 'Virtual address in --pid: 0x hex or decimal' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -l yes -d 'Really do it'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -l force -d 'Act even on pages the guards refuse (outside System RAM, kernel-owned)'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -l pid -d 'Target the page a process maps at --addr (translated to its PFN through pagemap): a PID or `self`' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -l addr -d 'Virtual address in --pid: 0x hex or decimal' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -l yes -d 'Really do it'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -l force -d 'Act even on pages the guards refuse (outside System RAM, kernel-owned)'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from help" -f -a "inject" -d 'Poison pages (software-simulated memory failure): mapping processes get SIGBUS on access'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from help" -f -a "unpoison" -d 'Undo a software-injected poison'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from help" -f -a "soft-offline" -d 'Migrate the pages\' contents away and take them offline'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgtool -n "__fish_pgtool_using_subcommand snapshot" -l pid -d 'Also save the maps, pagemap and status files of these processes (`self` is pgtool itself, which is rarely what you want)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand snapshot" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand snapshot" -l force -d 'Replace DIR when it holds a previous snapshot (and nothing else)'
complete -c pgtool -n "__fish_pgtool_using_subcommand snapshot" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand snapshot" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l by -l cull -d 'Group by these keys (comma-separated). page_owner_sort\'s --cull names (st, p, tg, n, f, ator) work too' -r -f -a "stack\t'The allocation stack'
order\t'The order'
gfp\t'The GFP mask (with names)'
module\t'The first module in the stack'
pid\t'The pid'
tgid\t'The tgid'
comm\t'The comm'
memcg\t'The memcg page_owner says it was charged to'
free\t'Released (freed since) or not, as page_owner_sort\'s `--cull f` (free_ts != 0)'
allocator\t'page_owner_sort\'s allocator class'"
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l top -d 'Show the N largest groups (0: all)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -s f -l unreleased -d 'Leave out blocks freed after their allocation (page_owner_sort -f)'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l join -d 'Join each record\'s PFN with kpageflags/kpagecgroup (default: on for the live file, off for a saved dump, whose PFNs belong to another boot)'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l no-join -d 'Do not join with kpageflags'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l interval -d 'Time between samples: 250ms, 2s, 1m (a bare number is seconds)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l count -d 'Number of samples (leak suspects need at least 2: active objects grow in every one)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l sort -d 'Order of the caches' -r -f -a "size\t'Bytes held, most first'
growth\t'Active objects gained, last sample minus first, most first'
objects\t'Active objects, most first'"
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l top -d 'Show the N first caches (0: all)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l alloc-calls -d 'Show the top alloc_calls of this cache (needs slub_debug=U at boot)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l objects -d 'What a cache\'s allocated objects are: groups of near-identical objects (pointer-like words masked), biggest first, with a hexdump and the kernel symbols inside (reads /proc/kcore, BTF and /proc/kallsyms; root). Without CACHE: the leak suspects\' caches' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l prometheus -d 'Also write every cache\'s figures as a Prometheus textfile (atomic rename)' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l suspects -d 'Only the leak suspects'
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l sysfs -d 'Read /sys/kernel/slab even when /proc/slabinfo is readable'
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -l top -d 'Show the N largest groups (0: all)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -l freed -d 'Include freed objects (default: allocated ones only)'
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -l interval -d 'Time between samples: 250ms, 2s, 1m (a bare number is seconds)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -l count -d 'Number of samples (a trend needs 3 or more)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -l top -d 'Drill-down items (caches, callers, processes, memcgs; --trace: call sites) shown per kind' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -l prometheus -d 'Also write the verdict as a Prometheus textfile (atomic rename)' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -l duration -d 'How long to trace' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -l pid -d 'Only events of this process (common_pid; its threads are other PIDs)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -l comm -d 'Only events of tasks with this comm' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -l cache -d 'Only allocations and frees in this slab cache (kmem_cache_* events; kmalloc-N by size)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -l max-events -d 'The most outstanding allocations tracked (about 120 bytes each); beyond it allocations are dropped and counted' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -l trace -d 'Trace kmem allocations and frees instead of sampling (root, tracefs)'
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -l similar -d 'Compare the objects the top call sites left outstanding with their cache\'s biggest groups of alike objects (`slab --objects`), naming the likely leaker (root, /proc/kcore and BTF; the trace then holds real addresses, and 6.1 kernels print page events\' gfp flags empty)'
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand leak" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand peek" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand peek" -l raw -d 'The bytes unchanged on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand peek" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand peek" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand peek" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand peek" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand map" -s o -l output -d 'Write the picture to FILE.svg or FILE.png instead of the terminal' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand map" -l by -d 'What the colours show' -r -f -a "class\t'The block\'s worst page class'
memcg\t'The memcg most of the block\'s charged pages belong to (kpagecgroup)'"
complete -c pgtool -n "__fish_pgtool_using_subcommand map" -l color -d 'Terminal colours' -r -f -a "auto\t'Colour on a terminal unless NO_COLOR is set; letters otherwise'
never\t'Letters only'
256\t'xterm 256 colours'
truecolor\t'24-bit colour'"
complete -c pgtool -n "__fish_pgtool_using_subcommand map" -l cols -d 'Blocks per row (default: fit the terminal; 64 in files)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand map" -l prometheus -d 'Also write the per-zone totals to FILE as a Prometheus textfile (node_exporter\'s textfile collector): pgtool_map_blocks{node,zone,class}, pgtool_map_free_blocks, pgtool_map_unmovable_blocked_blocks, pgtool_map_free_pages{node,zone}' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand map" -l threads -d 'Worker threads (0: the CPUs available)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand map" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand map" -l totals -d 'With --json/--csv: the per-zone totals instead of one record per block'
complete -c pgtool -n "__fish_pgtool_using_subcommand map" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand map" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand map" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgtool -n "__fish_pgtool_using_subcommand map" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l by -d 'Sum rows by process, mapping, library, memcg or user' -r -f -a "process\t'One row per process (address space)'
mapping\t'One row per mapping name (path, [heap], [anon]...) per process, like showmap'
library\t'One row per mapped file, summed over processes, like librank'
memcg\t'One row per memcg the pages are charged to (kpagecgroup), not where processes sit now'
user\t'One row per user'"
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l pid -d 'Only these processes (a PID or `self`; comma separated or repeated)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l comm -d 'Only processes with this command name (as in /proc/PID/comm; repeatable)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l cgroup -d 'Only processes whose memory cgroup is CGROUP or below it (a path, relative to the hierarchy\'s mount or absolute, or @INODE)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l path -d 'Only mappings this selects: a path, a bracketed name ([heap]), or part of a file name (libc); repeatable' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l top -d 'Show only the N largest rows (the total still covers all)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l batch -d 'Pagemap entries read at once (bounds memory; 0x hex or decimal)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l threads -d 'Threads a large process (over 64 MiB of populated pages per thread) is read by (default: the CPUs this process may use, at most 8); each keeps its own batch buffers' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l prometheus -d 'Also write the figures as a Prometheus textfile (atomic), labelled by comm and user, mapping, library path, memcg path or user' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l labels -d 'Extra metric labels (cost: a series per process)' -r -f -a "pid\t'A `pid` label on process and mapping series: one series per process, new ones on every restart'"
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l children -d 'With --pid: also every descendant of those processes'
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l rollup -d 'Read /proc/PID/smaps_rollup instead of pages (what non-root gets anyway)'
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l fast -d 'Faster: pages mapped once (most of a process\'s memory: anonymous, or page cache of a file not on tmpfs) are counted from pagemap alone, without kpageflags/kpagecount; every smaps figure (RSS, PSS, USS, anon, file, shmem, swap) stays exact, but thp, ksm and dirty read null (unknown). Ignored by --by memcg'
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgtool -n "__fish_pgtool_using_subcommand mem" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand kstruct" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand kstruct" -l expand -d 'Expand named struct and union members too (anonymous ones always are)'
complete -c pgtool -n "__fish_pgtool_using_subcommand kstruct" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand kstruct" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand kstruct" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand kstruct" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand ksym" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand ksym" -l base -d 'Show the kernel base and KASLR offset instead'
complete -c pgtool -n "__fish_pgtool_using_subcommand ksym" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand ksym" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand ksym" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand ksym" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand ktask" -l field -d 'Also read this task_struct field (a path such as se.vruntime); repeatable' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand ktask" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand ktask" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand ktask" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand ktask" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand ktask" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand kcache" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand kcache" -l objects -d 'List every object with its state instead of the slab lists'
complete -c pgtool -n "__fish_pgtool_using_subcommand kcache" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand kcache" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand kcache" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand kcache" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand page" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand page" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand page" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand page" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand page" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand generate" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand generate" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand generate" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "v2p" -d 'Translate virtual addresses of a process to physical pages, with every fact about each page'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "types" -d 'page-types reimagined: summarise, list and filter pages by flags (same options and output)'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "who" -d 'Reverse lookup: which processes map these PFNs'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "cgroup" -d 'memcg inode <-> cgroup path, and resident pages per memcg'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "idle" -d 'Idle page tracking: mark pages idle, read them back, sample a process\'s working set'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "hwpoison" -d 'Inject or undo memory errors (hwpoison) on pages: guarded, needs --yes'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "snapshot" -d 'Save what the readers need from this host into a directory, for `--root` elsewhere'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "page-owner" -d 'page_owner reports: top allocation stacks, joined with what the pages are now'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "slab" -d 'Sample /proc/slabinfo: caches by size and growth, leak suspects'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "kfence" -d 'KFENCE objects grouped by allocation stack'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "leak" -d 'Is memory leaking: where it is, what grows, and (--trace) which call site allocates it'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "peek" -d 'Read a process\'s memory at an address, as a hexdump, raw bytes or JSON'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "map" -d 'Physical memory as a picture: one cell per pageblock, by page class or memcg'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "mem" -d 'Who uses the memory: RSS, PSS, USS, swap per process, mapping, library, memcg, user'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "kstruct" -d 'A kernel struct\'s layout from BTF (like pahole), or its values at a kernel address'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "ksym" -d 'Kernel symbols: address to symbol+offset, name to address, kernel base and KASLR offset'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "ktask" -d 'A process\'s task_struct in kernel memory: its address, mm, pgd, comm and any field'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "kcache" -d 'A slab cache\'s kmem_cache, CPU and node slab lists and walked free lists'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "page" -d 'The kernel\'s struct page of each PFN: flags, zone, counts, mapping, memcg, slab cache'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "generate" -d 'Write man pages or shell completions'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence leak peek map mem kstruct ksym ktask kcache page generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and __fish_seen_subcommand_from idle" -f -a "mark" -d 'Mark pages idle (says which pages on stderr first)'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and __fish_seen_subcommand_from idle" -f -a "read" -d 'Count the pages still idle and those accessed since they were marked'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and __fish_seen_subcommand_from idle" -f -a "wss" -d 'Sample a process\'s working set per mapping, every interval'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and __fish_seen_subcommand_from idle" -f -a "heatmap" -d 'Draw a process\'s working set over time: time x address, by accessed share'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and __fish_seen_subcommand_from hwpoison" -f -a "inject" -d 'Poison pages (software-simulated memory failure): mapping processes get SIGBUS on access'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and __fish_seen_subcommand_from hwpoison" -f -a "unpoison" -d 'Undo a software-injected poison'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and __fish_seen_subcommand_from hwpoison" -f -a "soft-offline" -d 'Migrate the pages\' contents away and take them offline'
