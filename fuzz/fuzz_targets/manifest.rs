//! Fuzz target `manifest`: feeds libFuzzer's bytes to `kafkasnap_fuzz::manifest` (see there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kafkasnap_fuzz::manifest(data);
});
