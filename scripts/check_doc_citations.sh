#!/usr/bin/env bash
# Checks that every citation of a docs/ section resolves, so citations cannot rot:
# - in the code (src, include, tools, tests, bench, examples): "docs/model-math.md §4.2",
#   "docs/gguf-format.md §3 and §5", "docs/model-math.md §2, §3";
# - in docs/*.md: "gguf-format.md §3" (another doc) and a bare "§4.5" (the same doc).
# A section N or N.M exists when the doc has a heading "## N. ..." or "### N.M ...".
# Citations of the facts document outside the repository ("facts §N", ../shared/docs) are
# refused. Run by ctest (doc_citations); prints each broken citation as file:line.
# Usage: check_doc_citations.sh [ROOT] (default: this repository; ctest doc_citations_broken
# points it at tests/data/doc-citations, a tree of broken citations it must reject).
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

section='§[0-9]+(\.[0-9]+)?'
list="$section((, | and |/|–)$section)*"
status=0
checked=0

# check WHERE DOC CITATION: every section number in CITATION must be a heading of DOC.
check() {
  local where=$1 doc=$2 s
  for s in $(grep -oE '§[0-9]+(\.[0-9]+)?' <<<"$3" | tr -d '§'); do
    checked=$((checked + 1))
    if [ ! -f "$doc" ]; then
      echo "$where: $doc §$s: no such file" >&2
      status=1
    elif ! grep -qE "^#+ ${s//./\\.}\.? " "$doc"; then
      echo "$where: $doc §$s: no such section" >&2
      status=1
    fi
  done
}

code=()
for d in src include tools tests bench examples; do [ -d "$d" ] && code+=("$d"); done
while IFS= read -r hit; do # path:line:docs/X.md §...
  where=${hit%%:docs/*}
  cite=${hit#"$where":}
  check "$where" "${cite%% *}" "${cite#* }"
done < <(grep -rnoE --exclude-dir=data "docs/[A-Za-z0-9_.-]+\.md $list" "${code[@]}" || true)

for doc in docs/*.md; do
  while IFS= read -r hit; do # line:X.md §...
    cite=${hit#*:}
    check "$doc:${hit%%:*}" "docs/${cite%% *}" "${cite#* }"
  done < <(grep -noE "[A-Za-z0-9_-]+\.md $list" "$doc" || true)
  while IFS= read -r hit; do # line:§...
    check "$doc:${hit%%:*}" "$doc" "${hit#*:}"
  done < <(sed -E "s#[A-Za-z0-9_-]+\.md $list##g" "$doc" | grep -noE "$section" || true)
done

stale=$(grep -rnE --exclude-dir=data 'facts §|facts \(§|shared/docs' "${code[@]}" || true)
if [ -n "$stale" ]; then
  echo "citations of the facts document outside the repository (cite docs/ instead):" >&2
  echo "$stale" >&2
  status=1
fi
if ((checked == 0)); then
  echo "check_doc_citations.sh: no docs/ citations found (is the pattern broken?)" >&2
  status=1
fi
if ((status == 0)); then echo "check_doc_citations.sh: all $checked section citations resolve"; fi
exit $status
