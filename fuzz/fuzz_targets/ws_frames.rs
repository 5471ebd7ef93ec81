//! Fuzzes the WebSocket frame decoder and session: `RUSTC_BOOTSTRAP=1 cargo fuzz run ws_frames`.
//! See `wheelbeat_net_fuzz::check_ws_frames` for the input layout and what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wheelbeat_net_fuzz::check_ws_frames(data);
});
