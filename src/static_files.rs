//! Static files for `--static DIR`: parsing a plain (non-upgrade) GET or HEAD that arrived on
//! the WebSocket port, mapping its path into DIR without ever leaving it, and building the
//! complete `Connection: close` response. Runs on a worker thread, so file I/O blocks freely.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use log::debug;

use crate::date::{http_date, parse_http_date};
use crate::headers;

/// Larger files are refused with 413: the whole response is built in memory.
pub const MAX_FILE: u64 = 8 * 1024 * 1024;
/// What a directory serves.
const INDEX: &str = "index.html";
/// The caller caps the head at 8 KiB, so this only bounds the parser's stack array.
const MAX_HEADERS: usize = 64;

/// What a plain request asks for, read from its head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRequest {
    pub head_only: bool,
    /// Percent-decoded, starts with '/'; query and fragment removed.
    pub path: String,
    pub if_modified_since: Option<String>,
}

/// Parses a complete request head (request line + headers + blank line, as received; the
/// caller checked it is complete and ≤ 8 KiB). `Err` holds the response to send instead:
/// 405 for methods other than GET/HEAD, 400 for a malformed head, target or percent-encoding.
pub fn request(head: &[u8]) -> Result<StaticRequest, Vec<u8>> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut raw);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) {
        return Err(error(400, false));
    }
    let head_only = match req.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return Err(error(405, false)),
    };
    let path = req.path.and_then(target_path).and_then(percent_decode);
    let path = path.ok_or_else(|| error(400, head_only))?;
    let if_modified_since = req
        .headers
        .iter()
        .find(|h| headers::name_is(h.name, "if-modified-since"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(|v| v.trim().to_string());
    Ok(StaticRequest {
        head_only,
        path,
        if_modified_since,
    })
}

/// What `--static` serves: a directory, less the backend's own code. A program or script a
/// route runs, and any PHP file, is answered 404 even when it lies in the directory: its
/// source is not for browsers.
#[derive(Debug, Clone)]
pub struct Site {
    root: PathBuf,
    /// The CGI programs and FastCGI scripts the routes name, as absolute paths.
    backend_code: Vec<PathBuf>,
}

impl Site {
    pub fn new(root: PathBuf, backend_code: Vec<PathBuf>) -> Site {
        Site { root, backend_code }
    }

    /// The complete HTTP/1.1 response (always `Connection: close`) for `req`.
    pub fn respond(&self, req: &StaticRequest) -> Vec<u8> {
        self.serve(req)
            .unwrap_or_else(|status| error(status, req.head_only))
    }

    fn serve(&self, req: &StaticRequest) -> Result<Vec<u8>, u16> {
        let (named, canonical) = locate(&self.root, &req.path)?;
        if self.is_backend_code(&named, &canonical) {
            debug!("static {}: backend code, not served", req.path);
            return Err(404);
        }
        serve(&named, &canonical, req)
    }

    /// Resolved when asked, like the request: a script created or moved after startup (or
    /// reached through a symlink) is still recognised. A hard link has a path of its own, so
    /// the file itself (device and inode) is compared too.
    fn is_backend_code(&self, named: &Path, canonical: &Path) -> bool {
        let php = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("php"));
        if php(named) || php(canonical) {
            return true;
        }
        let file = fs::metadata(canonical).ok().map(|m| (m.dev(), m.ino()));
        self.backend_code.iter().any(|code| {
            code.canonicalize().as_deref().unwrap_or(code) == canonical
                || fs::metadata(code).is_ok_and(|m| Some((m.dev(), m.ino())) == file)
        })
    }
}

/// A 500 for when serving itself failed (a panicked worker, no root configured).
pub fn internal_error() -> Vec<u8> {
    error(500, false)
}

/// The 200 or 304 answer for the file `named` (at `canonical`), or the error status to
/// answer with instead.
fn serve(named: &Path, canonical: &Path, req: &StaticRequest) -> Result<Vec<u8>, u16> {
    let meta = fs::metadata(canonical).map_err(|e| io_status(&e))?;
    // Only regular files: opening a FIFO or device would block or never end.
    if !meta.is_file() {
        return Err(404);
    }
    if meta.len() > MAX_FILE {
        return Err(413);
    }
    // Opened before the 304 check so an unreadable file is 403 whatever the client cached.
    let file = File::open(canonical).map_err(|e| io_status(&e))?;
    let mtime = mtime_secs(&meta);
    let dated = mtime.map(|secs| ("Last-Modified", http_date(secs)));
    let last_modified = dated.as_ref().map(|(_, date)| date.as_str());
    if not_modified(req.if_modified_since.as_deref(), mtime, last_modified) {
        return Ok(encode(304, dated.as_slice(), b""));
    }
    // HEAD reports the length a GET would send, without reading the file.
    let body = (!req.head_only).then(|| read_capped(file)).transpose()?;
    let len = body.as_ref().map_or(meta.len(), |b| b.len() as u64);
    let mut headers = vec![
        ("Content-Type", content_type(named).to_string()),
        ("Content-Length", len.to_string()),
    ];
    headers.extend(dated);
    Ok(encode(200, &headers, body.as_deref().unwrap_or_default()))
}

