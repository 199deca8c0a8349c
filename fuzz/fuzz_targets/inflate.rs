//! The inflate path on arbitrary client bytes: `ws::inflow::Inflow` (compressed messages out
//! of the frame stream, inflated with `--max-message` as the bound), fed in pieces. The first
//! byte picks the piece size, the limit, and whether large messages go on packed for a worker. No input makes it emit a message over the limit,
//! emit more than the input allows, or panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wscgi::ws::inflate::Inflater;
use wscgi::ws::inflow::Inflow;

fuzz_target!(|data: &[u8]| {
    let Some((&knob, input)) = data.split_first() else {
        return;
    };
    let piece = usize::from(knob & 0x0f) * 37 + 1;
    let limit = 1usize << (8 + (knob >> 4) % 10);
    let takeover = knob & 0x80 != 0;

    // Without takeover, a server may leave large messages packed for a worker (ws::offload).
    let mut inflow = match knob & 0x10 != 0 && !takeover {
        true => Inflow::offloading(limit, 64, 0),
        false => Inflow::new(limit, takeover),
    };
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    for chunk in input.chunks(piece) {
        inflow.feed(chunk);
        loop {
            let n = inflow.read(&mut buf);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }
    // Plain bytes pass one for one (packed ones too); each message is at most `limit` plus a
    // 14-byte header.
    let messages = inflow.inflated_bytes as usize;
    assert!(messages <= out.len());
    assert!(out.len() <= input.len() + messages + 14 * (input.len() / 6 + 1));

    // The inflater alone: the whole input as one compressed message.
    let mut inflater = Inflater::new(limit, takeover);
    if inflater.feed(input).is_ok()
        && let Ok((message, wire)) = inflater.finish()
    {
        assert!(message.len() <= limit, "{} > {limit}", message.len());
        assert_eq!(wire, input.len());
    }
});
