#!/usr/bin/env bash
# What a release would write, without releasing: apply the pending changesets to a throwaway copy
# of HEAD and show each package's new CHANGELOG section. Fails if a package that would be released
# gets no entries.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$root" archive HEAD | tar -x -C "$tmp"
# Uncommitted changesets count too when run by hand before a commit.
cp "$root"/.changeset/*.md "$tmp/.changeset/" 2>/dev/null || true
(cd "$root" && node scripts/sync-metadata.mjs --check)
(cd "$root" && pnpm exec changeset status) >/dev/null
(cd "$tmp" && "$root/node_modules/.bin/changeset" version >/dev/null)
status=0
for changelog in "$tmp"/packages/*/CHANGELOG.md; do
  pkg=$(node -p "require('$(dirname "$changelog")/package.json').name")
  version=$(node -p "require('$(dirname "$changelog")/package.json').version")
  section=$(awk -v v="## $version" '$0==v{f=1;next} /^## /{f=0} f' "$changelog")
  entries=$(printf '%s\n' "$section" | grep -c '^- ' || true)
  echo "$pkg $version: $entries changelog entries"
  if [ "$entries" -eq 0 ]; then
    echo "  no entries for $pkg $version" >&2
    status=1
  fi
done
exit $status
