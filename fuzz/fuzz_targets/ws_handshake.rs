//! Fuzzes the WebSocket upgrade parsers (server request, client response) and the codec's
//! head cutter: `RUSTC_BOOTSTRAP=1 cargo fuzz run ws_handshake`.
//! See `wheelbeat_net_fuzz::check_ws_handshake` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wheelbeat_net_fuzz::check_ws_handshake(data);
});
