//! Chat-like JSON of a given size whose words and numbers vary (so that compression sees
//! realistic text), the same bytes on every run: shared by the compression benchmarks
//! (`deflate_cost.rs`, `deflate_reactor.rs`).

/// `size` bytes of a JSON array of chat messages (cut at `size`, so not always valid JSON).
pub fn json(size: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let words = [
        "hello", "there", "how", "are", "you", "lunch", "at", "noon", "build", "ok",
    ];
    let mut out = String::from("[");
    let mut i = 0;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let text: Vec<&str> = (0..4 + x % 5)
            .map(|k| words[((x >> (k * 4)) % 10) as usize])
            .collect();
        out.push_str(&format!(
            "{{\"id\":{},\"user\":\"user{}\",\"ts\":{},\"text\":\"{}\"}},",
            x % 1_000_000,
            i % 8,
            1_795_392_000 + x % 100_000,
            text.join(" ")
        ));
        i += 1;
    }
    out.truncate(size);
    out.into_bytes()
}
