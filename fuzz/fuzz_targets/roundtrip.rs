#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rmcast::fuzzing::roundtrip(data));
