//! `api::request::parse` on a keep-alive buffer (pipelined requests), then `api::routes::route`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wscgi::api::request::{MAX_HEAD, parse};
use wscgi::api::routes::{ApiError, Command, route};
use wscgi::ws::close;

const MAX_BODY: usize = 65536;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        let (req, n) = match parse(rest, MAX_BODY) {
            Ok(Some(found)) => found,
            // Incomplete: either the head is still within bounds or the body is still coming.
            Ok(None) => break,
            Err(e) => {
                assert!([400, 411, 413, 414, 431].contains(&e.status()), "{e:?}");
                break;
            }
        };
        assert!(n > 0 && n <= rest.len(), "n = {n}, len = {}", rest.len());
        assert!(req.body.len() <= MAX_BODY);
        assert!(n - req.body.len() <= MAX_HEAD, "head longer than MAX_HEAD");
        assert_eq!(
            &rest[n - req.body.len()..n],
            &req.body[..],
            "body is the tail of the request"
        );
        assert!(req.path.starts_with('/'), "path {:?}", req.path);
        // A request's own bytes parse to the same request.
        let (again, m) = parse(&rest[..n], MAX_BODY).unwrap().unwrap();
        assert_eq!((m, &again.path, &again.body), (n, &req.path, &req.body));

        let open = route(&req, None);
        // With a token configured the answer is either 401 or exactly the open answer.
        let guarded = route(&req, Some("token"));
        assert!(
            guarded == Err(ApiError::Unauthorized) || guarded == open,
            "{guarded:?} vs {open:?}"
        );
        if req.header("authorization").is_none() {
            assert_eq!(guarded, Err(ApiError::Unauthorized));
        }
        match open {
            Ok(Command::Close { code, reason, .. }) => {
                assert!(
                    close::valid_to_send(code) && reason.len() <= 123,
                    "{code} {reason:?}"
                );
            }
            Ok(Command::Send {
                data,
                binary: false,
                ..
            })
            | Ok(Command::Publish {
                data,
                binary: false,
                ..
            })
            | Ok(Command::Broadcast {
                data,
                binary: false,
                ..
            }) => {
                assert!(std::str::from_utf8(&data).is_ok(), "text message not UTF-8");
            }
            Ok(_) => {}
            Err(e) => assert!([400, 401, 404, 405].contains(&e.status()), "{e:?}"),
        }
        rest = &rest[n..];
    }
});
