<?php
// chat.php: a whole chat room for wscgi; the same as chat.sh. Runs unchanged under
//   php-fpm:        wscgi --backend fastcgi://127.0.0.1:9000$PWD/examples/chat/chat.php
//   nginx+php-fpm:  wscgi --backend http://127.0.0.1/chat.php
//   php-cgi:        wscgi --backend cgi:$PWD/examples/chat/chat-php-cgi.sh   (see there why)
// Everyone connected to ws://HOST/chat?name=NAME hears everyone, their own lines included.

// Only [A-Za-z0-9_-], at most 20 characters; no name: "guest-" + 4 characters of the id.
$id = $_SERVER['HTTP_WS_CONNECTION_ID'] ?? '';
$name = is_string($_GET['name'] ?? null) ? $_GET['name'] : '';
$name = substr(preg_replace('/[^A-Za-z0-9_-]/', '', $name), 0, 20);
if ($name === '') {
    $name = 'guest-' . substr($id, 0, 4);
}

header('Content-Type: text/plain; charset=utf-8');
switch ($_SERVER['HTTP_WS_EVENT'] ?? '') {
    case 'open':
        header('WS-Subscribe: chat');
        header('WS-Publish: chat');
        echo "* $name joined";
        break;
    case 'message':
        header('WS-Publish: chat');
        echo "$name: ", file_get_contents('php://input');
        break;
    case 'close':
        header('WS-Publish: chat');
        echo "* $name left";
        break;
    // reset (and anything newer): an empty 200, nothing to do
}
