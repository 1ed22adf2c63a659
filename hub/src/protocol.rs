//! The wire protocol (docs/PROTOCOL.md): client requests, hub frames in their
//! JSON and protobuf forms, error codes and close codes.

use bytes::Bytes;
use prost::Message as _;
use sapha_proto::wire::pb;
use serde::Serialize;
use serde_json::Value;

/// The WebSocket subprotocol for protobuf binary frames.
pub const PROTO_SUBPROTOCOL: &str = "sapha.v1.proto";
/// The WebSocket subprotocol for JSON text frames (the default without one).
pub const JSON_SUBPROTOCOL: &str = "sapha.v1.json";

/// How frames are encoded on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Proto,
    Sse,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Proto => "proto",
            Format::Sse => "sse",
        }
    }
}

/// Close codes the hub sends, with their reasons.
pub mod close {
    /// Shutdown or restart: reconnect (to another hub) and resume.
    pub const GOING_AWAY: u16 = 1001;
    /// A message larger than `hard_max_frame_bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// The client broke the WebSocket protocol.
    pub const PROTOCOL: u16 = 1002;
    /// A text message that is not valid UTF-8.
    pub const BAD_UTF8: u16 = 1007;
    /// The client did not read fast enough; its queue filled up.
    pub const SLOW_CONSUMER: u16 = 4001;
    /// Nothing arrived from the client within the idle timeout.
    pub const IDLE_TIMEOUT: u16 = 4002;
}

/// Stable error codes of `error` frames.
pub mod code {
    pub const BAD_JSON: &str = "bad_json";
    pub const BAD_REQUEST: &str = "bad_request";
    pub const UNKNOWN_OP: &str = "unknown_op";
    pub const INVALID_TOPIC: &str = "invalid_topic";
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "too_many_subscriptions";
    pub const FRAME_TOO_LARGE: &str = "frame_too_large";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const SINCE_NOT_FIRST: &str = "since_not_first";
    pub const BAD_PROTOBUF: &str = "bad_protobuf";
    /// The connection's token (or the anonymous grant) does not cover the filter.
    pub const FORBIDDEN_TOPIC: &str = "forbidden_topic";

    /// Every code of an error frame, as docs/asyncapi.yaml lists them.
    pub const ALL: [&str; 10] = [
        BAD_JSON,
        BAD_REQUEST,
        UNKNOWN_OP,
        INVALID_TOPIC,
        TOO_MANY_SUBSCRIPTIONS,
        FRAME_TOO_LARGE,
        RATE_LIMITED,
        SINCE_NOT_FIRST,
        BAD_PROTOBUF,
        FORBIDDEN_TOPIC,
    ];
}

/// A request's `id`: any JSON value, kept as the client wrote it so that it is
/// echoed byte for byte (a number past `u64` stays as written). `null` or
/// absent is [`Id::none`].
#[derive(Debug, Clone, Default)]
pub struct Id(Option<Box<serde_json::value::RawValue>>);

impl Id {
    pub fn none() -> Id {
        Id(None)
    }

    /// An id from a JSON text, as written; `None` if it is not JSON.
    pub fn from_json(text: &str) -> Option<Id> {
        let raw = serde_json::value::RawValue::from_string(text.to_owned()).ok()?;
        Some(if raw.get() == "null" {
            Id(None)
        } else {
            Id(Some(raw))
        })
    }

    /// A string id (the protobuf form's `id`).
    pub fn string(s: &str) -> Id {
        Id::from_json(&serde_json::to_string(s).expect("strings serialize")).unwrap_or_default()
    }

