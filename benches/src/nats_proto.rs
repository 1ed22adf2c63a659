//! The part of the NATS client protocol the baseline's clients speak over
//! WebSocket: `CONNECT`, `SUB`, `PING`/`PONG`, and parsing `MSG` out of a byte
//! stream in which a message may span WebSocket frames and one frame may hold
//! many messages.

/// One server operation, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Op<'a> {
    Msg {
        subject: &'a [u8],
        payload: &'a [u8],
    },
    Ping,
    Pong,
    Ok,
    Err(&'a [u8]),
    Info,
}

/// The client's opening: `CONNECT` (without headers, so that JetStream's
/// `Nats-Msg-Id` header is stripped and messages arrive as plain `MSG`), one
/// `SUB` per subject, then a `PING` whose `PONG` says every `SUB` is in place.
pub fn opening(subjects: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(
        br#"CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":false,"no_responders":false,"name":"sapha-bench"}"#,
    );
    out.extend_from_slice(b"\r\n");
    for (sid, subject) in subjects.iter().enumerate() {
        out.extend_from_slice(format!("SUB {subject} {}\r\n", sid + 1).as_bytes());
    }
    out.extend_from_slice(b"PING\r\n");
    out
}

/// Accumulates the server's bytes and yields whole operations.
#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    at: usize,
}

impl Parser {
    /// Appends bytes read from the server.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.at > 0 && self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        } else if self.at > 64 * 1024 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole operation, if one is buffered. A protocol error (a line
    /// it does not know) is returned as `Err`.
    pub fn next_op(&mut self) -> Option<Op<'_>> {
        let rest = &self.buf[self.at..];
        let eol = memchr::memmem::find(rest, b"\r\n")?;
        let line = &rest[..eol];
        let start = self.at;
        if let Some(args) = line.strip_prefix(b"MSG ") {
            // MSG <subject> <sid> [reply-to] <#bytes>
            let mut parts = args.split(|&b| b == b' ').filter(|p| !p.is_empty());
            let subject_len = parts.next()?.len();
            let size: usize = std::str::from_utf8(args.rsplit(|&b| b == b' ').next()?)
                .ok()?
                .parse()
                .ok()?;
            let body = eol + 2;
            if rest.len() < body + size + 2 {
                return None; // the payload is still on its way
            }
            self.at = start + body + size + 2;
            let subject_at = start + 4;
            return Some(Op::Msg {
                subject: &self.buf[subject_at..subject_at + subject_len],
                payload: &self.buf[start + body..start + body + size],
            });
        }
        self.at = start + eol + 2;
        let line = &self.buf[start..start + eol];
        Some(match line {
            b"PING" => Op::Ping,
            b"PONG" => Op::Pong,
            b"+OK" => Op::Ok,
            l if l.starts_with(b"INFO") => Op::Info,
            l => Op::Err(l),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_across_frames() {
        let mut p = Parser::default();
        p.push(b"INFO {\"a\":1}\r\nPONG\r\nMSG parl.v1.bill.b-1.stage 1 5\r\nhel");
        assert_eq!(p.next_op(), Some(Op::Info));
        assert_eq!(p.next_op(), Some(Op::Pong));
        assert_eq!(p.next_op(), None);
        p.push(b"lo\r\nMSG a.b 2 reply.x 3\r\nxyz\r\nPI");
        assert_eq!(
            p.next_op(),
            Some(Op::Msg {
                subject: b"parl.v1.bill.b-1.stage",
                payload: b"hello"
            })
        );
        assert_eq!(
            p.next_op(),
            Some(Op::Msg {
                subject: b"a.b",
                payload: b"xyz"
            })
        );
        assert_eq!(p.next_op(), None);
        p.push(b"NG\r\n-ERR 'Slow Consumer'\r\n");
        assert_eq!(p.next_op(), Some(Op::Ping));
        assert_eq!(p.next_op(), Some(Op::Err(b"-ERR 'Slow Consumer'")));
        assert_eq!(p.next_op(), None);
    }

    #[test]
    fn opening_subscribes_then_pings() {
        let text = String::from_utf8(opening(&["a.b".into(), "a.b.>".into()])).unwrap();
        assert!(text.starts_with("CONNECT {"));
        assert!(text.ends_with("\r\nSUB a.b 1\r\nSUB a.b.> 2\r\nPING\r\n"));
    }
}
