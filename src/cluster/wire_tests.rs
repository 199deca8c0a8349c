use super::*;

fn publish(audience: Audience, data: &[u8], binary: bool, exclude: &[&str]) -> Message {
    Message::Publish(Publish {
        audience,
        data: Bytes::copy_from_slice(data),
        binary,
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        from: None,
    })
}

fn room() -> Audience {
    Audience::Channels(vec!["room".into()])
}

#[test]
fn what_a_backend_publishes() {
    let cases = [
        (
            r#"{"v":1,"channel":"room","data":"hi"}"#,
            publish(room(), b"hi", false, &[]),
        ),
        (
            r#"{"v":1,"channel":"room","base64":"AAH/"}"#,
            publish(room(), &[0, 1, 255], true, &[]),
        ),
        (
            r#"{"channel":"room","data":"x","exclude":["a","b"],"v":1,"later":{"x":1}}"#,
            publish(room(), b"x", false, &["a", "b"]),
        ),
        (
            r#"{"v":1,"path":"/chat","data":"all"}"#,
            publish(Audience::Path("/chat".into()), b"all", false, &[]),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(decode(text.as_bytes()), Ok(want), "{text}");
    }
}

#[test]
fn everything_round_trips() {
    let mut from_instance = publish(Audience::Path("/".into()), &[0, 159], true, &["i\"d"]);
    if let Message::Publish(p) = &mut from_instance {
        p.from = Some("tag".into());
    }
    let request = |request| Message::Request {
        call: 7,
        from: "abcdefgh".into(),
        deadline: Some(1_796_000_000_000),
        request,
    };
    let reply = |reply| Message::Reply {
        call: u64::from(u32::MAX),
        from: "x".into(),
        reply,
    };
    let (id, channel) = (String::from("id1"), String::from("room"));
    let messages = [
        from_instance,
        publish(room(), "é\n".as_bytes(), false, &[]),
        publish(
            Audience::Channels(vec!["a".into(), "b".into()]),
            b"x",
            false,
            &[],
        ),
        request(Request::Op(Op::Send {
            id: id.clone(),
            data: Bytes::from_static(b"hi"),
            binary: false,
        })),
        request(Request::Op(Op::Send {
            id: id.clone(),
            data: Bytes::from_static(b""),
            binary: true,
        })),
        request(Request::Op(Op::Close {
            id: id.clone(),
            code: 4000,
            reason: "bye".into(),
        })),
        request(Request::Op(Op::Subscribe {
            id: id.clone(),
            channel: channel.clone(),
        })),
        request(Request::Op(Op::Unsubscribe {
            id: id.clone(),
            channel: channel.clone(),
        })),
        request(Request::Info { id }),
        request(Request::Members {
            channel: channel.clone(),
        }),
        request(Request::Channels),
        request(Request::Connections { channel: None }),
        request(Request::Connections {
            channel: Some(channel),
        }),
        reply(Reply::Response {
            status: 404,
            body: r#"{"error":"not found: \"x\""}"#.into(),
        }),
        reply(Reply::Ids(vec!["a".into(), "b".into()])),
        reply(Reply::Ids(vec![])),
        reply(Reply::Channels(vec![("r,1".into(), 3), ("q".into(), 0)])),
    ];
    for message in messages {
        let text = encode(&message);
        assert_eq!(decode(text.as_bytes()), Ok(message), "{text}");
    }
}

/// One refused message per line: `message => error`.
const ERRORS: &str = r#"
[]                                                 => message is not a JSON object
{"channel":"r","data":"x"}                         => "v" must be 1
{"v":2,"channel":"r","data":"x"}                   => "v" must be 1
{"v":"1","channel":"r","data":"x"}                 => "v" must be 1
{"v":1,"data":"x"}                                 => missing "channel" (or "path")
{"v":1,"channel":"r","path":"/","data":"x"}        => give one of "channel", "channels" and "path"
{"v":1,"channel":"r","channels":["s"],"data":"x"}  => give one of "channel", "channels" and "path"
{"v":1,"channels":[],"data":"x"}                   => "channels" must be a non-empty array of strings
{"v":1,"channel":3,"data":"x"}                     => "channel" and "path" must be strings
{"v":1,"channel":"r"}                              => missing "data" or "base64"
{"v":1,"channel":"r","base64":"%%"}                => invalid base64
{"v":1,"channel":"r","data":"x","exclude":"a"}     => "exclude" must be an array of strings
{"v":1,"channel":"r","data":"x","from":1}          => "from" must be a string
{"v":1,"call":-1,"from":"t","op":"channels"}       => "call" must be a number
{"v":1,"call":1,"op":"channels"}                   => missing "from"
{"v":1,"call":1,"from":"t"}                        => missing "op"
{"v":1,"call":1,"from":"t","op":"publish"}         => publish is not a request
{"v":1,"call":1,"from":"t","op":"nope"}            => unknown op "nope"
{"v":1,"call":1,"from":"t","op":"send","id":"i"}   => missing "data" or "base64"
{"v":1,"call":1,"from":"t","op":"members"}         => missing "channel"
{"v":1,"call":1,"from":"t","deadline":"1","op":"channels"} => "deadline" must be a number
{"v":1,"re":1.5,"from":"t","ids":[]}               => "re" must be a number
{"v":1,"re":1,"from":"t"}                          => missing "status", "ids" or "channels"
{"v":1,"re":1,"from":"t","status":99,"body":""}    => "status" must be an HTTP status
{"v":1,"re":1,"from":"t","status":200}             => missing "body"
{"v":1,"re":1,"from":"t","ids":[1]}                => "ids" must be strings
{"v":1,"re":1,"from":"t","channels":[["a"]]}       => "channels" must be [name, count] pairs
{"v":1,"re":1,"from":"t","channels":[["a",-1]]}    => "channels" must be [name, count] pairs
"#;

#[test]
fn refused() {
    for line in ERRORS.lines().filter(|l| !l.trim().is_empty()) {
        let (text, want) = line.split_once("=>").expect("message => error");
        let got = decode(text.trim().as_bytes()).map_err(|e| e.to_string());
        assert_eq!(got, Err(want.trim().to_string()), "{line}");
    }
    assert!(matches!(decode(b"{"), Err(WireError::Json(_))));
}

/// A request from an instance that sends no deadline (or one without the field yet) is read
/// as having none; a deadline travels as milliseconds since the epoch.
#[test]
fn a_request_deadline_is_optional() {
    let old = r#"{"v":1,"call":2,"from":"t","op":"channels"}"#;
    let new = r#"{"v":1,"call":2,"from":"t","deadline":1796000000000,"op":"channels"}"#;
    for (text, deadline) in [(old, None), (new, Some(1_796_000_000_000))] {
        let want = Message::Request {
            call: 2,
            from: "t".into(),
            deadline,
            request: Request::Channels,
        };
        assert_eq!(decode(text.as_bytes()), Ok(want), "{text}");
    }
}
