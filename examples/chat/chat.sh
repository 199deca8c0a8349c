#!/bin/sh
# chat.sh: a whole chat room as a CGI script for wscgi (POSIX sh; runs under dash).
#   wscgi --static examples/chat/public --backend cgi:$PWD/examples/chat/chat.sh
# Everyone connected to ws://HOST/chat?name=NAME hears everyone, their own lines included.
# wscgi runs CGI programs with a clean environment (no PATH), so set one.
PATH=/usr/bin:/bin
export PATH

# The name from ?name=: only [A-Za-z0-9_-], at most 20 characters. encodeURIComponent escapes
# only characters outside that set, so a percent-escape (%20, %C3%A9) is dropped whole: the
# name comes out as chat.php and chat.py make it.
set -f  # no globbing while splitting the query string
name=
IFS='&'
for pair in $QUERY_STRING; do
    case $pair in name=*) name=${pair#name=} ;; esac
done
unset IFS
name=$(printf '%s\n' "$name" | sed 's/%[0-9A-Fa-f][0-9A-Fa-f]//g' | tr -cd 'A-Za-z0-9_-' | cut -c1-20)
[ -n "$name" ] || name="guest-$(printf '%s' "$HTTP_WS_CONNECTION_ID" | cut -c1-4)"

printf 'Content-Type: text/plain; charset=utf-8\r\n'
case "$HTTP_WS_EVENT" in
open)    printf 'WS-Subscribe: chat\r\nWS-Publish: chat\r\n\r\n* %s joined' "$name" ;;
message) printf 'WS-Publish: chat\r\n\r\n%s: ' "$name"; head -c "${CONTENT_LENGTH:-0}" ;;
close)   printf 'WS-Publish: chat\r\n\r\n* %s left' "$name" ;;
*)       printf '\r\n' ;;  # reset (and anything newer): nothing to do
esac