    /// The `id` of a JSON request text, as written; none if it has none.
    fn of_request(text: &str) -> Id {
        #[derive(serde::Deserialize)]
        struct Only<'a> {
            #[serde(borrow, default)]
            id: Option<&'a serde_json::value::RawValue>,
        }
        serde_json::from_str::<Only>(text)
            .ok()
            .and_then(|o| o.id)
            .and_then(|raw| Id::from_json(raw.get()))
            .unwrap_or_default()
    }

    /// The id as the protobuf form carries it: a string's content, or the
    /// JSON text of any other value; empty for none.
    fn text(&self) -> String {
        match &self.0 {
            None => String::new(),
            Some(raw) => {
                serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().to_owned())
            }
        }
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Id) -> bool {
        self.0.as_ref().map(|r| r.get()) == other.0.as_ref().map(|r| r.get())
    }
}

impl From<Value> for Id {
    fn from(value: Value) -> Id {
        if value.is_null() {
            return Id(None);
        }
        Id::from_json(&value.to_string()).unwrap_or_default()
    }
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(raw) => raw.serialize(s),
            None => s.serialize_none(),
        }
    }
}

/// A client request, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Subscribe {
        id: Id,
        topics: Vec<String>,
        since: Option<u64>,
        /// With `since`: the stream epoch the position belongs to.
        epoch: Option<String>,
    },
    Unsubscribe {
        id: Id,
        topics: Vec<String>,
    },
    Ping {
        id: Id,
    },
}

/// A request that could not be parsed: the error frame to send back.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRequest {
    pub id: Id,
    pub code: &'static str,
    pub message: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeRepr {
    #[allow(dead_code)]
    op: String,
    /// Accepted here; read as written by [`Id::of_request`].
    #[serde(default)]
    #[allow(dead_code)]
    id: Value,
    topics: Vec<String>,
    #[serde(default)]
    since: Option<u64>,
    #[serde(default)]
    epoch: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsubscribeRepr {
    #[allow(dead_code)]
    op: String,
    /// Accepted here; read as written by [`Id::of_request`].
    #[serde(default)]
    #[allow(dead_code)]
    id: Value,
    topics: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PingRepr {
    #[allow(dead_code)]
    op: String,
    /// Accepted here; read as written by [`Id::of_request`].
    #[serde(default)]
    #[allow(dead_code)]
    id: Value,
}

impl Request {
    /// Parses a JSON text request.
    pub fn from_json(text: &str) -> Result<Request, BadRequest> {
        let value: Value = serde_json::from_str(text).map_err(|e| BadRequest {
            id: Id::none(),
            code: code::BAD_JSON,
            message: format!("the message is not valid json: {e}"),
        })?;
        let id = Id::of_request(text);
        let bad = |message: String| BadRequest {
            id: id.clone(),
            code: code::BAD_REQUEST,
            message,
        };
        let Some(op) = value.as_object().and_then(|o| o.get("op")) else {
            return Err(bad("a request is a json object with an \"op\" field".into()));
        };
        let Some(op) = op.as_str() else {
            return Err(bad("\"op\" must be a string".into()));
        };
        match op {
            "subscribe" => {
                let r: SubscribeRepr =
                    serde_json::from_value(value).map_err(|e| bad(format!("subscribe: {e}")))?;
                Ok(Request::Subscribe {
                    id,
                    topics: r.topics,
                    since: r.since,
                    epoch: r.epoch,
                })
            }
            "unsubscribe" => {
                let r: UnsubscribeRepr =
                    serde_json::from_value(value).map_err(|e| bad(format!("unsubscribe: {e}")))?;
                Ok(Request::Unsubscribe {
                    id,
                    topics: r.topics,
                })
            }
            "ping" => {
                serde_json::from_value::<PingRepr>(value).map_err(|e| bad(format!("ping: {e}")))?;
                Ok(Request::Ping { id })
            }
            other => Err(BadRequest {
                id,
                code: code::UNKNOWN_OP,
                message: format!("unknown op '{other}': expected subscribe, unsubscribe or ping"),
            }),
        }
    }

    /// Parses a binary `ClientFrame` request.
    pub fn from_proto(bytes: &[u8]) -> Result<Request, BadRequest> {
        let frame = pb::ClientFrame::decode(bytes).map_err(|e| BadRequest {
            id: Id::none(),
            code: code::BAD_PROTOBUF,
            message: format!("the message is not a ClientFrame: {e}"),
        })?;
        let id = if frame.id.is_empty() {
            Id::none()
        } else {
            Id::string(&frame.id)
        };
        match frame.op {
            Some(pb::client_frame::Op::Subscribe(s)) => Ok(Request::Subscribe {
                id,
                topics: s.topics,
                since: s.since,
                epoch: s.epoch,
            }),
            Some(pb::client_frame::Op::Unsubscribe(u)) => Ok(Request::Unsubscribe {
                id,
                topics: u.topics,
            }),
            Some(pb::client_frame::Op::Ping(_)) => Ok(Request::Ping { id }),
            None => Err(BadRequest {
                id,
                code: code::UNKNOWN_OP,
                message: "the ClientFrame has no op".into(),
            }),
        }
    }
}

/// The limits as announced in the welcome frame.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LimitsInfo {
    pub max_subscriptions: usize,
    pub max_frame_bytes: usize,
    pub messages_per_second: u32,
    pub message_burst: u32,
    pub queue_frames: usize,
    pub idle_timeout_ms: u64,
    pub ping_interval_ms: u64,
}

/// A control frame from the hub (everything but `event`).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Frame {
    Welcome {
        session: String,
        seq: u64,
        first_seq: u64,
        format: &'static str,
        /// Boxed: it would make every frame as large as a welcome.
        limits: Box<LimitsInfo>,
        server: &'static str,
        /// Whether this connection may receive `batch` frames (`?batch=true`).
        batch: bool,
        /// The stream's epoch: changes when the stream is recreated. A client
        /// sends it back with `since` (empty: unknown yet).
        epoch: String,
    },
    Ack {
        id: Id,
        op: &'static str,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        topics: Vec<String>,
        subscriptions: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        first_seq: Option<u64>,
        seq: u64,
        /// With `since`: the stream's epoch now (boxed: keeps frames small).
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<Box<str>>,
    },
    Error {
        id: Id,
        code: &'static str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
    },
    Live {
        id: Id,
        seq: u64,
    },
}

