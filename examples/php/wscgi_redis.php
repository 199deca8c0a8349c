<?php
/**
 * Publish to wscgi clients straight through Redis (wscgi --redis), with phpredis
 * (Debian: apt install php-redis) or any client with a publish($channel, $message) method
 * (predis works the same way).
 *
 * When several wscgi instances share a Redis (`--redis URL`), a backend reaches the members
 * of a channel on every instance with one Redis PUBLISH on "{prefix}publish" (prefix:
 * `--redis-prefix`, default "wscgi:"), without an HTTP call. The message is JSON, format
 * version 1 (README, "Cluster"):
 *
 *     {"v":1,"channel":"room","data":"text message"}
 *     {"v":1,"channel":"room","base64":"AAH/"}          binary message
 *     {"v":1,"path":"/chat","data":"..."}              broadcast by path
 *     ..."exclude":["connection id",...]               optional
 *
 * Usage:
 *
 *     require __DIR__ . '/wscgi_redis.php';
 *     $redis = new Redis();
 *     $redis->connect('127.0.0.1', 6379);
 *     wscgi_redis_publish($redis, 'room', 'hello');                 // instances that got it
 *     wscgi_redis_publish($redis, 'room', $png, true, [$_SERVER['HTTP_WS_CONNECTION_ID']]);
 *     wscgi_redis_broadcast($redis, 'maintenance at 5', '/chat');
 *
 * From a shell (what tests/cluster_failures.rs runs):
 *
 *     WSCGI_REDIS_PORT=6379 php wscgi_redis.php room hello [exclude-id...]
 */

const WSCGI_REDIS_VERSION = 1;

/** The JSON text of one publish: text (UTF-8) or binary. */
function wscgi_redis_message(string $msg, bool $binary, array $exclude, array $audience): string
{
    $body = ['v' => WSCGI_REDIS_VERSION] + $audience;
    if ($binary) {
        $body['base64'] = base64_encode($msg);
    } else {
        $body['data'] = $msg;
    }
    if ($exclude) {
        $body['exclude'] = array_values($exclude);
    }
    return json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR);
}

/** To the members of $channel on every instance; returns how many instances got it. */
function wscgi_redis_publish($redis, string $channel, string $msg, bool $binary = false,
                             array $exclude = [], string $prefix = 'wscgi:'): int
{
    $json = wscgi_redis_message($msg, $binary, $exclude, ['channel' => $channel]);
    return (int) $redis->publish($prefix . 'publish', $json);
}

/** To every client whose WebSocket path starts with $path, on every instance. */
function wscgi_redis_broadcast($redis, string $msg, string $path = '/', bool $binary = false,
                               array $exclude = [], string $prefix = 'wscgi:'): int
{
    $json = wscgi_redis_message($msg, $binary, $exclude, ['path' => $path]);
    return (int) $redis->publish($prefix . 'publish', $json);
}

if (PHP_SAPI === 'cli' && realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    $redis = new Redis();
    $redis->connect('127.0.0.1', (int) (getenv('WSCGI_REDIS_PORT') ?: 6379));
    $prefix = getenv('WSCGI_REDIS_PREFIX') ?: 'wscgi:';
    echo wscgi_redis_publish($redis, $argv[1], $argv[2], false, array_slice($argv, 3), $prefix), "\n";
}
