//! Option parsing, table-driven: defaults, every option, environment fallbacks, errors.

use super::*;

/// The URL of the route for `/`.
fn root(c: &Config) -> String {
    match &c.routes[0].backend {
        crate::backend::spec::BackendSpec::Http(url) => url.clone(),
        other => format!("{other:?}"),
    }
}
use std::collections::HashMap;

const B: &str = "http://127.0.0.1:9000/ws";
type Change = fn(&mut Config);

fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Command, CliError> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: HashMap<&str, &str> = env.iter().copied().collect();
    parse(&args, &|k| env.get(k).map(|v| v.to_string()))
}

/// Supplies the required backend unless the case sets its own.
fn with_backend(args: &[&str], env: &[(&str, &str)]) -> Result<Command, CliError> {
    let own = |s: &str| s == "--backend" || s.starts_with("--backend=") || s == "WSCGI_BACKEND";
    let own = args.iter().any(|a| own(a)) || env.iter().any(|(k, _)| own(k));
    let extra: &[&str] = if own { &[] } else { &["--backend", B] };
    run(&[args, extra].concat(), env)
}

fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
    match with_backend(args, env) {
        Ok(Command::Run(c)) => c,
        other => panic!("{args:?} {env:?}: {other:?}"),
    }
}

fn error(args: &[&str], env: &[(&str, &str)]) -> String {
    match with_backend(args, env) {
        Err(e) => e.to_string(),
        Ok(c) => panic!("{args:?} {env:?} accepted: {c:?}"),
    }
}

#[test]
fn defaults() {
    let c = config(&[], &[]);
    let secs = Duration::from_secs;
    assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.push_listen, "127.0.0.1:8081".parse().unwrap());
    assert_eq!((root(&c).as_str(), c.workers, c.retries), (B, 8, 2));
    assert_eq!((c.max_pending, c.max_connections), (64, 10_000));
    assert_eq!((c.max_message, c.max_outbuf), (1 << 20, 1 << 20));
    assert_eq!(c.backend_timeout, secs(10));
    assert_eq!(c.handshake_timeout, secs(10));
    assert_eq!((c.ping_interval, &c.push_token), (Some(secs(30)), &None));
    assert_eq!(c.event_format, EventFormat::Headers);
    assert_eq!(c.log_level, LogLevel::Info);
    assert_eq!(c.resume_window, Some(secs(30)));
    assert_eq!((c.resume_buffer, c.resume_max_bytes), (256 << 10, 64 << 20));
    let headers = "cookie authorization origin user-agent accept-language \
        x-forwarded-for x-real-ip x-forwarded-proto";
    assert_eq!(c.pass_headers, headers.split(' ').collect::<Vec<_>>());
    let limits = [c.workers, c.max_pending, c.max_message, c.max_outbuf];
    assert!(limits.iter().all(|&n| n > 0 && n <= 1 << 30) && c.max_connections > 0);
    assert!(!c.backend_timeout.is_zero() && !c.handshake_timeout.is_zero());
    assert_eq!(format!("{c:?}"), format!("{:?}", Config::for_backend(B)));
}

#[test]
fn each_option_from_command_line_and_environment() {
    #[rustfmt::skip]
    let cases: [(&str, &str, Change); 24] = [
        ("listen", "0.0.0.0:9", |c| c.listen = ([0, 0, 0, 0], 9).into()),
        ("push-listen", "[::1]:7", |c| c.push_listen = "[::1]:7".parse().unwrap()),
        ("backend", "http://x:1/p?q", |c| *c = Config { routes: Config::for_backend("http://x:1/p?q").routes, ..c.clone() }),
        ("workers", "1024", |c| c.workers = 1024),
        ("backend-timeout", "500ms", |c| c.backend_timeout = Duration::from_millis(500)),
        ("retries", "0", |c| c.retries = 0),
        ("max-pending", "1", |c| c.max_pending = 1),
        ("max-message", "64K", |c| c.max_message = 65536),
        ("max-outbuf", "4096", |c| c.max_outbuf = 4096),
        ("max-connections", "5", |c| c.max_connections = 5),
        ("handshake-timeout", "2m", |c| c.handshake_timeout = Duration::from_secs(120)),
        ("ping-interval", "off", |c| c.ping_interval = None),
        ("pass-header", "X-A, b", |c| c.pass_headers = vec!["x-a".into(), "b".into()]),
        ("event-format", "Form", |c| c.event_format = EventFormat::Form),
        ("push-token", "s3cret", |c| c.push_token = Some("s3cret".into())),
        ("push-token", "", |c| c.push_token = None),
        ("log-level", "debug", |c| c.log_level = LogLevel::Debug),
        ("deflate-min", "128B", |c| c.deflate = Some(Deflate::default())),
        ("deflate-min", "1K", |c| c.deflate = Some(Deflate { min_size: 1024, ..Deflate::default() })),
        ("deflate-level", "9", |c| c.deflate = Some(Deflate { level: 9, ..Deflate::default() })),
        ("resume-window", "2m", |c| c.resume_window = Some(Duration::from_secs(120))),
        ("resume-window", "0", |c| c.resume_window = None),
        ("resume-buffer", "1K", |c| c.resume_buffer = 1024),
        ("resume-max-bytes", "1G", |c| c.resume_max_bytes = 1 << 30),
    ];
    for (name, value, change) in cases {
        let mut want = Config::for_backend(B);
        change(&mut want);
        let want = format!("{want:?}");
        let got = |args: &[&str], env: &[(&str, &str)]| format!("{:?}", config(args, env));
        let (flag, var) = (format!("--{name}"), env_name(name));
        assert_eq!(got(&[&flag, value], &[]), want, "{flag}");
        assert_eq!(got(&[&format!("{flag}={value}")], &[]), want, "{flag}=");
        assert_eq!(got(&[], &[(&var, value)]), want, "{var}");
    }
}

