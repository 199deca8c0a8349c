//! `reply::Reply::from_parts` and `reply::apply_meta`. Input is CGI-like text:
//! a status line, header lines `Name: value` (split at the first ':'), a blank line, the body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wscgi::reply::{MAX_META_ENTRIES, MAX_META_NAME, MAX_META_VALUE, Reply, apply_meta};
use wscgi::ws::close;

fn check_meta(meta: &mut Vec<(String, String)>, changes: &[(String, String)]) {
    let refused = apply_meta(meta, changes);
    assert!(meta.len() <= MAX_META_ENTRIES, "{} entries", meta.len());
    for (i, (name, value)) in meta.iter().enumerate() {
        assert!(!value.is_empty(), "{name} kept with an empty value");
        assert!(meta[..i].iter().all(|(n, _)| n != name), "{name} twice");
    }
    // The last change to a name decides it (unless the map was full).
    for (name, value) in changes {
        let last = changes
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v);
        let now = meta.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        match last {
            Some(v) if v.is_empty() => assert_eq!(now, None, "{name} not deleted"),
            Some(v) => assert!(now == Some(v) || refused.is_some(), "{name}={value:?} lost"),
            None => unreachable!(),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let status_line = lines.next().unwrap_or_default();
    let status = std::str::from_utf8(status_line)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let status = status.unwrap_or(200u16);
    let mut headers = Vec::new();
    let mut head_len = status_line.len() + 1;
    for line in lines.by_ref() {
        head_len += line.len() + 1;
        if line.is_empty() {
            break;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        headers.push((String::from_utf8_lossy(name).into_owned(), value));
    }
    let body = data.get(head_len..).unwrap_or_default().to_vec();
    let r = Reply::from_parts(
        status,
        headers.iter().map(|(n, v)| (n.as_str(), *v)),
        body.into(),
    );

    assert_eq!(r.status, status);
    assert_eq!(&r.body[..], data.get(head_len..).unwrap_or_default());
    assert!(!r.binary || r.content_type.is_some());
    if let Some(c) = &r.close {
        assert!(
            close::valid_to_send(c.code) && c.reason.len() <= 123,
            "{c:?}"
        );
    }
    for (name, value) in &r.set_meta {
        assert!(!name.is_empty() && name.len() <= MAX_META_NAME, "{name:?}");
        assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "{name:?}");
        assert!(value.len() <= MAX_META_VALUE);
    }
    let lists = [&r.subscribe, &r.unsubscribe, &r.publish, &r.exclude];
    for item in lists.into_iter().flatten() {
        assert!(
            !item.is_empty() && item.trim() == item && !item.contains(','),
            "{item:?}"
        );
    }

    // Once on an empty map, once on a map one entry short of full.
    check_meta(&mut Vec::new(), &r.set_meta);
    let mut nearly_full: Vec<_> = (1..MAX_META_ENTRIES)
        .map(|i| (format!("pre{i}"), "v".into()))
        .collect();
    check_meta(&mut nearly_full, &r.set_meta);
});
