//! The event parser and validator: no input panics, and every event that
//! parses round-trips through protobuf and back to the same JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sapha_proto::Event;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(event) = Event::from_json(text) else { return };
    let _ = sapha_proto::validate::validate(&event);
    let json = event.to_json();
    let back = Event::decode_proto(&event.encode_proto()).expect("our own protobuf decodes");
    assert_eq!(back.to_json(), json);
    let _ = event.topic();
    let _ = event.secondary_topic();
});
