//! Fuzz target `kafka_log`: feeds libFuzzer's bytes to `kafkasnap_fuzz::kafka_log` (see there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kafkasnap_fuzz::kafka_log(data);
});
