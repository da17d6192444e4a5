#!/usr/bin/env bash
# Make sure the four Fashion-MNIST IDX files are on this machine; nothing is downloaded at run time.
set -euo pipefail
files="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
have_all() { for f in $files; do [ -f "$1/$f" ] || return 1; done; }

if [ -n "${AUGMENTOR_DATA:-}" ]; then  # a folder the user named is the only place augmentor looks
  if have_all "$AUGMENTOR_DATA"; then echo "Fashion-MNIST: using AUGMENTOR_DATA=$AUGMENTOR_DATA"; exit 0; fi
  echo "AUGMENTOR_DATA=$AUGMENTOR_DATA lacks one of: $files; put them there or unset it" >&2; exit 1
fi
debian=/usr/share/datasets/fashion-mnist
if have_all "$debian"; then echo "Fashion-MNIST: $debian"; exit 0; fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
if command -v apt-get >/dev/null && { [ -z "$sudo" ] || $sudo true 2>/dev/null; }; then
  echo "Fashion-MNIST: installing the Debian package dataset-fashion-mnist"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  have_all "$debian" && exit 0
fi
cat >&2 <<MSG
Fashion-MNIST is not on this machine and could not be installed with apt.
Put these four files in a folder and point augmentor at it:
  $files
  export AUGMENTOR_DATA=/path/to/folder     (or pass --data-dir /path/to/folder)
MSG
exit 1
