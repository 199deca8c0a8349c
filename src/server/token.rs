//! mio tokens: three fixed ones, then client and push-API connections interleaved, so both
//! slabs can grow without a fixed split of the token space (a Pi may have a 32-bit usize).

use mio::Token;

pub const LISTENER: Token = Token(0);
pub const PUSH_LISTENER: Token = Token(1);
pub const WAKER: Token = Token(2);
const FIRST: usize = 3;

/// What a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Listener,
    PushListener,
    Waker,
    Client(usize),
    Api(usize),
}

pub fn client(index: usize) -> Token {
    Token(FIRST + index * 2)
}

pub fn api(index: usize) -> Token {
    Token(FIRST + index * 2 + 1)
}

pub fn target(token: Token) -> Target {
    match token {
        LISTENER => Target::Listener,
        PUSH_LISTENER => Target::PushListener,
        WAKER => Target::Waker,
        Token(n) if (n - FIRST).is_multiple_of(2) => Target::Client((n - FIRST) / 2),
        Token(n) => Target::Api((n - FIRST) / 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for i in [0, 1, 7, 10_000] {
            assert_eq!(target(client(i)), Target::Client(i));
            assert_eq!(target(api(i)), Target::Api(i));
        }
        assert_eq!(target(WAKER), Target::Waker);
    }
}
