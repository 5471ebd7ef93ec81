//! Fuzzes `LineCodec::decode`: `RUSTC_BOOTSTRAP=1 cargo fuzz run line_decoder`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wheelbeat_net::LineCodec;

fuzz_target!(|data: &[u8]| {
    wheelbeat_net_fuzz::check(LineCodec::with_max_frame_len, data);
});
