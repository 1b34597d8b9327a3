//! Fuzz target `tar_rewrite`: feeds libFuzzer's bytes to `kafkasnap_fuzz::tar_rewrite` (see there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kafkasnap_fuzz::tar_rewrite(data);
});
