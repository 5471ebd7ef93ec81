//! The HTTP/1.1 upgrade (RFC 6455 section 4): the server's check of a request and its 101 or
//! 400 answer, the client's request and its check of the answer.
//!
//! # Ground rules
//! - Pure functions over a complete head (the bytes up to and including the blank line, as
//!   [`WsCodec`](super::WsCodec) delivers it, already capped in size). No I/O, no clock: the
//!   handshake timeout is the caller's deadline (see [`Deadlines`](super::Deadlines)).
//! - Parsing is httparse's, with at most [`MAX_HEADERS`] headers; more is a bad request.
//! - The server requires `GET`, HTTP/1.1, `Host`, `Upgrade: websocket`, `Connection` listing
//!   `upgrade`, `Sec-WebSocket-Version: 13` and a key that is 16 bytes in base64. Anything
//!   else gets a 400 (426 with the supported version for a wrong version), then the
//!   connection is closed. Extensions (permessage-deflate) are declined by not naming them.
//! - The application sees the path, `Origin` and the offered subprotocols through a hook
//!   ([`Decision`]) that accepts, refuses, or picks one subprotocol; [`only_path`] is the
//!   hook that serves one path.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};

use super::WsError;

/// The most headers a request or response may carry.
pub const MAX_HEADERS: usize = 32;

/// The GUID of RFC 6455 section 1.3, appended to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (base64 of SHA-1 of key + GUID).
///
/// ```
/// // The example of RFC 6455 section 1.3.
/// let accept = wheelbeat_net::ws::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(&accept, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    let digest = sha.finalize();
    let mut out = [0u8; 28];
    // 20 bytes encode to exactly 28 base64 characters.
    let n = BASE64
        .encode_slice(digest, &mut out)
        .expect("20 bytes encode to 28");
    debug_assert_eq!(n, 28);
    out
}

/// What the server's application hook saw of an upgrade request.
#[derive(Debug)]
pub struct Request<'a> {
    /// The request target, query included (e.g. `/chat?room=1`).
    pub target: &'a str,
    /// The `Origin` header, if any (browsers always send it).
    pub origin: Option<&'a str>,
    headers: &'a [httparse::Header<'a>],
}

impl<'a> Request<'a> {
    /// The path: the target without its query.
    pub fn path(&self) -> &'a str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &'a str> + '_ {
        header_tokens(self.headers, "sec-websocket-protocol")
    }

    /// The first header named `name` (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        header(self.headers, name)
    }
}

/// The application's answer to an upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Upgrade, answering with this subprotocol (it must be one the client offered; a
    /// subprotocol it did not offer is not sent).
    Accept {
        /// The subprotocol chosen, if any.
        protocol: Option<String>,
    },
    /// Refuse with this HTTP status (e.g. 403 for an unwelcome `Origin`, 404 for a path).
    Reject {
        /// The HTTP status code sent.
        status: u16,
    },
}

impl Decision {
    /// Accept without a subprotocol.
    pub const ACCEPT: Decision = Decision::Accept { protocol: None };
}

