//! An event as the fan-out handles it: decoded once, and encoded at most once
//! per wire format. Every connection that receives it shares the same bytes.

use crate::camera::CameraInfo;
#[cfg(test)]
use crate::protocol::Format;
use crate::trust::TrustInfo;
use axum::extract::ws::Utf8Bytes;
use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;
use sapha_proto::wire::{pb, WireError};
use sapha_proto::Event;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

/// One event, ready to send.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) seq: u64,
    pub(crate) topic: String,
    pub(crate) secondary: Option<String>,
    /// Its sitting and lifecycle change, for the in-camera rule (`camera`).
    pub(crate) camera: CameraInfo,
    /// Its aggregate, sequence and stage move, for the stream checks (`trust`).
    pub(crate) trust: TrustInfo,
    /// The JSON `event` frame (docs/PROTOCOL.md), encoded at once: every hub has
    /// JSON clients.
    json: Utf8Bytes,
    /// The `HubFrame { event: Delivery }` binary frame, built on first use.
    proto: OnceLock<Bytes>,
    /// The SSE message (`id:` / `event:` / `data:` lines), built on first use.
    sse: OnceLock<Bytes>,
    /// The stored protobuf `Envelope`, spliced into `proto` without re-encoding.
    envelope: Bytes,
    event_id: String,
    /// When the stream stored it, for `sapha_hub_delivery_lag_seconds`; set
    /// only for events the live consumer read (see [`Prepared::stored_at`]).
    pub(crate) stored_at: Option<SystemTime>,
}

impl Prepared {
    /// Decodes a stored payload.
    pub(crate) fn decode(seq: u64, payload: Bytes) -> Result<Prepared, WireError> {
        Self::decode_with_event(seq, payload).map(|(p, _)| p)
    }

