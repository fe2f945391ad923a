//! The seed's first model: one thread per connection, blocking `std::net`
//! I/O, no event loop and no library. Simple to write and to read; every
//! connection costs a thread (a stack, a scheduler entry, context switches),
//! which is what the reactor models avoid.

use crate::protocol;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

/// Accepts forever, one thread per connection.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let spawned = std::thread::Builder::new()
                    .name("sudoku-conn".into())
                    .spawn(move || {
                        if let Err(e) = handle(stream) {
                            tracing::debug!(error = %e, "connection ended");
                        }
                    });
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "cannot start a connection thread; connection dropped");
                }
            }
            // EMFILE and friends: wait a little instead of spinning.
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    Ok(())
}

fn handle(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut input = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        input.extend_from_slice(&chunk[..n]);
        let (used, close) = protocol::answer_all(&input, &mut out);
        input.drain(..used);
        stream.write_all(&out)?;
        out.clear();
        if close {
            // Half-close like the reactor models, then wait for the peer
            // to close so the error answer is not lost to a reset.
            stream.shutdown(Shutdown::Write)?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            while stream.read(&mut chunk)? > 0 {}
            return Ok(());
        }
    }
}
