//! Feeds arbitrary bytes to `HttpContext`, whole and split at a data-chosen
//! point, and checks that it never panics and that the split does not
//! change the outcome (same requests, same error, same unconsumed rest).
#![no_main]

use libfuzzer_sys::fuzz_target;
use muduo::http::{HttpContext, HttpError, HttpLimits, HttpRequest};

#[derive(Debug, PartialEq)]
struct Outcome {
    requests: Vec<HttpRequest>,
    error: Option<HttpError>,
    leftover: Vec<u8>,
}

fn feed(limits: HttpLimits, chunks: &[&[u8]]) -> Outcome {
    let mut ctx = HttpContext::new(limits);
    let mut buf = Vec::new();
    let mut requests = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match ctx.parse(&buf) {
                Ok(p) => {
                    assert!(p.consumed <= buf.len());
                    buf.drain(..p.consumed);
                    match p.request {
                        Some(r) => {
                            // Exercise the accessors.
                            let _ = (r.path(), r.query(), r.keep_alive(), r.headers().count());
                            requests.push(r);
                        }
                        None => break,
                    }
                }
                Err(e) => {
                    assert_eq!(ctx.parse(&buf).err(), Some(e), "context must stay poisoned");
                    return Outcome {
                        requests,
                        error: Some(e),
                        leftover: Vec::new(),
                    };
                }
            }
        }
    }
    Outcome {
        requests,
        error: None,
        leftover: buf,
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let split = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let limits = if data[2] & 1 == 0 {
        HttpLimits::default()
    } else {
        HttpLimits {
            max_header_bytes: 64 + usize::from(data[2]),
            max_uri_len: 8 + usize::from(data[2] >> 2),
            max_body_bytes: usize::from(data[2]),
            max_headers: usize::from(data[2] >> 5),
        }
    };
    let input = &data[3..];
    let at = split % (input.len() + 1);
    let whole = feed(limits, &[input]);
    let split = feed(limits, &[&input[..at], &input[at..]]);
    assert_eq!(whole, split, "split at {at} changed the outcome");
});
