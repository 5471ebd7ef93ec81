//! Fuzzes the TLS read path (a server `Connection` over `TlsStream` fed a peer's bytes):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run tls_read`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wheelbeat_net_fuzz::tls::check_tls(data);
});
