//! Message framing over a byte stream.
//!
//! TCP delivers bytes, not messages: one `read` may hold half a message or
//! ten of them. A codec turns the connection's input [`Buffer`] into whole
//! messages and frames outgoing ones. [`LengthHeaderCodec`] is muduo's
//! `examples/asio/chat/codec.h`: each message is a 4-byte network-order
//! (big-endian) length followed by that many bytes of payload, so muduo's
//! own chat clients and servers interoperate with ours.
//!
//! ```text
//! +----------------+---------------------------+
//! | len: u32 (BE)  | payload: len bytes        |
//! +----------------+---------------------------+
//! ```

use crate::buffer::Buffer;
use crate::callbacks::TcpConnectionPtr;
use std::fmt;

/// A message the codec refused to decode or encode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The length (from a received header, or of a message to send) is over
    /// the codec's limit.
    TooLong {
        /// The length found.
        len: u64,
        /// The codec's limit.
        max: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { len, max } => {
                write!(f, "message length {len} is over the limit of {max} bytes")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Frames messages with a 4-byte network-order length header (muduo's
/// asio chat `LengthHeaderCodec`).
///
/// * Decoding is incremental: [`decode`](Self::decode) takes every whole
///   message from the front of the buffer and leaves a partial one (even a
///   partial header) for the next read.
/// * A header announcing more than [`max_len`](Self::max_len) bytes is an
///   error: [`on_message`](Self::on_message) logs it and closes the
///   connection (a peer that lies about lengths would otherwise make us
///   buffer without bound).
/// * [`send`](Self::send) writes header and payload with one `send` call:
///   the header is prepended in front of the payload in one [`Buffer`]
///   (which keeps 8 bytes of cheap prepend room for this).
///
/// The codec is a small `Copy` value with no state of its own: the partial
/// message lives in the connection's input buffer. Share it freely between
/// threads and callbacks.
///
/// ```no_run
/// use muduo::codec::LengthHeaderCodec;
/// use muduo::{EventLoop, TcpServer};
/// # fn main() -> std::io::Result<()> {
/// let lp = EventLoop::new()?;
/// let mut server = TcpServer::new(&lp, "127.0.0.1:9981".parse().unwrap(), "echo-messages")?;
/// let codec = LengthHeaderCodec::new();
/// server.set_message_callback(move |conn, buf, _when| {
///     // Called once per read; the closure once per whole message.
///     codec.on_message(conn, buf, |conn, msg| {
///         let _ = codec.send(conn, msg); // echo it back, framed
///     });
/// });
/// server.start()?;
/// lp.run()
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthHeaderCodec {
    max_len: usize,
}

impl Default for LengthHeaderCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl LengthHeaderCodec {
    /// Size of the length header in bytes.
    pub const HEADER_LEN: usize = 4;
    /// The default limit on a message's length: 64 KiB, as muduo's chat.
    pub const DEFAULT_MAX_LEN: usize = 64 * 1024;
    /// The largest limit a codec accepts: muduo reads the header as a signed
    /// `int32`, so longer messages would look negative to a muduo peer.
    pub const LIMIT_CAP: usize = i32::MAX as usize;

    /// A codec accepting messages up to [`DEFAULT_MAX_LEN`](Self::DEFAULT_MAX_LEN) bytes.
    pub const fn new() -> Self {
        LengthHeaderCodec {
            max_len: Self::DEFAULT_MAX_LEN,
        }
    }

    /// A codec accepting messages up to `max_len` bytes (capped at
    /// [`LIMIT_CAP`](Self::LIMIT_CAP)).
    pub const fn with_max_len(max_len: usize) -> Self {
        let max_len = if max_len > Self::LIMIT_CAP {
            Self::LIMIT_CAP
        } else {
            max_len
        };
        LengthHeaderCodec { max_len }
    }

    /// The longest message this codec decodes or sends.
    pub const fn max_len(&self) -> usize {
        self.max_len
    }

    /// Takes every whole message from the front of `buf`, calling `f` with
    /// each payload in order, and leaves an incomplete one in place.
    ///
    /// On a header over the limit it stops and returns the error, leaving
    /// that header and everything after it in `buf` (the messages before it
    /// were delivered). Pure: no connection involved, any thread.
    ///
    /// ```
    /// use muduo::codec::LengthHeaderCodec;
    /// use muduo::Buffer;
    ///
    /// let codec = LengthHeaderCodec::new();
    /// let mut wire = Buffer::new();
    /// codec.encode_into(b"hello", &mut wire).unwrap();
    /// codec.encode_into(b"world", &mut wire).unwrap();
    /// let wire = wire.retrieve_all_as_vec();
    ///
    /// // The first read brings one message and half of the next.
    /// let mut input = Buffer::from(&wire[..12]);
    /// let mut got = Vec::new();
    /// codec.decode(&mut input, |m| got.push(m.to_vec())).unwrap();
    /// assert_eq!(got, [b"hello".to_vec()]);
    /// assert_eq!(input.readable_bytes(), 3); // kept for the next read
    ///
    /// input.append(&wire[12..]);
    /// codec.decode(&mut input, |m| got.push(m.to_vec())).unwrap();
    /// assert_eq!(got, [b"hello".to_vec(), b"world".to_vec()]);
    /// ```
    pub fn decode(&self, buf: &mut Buffer, mut f: impl FnMut(&[u8])) -> Result<(), FrameError> {
        while let Some(len) = buf.peek_u32() {
            let len = len as usize;
            if len > self.max_len {
                return Err(FrameError::TooLong {
                    len: len as u64,
                    max: self.max_len,
                });
            }
            let Some(frame) = buf.peek().get(..Self::HEADER_LEN + len) else {
                break; // the rest of this message has not arrived yet
            };
            f(&frame[Self::HEADER_LEN..]);
            buf.retrieve(Self::HEADER_LEN + len);
        }
        Ok(())
    }

    /// The message callback's half of the codec: decodes what `buf` holds
    /// and calls `f(conn, payload)` for each whole message. On a length over
    /// the limit it logs an error, discards the input and closes the
    /// connection ([`TcpConnection::force_close`](crate::TcpConnection::force_close)).
    /// Call it from the connection's message callback (its loop thread).
    pub fn on_message(
        &self,
        conn: &TcpConnectionPtr,
        buf: &mut Buffer,
        mut f: impl FnMut(&TcpConnectionPtr, &[u8]),
    ) {
        if let Err(e) = self.decode(buf, |msg| f(conn, msg)) {
            tracing::error!(conn = %conn.name(), peer = %conn.peer_addr(), error = %e, "bad frame; closing the connection");
            buf.retrieve_all();
            conn.force_close();
        }
    }

    /// Frames `msg` into a new buffer: header then payload, contiguous, so
    /// it goes out with one write (and can be sent to many connections).
    /// Any thread. Fails if `msg` is longer than [`max_len`](Self::max_len)
    /// (the peer's codec would refuse it).
    pub fn encode(&self, msg: &[u8]) -> Result<Buffer, FrameError> {
        let mut buf = Buffer::with_capacity(msg.len());
        self.encode_into(msg, &mut buf)?;
        Ok(buf)
    }

    /// Appends the framed `msg` to `out` (several messages can then go out
    /// in one write). Fails, appending nothing, when `msg` is over the limit.
    pub fn encode_into(&self, msg: &[u8], out: &mut Buffer) -> Result<(), FrameError> {
        if msg.len() > self.max_len {
            return Err(FrameError::TooLong {
                len: msg.len() as u64,
                max: self.max_len,
            });
        }
        if out.is_empty() {
            // The cheap-prepend room in front takes the header without a copy.
            out.append(msg);
            out.prepend_u32(msg.len() as u32);
        } else {
            out.append_u32(msg.len() as u32);
            out.append(msg);
        }
        Ok(())
    }

    /// Sends `msg` on `conn`, framed, with one write. Callable from any
    /// thread (from another thread the frame is queued to the connection's
    /// loop). Fails when `msg` is over the limit.
    pub fn send(&self, conn: &TcpConnectionPtr, msg: &[u8]) -> Result<(), FrameError> {
        let mut frame = self.encode(msg)?;
        conn.send_buffer(&mut frame);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_puts_the_length_in_front() {
        let frame = LengthHeaderCodec::new().encode(b"hello").unwrap();
        assert_eq!(frame.peek(), b"\0\0\0\x05hello");
    }

    #[test]
    fn limit_is_capped_for_muduo_peers() {
        assert_eq!(
            LengthHeaderCodec::with_max_len(usize::MAX).max_len(),
            i32::MAX as usize
        );
    }

    #[test]
    fn over_limit_send_is_refused() {
        let codec = LengthHeaderCodec::with_max_len(3);
        assert_eq!(
            codec.encode(b"four"),
            Err(FrameError::TooLong { len: 4, max: 3 })
        );
    }
}
