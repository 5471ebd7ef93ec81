//! Incremental UTF-8 validation of a text message that arrives in pieces.
//!
//! # Ground rules
//! - Fail fast: a byte that can begin no valid continuation is an error when its piece
//!   arrives, not when the message ends (Autobahn cases 6.x check this). std's validator
//!   already reports an invalid sequence (`error_len() == Some(_)`) apart from one that is
//!   merely cut short at the end of the input (`None`), checking the second byte's range
//!   for overlongs, surrogates and code points past U+10FFFF.
//! - State between pieces: at most 3 bytes of an unfinished sequence; no heap.

/// Validates UTF-8 fed in pieces; see the module docs.
///
/// ```
/// use wheelbeat_net::ws::utf8::Utf8Validator;
/// let mut v = Utf8Validator::new();
/// v.feed(b"caf\xc3").unwrap(); // 'é' cut in two
/// v.feed(b"\xa9").unwrap();
/// assert!(v.is_complete());
/// assert!(v.feed(b"\xed\xa0").is_err()); // a surrogate: wrong at its second byte
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    carry: [u8; 3],
    carry_len: u8,
}

/// The input is not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// The length of the sequence a valid lead byte starts.
fn width(lead: u8) -> usize {
    match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4, // 0xf0..=0xf4: the only other leads std leaves unfinished
    }
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Utf8Validator::default()
    }

    /// True if the bytes so far end on a character boundary (the message may end here).
    pub fn is_complete(&self) -> bool {
        self.carry_len == 0
    }

    /// Validates the next piece; an error means the whole message is invalid.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), InvalidUtf8> {
        if self.carry_len > 0 {
            let have = usize::from(self.carry_len);
            let mut seq = [0u8; 4];
            seq[..have].copy_from_slice(&self.carry[..have]);
            let want = width(seq[0]);
            let take = (want - have).min(bytes.len());
            seq[have..have + take].copy_from_slice(&bytes[..take]);
            let got = have + take;
            match std::str::from_utf8(&seq[..got]) {
                Ok(_) => self.carry_len = 0,
                Err(e) if e.error_len().is_none() => {
                    // Still unfinished (the piece was too short to complete it).
                    self.carry[..got].copy_from_slice(&seq[..got]);
                    self.carry_len = got as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
            bytes = &bytes[take..];
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let rest = &bytes[e.valid_up_to()..];
                self.carry[..rest.len()].copy_from_slice(rest);
                self.carry_len = rest.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` split at every pair of points; the verdict must match std's on the whole.
    fn check_all_splits(bytes: &[u8]) {
        let whole = std::str::from_utf8(bytes).is_ok();
        for a in 0..=bytes.len() {
            for b in a..=bytes.len() {
                let mut v = Utf8Validator::new();
                let ok = v.feed(&bytes[..a]).is_ok()
                    && v.feed(&bytes[a..b]).is_ok()
                    && v.feed(&bytes[b..]).is_ok()
                    && v.is_complete();
                assert_eq!(ok, whole, "{bytes:x?} split at {a},{b}");
            }
        }
    }

    #[test]
    fn agrees_with_std_at_every_split() {
        let cases: [&[u8]; 12] = [
            "κόσμε".as_bytes(),
            "\u{10ffff}a\u{80}\u{800}".as_bytes(),
            b"\xf4\x90\x80\x80",     // past U+10FFFF
            b"\xed\xa0\x80",         // surrogate
            b"\xc0\xaf",             // overlong
            b"\xe0\x80\xaf",         // overlong
            b"\xf0\x9f\x98",         // cut short at the end
            b"\xce\xba\xe1\xbd",     // cut short
            b"\x80",                 // lone continuation
            b"a\xffb",               // never valid
            b"\xf0\x9f\x98\x80\x80", // extra continuation
            b"",
        ];
        for c in cases {
            check_all_splits(c);
        }
    }

    #[test]
    fn invalid_sequence_fails_at_the_first_wrong_byte_not_at_the_end() {
        // Autobahn 6.4.1: the bad code point arrives in the middle piece; the error must come
        // with that piece.
        let mut v = Utf8Validator::new();
        v.feed("κόσμε".as_bytes()).unwrap();
        assert_eq!(v.feed(b"\xf4\x90\x80\x80"), Err(InvalidUtf8));
        // Byte at a time: F4 is a fine lead, F4 90 is already past U+10FFFF.
        let mut v = Utf8Validator::new();
        v.feed(b"\xf4").unwrap();
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
    }
}