/// A hook serving only `path` (the target without its query): other paths get a 404.
///
/// ```
/// use wheelbeat_net::ws::{Decision, only_path};
/// let mut hook = only_path("/ws");
/// # let _ = &mut hook;
/// ```
pub fn only_path(path: &str) -> impl FnMut(&Request<'_>) -> Decision + '_ {
    move |r| {
        if r.path() == path {
            Decision::ACCEPT
        } else {
            Decision::Reject { status: 404 }
        }
    }
}

/// The outcome of [`server_handshake`]: the response to queue, and whether it was a 101.
#[derive(Debug)]
pub struct ServerReply {
    /// The response bytes, to send as they are.
    pub response: Vec<u8>,
    /// `Ok(())` for a 101 (the connection is now a WebSocket), `Err` for a refusal (send the
    /// response, then close).
    pub outcome: Result<(), WsError>,
}

/// Checks an upgrade request head and builds the response. See the module docs.
pub fn server_handshake(
    head: &[u8],
    hook: &mut dyn FnMut(&Request<'_>) -> Decision,
) -> ServerReply {
    match check_request(head, hook) {
        Ok(response) => ServerReply {
            response,
            outcome: Ok(()),
        },
        Err(e) => ServerReply {
            response: error_response(&e),
            outcome: Err(e),
        },
    }
}

/// The response sent for a refused request.
pub fn error_response(e: &WsError) -> Vec<u8> {
    let (status, extra) = match e {
        WsError::UnsupportedVersion => (426, "Sec-WebSocket-Version: 13\r\n"),
        // Only an error status: a hook's 101 or 200 must not read as a success.
        WsError::Rejected { status } if (400..600).contains(status) => (*status, ""),
        _ => (400, ""),
    };
    format!(
        "HTTP/1.1 {status} {}\r\n{extra}Connection: close\r\nContent-Length: 0\r\n\r\n",
        reason_phrase(status)
    )
    .into_bytes()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Refused",
    }
}

fn bad(why: &'static str) -> WsError {
    WsError::BadHandshake(why)
}

fn check_request(
    head: &[u8],
    hook: &mut dyn FnMut(&Request<'_>) -> Decision,
) -> Result<Vec<u8>, WsError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad("incomplete request")),
        Err(httparse::Error::TooManyHeaders) => return Err(bad("too many headers")),
        Err(_) => return Err(bad("malformed request")),
    }
    if req.method != Some("GET") {
        return Err(bad("method is not GET"));
    }
    if req.version != Some(1) {
        return Err(bad("not HTTP/1.1"));
    }
    let target = req.path.unwrap_or("");
    let headers = req.headers;
    if header(headers, "host").is_none() {
        return Err(bad("no Host"));
    }
    if !header_tokens(headers, "upgrade").any(|t| t.eq_ignore_ascii_case("websocket")) {
        return Err(bad("no Upgrade: websocket"));
    }
    if !header_tokens(headers, "connection").any(|t| t.eq_ignore_ascii_case("upgrade")) {
        return Err(bad("Connection does not list upgrade"));
    }
    if header(headers, "sec-websocket-version").map(str::trim) != Some("13") {
        return Err(WsError::UnsupportedVersion);
    }
    let key = header(headers, "sec-websocket-key")
        .map(str::trim)
        .ok_or(bad("no Sec-WebSocket-Key"))?;
    match BASE64.decode(key) {
        Ok(k) if k.len() == 16 => {}
        _ => return Err(bad("Sec-WebSocket-Key is not 16 bytes in base64")),
    }
    let request = Request {
        target,
        origin: header(headers, "origin"),
        headers,
    };
    let protocol = match hook(&request) {
        Decision::Accept { protocol } => protocol,
        Decision::Reject { status } => return Err(WsError::Rejected { status }),
    };
    let protocol = protocol.filter(|p| request.protocols().any(|o| o == p));
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    out.extend_from_slice(b"Sec-WebSocket-Accept: ");
    out.extend_from_slice(&accept_key(key.as_bytes()));
    out.extend_from_slice(b"\r\n");
    if let Some(p) = protocol {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

fn header<'a>(headers: &[httparse::Header<'a>], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
}

/// The comma-separated tokens of every header named `name`, trimmed, empty ones skipped.
fn header_tokens<'a, 'h>(
    headers: &'h [httparse::Header<'a>],
    name: &'h str,
) -> impl Iterator<Item = &'a str> + 'h {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// A client's upgrade request.
#[derive(Debug, Clone)]
pub struct ClientRequest<'a> {
    /// The `Host` header (e.g. `example.com:8080`).
    pub host: &'a str,
    /// The request target (e.g. `/chat`).
    pub target: &'a str,
    /// The `Origin` header, if any.
    pub origin: Option<&'a str>,
    /// Subprotocols to offer, in order of preference.
    pub protocols: &'a [&'a str],
}

/// A fresh random `Sec-WebSocket-Key` (16 bytes from the OS's generator).
pub fn random_key() -> Result<[u8; 16], crate::Error> {
    let mut key = [0u8; 16];
    getrandom::fill(&mut key).map_err(|e| crate::Error::Io(std::io::Error::other(e)))?;
    Ok(key)
}

/// Builds the client's upgrade request for `key` (see [`random_key`]).
pub fn client_request(req: &ClientRequest<'_>, key: &[u8; 16]) -> Vec<u8> {
    let mut out = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {}\r\n",
        req.target,
        req.host,
        BASE64.encode(key)
    );
    if let Some(origin) = req.origin {
        out.push_str(&format!("Origin: {origin}\r\n"));
    }
    if !req.protocols.is_empty() {
        out.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            req.protocols.join(", ")
        ));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Checks the server's answer to a request made with `key`; returns the subprotocol it chose.
