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
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "peek" -d 'Read a process\'s memory at an address, as a hexdump, raw bytes or JSON'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "generate" -d 'Write man pages or shell completions'
complete -c pgtool -n "__fish_pgtool_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -l vma -d 'Every page of the mappings matching this path or name (`[stack]`, `[heap]`, `libc`, `[anon]`); may be repeated. These pages are printed before those of the ADDRs' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l phys -d 'Physical addresses (hex with 0x or decimal, comma separated or repeated) to look up, by the page holding them' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l pid -d 'Only search these processes (comma separated or repeated)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l comm -d 'Only search processes with this command name (as in /proc/PID/comm)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -s j -l jobs -d 'Worker threads reading address spaces (0: one per CPU, at most 8)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l exhaustive -d 'Read every process. By default, when every PFN is a small page, the search stops once it has found as many mappings of each PFN as its kpagecount'
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -l top -d 'With --pages: show only the N memcgs with the most pages' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -s j -l jobs -d 'Worker threads for --pages (0: one per CPU, at most 8)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -l pages -d 'Scan /proc/kpagecgroup with /proc/kpageflags and list memcgs by resident pages, with an anon/file/slab/other breakdown (root only)'
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss help" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss help" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss help" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss help" -f -a "mark" -d 'Mark pages idle'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss help" -f -a "read" -d 'Count the pages still idle and those accessed since they were marked'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss help" -f -a "wss" -d 'Sample a process\'s working set per VMA, every interval'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and not __fish_seen_subcommand_from mark read wss help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -l pid -d 'The present pages of this process' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -l vma -d 'Only mappings with this name (path, file-name substring, [heap], [stack], [anon]); repeatable. With --pid' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -l addr -d 'Only this virtual address range: START-END, START+LEN or ADDR (hex). With --pid' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -l pfn -d 'A PFN range: FIRST-LAST or FIRST,LAST (both included, as in `pgtool who`), FIRST+COUNT, or one PFN; holes are skipped' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -l cgroup -d 'The pages charged to this memcg (a cgroup directory, e.g. /sys/fs/cgroup/system.slice)' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from mark" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l pid -d 'The present pages of this process' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l vma -d 'Only mappings with this name (path, file-name substring, [heap], [stack], [anon]); repeatable. With --pid' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l addr -d 'Only this virtual address range: START-END, START+LEN or ADDR (hex). With --pid' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l pfn -d 'A PFN range: FIRST-LAST or FIRST,LAST (both included, as in `pgtool who`), FIRST+COUNT, or one PFN; holes are skipped' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l cgroup -d 'The pages charged to this memcg (a cgroup directory, e.g. /sys/fs/cgroup/system.slice)' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -s L -l list -d 'List every page (address, PFN, head PFN, idle)'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from read" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l pid -d 'The process' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l vma -d 'Only mappings with this name (repeatable)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l interval -d 'Sampling interval: 1s, 500ms, 2.5 (seconds)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l count -d 'Stop after this many intervals (default: run until interrupted)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l method -d 'idle: the page_idle bitmap (leaves the process alone); refs: /proc/PID/clear_refs + smaps Referenced (clears the process\'s referenced bits, which reclaim also uses); auto: idle when the bitmap exists, else refs' -r -f -a "idle\t''
refs\t''
auto\t''"
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l prometheus -d 'Also write the latest sample to FILE in OpenMetrics text format (written to FILE.tmp, then renamed), for node_exporter\'s textfile collector' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l all -d 'Print VMAs with no resident pages too'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from wss" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from help" -f -a "mark" -d 'Mark pages idle'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from help" -f -a "read" -d 'Count the pages still idle and those accessed since they were marked'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from help" -f -a "wss" -d 'Sample a process\'s working set per VMA, every interval'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and not __fish_seen_subcommand_from inject unpoison soft-offline help" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and not __fish_seen_subcommand_from inject unpoison soft-offline help" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and not __fish_seen_subcommand_from inject unpoison soft-offline help" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and not __fish_seen_subcommand_from inject unpoison soft-offline help" -f -a "inject" -d 'Poison pages (software-simulated memory failure): mapping processes get SIGBUS on access'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and not __fish_seen_subcommand_from inject unpoison soft-offline help" -f -a "unpoison" -d 'Undo a software-injected poison'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and not __fish_seen_subcommand_from inject unpoison soft-offline help" -f -a "soft-offline" -d 'Migrate the pages\' contents away and take them offline'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and not __fish_seen_subcommand_from inject unpoison soft-offline help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -l pid -d 'Target the page a process maps at --addr (translated to its PFN through pagemap)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -l addr -d 'Virtual address in --pid (hex with or without 0x)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -l yes -d 'Really do it'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -l force -d 'Act even on pages the guards refuse (outside System RAM, kernel-owned)'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from inject" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -l pid -d 'Target the page a process maps at --addr (translated to its PFN through pagemap)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -l addr -d 'Virtual address in --pid (hex with or without 0x)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -l yes -d 'Really do it'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -l force -d 'Act even on pages the guards refuse (outside System RAM, kernel-owned)'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from unpoison" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -l pid -d 'Target the page a process maps at --addr (translated to its PFN through pagemap)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -l addr -d 'Virtual address in --pid (hex with or without 0x)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -l yes -d 'Really do it'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -l force -d 'Act even on pages the guards refuse (outside System RAM, kernel-owned)'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from soft-offline" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from help" -f -a "inject" -d 'Poison pages (software-simulated memory failure): mapping processes get SIGBUS on access'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from help" -f -a "unpoison" -d 'Undo a software-injected poison'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from help" -f -a "soft-offline" -d 'Migrate the pages\' contents away and take them offline'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgtool -n "__fish_pgtool_using_subcommand snapshot" -l pid -d 'Also save the maps and pagemap of these processes (`self` is pgtool itself, which is rarely what you want)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand snapshot" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand snapshot" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand snapshot" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l by -l cull -d 'Group by these keys (comma-separated): stack, order, gfp, module, pid, tgid, comm, memcg, free, allocator. page_owner_sort\'s --cull names (st, p, tg, n, f, ator) work too' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l top -d 'Show the N largest groups (0: all)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -s f -l unreleased -d 'Leave out blocks freed after their allocation (page_owner_sort -f)'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l join -d 'Join each record\'s PFN with kpageflags/kpagecgroup (default: on for the live file, off for a saved dump, whose PFNs belong to another boot)'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l no-join -d 'Do not join with kpageflags'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l interval -d 'Seconds between samples' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l count -d 'Number of samples (leak suspects need at least 2: active objects grow in every one)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l sort -d 'Order: size (bytes held), growth (active objects, last minus first), objects' -r -f -a "size\t''
growth\t''
objects\t''"
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l top -d 'Show the N first caches (0: all)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l alloc-calls -d 'Show the top alloc_calls of this cache (needs slub_debug=U at boot)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l suspects -d 'Only the leak suspects'
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l sysfs -d 'Read /sys/kernel/slab even when /proc/slabinfo is readable'
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -l top -d 'Show the N largest groups (0: all)' -r
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -l freed -d 'Include freed objects (default: allocated ones only)'
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -l json -d 'One JSON object per record (JSON Lines) on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -l csv -d 'CSV with a header row on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand peek" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand peek" -l raw -d 'The bytes unchanged on stdout'
complete -c pgtool -n "__fish_pgtool_using_subcommand peek" -l json -d 'One JSON object: the bytes (hex), how they were read, and the pagemap facts of each page'
complete -c pgtool -n "__fish_pgtool_using_subcommand peek" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand peek" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand generate" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand generate" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand generate" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence peek generate help" -f -a "v2p" -d 'Translate virtual addresses of a process to physical pages, with every fact about each page'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence peek generate help" -f -a "types" -d 'page-types reimagined: summarise, list and filter pages by flags (same options and output)'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence peek generate help" -f -a "who" -d 'Reverse lookup: which processes map these PFNs'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence peek generate help" -f -a "cgroup" -d 'memcg inode <-> cgroup path, and resident pages per memcg'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence peek generate help" -f -a "idle" -d 'Idle page tracking: mark pages idle, read them back, sample a process\'s working set'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence peek generate help" -f -a "hwpoison" -d 'Inject or undo memory errors (hwpoison) on pages: guarded, needs --yes'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence peek generate help" -f -a "snapshot" -d 'Save what the readers need from this host into a directory, for `--root` elsewhere'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence peek generate help" -f -a "page-owner" -d 'page_owner reports: top allocation stacks, joined with what the pages are now'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence peek generate help" -f -a "slab" -d 'Sample /proc/slabinfo: caches by size and growth, leak suspects'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence peek generate help" -f -a "kfence" -d 'KFENCE objects grouped by allocation stack'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence peek generate help" -f -a "peek" -d 'Read a process\'s memory at an address, as a hexdump, raw bytes or JSON'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence peek generate help" -f -a "generate" -d 'Write man pages or shell completions'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and not __fish_seen_subcommand_from v2p types who cgroup idle hwpoison snapshot page-owner slab kfence peek generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and __fish_seen_subcommand_from idle" -f -a "mark" -d 'Mark pages idle'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and __fish_seen_subcommand_from idle" -f -a "read" -d 'Count the pages still idle and those accessed since they were marked'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and __fish_seen_subcommand_from idle" -f -a "wss" -d 'Sample a process\'s working set per VMA, every interval'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and __fish_seen_subcommand_from hwpoison" -f -a "inject" -d 'Poison pages (software-simulated memory failure): mapping processes get SIGBUS on access'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and __fish_seen_subcommand_from hwpoison" -f -a "unpoison" -d 'Undo a software-injected poison'
complete -c pgtool -n "__fish_pgtool_using_subcommand help; and __fish_seen_subcommand_from hwpoison" -f -a "soft-offline" -d 'Migrate the pages\' contents away and take them offline'
