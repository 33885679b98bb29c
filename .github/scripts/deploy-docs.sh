#!/usr/bin/env bash
# Copy a release folder's docs to gh-pages as <distribution>/<version>/ and <distribution>/latest/.
# Needs GH_TOKEN (contents: write) and REPOSITORY; the checkout keeps no credentials.
set -euo pipefail
release=${1:?usage: deploy-docs.sh RELEASE_DIR}
version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$release/release-manifest.json")
remote="https://x-access-token:${GH_TOKEN}@github.com/${REPOSITORY}.git"
pages=$(mktemp -d)
if git ls-remote --exit-code "$remote" gh-pages > /dev/null; then
  git clone --quiet --depth 1 --branch gh-pages "$remote" "$pages"
else
  git init --quiet -b gh-pages "$pages"
fi
for docs in "$release"/docs/*/; do
  name=$(basename "$docs")
  rm -rf "$pages/$name/$version" "$pages/$name/latest"
  mkdir -p "$pages/$name"
  cp -r "$docs" "$pages/$name/$version"
  cp -r "$docs" "$pages/$name/latest"
done
touch "$pages/.nojekyll"
git -C "$pages" add -A
git -C "$pages" -c user.name="github-actions[bot]" -c user.email="41898282+github-actions[bot]@users.noreply.github.com" \
  commit --quiet -m "docs: $version" || { echo "docs unchanged"; exit 0; }
git -C "$pages" push --quiet "$remote" HEAD:gh-pages
echo "docs $version deployed"
