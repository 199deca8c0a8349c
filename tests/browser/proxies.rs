//! php-fpm, nginx and Caddy for tests/browser.rs, the proxies running the very files in
//! examples/deploy/ with ports, paths and certificates replaced. Each replaced string must occur
//! exactly once, so the examples and these tests cannot drift apart.

use std::path::Path;
use std::process::Command;

use crate::harness::*;

/// php-fpm with one static pool on 127.0.0.1:`port` and `children` children. None (after a
/// loud note) when it is not installed.
pub fn php_fpm(dir: &TempDir, children: usize) -> Option<(Group, u16)> {
    let bin = require("php-fpm*", "this php-fpm test")?;
    let port = free_port();
    let d = dir.0.display();
    let conf = dir.write(
        "fpm.conf",
        &format!(
            "[global]\npid = {d}/fpm.pid\nerror_log = {d}/fpm.log\ndaemonize = no\n\
             [www]\nlisten = 127.0.0.1:{port}\npm = static\npm.max_children = {children}\n"
        ),
    );
    // -F foreground, -R allowed to run as root. The master setsid()s: its pid is the group.
    let mut cmd = Command::new(bin);
    cmd.args(["-F", "-R", "-y"]).arg(conf);
    let mut group = Group::spawn(cmd, "php-fpm", &dir.path("fpm.out"));
    group.wait_ready("php-fpm", &dir.path("fpm.log"), || listening(port));
    Some((group, port))
}

/// The file `name` of examples/deploy/ with each `(from, to)` replaced; every `from` must occur
/// exactly once.
fn deploy_file(name: &str, swaps: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(format!("{DEPLOY}/{name}")).expect("examples/deploy");
    for (from, to) in swaps {
        let n = text.matches(from).count();
        assert_eq!(
            n, 1,
            "examples/deploy/{name}: {from:?} occurs {n} times, not once"
        );
        text = text.replace(from, to);
    }
    text
}

/// nginx on https://localhost:`port` with examples/deploy/nginx.conf (a fresh self-signed
/// certificate; wscgi on `ws_port`; php-fpm on `fpm_port`), in the foreground.
pub fn nginx(dir: &TempDir, port: u16, ws_port: u16, fpm_port: u16) -> Group {
    let (cert, key) = crate::support::tls_client::make_cert(&dir.0, "nginx", true);
    let le = "/etc/letsencrypt/live/chat.example.com";
    let site = deploy_file(
        "nginx.conf",
        &[
            ("listen 443 ssl;", format!("listen 127.0.0.1:{port} ssl;")),
            (
                "server_name chat.example.com;",
                "server_name localhost;".into(),
            ),
            (&format!("{le}/fullchain.pem"), cert.display().to_string()),
            (&format!("{le}/privkey.pem"), key.display().to_string()),
            ("root /var/www/chat;", format!("root {PUBLIC};")),
            (
                "http://127.0.0.1:8080;",
                format!("http://127.0.0.1:{ws_port};"),
            ),
            (
                "include fastcgi_params;",
                "include /etc/nginx/fastcgi_params;".into(),
            ),
            (
                "unix:/run/php/php8.2-fpm.sock;",
                format!("127.0.0.1:{fpm_port};"),
            ),
        ],
    );
    let d = dir.0.display();
    dir.write("site.conf", &site);
    let user = crate::support::procs::nginx_user();
    let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("    {t}_temp_path {d}/{t};\n"))
        .collect();
    let conf = dir.write(
        "nginx.conf",
        &format!(
            "{user}\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nworker_processes 1;\n\
             events {{ worker_connections 256; }}\nhttp {{\n    access_log {d}/access.log;\n\
             {temp}    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n\
             include {d}/site.conf;\n}}\n"
        ),
    );
    crate::support::procs::nginx(dir, &conf, port)
}

/// Caddy on https://localhost:`port` with examples/deploy/Caddyfile: its own local CA instead
/// of a public certificate (`tls internal`, kept in `dir`), loopback only, no port-80 redirect,
/// no admin endpoint; wscgi on `ws_port`. No PHP page is requested, so php_fastcgi points
/// nowhere.
pub fn caddy(dir: &TempDir, bin: &Path, port: u16, ws_port: u16) -> Group {
    let global = "{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n}\n\n";
    let site = deploy_file(
        "Caddyfile",
        &[
            (
                "\nchat.example.com {\n",
                format!(
                    "\n{global}https://localhost:{port} {{\n\tbind 127.0.0.1\n\ttls internal\n"
                ),
            ),
            ("root * /var/www/chat", format!("root * {PUBLIC}")),
            ("127.0.0.1:8080", format!("127.0.0.1:{ws_port}")),
            ("unix//run/php/php8.2-fpm.sock", "127.0.0.1:9".into()),
        ],
    );
    let conf = dir.write("Caddyfile", &site);
    let mut cmd = Command::new(bin);
    cmd.args(["run", "--adapter", "caddyfile", "--config"])
        .arg(conf);
    cmd.env("HOME", &dir.0)
        .env("XDG_DATA_HOME", &dir.0)
        .env("XDG_CONFIG_HOME", &dir.0);
    let log = dir.path("caddy.log");
    let mut group = Group::spawn(cmd, "caddy", &log);
    group.wait_ready("caddy", &log, || listening(port));
    group
}
