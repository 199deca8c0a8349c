<?php
/**
 * wscgi push-API helpers for PHP backends: standard library only (no curl).
 *
 * wscgi turns each WebSocket event into an HTTP POST to your backend; these
 * functions let the backend talk to clients at any time through wscgi's push
 * API (`--push-listen`, default 127.0.0.1:8081). PHP 8.0 or later, with
 * allow_url_fopen=On (the default).
 *
 * Configuration (read on every call): the constants WSCGI_PUSH_URL and
 * WSCGI_PUSH_TOKEN if defined, else the environment variables of the same
 * names (PHP-FPM clears the environment by default: define() them instead).
 * The URL defaults to http://127.0.0.1:8081; the token (sent as
 * `Authorization: Bearer ...`) is needed when wscgi runs with `--push-token`.
 *
 * Every function returns wscgi's JSON answer as an array with the HTTP status
 * added as 'status', and never throws: errors are data, e.g.
 * ['error' => 'not found: connection abc', 'status' => 404]. When wscgi cannot
 * be reached at all, the answer is ['status' => 0, 'error' => '...'].
 *
 * Usage from the backend script wscgi POSTs every event to:
 *
 *     require __DIR__ . '/wscgi.php';
 *     $me = $_SERVER['HTTP_WS_CONNECTION_ID'];
 *     switch ($_SERVER['HTTP_WS_EVENT']) {
 *         case 'open':
 *             wscgi_subscribe($me, 'lobby');  // or answer `WS-Subscribe: lobby`
 *             echo 'welcome';                 // the reply body goes to this client
 *             break;
 *         case 'message':
 *             $text = file_get_contents('php://input');
 *             if (preg_match('/^@(\S+) (.*)$/s', $text, $m)) {
 *                 $r = wscgi_send($m[1], $m[2]);              // a private message
 *             } else {
 *                 $r = wscgi_publish('lobby', $text, [$me]);  // everyone else
 *             }
 *             if ($r['status'] !== 200) {
 *                 echo 'not delivered: ', $r['error'] ?? 'unknown error';  // back to the sender
 *             }
 *             break;
 *     }
 *
 * And from anywhere else (a cron job, another request):
 *
 *     wscgi_send($id, 'hello');                 // text
 *     wscgi_send($id, $png, true);              // binary
 *     wscgi_broadcast('maintenance at 5', '/chat');
 *     wscgi_close($id, 4000, 'logged out');
 */

declare(strict_types=1);

/** Seconds a push-API call may take. */
const WSCGI_TIMEOUT = 5;

/** One message to one connection; $binary sends a binary frame. */
function wscgi_send(string $id, string $msg, bool $binary = false): array
{
    return wscgi_request('POST', '/connections/' . rawurlencode($id), [], $msg, $binary);
}

/**
 * One message to every member of $channel except the connection ids in
 * $exclude. 200 with 'delivered' when someone got it, 404 when nobody did.
 */
function wscgi_publish(string $channel, string $msg, array|string $exclude = [], bool $binary = false): array
{
    $exclude = (array) $exclude;
    $query = $exclude ? ['exclude' => implode(',', $exclude)] : [];
    return wscgi_request('POST', '/channels/' . rawurlencode($channel), $query, $msg, $binary);
}

/** One message to every open connection, or to those whose path starts with $path_prefix. */
function wscgi_broadcast(string $msg, ?string $path_prefix = null, bool $binary = false): array
{
    $query = $path_prefix === null ? [] : ['path' => $path_prefix];
    return wscgi_request('POST', '/broadcast', $query, $msg, $binary);
}

function wscgi_subscribe(string $id, string $channel): array
{
    return wscgi_request('PUT', wscgi_membership_path($id, $channel), [], '');
}

/** 404 when the connection is not in the channel. */
function wscgi_unsubscribe(string $id, string $channel): array
{
    return wscgi_request('DELETE', wscgi_membership_path($id, $channel), [], null);
}

/** Closes the connection with a close frame carrying $code and $reason (at most 123 bytes). */
function wscgi_close(string $id, int $code = 1000, string $reason = ''): array
{
    $query = ['code' => $code];
    if ($reason !== '') {
        $query['reason'] = $reason;
    }
    return wscgi_request('DELETE', '/connections/' . rawurlencode($id), $query, null);
}

/** @internal */
function wscgi_membership_path(string $id, string $channel): string
{
    return '/channels/' . rawurlencode($channel) . '/connections/' . rawurlencode($id);
}

/** @internal */
function wscgi_config(string $name, ?string $default): ?string
{
    if (defined($name)) {
        return (string) constant($name);
    }
    $value = getenv($name);
    return ($value === false || $value === '') ? $default : $value;
}

/**
 * One call to the push API. $body null sends no body; a string is sent as a
 * text message (UTF-8), or binary when $binary is set.
 *
 * @internal
 */
function wscgi_request(string $method, string $path, array $query, ?string $body, bool $binary = false): array
{
    $base = (string) wscgi_config('WSCGI_PUSH_URL', 'http://127.0.0.1:8081');
    if (!preg_match('#^https?://#i', $base)) {
        // file_get_contents() would happily read a local file instead.
        return ['status' => 0, 'error' => "WSCGI_PUSH_URL is not an http:// URL: $base"];
    }
    $url = rtrim($base, '/') . $path;
    if ($query) {
        $url .= '?' . http_build_query($query, '', '&', PHP_QUERY_RFC3986);
    }
    $headers = ['Connection: close'];
    $token = wscgi_config('WSCGI_PUSH_TOKEN', null);
    if ($token !== null) {
        $headers[] = 'Authorization: Bearer ' . $token;
    }
    if ($body !== null) {
        // Always explicit: PHP would otherwise label a body as a form, and
        // send no Content-Length at all for an empty one (wscgi wants one).
        $headers[] = 'Content-Type: ' . ($binary ? 'application/octet-stream' : 'text/plain; charset=utf-8');
        $headers[] = 'Content-Length: ' . strlen($body);
    }
    $http = [
        'method' => $method,
        'header' => $headers,
        'ignore_errors' => true, // 4xx/5xx bodies are answers too
        'timeout' => WSCGI_TIMEOUT,
        'follow_location' => 0,
        'protocol_version' => 1.1,
    ];
    if ($body !== null && $body !== '') {
        $http['content'] = $body;
    }
    $context = stream_context_create(['http' => $http]);

    error_clear_last();
    $raw = @file_get_contents($url, false, $context);
    if (function_exists('http_get_last_response_headers')) {
        // PHP 8.4+; assigning first is what keeps 8.5 from flagging the variable as deprecated.
        $http_response_header = http_get_last_response_headers();
    }
    $response_headers = $http_response_header ?? [];
    if ($raw === false) {
        $why = error_get_last()['message'] ?? 'request failed';
        return ['status' => 0, 'error' => $why];
    }
    $status = 0;
    foreach ($response_headers as $line) {
        // The last status line wins (there is one per response received).
        if (preg_match('#^HTTP/\S+\s+(\d{3})#', $line, $m)) {
            $status = (int) $m[1];
        }
    }
    $answer = json_decode($raw, true);
    if (!is_array($answer)) {
        $answer = ['error' => 'answer is not a JSON object', 'body' => $raw];
    }
    $answer['status'] = $status;
    return $answer;
}
