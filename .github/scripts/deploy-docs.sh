#!/usr/bin/env bash
# Copy a release folder's docs to gh-pages as <distribution>/<version>/ and <distribution>/latest/.
# Needs GH_TOKEN (contents: write) and REPOSITORY; the checkout keeps no credentials.
# The token never enters a URL or an argument (both show in logs and in the process list): git gets
# it as an HTTP header for github.com only, from its environment (GIT_CONFIG_*, git >= 2.31), as
# actions/checkout does; the header's value is masked in the log first.
set -euo pipefail
release=${1:?usage: deploy-docs.sh RELEASE_DIR}
: "${GH_TOKEN:?GH_TOKEN must be set}" "${REPOSITORY:?REPOSITORY must be set (owner/name)}"
server=${GITHUB_SERVER_URL:-https://github.com}
version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$release/release-manifest.json")
basic=$(printf 'x-access-token:%s' "$GH_TOKEN" | base64 | tr -d '\n')
echo "::add-mask::$basic"
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="http.$server/.extraheader" GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $basic"
unset GH_TOKEN basic
remote="$server/${REPOSITORY}.git"
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