/// Maps a request path to (the file as named, its canonical path). Every way out of `root`
/// is refused with 404: `..` (already decoded, so `%2e%2e` is caught too), NUL, backslashes,
/// and symlinks whose target lies outside `root`.
fn locate(root: &Path, path: &str) -> Result<(PathBuf, PathBuf), u16> {
    let mut named = root.to_path_buf();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if !safe_segment(segment) {
            return Err(404);
        }
        named.push(segment);
    }
    // A trailing slash names a directory: `/file.txt/` must not serve the file.
    if path.ends_with('/') {
        named.push(INDEX);
    }
    let mut canonical = named.canonicalize().map_err(|e| io_status(&e))?;
    if canonical.is_dir() {
        named.push(INDEX);
        canonical = named.canonicalize().map_err(|e| io_status(&e))?;
    }
    let root = root.canonicalize().map_err(|_| 404u16)?;
    if !canonical.starts_with(&root) {
        return Err(404);
    }
    Ok((named, canonical))
}

/// `.` and `..` start with a dot, so the hidden-file rule refuses them along with dotfiles.
fn safe_segment(segment: &str) -> bool {
    !segment.starts_with('.') && !segment.contains(['\\', '\0'])
}

/// Permission problems are 403; anything else (missing, not a directory, loops) is 404.
fn io_status(err: &io::Error) -> u16 {
    match err.kind() {
        io::ErrorKind::PermissionDenied => 403,
        _ => 404,
    }
}

/// Reads at most one byte past MAX_FILE, so a file that grew since `stat` is still refused.
fn read_capped(file: File) -> Result<Vec<u8>, u16> {
    let mut body = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut body)
        .map_err(|_| 403u16)?;
    if body.len() as u64 > MAX_FILE {
        return Err(413);
    }
    Ok(body)
}

/// The request target's path: origin-form as is, absolute-form (`http://host/p`) from its
/// path; query and fragment dropped. `None` for anything else (e.g. `*` or authority-form).
fn target_path(target: &str) -> Option<&str> {
    let target = target.split(['?', '#']).next().unwrap_or_default();
    if target.starts_with('/') {
        return Some(target);
    }
    let (scheme, rest) = target.split_once("://")?;
    let http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    http.then(|| rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"))
}

/// `%XX` to bytes; `None` for a `%` without two hex digits or a result that is not UTF-8.
/// `+` stays `+`: it means space only in query strings.
fn percent_decode(path: &str) -> Option<String> {
    let mut out = Vec::with_capacity(path.len());
    let mut bytes = path.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = char::from(bytes.next()?).to_digit(16)?;
            let lo = char::from(bytes.next()?).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// By the extension of the name as requested (nginx does the same), so a symlink `app.js`
/// is served as JavaScript whatever its target is called.
fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().unwrap_or_default().to_ascii_lowercase();
    match ext.to_str().unwrap_or_default() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        "webp" => "image/webp",
        _ => "application/octet-stream",
    }
}

fn mtime_secs(meta: &fs::Metadata) -> Option<i64> {
    let since_epoch = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(since_epoch.as_secs()).ok()
}

/// 304 when the client's copy is current: the exact Last-Modified we would send, or a date
/// (IMF-fixdate) not older than the mtime. Unparseable dates are ignored, as RFC 9110 says.
fn not_modified(since: Option<&str>, mtime: Option<i64>, last_modified: Option<&str>) -> bool {
    let (Some(since), Some(mtime)) = (since, mtime) else {
        return false;
    };
    last_modified == Some(since) || parse_http_date(since).is_some_and(|t| t >= mtime)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        500 => "Internal Server Error",
        _ => "Error",
    }
}

/// A short text/plain error; 405 also says which methods would work.
fn error(status: u16, head_only: bool) -> Vec<u8> {
    let message = match status {
        413 => "file too large to serve\n".to_string(),
        _ => format!("{}\n", reason(status).to_ascii_lowercase()),
    };
    let mut headers = vec![
        ("Content-Type", "text/plain; charset=utf-8".to_string()),
        ("Content-Length", message.len().to_string()),
    ];
    if status == 405 {
        headers.push(("Allow", "GET, HEAD".to_string()));
    }
    let body = if head_only { "" } else { &message };
    encode(status, &headers, body.as_bytes())
}

/// Status line, the caller's headers, the headers every answer carries, blank line, body.
fn encode(status: u16, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.push_str("Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n");
    out.push_str("Connection: close\r\nServer: wscgi\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[cfg(test)]
mod tests;