#[test]
fn command_line_beats_environment() {
    let env = [("WSCGI_WORKERS", "x"), ("WSCGI_RETRIES", "5")];
    let c = config(&["--workers", "3"], &env);
    assert_eq!((c.workers, c.retries), (3, 5));
    let c = config(&["--backend", B], &[("WSCGI_BACKEND", "x")]);
    assert_eq!(root(&c), B);
    let c = config(&["--pass-header", "a"], &[("WSCGI_PASS_HEADER", "b")]);
    assert_eq!(c.pass_headers, ["a"]);
}

#[test]
fn errors_name_their_origin() {
    #[rustfmt::skip]
    let cases = [
        ("WSCGI_WORKERS", "x", r#"invalid number "x""#),
        ("--workers", "x", r#"invalid number "x""#),
        ("--workers", "0", r#""0" out of range (1 to 1024)"#),
        ("WSCGI_MAX_OUTBUF", "1K", r#""1K" out of range (4KiB to 1GiB)"#),
        ("WSCGI_PASS_HEADER", "a b", r#"invalid header name "a b""#),
        ("--ping-interval", "1d", r#"invalid duration "1d" (e.g. 10, 500ms, 2m)"#),
        ("--log-level", "x", r#"invalid value "x" (expected error|warn|info|debug)"#),
        ("--listen", "x", r#"invalid address "x" (expected IP:PORT)"#),
    ];
    for (key, value, want) in cases {
        let got = match key.starts_with("--") {
            true => error(&[key, value], &[]),
            false => error(&[], &[(key, value)]),
        };
        assert_eq!(got, format!("{key}: {want}"));
    }
}

#[test]
fn bad_values_rejected() {
    let big = "99999999999999999999999";
    #[rustfmt::skip]
    let cases: &[(&str, &[&str])] = &[
        ("workers", &["0", "1025", "-1", "+1", "", " 1", "1.0", "x", big]),
        ("retries", &["11", "-0", "two"]),
        ("max-pending", &["0", "", big]),
        ("max-connections", &["0", "1e3", "1048577"]),
        ("max-message", &["0", "2G", "1.5M", "1MB", "-1K", "K", "18446744073709551615K"]),
        ("max-outbuf", &["4095", "1K", ""]),
        ("backend-timeout", &["0", "0s", "10x", "25h", "", "s", "-1s", "1.5s", "1 s"]),
        ("handshake-timeout", &["0ms", "86400001ms", "18446744073709551615h", big]),
        ("ping-interval", &["x", "25h", "-1", "on", ""]),
        ("listen", &["localhost:80", "127.0.0.1", ":80", "127.0.0.1:70000"]),
        ("push-listen", &["", "1.2.3.4:x"]),
        ("event-format", &["json", ""]),
        ("log-level", &["trace", "3"]),
        ("resume-window", &["x", "25h", "-1"]),
        ("resume-buffer", &["0", "2G", "1MB"]),
        ("resume-max-bytes", &["0", ""]),
        ("pass-header", &["bad header", "a,,b", "", "a:b", "é", "a,"]),
        ("backend", &["ftp://x", "http://", "http:///p", "x", "", "http://a b"]),
    ];
    for (name, values) in cases {
        for value in *values {
            let msg = error(&[&format!("--{name}"), value], &[]);
            assert!(msg.starts_with(&format!("--{name}: ")), "{value:?}: {msg}");
        }
    }
}

#[test]
fn size_and_duration_suffixes() {
    #[rustfmt::skip]
    let sizes = [("1", 1), ("1048576", 1 << 20), ("64K", 65536), ("64kib", 65536),
        ("2M", 2 << 20), ("1MiB", 1 << 20), ("1g", 1 << 30)];
    for (text, bytes) in sizes {
        assert_eq!(size(text, 1).unwrap(), bytes, "{text}");
    }
    #[rustfmt::skip]
    let durations = [("10", 10_000), ("10s", 10_000), ("500ms", 500), ("2m", 120_000),
        ("1h", HOUR_MS), ("24h", DAY_MS)];
    for (text, ms) in durations {
        assert_eq!(duration(text).unwrap(), Duration::from_millis(ms), "{text}");
    }
}

#[test]
fn ping_interval_off() {
    for v in ["0", "off", "OFF", "0ms", "0h"] {
        assert_eq!(ping_interval(v).unwrap(), None, "{v}");
    }
    let c = config(&["--ping-interval=45"], &[]);
    assert_eq!(c.ping_interval, Some(Duration::from_secs(45)));
}

#[test]
fn pass_header_replace_none_repeat() {
    #[rustfmt::skip]
    let cases: [(&[&str], &[&str]); 6] = [
        (&["--pass-header", " Cookie ,X-Token"], &["cookie", "x-token"]),
        (&["--pass-header", "none"], &[]),
        (&["--pass-header", "NONE", "--pass-header", "a"], &["a"]),
        (&["--pass-header=a,none"], &["a"]),
        (&["--pass-header", "a,b", "--pass-header", "B,c"], &["a", "b", "c"]),
        (&["--pass-header", "x!#$%&'*+-.^_`|~9"], &["x!#$%&'*+-.^_`|~9"]),
    ];
    for (args, want) in cases {
        assert_eq!(config(args, &[]).pass_headers, want, "{args:?}");
    }
    let c = config(&[], &[("WSCGI_PASS_HEADER", "none")]);
    assert!(c.pass_headers.is_empty());
}

#[test]
fn https_needs_tls_feature() {
    let got = run(&["--backend", "https://x/"], &[]);
    if cfg!(feature = "tls") {
        assert!(matches!(got, Ok(Command::Run(c)) if root(&c) == "https://x/"));
    } else {
        let want = r#"--backend: "https://x/" needs wscgi built with --features tls"#;
        assert_eq!(got.unwrap_err().to_string(), want);
    }
    let upper = run(&["--backend", "HTTP://X/"], &[]);
    assert!(matches!(upper, Ok(Command::Run(c)) if root(&c) == "HTTP://X/"));
}

#[test]
fn command_line_shape_errors() {
    let missing = "missing --backend BACKEND or --route PREFIX=BACKEND";
    assert_eq!(run(&[], &[]).unwrap_err().to_string(), missing);
    let no_backend = run(&["--workers", "2"], &[]);
    assert!(matches!(no_backend, Err(CliError::MissingBackend)));
    let twice = with_backend(&["--workers", "1", "--workers=2"], &[]);
    assert!(matches!(twice, Err(CliError::Duplicate(n)) if n == "workers"));
    let twice = error(&["--backend", B, "--backend", B], &[]);
    assert_eq!(twice, "--backend given more than once");
    assert_eq!(error(&["stray"], &[]), r#"unexpected argument "stray""#);
    let after_dashes = with_backend(&["--", "--x"], &[]);
    assert!(matches!(after_dashes, Err(CliError::UnexpectedArgument(a)) if a == "--x"));
    let unknown = with_backend(&["--nope"], &[]);
    assert!(matches!(unknown, Err(CliError::Options(m)) if m.contains("nope")));
    let no_value = run(&["--backend", B, "--workers"], &[]);
    assert!(matches!(no_value, Err(CliError::Options(m)) if m.contains("workers")));
}

#[test]
fn help_lists_every_option() {
    for flag in ["--help", "-h"] {
        let Ok(Command::Help(text)) = run(&[flag], &[("WSCGI_WORKERS", "x")]) else {
            panic!("{flag}")
        };
        let head = "wscgi - WebSockets for any HTTP backend, the CGI way\n\
            Usage: wscgi --backend BACKEND [OPTIONS]\n";
        assert!(text.starts_with(head));
        let mut names: Vec<&str> = SINGLE.split_whitespace().collect();
        names.extend(["pass-header", "help", "version"]);
        for name in names {
            assert!(text.contains(&format!("--{name} ")), "--{name} missing");
        }
        assert!(text.lines().all(|l| l.chars().count() <= 80));
    }
}

#[test]
fn version_and_log_levels() {
    let want = format!("wscgi {}", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        assert!(matches!(run(&[flag], &[]), Ok(Command::Version(v)) if v == want));
    }
    assert_eq!(LogLevel::Warn.to_level_filter(), log::LevelFilter::Warn);
    assert_eq!(LogLevel::Debug.to_level_filter(), log::LevelFilter::Debug);
    assert!(LogLevel::Error < LogLevel::Warn && LogLevel::Info < LogLevel::Debug);
}

#[test]
fn deflate_flags_from_command_line_and_environment() {
    let on = Some(Deflate::default());
    assert_eq!(config(&[], &[]).deflate, on, "on by default");
    assert_eq!(config(&["--no-deflate"], &[]).deflate, None);
    assert_eq!(config(&[], &[("WSCGI_NO_DEFLATE", "yes")]).deflate, None);
    assert_eq!(config(&[], &[("WSCGI_NO_DEFLATE", "0")]).deflate, on);
    let context = Some(Deflate {
        context_takeover: true,
        ..Deflate::default()
    });
    assert_eq!(config(&["--deflate-context"], &[]).deflate, context);
    assert_eq!(
        config(&[], &[("WSCGI_DEFLATE_CONTEXT", "1")]).deflate,
        context
    );
    assert_eq!(
        error(&[], &[("WSCGI_NO_DEFLATE", "maybe")]),
        "WSCGI_NO_DEFLATE: invalid value \"maybe\" (expected 1, true, yes, on, 0, false, no or off)"
    );
    for level in ["0", "10", "x"] {
        assert!(error(&["--deflate-level", level], &[]).starts_with("--deflate-level: "));
    }
    assert!(error(&["--deflate-min", "12X"], &[]).starts_with("--deflate-min: "));
}

#[test]
fn redis_options() {
    let redis = |args: &[&str], env: &[(&str, &str)]| config(args, env).redis;
    assert_eq!(redis(&[], &[]), None, "alone unless --redis is given");
    assert_eq!(
        redis(&["--redis-prefix", "x:"], &[]),
        None,
        "a prefix alone joins nothing"
    );
    for bad in ["http://x", "redis://", "localhost:6379"] {
        assert!(
            error(&["--redis", bad], &[]).contains("--redis: invalid value"),
            "{bad}"
        );
    }
    // A mistyped URL is echoed without its password.
    for bad in [
        "rediss://u:s3cret@host:6379/0",
        "u:s3cret@host:6379",
        "http://:s3cret@h/x@y",
    ] {
        let e = error(&["--redis", bad], &[]);
        assert!(
            e.contains("--redis: invalid value") && e.contains("***@"),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
    }
    assert!(error(&["--redis", "localhost:6379/a@b"], &[]).contains("localhost:6379/a@b"));
    assert!(error(&["--redis-prefix", "a b"], &[]).contains("printable ASCII"));
    assert!(error(&["--redis-node-ttl", "100ms"], &[]).contains("out of range"));
    let url = "redis://u:p@127.0.0.1:6379/2";
    if cfg!(feature = "redis") {
        let want = Redis {
            url: url.into(),
            prefix: "wscgi:".into(),
            node_ttl: Duration::from_secs(15),
        };
        assert_eq!(redis(&["--redis", url], &[]), Some(want.clone()));
        let from_env = [
            ("WSCGI_REDIS", "redis+unix:///run/redis.sock"),
            ("WSCGI_REDIS_PREFIX", "app1:"),
        ];
        let got = redis(&["--redis-node-ttl", "2s"], &from_env).expect("joined");
        assert_eq!(
            (got.url.as_str(), got.prefix.as_str()),
            ("redis+unix:///run/redis.sock", "app1:")
        );
        assert_eq!(got.node_ttl, Duration::from_secs(2));
    } else {
        let e = error(&["--redis", url], &[]);
        assert!(e.contains("built with --features redis"), "{e}");
        assert!(
            e.contains("redis://***@127.0.0.1:6379/2") && !e.contains("u:p"),
            "{e}"
        );
    }
}