fn id_text(id: &Id) -> String {
    id.text()
}

impl Frame {
    pub fn error(id: Id, code: &'static str, message: impl Into<String>) -> Frame {
        Frame::Error {
            id,
            code,
            message: message.into(),
            topic: None,
            reason: None,
        }
    }

    /// The SSE event name of this frame.
    fn sse_name(&self) -> &'static str {
        match self {
            Frame::Welcome { .. } => "welcome",
            Frame::Ack { .. } => "ack",
            Frame::Error { .. } => "error",
            Frame::Live { .. } => "live",
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("frames always serialize")
    }

    pub fn to_sse(&self) -> Bytes {
        Bytes::from(format!(
            "event: {}\ndata: {}\n\n",
            self.sse_name(),
            self.to_json()
        ))
    }

    pub fn to_proto(&self) -> Bytes {
        use pb::hub_frame::Kind;
        let kind = match self.clone() {
            Frame::Welcome {
                session,
                seq,
                first_seq,
                format,
                limits,
                server,
                batch,
                epoch,
            } => Kind::Welcome(pb::Welcome {
                session,
                seq,
                first_seq,
                format: format.into(),
                limits: Some(pb::Limits {
                    max_subscriptions: limits.max_subscriptions as u32,
                    max_frame_bytes: limits.max_frame_bytes as u32,
                    messages_per_second: limits.messages_per_second,
                    message_burst: limits.message_burst,
                    queue_frames: limits.queue_frames as u32,
                    idle_timeout_ms: limits.idle_timeout_ms,
                    ping_interval_ms: limits.ping_interval_ms,
                }),
                server: server.into(),
                batch,
                epoch,
            }),
            Frame::Ack {
                id,
                op,
                topics,
                subscriptions,
                since,
                recovered,
                first_seq,
                seq,
                epoch,
            } => Kind::Ack(pb::Ack {
                id: id_text(&id),
                op: op.into(),
                topics,
                subscriptions: subscriptions as u32,
                since,
                recovered,
                first_seq: first_seq.unwrap_or(0),
                seq,
                epoch: epoch.map(String::from).unwrap_or_default(),
            }),
            Frame::Error {
                id,
                code,
                message,
                topic,
                reason,
            } => Kind::Error(pb::HubError {
                id: id_text(&id),
                code: code.into(),
                message,
                topic,
                reason: reason.map(Into::into),
            }),
            Frame::Live { id, seq } => Kind::Live(pb::Live {
                id: id_text(&id),
                seq,
            }),
        };
        Bytes::from(pb::HubFrame { kind: Some(kind) }.encode_to_vec())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_id_is_echoed_as_written() {
        for id in [
            "18446744073709551617",
            "1.50",
            "-0",
            "\"r\\u00e9\"",
            "{\"a\": [1,2]}",
        ] {
            let text = format!("{{\"op\":\"ping\",\"id\":{id}}}");
            let Ok(super::Request::Ping { id: parsed }) = super::Request::from_json(&text) else {
                panic!("{text} parses");
            };
            let echoed = super::Frame::error(parsed, "x", "y").to_json();
            assert!(echoed.contains(&format!("\"id\":{id}")), "{id} -> {echoed}");
        }
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn parses_each_op() {
        assert_eq!(
            Request::from_json(r#"{"op":"subscribe","id":"r1","topics":["bill.b-1"],"since":4}"#),
            Ok(Request::Subscribe {
                id: json!("r1").into(),
                topics: vec!["bill.b-1".into()],
                since: Some(4),
                epoch: None,
            })
        );
        assert_eq!(
            Request::from_json(r#"{"op":"ping","id":7}"#),
            Ok(Request::Ping {
                id: json!(7).into()
            })
        );
    }

    #[test]
    fn each_bad_input_has_its_code() {
        let code = |s: &str| Request::from_json(s).unwrap_err().code;
        assert_eq!(code("{nope"), code::BAD_JSON);
        assert_eq!(code(r#"{"op":"dance","id":1}"#), code::UNKNOWN_OP);
        assert_eq!(code(r#"[1]"#), code::BAD_REQUEST);
        assert_eq!(code(r#"{"op":"subscribe"}"#), code::BAD_REQUEST);
        assert_eq!(code(r#"{"op":"ping","extra":1}"#), code::BAD_REQUEST);
        let e = Request::from_json(r#"{"op":"dance","id":"x"}"#).unwrap_err();
        assert_eq!(e.id, json!("x").into());
    }

    #[test]
    fn proto_requests_round_trip() {
        let frame = pb::ClientFrame {
            id: "r1".into(),
            op: Some(pb::client_frame::Op::Subscribe(pb::Subscribe {
                topics: vec!["bill.b-1".into()],
                since: Some(3),
                epoch: None,
            })),
        };
        assert_eq!(
            Request::from_proto(&frame.encode_to_vec()),
            Ok(Request::Subscribe {
                id: json!("r1").into(),
                topics: vec!["bill.b-1".into()],
                since: Some(3),
                epoch: None,
            })
        );
        assert_eq!(
            Request::from_proto(&[0xff, 0xff]).unwrap_err().code,
            code::BAD_PROTOBUF
        );
    }

    #[test]
    fn frames_have_a_type_tag() {
        let f = Frame::Live {
            id: json!("r1").into(),
            seq: 9,
        };
        assert_eq!(f.to_json(), r#"{"type":"live","id":"r1","seq":9}"#);
        let decoded = pb::HubFrame::decode(f.to_proto()).unwrap();
        assert_eq!(
            decoded.kind,
            Some(pb::hub_frame::Kind::Live(pb::Live {
                id: "r1".into(),
                seq: 9
            }))
        );
    }
}
