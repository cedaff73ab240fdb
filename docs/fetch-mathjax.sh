#!/bin/sh
# Fetch MathJax once from the npm registry, so the docs site serves it itself: a page never loads a script from a CDN.
# The tarball is pinned by version and checksum. Only es5/tex-svg-full.js is kept (TeX in, SVG out, every TeX extension
# built in, so nothing more is fetched while a page is read) with MathJax's licence; it goes to docs/_vendor/, which git
# ignores: 2 MB of minified JavaScript would weigh on every clone, and npm is needed only once, like pip.
set -eu
VERSION=3.2.2
SHA256=1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
DEST=$(dirname "$0")/_vendor/mathjax
command -v npm >/dev/null 2>&1 || { echo "docs: npm is needed once to fetch MathJax: install Node.js (apt-get install -y npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "mathjax@$VERSION" >/dev/null)
echo "$SHA256  $tmp/mathjax-$VERSION.tgz" | sha256sum -c --quiet - || { echo "docs: mathjax-$VERSION.tgz does not match its pinned checksum" >&2; exit 1; }
tar -xzf "$tmp/mathjax-$VERSION.tgz" -C "$tmp" package/es5/tex-svg-full.js package/LICENSE
mkdir -p "$DEST"
cp "$tmp/package/LICENSE" "$DEST/LICENSE"
cp "$tmp/package/es5/tex-svg-full.js" "$DEST/tex-svg-full.js"
echo "docs: MathJax $VERSION in $DEST"
