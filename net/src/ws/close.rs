//! Close status codes (RFC 6455 section 7.4) and the close frame's body.
//!
//! # Ground rules
//! - A close body is empty, or a 2-byte big-endian code followed by a UTF-8 reason; a 1-byte
//!   body is a protocol error.
//! - Only codes a peer may put on the wire are accepted: 1000-1003, 1007-1014 (the IANA
//!   registry), and 3000-4999 (libraries and applications). 1004, 1005, 1006 and 1015 are
//!   reserved for local use ("no code", "abnormal", "TLS failure") and never sent.
//! - The reason is validated here, so a close with invalid UTF-8 fails with 1007.

use super::WsError;

/// 1000: the purpose of the connection was fulfilled.
pub const NORMAL: u16 = 1000;
/// 1001: the endpoint is going away (server shutdown, page navigated away).
pub const GOING_AWAY: u16 = 1001;
/// 1002: the peer broke the protocol.
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1003: a data type the endpoint does not accept.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// 1007: a text message (or close reason) that is not UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// 1008: the message violates the endpoint's policy.
pub const POLICY_VIOLATION: u16 = 1008;
/// 1009: a frame or message over the endpoint's size cap.
pub const TOO_BIG: u16 = 1009;
/// 1011: the server met an unexpected condition.
pub const INTERNAL_ERROR: u16 = 1011;

/// True if `code` may appear in a close frame on the wire (see the module docs).
pub fn is_valid_wire_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A parsed close frame body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseBody<'a> {
    /// The status code; `None` for an empty body.
    pub code: Option<u16>,
    /// The reason, possibly empty.
    pub reason: &'a str,
}

/// Parses and validates a close frame's (unmasked) payload.
///
/// ```
/// use wheelbeat_net::ws::close::{parse_close, CloseBody};
/// assert_eq!(parse_close(b"\x03\xe8bye").unwrap(), CloseBody { code: Some(1000), reason: "bye" });
/// assert!(parse_close(b"\x03").is_err()); // 1 byte: no room for a code
/// assert!(parse_close(b"\x03\xed").is_err()); // 1005 is never sent
/// ```
pub fn parse_close(payload: &[u8]) -> Result<CloseBody<'_>, WsError> {
    match payload {
        [] => Ok(CloseBody {
            code: None,
            reason: "",
        }),
        [_] => Err(WsError::Protocol("close frame body of 1 byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_wire_code(code) {
                return Err(WsError::InvalidCloseCode(code));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
            Ok(CloseBody {
                code: Some(code),
                reason,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_classified_as_the_rfc_and_iana_registry_say() {
        let valid: Vec<u16> = (0..=u16::MAX).filter(|&c| is_valid_wire_code(c)).collect();
        assert_eq!(valid.len(), 4 + 8 + 2000);
        for c in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_wire_code(c), "{c}");
        }
        for c in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            assert!(is_valid_wire_code(c), "{c}");
        }
    }

    #[test]
    fn close_reason_must_be_utf8() {
        assert_eq!(parse_close(b"\x03\xe8\xff"), Err(WsError::InvalidUtf8));
        assert_eq!(parse_close(b"\x03\xe8").unwrap().reason, "");
        assert_eq!(
            parse_close(b"\x0b\xb8caf\xc3\xa9").unwrap(),
            CloseBody {
                code: Some(3000),
                reason: "café"
            }
        );
    }
}
