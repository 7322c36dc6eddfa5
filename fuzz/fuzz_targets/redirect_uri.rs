#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpgate_server::fuzzing::redirect_uri(data));
