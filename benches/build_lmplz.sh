#!/usr/bin/env bash
# Builds KenLM's `lmplz` (its pip package ships only the query side) from the kenlm source
# distribution on PyPI, for the parity tests and benches that compare textsieve with it.
#
#   benches/build_lmplz.sh [DEST]      (default DEST: ./.lmplz; the binary is DEST/bin/lmplz)
#
# Needs: pip, cmake, a C++ compiler and Debian's
#   libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev
#   zlib1g-dev libbz2-dev liblzma-dev
# Tests find the binary through $LMPLZ, then DEST/bin/lmplz, then PATH; they skip without it.
set -euo pipefail
dest="$(realpath -m "${1:-.lmplz}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python -m pip download --quiet --no-deps --no-binary kenlm kenlm -d "$work"
tar xzf "$work"/kenlm-*.tar.gz -C "$work"
src="$(find "$work" -maxdepth 1 -type d -name 'kenlm-*' | head -n1)"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
make -C "$work/build" -j"${JOBS:-2}" lmplz >/dev/null
mkdir -p "$dest/bin"
cp "$work/build/bin/lmplz" "$dest/bin/lmplz"
echo "$dest/bin/lmplz"
