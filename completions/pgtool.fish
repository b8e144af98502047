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
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand v2p" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand types" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand who" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand cgroup" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand idle" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand idle" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand hwpoison" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand snapshot" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand snapshot" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand snapshot" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand page-owner" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand slab" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -s h -l help -d 'Print help'
complete -c pgtool -n "__fish_pgtool_using_subcommand kfence" -s V -l version -d 'Print version'
complete -c pgtool -n "__fish_pgtool_using_subcommand peek" -l root -d 'Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves) instead of the live system' -r -F
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
