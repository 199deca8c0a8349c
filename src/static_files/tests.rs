//! Tests for `static_files`: path resolution, responses, dates, traversal attempts.

use super::*;
use std::os::unix::fs::{PermissionsExt, symlink};

/// `base/root` is served; `base/x` and `base/etc/passwd` are what an escape would reach.
const FILES: &str = "x=OUTSIDE etc/passwd=OUTSIDE root/index.html=home root/a/index.html=sub \
    root/a/x=inside root/app.js=1 root/Style.CSS=b root/data.json={} root/pic.png=p \
    root/readme.txt=hello root/blob=raw root/.secret=hidden root/a/.env=hidden \
    root/app.sh=code root/cgi/run=code root/fpm/chat.php=code root/Page.PHP=code";
const COMMON: &str = "X-Content-Type-Options: nosniff\r\nConnection: close\r\nServer: wscgi";

/// A temp dir holding FILES plus two symlinks; removed on drop.
struct Fixture(PathBuf);

impl Fixture {
    fn new(n: usize) -> Fixture {
        let name = format!("wscgi-static-{}-{n}", std::process::id());
        let base = std::env::temp_dir().join(name);
        for (name, body) in FILES.split_whitespace().filter_map(|f| f.split_once('=')) {
            fs::create_dir_all(base.join(name).parent().unwrap()).unwrap();
            fs::write(base.join(name), body).unwrap();
        }
        symlink(base.join("x"), base.join("root/out.txt")).unwrap();
        symlink(base.join("root/readme.txt"), base.join("root/in.txt")).unwrap();
        symlink(base.join("root/app.sh"), base.join("root/app.txt")).unwrap();
        Fixture(base)
    }

    /// (status, head, body) for a raw request head.
    fn ask(&self, head: &str) -> (u16, String, String) {
        let root = self.0.join("root");
        // Named as a route would: relative to the working directory, or through `..`.
        let code = vec![
            self.0.join("root/a/../app.sh"),
            self.0.join("root/fpm/chat.php"),
        ];
        let site = Site::new(root, code);
        let bytes = request(head.as_bytes()).map_or_else(|e| e, |r| site.respond(&r));
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head[9..12].parse().unwrap();
        (status, head.into(), body.into())
    }