/// The caller checks that subprotocol is one it offered.
pub fn check_response<'h>(head: &'h [u8], key: &[u8; 16]) -> Result<Option<&'h str>, WsError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(bad("malformed response")),
    }
    if resp.code != Some(101) {
        return Err(WsError::Rejected {
            status: resp.code.unwrap_or(0),
        });
    }
    let headers = resp.headers;
    if !header_tokens(headers, "upgrade").any(|t| t.eq_ignore_ascii_case("websocket")) {
        return Err(bad("no Upgrade: websocket"));
    }
    if !header_tokens(headers, "connection").any(|t| t.eq_ignore_ascii_case("upgrade")) {
        return Err(bad("Connection does not list upgrade"));
    }
    let expected = accept_key(BASE64.encode(key).as_bytes());
    if header(headers, "sec-websocket-accept").map(|a| a.trim().as_bytes()) != Some(&expected[..]) {
        return Err(bad("wrong Sec-WebSocket-Accept"));
    }
    if header(headers, "sec-websocket-extensions").is_some() {
        return Err(bad("an extension was not requested"));
    }
    Ok(header(headers, "sec-websocket-protocol").map(str::trim))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &[u8] = b"GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\n\
        Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";

    fn accept_all(_: &Request<'_>) -> Decision {
        Decision::ACCEPT
    }

    #[test]
    fn rfc_example_request_gets_the_rfc_accept_and_no_extension() {
        let mut seen = None;
        let reply = server_handshake(GOOD, &mut |r| {
            seen = Some((
                r.path().to_string(),
                r.origin.map(String::from),
                r.protocols().map(String::from).collect::<Vec<_>>(),
            ));
            Decision::Accept {
                protocol: Some("superchat".into()),
            }
        });
        assert!(reply.outcome.is_ok());
        let text = String::from_utf8(reply.response).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: superchat\r\n"));
        assert!(!text.to_ascii_lowercase().contains("extensions"));
        let (path, origin, protos) = seen.unwrap();
        assert_eq!(path, "/chat");
        assert_eq!(origin.as_deref(), Some("http://example.com"));
        assert_eq!(protos, ["chat", "superchat"]);
    }

    #[test]
    fn protocol_not_offered_is_not_sent() {
        let reply = server_handshake(GOOD, &mut |_| Decision::Accept {
            protocol: Some("mqtt".into()),
        });
        assert!(reply.outcome.is_ok());
        assert!(
            !String::from_utf8(reply.response)
                .unwrap()
                .contains("Sec-WebSocket-Protocol")
        );
    }

    #[test]
    fn each_missing_requirement_gets_a_400() {
        let text = std::str::from_utf8(GOOD).unwrap();
        let breakers: [(&str, &str); 7] = [
            ("GET /chat", "POST /chat"),
            ("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost"),
            ("Host: server.example.com\r\n", ""),
            ("Upgrade: websocket", "Upgrade: h2c"),
            ("keep-alive, Upgrade", "keep-alive"),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
            ("\r\n\r\n", "\r\nBad Header\r\n\r\n"),
        ];
        for (from, to) in breakers {
            let broken = text.replacen(from, to, 1);
            let reply = server_handshake(broken.as_bytes(), &mut accept_all);
            assert!(reply.outcome.is_err(), "{from} -> {to}");
            assert!(
                reply.response.starts_with(b"HTTP/1.1 400 "),
                "{from} -> {to}"
            );
        }
        let old = text.replacen("Version: 13", "Version: 8", 1);
        let reply = server_handshake(old.as_bytes(), &mut accept_all);
        assert!(reply.response.starts_with(b"HTTP/1.1 426 "));
        assert!(
            String::from_utf8(reply.response)
                .unwrap()
                .contains("Sec-WebSocket-Version: 13")
        );
    }

    #[test]
    fn hook_and_path_can_refuse() {
        let reply = server_handshake(GOOD, &mut |r| {
            if r.origin == Some("http://example.com") {
                Decision::Reject { status: 403 }
            } else {
                Decision::ACCEPT
            }
        });
        assert!(reply.response.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
        let reply = server_handshake(GOOD, &mut |_| Decision::Reject { status: 200 });
        assert!(
            reply.response.starts_with(b"HTTP/1.1 400 "),
            "a success status is not sent"
        );
        let reply = server_handshake(GOOD, &mut only_path("/other"));
        assert!(reply.response.starts_with(b"HTTP/1.1 404 "));
        assert!(
            server_handshake(GOOD, &mut only_path("/chat"))
                .outcome
                .is_ok()
        );
    }

    #[test]
    fn client_request_is_accepted_and_the_response_checks_out() {
        let key = [7u8; 16];
        let req = client_request(
            &ClientRequest {
                host: "h:1",
                target: "/x",
                origin: Some("http://o"),
                protocols: &["a", "b"],
            },
            &key,
        );
        let reply = server_handshake(&req, &mut |_| Decision::Accept {
            protocol: Some("b".into()),
        });
        assert!(reply.outcome.is_ok());
        assert_eq!(check_response(&reply.response, &key).unwrap(), Some("b"));
        assert!(
            check_response(&reply.response, &[8u8; 16]).is_err(),
            "another key"
        );
        let refused = error_response(&WsError::Rejected { status: 403 });
        assert_eq!(
            check_response(&refused, &key),
            Err(WsError::Rejected { status: 403 })
        );
    }
}
