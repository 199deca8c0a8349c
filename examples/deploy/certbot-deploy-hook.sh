#!/bin/sh
# certbot deploy hook for wscgi's own TLS: /etc/letsencrypt/renewal-hooks/deploy/wscgi.sh
#
#   install -m 755 certbot-deploy-hook.sh /etc/letsencrypt/renewal-hooks/deploy/wscgi.sh
#   RENEWED_LINEAGE=/etc/letsencrypt/live/chat.example.com /etc/letsencrypt/renewal-hooks/deploy/wscgi.sh
#
# (the second line makes the first copy). certbot runs every deploy hook after each successful
# renewal, with RENEWED_LINEAGE=/etc/letsencrypt/live/NAME. This one copies the new chain and
# key where wscgi may read them (certbot's own files are root-only; wscgi.service runs as a
# dynamic user in group ssl-cert, see wscgi-tls.conf) and sends wscgi SIGHUP: new connections
# get the new certificate, open ones keep working. Should the new files not load, wscgi keeps
# the current certificate and logs why (journalctl -u wscgi).
#
# tests/tls_process.rs runs this very file against a running wscgi, with the three variables
# below pointed at a temporary directory, the test's own group and a plain kill.
set -eu

DOMAIN=chat.example.com
DEST=${WSCGI_TLS_DIR:-/etc/wscgi/tls}
GROUP=${WSCGI_TLS_GROUP:-ssl-cert}
RELOAD=${WSCGI_RELOAD:-systemctl kill --signal=HUP --kill-whom=main wscgi.service}

# Other certificates on this host are not ours.
case "${RENEWED_LINEAGE:-}" in
    */"$DOMAIN") ;;
    *) exit 0 ;;
esac

install -d -m 750 -g "$GROUP" "$DEST"
# New files first, then a rename each: wscgi never reads a half-written file.
install -m 640 -g "$GROUP" "$RENEWED_LINEAGE/fullchain.pem" "$DEST/fullchain.pem.new"
install -m 640 -g "$GROUP" "$RENEWED_LINEAGE/privkey.pem" "$DEST/privkey.pem.new"
mv -f "$DEST/privkey.pem.new" "$DEST/privkey.pem"
mv -f "$DEST/fullchain.pem.new" "$DEST/fullchain.pem"
$RELOAD
