//! JSON string literals: the text between the quotes, escapes decoded (`\n`, `\u00e9`, and
//! surrogate pairs for characters beyond the BMP), control characters and lone surrogates
//! refused.

use super::{EOF, JsonError, Parser, error};

impl Parser<'_> {
    pub(super) fn string(&mut self) -> Result<String, JsonError> {
        let open = self.pos;
        self.pos += 1; // '"'
        let mut out = String::new();
        // Unescaped text is copied a run at a time; runs end at ASCII bytes, which are always
        // char boundaries, so slicing them out of the validated text cannot fail.
        let mut run = self.pos;
        loop {
            match self.peek() {
                None => return Err(error(open, "unterminated string")),
                Some(b @ (b'"' | b'\\')) => {
                    out.push_str(self.text.get(run..self.pos).unwrap_or_default());
                    if b == b'"' {
                        self.pos += 1;
                        return Ok(out);
                    }
                    out.push(self.escape()?);
                    run = self.pos;
                }
                Some(0..0x20) => return Err(self.err("control character in string")),
                Some(_) => self.pos += 1,
            }
        }
    }

    /// Decodes the escape at `pos` (which is at the backslash).
    fn escape(&mut self) -> Result<char, JsonError> {
        let at = self.pos;
        self.pos += 1;
        match self.peek() {
            Some(b'u') => self.unicode_escape(at),
            Some(b) => {
                let c = short_escape(b).ok_or(error(at, "invalid escape"))?;
                self.pos += 1;
                Ok(c)
            }
            None => Err(self.err(EOF)),
        }
    }

    /// A `\u` escape (four hex digits), or two of them forming a surrogate pair; `pos` is at the `u`.
    fn unicode_escape(&mut self, at: usize) -> Result<char, JsonError> {
        let lone = error(at, "lone surrogate");
        self.pos += 1;
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if !self.rest().starts_with(b"\\u") {
                return Err(lone);
            }
            self.pos += 2;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(lone);
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        // Only a low surrogate on its own can fail here.
        char::from_u32(code).ok_or(lone)
    }

    /// Four hex digits. Not `u32::from_str_radix`, which would also take a leading `+`.
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self.peek().and_then(|b| char::from(b).to_digit(16));
            code = code * 16 + digit.ok_or_else(|| self.unexpected("invalid \\u escape"))?;
            self.pos += 1;
        }
        Ok(code)
    }
}

/// The character a one-letter escape such as `\n` stands for.
fn short_escape(letter: u8) -> Option<char> {
    // Same order in both: the escape letters and what they stand for.
    let i = b"\"\\/bfnrt".iter().position(|&b| b == letter)?;
    "\"\\/\u{8}\u{c}\n\r\t".chars().nth(i)
}
