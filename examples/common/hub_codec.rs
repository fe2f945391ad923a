//! The text protocol of muduo's pub/sub hub (`examples/hub/codec.cc`),
//! shared by the `hub` and `hub_client` examples:
//!
//! ```text
//! sub TOPIC\r\n                 subscribe (the hub answers with the topic's last content)
//! unsub TOPIC\r\n               unsubscribe
//! pub TOPIC\r\nCONTENT\r\n      publish; the hub sends this same message to subscribers
//! ```
//!
//! The command ends at the first space; the topic is the rest of the line.
#![allow(dead_code)]

use muduo::Buffer;

/// Longest command (line, or both lines of a `pub`) we accept.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// One parsed command.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Sub(String),
    Unsub(String),
    Pub(String, String),
}

/// Takes one command from the front of `buf`: `Ok(None)` until it is
/// complete; `Err` (a reason for the log) on anything that is not a command.
pub fn parse(buf: &mut Buffer) -> Result<Option<Command>, String> {
    let Some(eol) = buf.find_crlf() else {
        return too_long(buf.readable_bytes());
    };
    let line = &buf.peek()[..eol];
    let Some(space) = line.iter().position(|&b| b == b' ') else {
        return Err(format!("no space in {:?}", String::from_utf8_lossy(line)));
    };
    let (cmd, topic) = (&line[..space], &line[space + 1..]);
    let topic = match std::str::from_utf8(topic) {
        Ok(t) if !t.is_empty() => t.to_string(),
        _ => return Err("empty or non-UTF-8 topic".into()),
    };
    let command = match cmd {
        b"sub" => Command::Sub(topic),
        b"unsub" => Command::Unsub(topic),
        b"pub" => {
            let Some(end) = buf.find_crlf_from(eol + 2) else {
                return too_long(buf.readable_bytes());
            };
            let content = String::from_utf8_lossy(&buf.peek()[eol + 2..end]).into_owned();
            buf.retrieve(end + 2);
            return Ok(Some(Command::Pub(topic, content)));
        }
        _ => {
            return Err(format!(
                "unknown command {:?}",
                String::from_utf8_lossy(cmd)
            ))
        }
    };
    buf.retrieve(eol + 2);
    Ok(Some(command))
}

fn too_long(pending: usize) -> Result<Option<Command>, String> {
    if pending > MAX_MESSAGE {
        Err(format!("no end of command within {MAX_MESSAGE} bytes"))
    } else {
        Ok(None)
    }
}

/// `pub TOPIC\r\nCONTENT\r\n`: what a publisher sends and subscribers get.
pub fn pub_message(topic: &str, content: &str) -> Vec<u8> {
    format!("pub {topic}\r\n{content}\r\n").into_bytes()
}

/// True if `s` can travel in the protocol (no line breaks).
pub fn valid_text(s: &str) -> bool {
    !s.contains(['\r', '\n'])
}
