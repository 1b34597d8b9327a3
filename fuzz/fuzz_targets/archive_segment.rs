//! Fuzz target `archive_segment`: feeds libFuzzer's bytes to `kafkasnap_fuzz::archive_segment` (see there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kafkasnap_fuzz::archive_segment(data);
});
