//! The hub's JSON frames as the client reads them (docs/PROTOCOL.md). Fields
//! the client does not use are ignored, so a hub may add fields freely.

use serde::Deserialize;
use serde_json::Value;

/// One frame from the hub.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum HubFrame {
    Welcome {
        #[serde(default)]
        session: String,
        #[serde(default)]
        limits: Option<Limits>,
        /// The stream's epoch (empty or absent: the hub cannot tell).
        #[serde(default)]
        epoch: String,
    },
    Ack {
        #[serde(default)]
        id: Value,
        #[serde(default)]
        op: String,
        #[serde(default)]
        recovered: Option<bool>,
        #[serde(default)]
        first_seq: Option<u64>,
        #[serde(default)]
        seq: u64,
    },
    Event {
        seq: u64,
        topic: String,
        #[serde(default)]
        secondary_topic: Option<String>,
        event: Value,
    },
    Error {
        #[serde(default)]
        id: Value,
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    },
    Live {},
    /// Several `event` frames in one (asked for with `?batch=true`).
    Batch {
        events: Vec<HubFrame>,
    },
}

/// The limits the hub announces; the client uses the ping interval to tell a
/// silent hub from a dead one.
#[derive(Debug, Deserialize)]
pub(crate) struct Limits {
    #[serde(default)]
    pub(crate) ping_interval_ms: u64,
}

impl HubFrame {
    pub(crate) fn parse(text: &str) -> Result<HubFrame, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_frame_the_hub_sends() {
        let w = HubFrame::parse(
            r#"{"type":"welcome","session":"s1","seq":3,"first_seq":1,"format":"json","limits":{"max_subscriptions":100,"ping_interval_ms":20000},"server":"x"}"#,
        )
        .unwrap();
        assert!(
            matches!(w, HubFrame::Welcome { ref session, limits: Some(Limits { ping_interval_ms: 20000 }), .. } if session == "s1")
        );
        let a = HubFrame::parse(
            r#"{"type":"ack","id":"c","op":"subscribe","topics":["x"],"subscriptions":1,"since":4,"recovered":false,"first_seq":9,"seq":12}"#,
        )
        .unwrap();
        assert!(matches!(
            a,
            HubFrame::Ack {
                recovered: Some(false),
                first_seq: Some(9),
                seq: 12,
                ..
            }
        ));
        let e = HubFrame::parse(
            r#"{"type":"event","topic":"bill.b-1.stage","seq":5,"event_id":"e","event":{}}"#,
        )
        .unwrap();
        assert!(matches!(e, HubFrame::Event { seq: 5, .. }));
        let b = HubFrame::parse(
            r#"{"type":"batch","events":[{"type":"event","topic":"bill.b-1.stage","seq":6,"event_id":"e6","event":{}},{"type":"event","topic":"bill.b-1.stage","seq":7,"event_id":"e7","event":{}}]}"#,
        )
        .unwrap();
        let HubFrame::Batch { events } = b else {
            panic!("not a batch: {b:?}");
        };
        assert!(matches!(
            events.as_slice(),
            [
                HubFrame::Event { seq: 6, .. },
                HubFrame::Event { seq: 7, .. }
            ]
        ));
        let l = HubFrame::parse(r#"{"type":"live","id":"c","seq":5}"#).unwrap();
        assert!(matches!(l, HubFrame::Live {}));
        let x = HubFrame::parse(
            r#"{"type":"error","id":"c","code":"invalid_topic","message":"m","topic":">>"}"#,
        )
        .unwrap();
        assert!(matches!(x, HubFrame::Error { ref code, .. } if code == "invalid_topic"));
    }
}
