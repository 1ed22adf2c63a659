//! The hub's client protocol parser, JSON and protobuf: no input panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sapha_hub::protocol::Request;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Request::from_json(text);
    }
    let _ = Request::from_proto(data);
});
