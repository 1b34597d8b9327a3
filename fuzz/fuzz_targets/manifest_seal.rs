//! Fuzz target `manifest_seal`: feeds libFuzzer's bytes to `kafkasnap_fuzz::manifest_seal` (see there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kafkasnap_fuzz::manifest_seal(data);
});
