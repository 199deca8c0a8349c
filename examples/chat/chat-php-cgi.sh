#!/bin/sh
# chat-php-cgi.sh: runs chat.php with php-cgi as wscgi's CGI program:
#   wscgi --static examples/chat/public --backend cgi:$PWD/examples/chat/chat-php-cgi.sh
# wscgi runs the cgi: program itself, with SCRIPT_FILENAME set to that program (this file),
# while php-cgi runs the script SCRIPT_FILENAME names: so point it at chat.php and exec php-cgi.
# Everything else (REDIRECT_STATUS, CONTENT_LENGTH, QUERY_STRING, HTTP_WS_*) passes unchanged.
# wscgi's CGI environment is clean (no PATH), hence the explicit one.
PATH=/usr/local/bin:/usr/bin:/bin
export PATH
case $0 in
/*) dir=${0%/*} ;;
*)  dir=$(cd "$(dirname "$0")" && pwd) ;;
esac
SCRIPT_FILENAME=$dir/chat.php
export SCRIPT_FILENAME
exec php-cgi
