#!/usr/bin/env bash
# What a device call sends, and how to send less. A call sends the tracked files, the untracked
# files git does not ignore, and the paths named in `carry`: 64 MiB at most (device tool's limit).
# The tracked tree is about 61 MiB (the shipped weights 54 MiB of it), so a call that also carries
# .whl (7.8 MiB) and data must leave out the weights it does not load. From the repository root:
#   bash benchmarks/gpu/tree.sh size [CARRY ...]   # MiB that would travel, carried paths included
#   bash benchmarks/gpu/tree.sh drop PATH ...      # stop sending PATHs: untracked and ignored for now
#   bash benchmarks/gpu/tree.sh restore            # track them again, exactly as committed
# `drop` lists the paths between two marker lines in git's info/exclude, then takes them out of
# the index (the files stay on disk); `restore` puts them back from HEAD, then removes the lines.
# Neither touches a file's contents; `drop` refuses while other changes are staged, so that
# `restore` cannot undo them, and nothing may be committed between the two.
set -euo pipefail
EXCLUDE=$(git rev-parse --git-path info/exclude)
BEGIN="# >>> benchmarks/gpu/tree.sh drop"
END="# <<< benchmarks/gpu/tree.sh drop"
mib() { awk '{ s += $1 } END { printf "%.1f", s / 1048576 }'; }
case "${1:-}" in
  size)
    shift
    # Files that exist (a tracked file deleted from disk does not travel).
    files=$( { git ls-files -z --cached; git ls-files -z --others --exclude-standard; } \
             | xargs -0 -r stat -c %s 2>/dev/null | mib || true)
    carried=0.0
    if [ "$#" -gt 0 ]; then carried=$(du -sb --apparent-size "$@" | cut -f1 | mib); fi
    awk -v a="$files" -v b="$carried" 'BEGIN { printf "tree %s MiB + carry %s MiB = %.1f MiB (limit 64)\n", a, b, a + b; exit (a + b > 64) }'
    ;;
  drop)
    shift
    [ "$#" -gt 0 ] || { echo "tree.sh drop: name the paths to leave out (e.g. invprob/weights/mnist-flow)" >&2; exit 2; }
    if grep -qxF "$BEGIN" "$EXCLUDE" 2>/dev/null; then
      echo "tree.sh drop: paths are already dropped; run 'bash benchmarks/gpu/tree.sh restore' first" >&2; exit 2
    fi
    if ! git diff --cached --quiet; then
      echo "tree.sh drop: the index holds staged changes; commit or unstage them first" >&2; exit 2
    fi
    git ls-files --error-unmatch -- "$@" > /dev/null  # every path tracked, or git names the one that is not
    mkdir -p "$(dirname "$EXCLUDE")"
    if [ -s "$EXCLUDE" ] && [ -n "$(tail -c1 "$EXCLUDE")" ]; then echo >> "$EXCLUDE"; fi  # end the last line
    { echo "$BEGIN"; for p in "$@"; do echo "/${p%/}"; done; echo "$END"; } >> "$EXCLUDE"
    git rm -r -q --cached -- "$@"
    echo "dropped: $*"
    ;;
  restore)
    grep -qxF "$BEGIN" "$EXCLUDE" 2>/dev/null || { echo "tree.sh restore: nothing is dropped"; exit 0; }
    paths=$(awk -v b="$BEGIN" -v e="$END" '$0 == b { on = 1; next } $0 == e { on = 0 } on { sub("^/", ""); print }' "$EXCLUDE")
    # shellcheck disable=SC2086
    git reset -q HEAD -- $paths
    awk -v b="$BEGIN" -v e="$END" '$0 == b { on = 1 } !on { print } $0 == e { on = 0 }' "$EXCLUDE" > "$EXCLUDE.tmp"
    mv "$EXCLUDE.tmp" "$EXCLUDE"
    echo "restored: $(echo $paths)"
    ;;
  *)
    echo "usage: bash benchmarks/gpu/tree.sh size [CARRY ...] | drop PATH ... | restore" >&2; exit 2
    ;;
esac