    fn get(&self, target: &str) -> (u16, String, String) {
        self.ask(&format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n"))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    let start = head.find(&format!("\r\n{name}: "))? + name.len() + 4;
    head.get(start..)?.split("\r\n").next()
}

#[test]
fn serves_files_and_directory_indexes_with_their_types() {
    let f = Fixture::new(0);
    let html = "text/html; charset=utf-8";
    for (target, body, ty) in [
        ("/", "home", html),
        ("/a", "sub", html),
        ("/a/", "sub", html),
        ("//a//index.html?q#f", "sub", html),
        ("http://h:80/a/", "sub", html),
        ("/app.js", "1", "text/javascript; charset=utf-8"),
        ("/Style.CSS", "b", "text/css; charset=utf-8"),
        ("/data.json", "{}", "application/json"),
        ("/pic.png", "p", "image/png"),
        ("/readme.txt", "hello", "text/plain; charset=utf-8"),
        ("/in.txt", "hello", "text/plain; charset=utf-8"),
        ("/blob", "raw", "application/octet-stream"),
    ] {
        let (status, head, got) = f.get(target);
        assert_eq!((status, got.as_str()), (200, body), "{target}");
        assert_eq!(header(&head, "Content-Type"), Some(ty), "{target}");
        let len = body.len().to_string();
        assert_eq!(header(&head, "Content-Length"), Some(len.as_str()));
        assert!(header(&head, "Last-Modified").is_some_and(|d| d.ends_with(" GMT")));
        assert!(head.ends_with(&format!("Cache-Control: no-cache\r\n{COMMON}")));
    }
}

#[test]
fn head_has_headers_but_no_body() {
    let f = Fixture::new(1);
    for (target, status, len) in [("/readme.txt", 200, "5"), ("/nope", 404, "10")] {
        let (got, head, body) = f.ask(&format!("HEAD {target} HTTP/1.1\r\n\r\n"));
        assert_eq!((got, body.as_str()), (status, ""));
        assert_eq!(header(&head, "Content-Length"), Some(len));
    }
}

#[test]
fn missing_hidden_and_escaping_paths_are_refused() {
    let f = Fixture::new(2);
    let targets = "/nope /readme.txt/ /.secret /a/.env /%2esecret /out.txt /./a/x \
        /../etc/passwd /%2e%2e/x /%2E./x /a/%2E%2E/%2e%2e/x /..%2fx /a/..%2F..%2fx \
        /a\\..\\..\\x /a%5c..%5c..%5cx /x%00y";
    for target in targets.split_whitespace() {
        let (status, _, body) = f.get(target);
        assert!(matches!(status, 400 | 404), "{target}: {status}");
        assert_ne!(body, "OUTSIDE", "{target}");
    }
    assert_eq!(f.get("/a/x").0, 200, "the traversal target exists");
    assert_eq!(f.get("/a/%2e%2e/x").2, "not found\n");
}

#[test]
fn if_modified_since() {
    let f = Fixture::new(3);
    let (_, head, _) = f.get("/readme.txt");
    let last = header(&head, "Last-Modified").unwrap();
    let mtime = parse_http_date(last).unwrap();
    let (newer, older) = (http_date(mtime + 60), http_date(mtime - 1));
    let old = "Sun, 06 Nov 1994 08:49:37 GMT";
    for (since, want) in [
        (last, 304),
        (&newer, 304),
        (&older, 200),
        (old, 200),
        ("?", 200),
    ] {
        let ask = format!("GET /readme.txt HTTP/1.1\r\nif-modified-since: {since}\r\n\r\n");
        let (status, head, body) = f.ask(&ask);
        assert_eq!(status, want, "{since}");
        if status == 304 {
            assert!(body.is_empty() && header(&head, "Content-Length").is_none());
            assert_eq!(header(&head, "Last-Modified"), Some(last));
        }
    }
}

#[test]
fn large_and_unreadable_files() {
    let f = Fixture::new(4);
    let big = File::create(f.0.join("root/big.bin")).unwrap();
    big.set_len(MAX_FILE + 1).unwrap();
    let (status, _, body) = f.get("/big.bin");
    assert_eq!((status, body.as_str()), (413, "file too large to serve\n"));
    let locked = f.0.join("root/locked.txt");
    fs::write(&locked, "x").unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    // root reads anything, so the 403 is only observable for other users.
    if File::open(&locked).is_err() {
        assert_eq!(f.get("/locked.txt").0, 403);
    }
}

#[test]
fn request_parsing() {
    let head = b"HEAD /a%20b/c+d.txt?q=%zz HTTP/1.1\r\nIf-Modified-Since:  x \r\n\r\n";
    let (path, since) = ("/a b/c+d.txt".into(), Some("x".into()));
    let want = StaticRequest {
        head_only: true,
        path,
        if_modified_since: since,
    };
    assert_eq!(request(head), Ok(want));
    let post = String::from_utf8(request(b"POST / HTTP/1.1\r\n\r\n").unwrap_err()).unwrap();
    assert!(post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
    assert_eq!(header(&post, "Allow"), Some("GET, HEAD"));
    let targets = "relative * ftp://h/x /%zz /%4 /%ff%fe /\0";
    let heads = targets
        .split(' ')
        .map(|t| format!("GET {t} HTTP/1.1\r\n\r\n"));
    let malformed = ["GET\r\n\r\n", "GET / HTTP/1.1\r\n", "\u{ff} garbage", ""];
    for head in heads.chain(malformed.map(String::from)) {
        let err = request(head.as_bytes()).unwrap_err();
        assert!(err.starts_with(b"HTTP/1.1 400 Bad Request\r\n"), "{head:?}");
    }
}

#[test]
fn no_panics_on_truncated_or_mutated_input() {
    let date = "Sun, 06 Nov 1994 08:49:37 GMT";
    let sample = format!("GET /a/%2e%2E/b?c HTTP/1.1\r\nIf-Modified-Since: {date}\r\n\r\n");
    for cut in 0..sample.len() {
        let _ = request(&sample.as_bytes()[..cut]);
        for byte in [0u8, b'%', b'/', b'.', b'\\', b':', b' ', 0xff] {
            let mut head = sample.clone().into_bytes();
            head[cut] = byte;
            let _ = request(&head);
            let _ = parse_http_date(&String::from_utf8_lossy(&head[cut.min(30)..cut.max(30)]));
        }
    }
}

#[test]
fn imf_fixdate() {
    for (secs, text) in [
        (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
    ] {
        assert_eq!(
            (http_date(secs), parse_http_date(text)),
            (text.into(), Some(secs))
        );
    }
    let bad = [
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "6-Nov-94",
    ];
    assert_eq!(bad.map(parse_http_date), [None; 3]);
    assert!(!http_date(i64::MAX).is_empty() && !http_date(i64::MIN).is_empty());
}

#[test]
fn backend_code_is_never_served() {
    let f = Fixture::new(9);
    // Another name for the same file, not a symlink: its canonical path is its own.
    fs::hard_link(f.0.join("root/app.sh"), f.0.join("root/a/app.html")).unwrap();
    for target in [
        "/app.sh",
        "/app.txt",
        "/a/app.html",
        "/fpm/chat.php",
        "/Page.PHP",
    ] {
        assert_eq!(f.get(target).0, 404, "{target}");
    }
    assert_eq!(
        f.get("/cgi/run").1.split(' ').nth(1),
        Some("200"),
        "not named by a route"
    );
}