    /// Decodes a stored payload, and gives back the event too (for the state).
    pub(crate) fn decode_with_event(
        seq: u64,
        payload: Bytes,
    ) -> Result<(Prepared, Event), WireError> {
        let event = Event::decode_proto(&payload)?;
        let topic = event.topic();
        let secondary = event.secondary_topic();
        let camera = CameraInfo::of(&event);
        let trust = TrustInfo::of(&event);
        let mut json = String::with_capacity(payload.len() * 3 + 128);
        json.push_str(r#"{"type":"event","topic":"#);
        json.push_str(&serde_json::to_string(&topic).expect("a string serializes"));
        if let Some(s) = &secondary {
            json.push_str(r#","secondary_topic":"#);
            json.push_str(&serde_json::to_string(s).expect("a string serializes"));
        }
        json.push_str(&format!(r#","seq":{seq},"event_id":"#));
        json.push_str(&serde_json::to_string(&event.event_id).expect("a string serializes"));
        json.push_str(r#","event":"#);
        json.push_str(&event.to_json());
        json.push('}');
        let prepared = Prepared {
            seq,
            topic,
            secondary,
            camera,
            trust,
            json: Utf8Bytes::from(json),
            proto: OnceLock::new(),
            sse: OnceLock::new(),
            envelope: payload,
            event_id: event.event_id.clone(),
            stored_at: None,
        };
        Ok((prepared, event))
    }

    /// Records when the stream stored the event. The live consumer sets it, so
    /// the writers observe the delivery lag of live deliveries and of catch-ups
    /// and resumes served from the ring; events read back from the stream
    /// for a replay have none and are not observed.
    pub(crate) fn stored_at(mut self, at: Option<SystemTime>) -> Prepared {
        self.stored_at = at;
        self
    }

    /// Observes the delivery lag of this event, if its store time is known.
    #[inline]
    pub(crate) fn observe_lag(&self, lag: &crate::metrics::LagHistogram, now: SystemTime) {
        if let Some(at) = self.stored_at {
            lag.observe_since(at, now);
        }
    }

    /// The JSON `event` frame.
    pub(crate) fn json(&self) -> &Utf8Bytes {
        &self.json
    }

    /// The protobuf `HubFrame` carrying a `Delivery`.
    pub(crate) fn proto(&self) -> &Bytes {
        self.proto.get_or_init(|| {
            // Encode the Delivery without its envelope, then append field 4
            // (`event`) with the stored bytes: protobuf fields may come in any order.
            let head = pb::Delivery {
                topic: self.topic.clone(),
                seq: self.seq,
                event_id: self.event_id.clone(),
                event: None,
                secondary_topic: self.secondary.clone(),
            };
            let envelope_len = self.envelope.len();
            let delivery_len = head.encoded_len()
                + prost::encoding::key_len(4)
                + prost::encoding::encoded_len_varint(envelope_len as u64)
                + envelope_len;
            let mut buf = BytesMut::with_capacity(delivery_len + 8);
            // HubFrame.event = 3 (length-delimited).
            prost::encoding::encode_key(3, prost::encoding::WireType::LengthDelimited, &mut buf);
            prost::encoding::encode_varint(delivery_len as u64, &mut buf);
            head.encode(&mut buf).expect("BytesMut grows");
            prost::encoding::encode_key(4, prost::encoding::WireType::LengthDelimited, &mut buf);
            prost::encoding::encode_varint(envelope_len as u64, &mut buf);
            buf.put_slice(&self.envelope);
            buf.freeze()
        })
    }

    /// The `Delivery` inside [`Prepared::proto`], without the `HubFrame` around it.
    fn proto_delivery(&self) -> &[u8] {
        let frame = self.proto();
        let mut rest = &frame[prost::encoding::key_len(3)..];
        let len = prost::encoding::decode_varint(&mut rest).expect("encoded by proto()");
        &rest[..len as usize]
    }

    /// One JSON `batch` frame carrying these events' `event` frames, in order.
    pub(crate) fn batch_json(events: &[Arc<Prepared>]) -> Utf8Bytes {
        let len: usize = events.iter().map(|p| p.json.len() + 1).sum();
        let mut json = String::with_capacity(len + 32);
        json.push_str(r#"{"type":"batch","events":["#);
        for (i, p) in events.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(p.json.as_str());
        }
        json.push_str("]}");
        Utf8Bytes::from(json)
    }

    /// One protobuf `HubFrame { batch: Batch { events } }`, spliced from the
    /// events' encoded deliveries.
    pub(crate) fn batch_proto(events: &[Arc<Prepared>]) -> Bytes {
        use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
        let deliveries: Vec<&[u8]> = events.iter().map(|p| p.proto_delivery()).collect();
        let batch_len: usize = deliveries
            .iter()
            .map(|d| key_len(1) + encoded_len_varint(d.len() as u64) + d.len())
            .sum();
        let mut buf = BytesMut::with_capacity(batch_len + 8);
        encode_key(6, WireType::LengthDelimited, &mut buf);
        encode_varint(batch_len as u64, &mut buf);
        for d in deliveries {
            encode_key(1, WireType::LengthDelimited, &mut buf);
            encode_varint(d.len() as u64, &mut buf);
            buf.put_slice(d);
        }
        buf.freeze()
    }

    /// The SSE message.
    pub(crate) fn sse(&self) -> &Bytes {
        self.sse.get_or_init(|| {
            Bytes::from(format!(
                "id: {}\nevent: event\ndata: {}\n\n",
                self.seq,
                self.json.as_str()
            ))
        })
    }

    /// The bytes for one format (for tests and the SSE body).
    #[cfg(test)]
    pub(crate) fn bytes(&self, format: Format) -> Bytes {
        match format {
            Format::Json => Bytes::from(self.json.clone()),
            Format::Proto => self.proto().clone(),
            Format::Sse => self.sse().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sapha_proto::examples::one_of_each_kind;

    #[test]
    fn every_format_carries_the_same_event() {
        for (i, event) in one_of_each_kind().into_iter().enumerate() {
            let seq = 100 + i as u64;
            let p = Prepared::decode(seq, Bytes::from(event.encode_proto())).unwrap();
            let json: serde_json::Value = serde_json::from_slice(&p.bytes(Format::Json)).unwrap();
            assert_eq!(json["type"], "event");
            assert_eq!(json["seq"], seq);
            assert_eq!(json["topic"], event.topic());
            assert_eq!(json["event_id"], event.event_id.as_str());
            let back = Event::from_value(json["event"].clone()).unwrap();
            assert_eq!(back, event);

            let frame = pb::HubFrame::decode(p.bytes(Format::Proto)).unwrap();
            let Some(pb::hub_frame::Kind::Event(d)) = frame.kind else {
                panic!("not an event frame");
            };
            assert_eq!(d.seq, seq);
            assert_eq!(d.topic, event.topic());
            assert_eq!(d.secondary_topic, event.secondary_topic());
            assert_eq!(Event::try_from(d.event.unwrap()).unwrap(), event);

            let sse = String::from_utf8(p.bytes(Format::Sse).to_vec()).unwrap();
            assert!(sse.starts_with(&format!("id: {seq}\nevent: event\ndata: {{")));
            assert!(sse.ends_with("}\n\n"));
        }
    }

    #[test]
    fn a_batch_carries_each_event_frame_in_order() {
        let events: Vec<Arc<Prepared>> = one_of_each_kind()
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                Arc::new(Prepared::decode(100 + i as u64, Bytes::from(e.encode_proto())).unwrap())
            })
            .collect();

        let json: serde_json::Value =
            serde_json::from_str(Prepared::batch_json(&events).as_str()).unwrap();
        assert_eq!(json["type"], "batch");
        let frames = json["events"].as_array().unwrap();
        assert_eq!(frames.len(), events.len());
        for (frame, p) in frames.iter().zip(&events) {
            let alone: serde_json::Value = serde_json::from_str(p.json().as_str()).unwrap();
            assert_eq!(frame, &alone);
        }

        let frame = pb::HubFrame::decode(Prepared::batch_proto(&events)).unwrap();
        let Some(pb::hub_frame::Kind::Batch(batch)) = frame.kind else {
            panic!("not a batch frame");
        };
        assert_eq!(batch.events.len(), events.len());
        for (d, p) in batch.events.into_iter().zip(&events) {
            let alone = pb::HubFrame::decode(p.proto().clone()).unwrap();
            assert_eq!(alone.kind, Some(pb::hub_frame::Kind::Event(d)));
        }
    }
}
