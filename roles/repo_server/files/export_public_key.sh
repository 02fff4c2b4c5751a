#!/bin/sh
# Export the public signing key of GNUPGHOME ($1) to $2/archive-key.asc and $2/archive-key.gpg,
# replacing them only when they differ; print CHANGED when something was written.
set -eu
home=$1
dest=$2
changed=
for kind in asc gpg; do
    tmp=$(mktemp "$dest/.archive-key.XXXXXX")
    if [ "$kind" = asc ]; then
        GNUPGHOME=$home gpg --batch --armor --export > "$tmp"
    else
        GNUPGHOME=$home gpg --batch --export > "$tmp"
    fi
    if [ ! -s "$tmp" ]; then
        rm -f "$tmp"
        echo "no public key in $home" >&2
        exit 1
    fi
    chmod 0644 "$tmp"
    if [ -f "$dest/archive-key.$kind" ] && cmp -s "$tmp" "$dest/archive-key.$kind"; then
        rm -f "$tmp"
    else
        mv -f "$tmp" "$dest/archive-key.$kind"
        changed=1
    fi
done
[ -n "$changed" ] && echo CHANGED || echo UNCHANGED
