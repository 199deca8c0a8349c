-- wrk script for the backend ceiling: the same POST wscgi sends for one WebSocket
-- message (same headers, a body of BENCH_SIZE bytes), so `wrk -c C` measures what
-- bench-fast-backend can answer at concurrency C with no WebSocket server in front.
-- Prints one JSON line (like bench-load) when done.

local size = tonumber(os.getenv("BENCH_SIZE") or "64")
local label = os.getenv("BENCH_LABEL") or "ceiling"

wrk.method = "POST"
wrk.body = string.rep("x", size)
wrk.headers["Content-Type"] = "text/plain; charset=utf-8"
wrk.headers["WS-Event"] = "message"
wrk.headers["WS-Connection-Id"] = "q2Zx0sVb3kKz0m0cWcQx9A"
wrk.headers["WS-Boot-Id"] = "Nm3EpgD39VQRWxX_9vsF0A"
wrk.headers["WS-Seq"] = "1"
wrk.headers["WS-Path"] = "/bench"
wrk.headers["WS-Remote-Addr"] = "127.0.0.1:40000"
wrk.headers["WS-Message-Type"] = "text"
wrk.headers["User-Agent"] = "bench-load"

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"ok":%s,"scenario":"ceiling","label":"%s","size":%d,"requests":%d,"elapsed_s":%.3f,'
      .. '"requests_per_s":%.0f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"errors":%d}\n',
    tostring(errors == 0 and summary.requests > 0), label, size, summary.requests, secs,
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, errors))
  io.write(string.format("ceiling %s: %.0f requests/s, latency p50 %.3f ms, p99 %.3f ms, %d errors\n",
    label, summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
