//! Fuzzes `LengthCodec::decode`: `RUSTC_BOOTSTRAP=1 cargo fuzz run length_decoder`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wheelbeat_net::LengthCodec;

fuzz_target!(|data: &[u8]| {
    wheelbeat_net_fuzz::check(LengthCodec::with_max_frame_len, data);
});
