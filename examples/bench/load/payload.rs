//! Message payloads: a readable prefix (how the scenarios recognise their messages), padded to
//! the requested size with `x`, or with `--json` with chat-like JSON whose words and numbers
//! vary (so that compression sees what a chat or an API would send, not a run of one byte).

/// `prefix` padded to `size` bytes (cut there, on a char boundary: the padding is ASCII).
pub fn fill(prefix: &str, size: usize, json: bool) -> String {
    let mut s = String::with_capacity(size + 128);
    s.push_str(prefix);
    if json {
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ prefix.len() as u64 ^ hash(prefix);
        s.push('[');
        let mut n = 0;
        while s.len() < size {
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let user = USERS[(next() % USERS.len() as u64) as usize];
            let words: Vec<&str> = (0..3 + next() % 6)
                .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
                .collect();
            let ts = 1_795_392_000 + next() % 100_000;
            s.push_str(&format!(
                "{}{{\"id\":{},\"room\":\"lobby\",\"user\":\"{user}\",\"ts\":{ts},\"text\":\"{}\"}}",
                if n > 0 { "," } else { "" },
                next() % 1_000_000,
                words.join(" ")
            ));
            n += 1;
        }
    }
    while s.len() < size {
        s.push('x');
    }
    s.truncate(size.max(prefix.len()));
    s
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

const USERS: [&str; 8] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];
const WORDS: [&str; 24] = [
    "hello", "there", "how", "are", "you", "today", "fine", "thanks", "see", "the", "new", "build",
    "is", "out", "lunch", "at", "noon", "meeting", "moved", "to", "friday", "ok", "great", "news",
];
