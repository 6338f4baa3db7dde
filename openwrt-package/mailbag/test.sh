#!/bin/sh
# The packages feed CI runs this on the target after installing the package:
# $1 is the package name, $2 its version (without the release).

case "$1" in
mailbag)
	mailbag --version | grep -F "$2"
	;;
*)
	echo "test.sh: unknown package '$1'" >&2
	exit 1
	;;
esac
