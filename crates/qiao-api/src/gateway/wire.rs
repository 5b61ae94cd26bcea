//! The frames the server writes, as bytes (RFC 6455 §5.2). A server's frames are not masked,
//! so one event's frame is the same bytes for every recipient: it is made once and shared,
//! and a connection's write is a copy of those bytes into the socket, nothing more.
//!
//! Reading the client's frames (masked, fragmented, validated) is left to tungstenite.

use bytes::{BufMut, Bytes, BytesMut};

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
const FIN: u8 = 0x80;

fn frame(opcode: u8, parts: &[&[u8]]) -> Bytes {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = BytesMut::with_capacity(len + 10);
    out.put_u8(FIN | opcode);
    match len {
        0..=125 => out.put_u8(len as u8),
        126..=0xFFFF => {
            out.put_u8(126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(127);
            out.put_u64(len as u64);
        }
    }
    for p in parts {
        out.put_slice(p);
    }
    out.freeze()
}

/// A text frame (the caller vouches that `json` is UTF-8: it is what serde wrote).
pub fn text(json: &[u8]) -> Bytes {
    frame(TEXT, &[json])
}

/// A close frame with its code and a reason (cut to the 123 bytes a control frame leaves,
/// at a character boundary).
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    frame(CLOSE, &[&code.to_be_bytes(), &reason.as_bytes()[..cut]])
}

/// A close frame without a code (the answer to one that had none).
pub fn close_bare() -> Bytes {
    frame(CLOSE, &[])
}

/// A ping with no payload (the heartbeat).
pub fn ping() -> Bytes {
    frame(PING, &[])
}

/// The answer to a client's ping: its payload back (at most 125 bytes, as the ping's was).
pub fn pong(payload: &[u8]) -> Bytes {
    frame(PONG, &[&payload[..payload.len().min(125)]])
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
    use tungstenite::protocol::frame::{Frame, FrameHeader};

    use super::*;

    /// Reads one frame back as a client would (header, then payload).
    fn read(bytes: &[u8]) -> (FrameHeader, Vec<u8>) {
        let mut c = Cursor::new(bytes);
        let (header, len) = FrameHeader::parse(&mut c).unwrap().expect("a whole header");
        let start = c.position() as usize;
        assert_eq!(start + len as usize, bytes.len(), "one frame, nothing after it");
        (header, bytes[start..].to_vec())
    }

    #[test]
    fn frames_read_back_as_a_client_reads_them() {
        for len in [0, 1, 125, 126, 127, 0xFFFF, 0x10000, 70_000] {
            let payload = "字".repeat(len / 3) + &"a".repeat(len % 3);
            let (h, p) = read(&text(payload.as_bytes()));
            assert!(h.is_final && h.mask.is_none(), "unfragmented, unmasked");
            assert_eq!((h.opcode, p), (OpCode::Data(Data::Text), payload.into_bytes()), "length {len}");
        }
        let (h, p) = read(&close(4008, "too slow"));
        assert_eq!(h.opcode, OpCode::Control(Control::Close));
        assert_eq!(&p[..2], &4008u16.to_be_bytes());
        assert_eq!(&p[2..], b"too slow");
        let (h, p) = read(&close_bare());
        assert_eq!((h.opcode, p.len()), (OpCode::Control(Control::Close), 0));
        let (h, p) = read(&ping());
        assert_eq!((h.opcode, p.len()), (OpCode::Control(Control::Ping), 0));
        let (h, p) = read(&pong(b"abc"));
        assert_eq!((h.opcode, p), (OpCode::Control(Control::Pong), b"abc".to_vec()));
        // The frame type tungstenite builds agrees on the header's length.
        let f = Frame::message(Bytes::from_static(b"hello"), OpCode::Data(Data::Text), true);
        assert_eq!(f.len(), text(b"hello").len());
    }

    #[test]
    fn a_close_reason_fits_a_control_frame_whole_characters_only() {
        let long = "关".repeat(60); // 180 bytes
        let (_, p) = read(&close(1000, &long));
        assert!(p.len() <= 125);
        assert!(std::str::from_utf8(&p[2..]).is_ok(), "cut at a character boundary");
    }
}
