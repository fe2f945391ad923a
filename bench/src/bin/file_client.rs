//! Client for the file-transfer benchmark: opens N concurrent connections
//! to a server that sends a file and then closes (our `filetransfer`
//! example), reads each to EOF as fast as it can (1 MiB reads, data
//! discarded) and reports the total.
//!
//! Usage: `file_client <addr:port> <clients> [--expect BYTES]`
//!
//! Prints `RESULT bytes=TOTAL secs=S mib_per_s=X clients=N` on stdout. The
//! clock runs from just before the first connect to the last EOF. With
//! `--expect`, every connection must deliver exactly BYTES; otherwise (or on
//! any connection error) the problems go to stderr and the exit status is 1
//! (the RESULT line is still printed).
//!
//! One blocking std thread per connection: N is small (the runner uses at
//! most 16) and a blocked reader costs nothing, so the client spends its CPU
//! on copying data out of the socket and on nothing else.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use muduo_bench::cli::{die, parse};

const USAGE: &str = "file_client <addr:port> <clients> [--expect BYTES]";

/// Bytes per `read`.
const READ_SIZE: usize = 1 << 20;

/// Reads one connection to EOF; returns the bytes received.
fn drain(addr: SocketAddr) -> Result<u64, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let mut buf = vec![0u8; READ_SIZE];
    let mut total = 0u64;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read after {total} bytes: {e}")),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut expect: Option<u64> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--expect" => {
                let v = it
                    .next()
                    .unwrap_or_else(|| die(USAGE, "--expect needs a byte count"));
                expect = Some(parse(USAGE, "--expect", v));
            }
            "-h" | "--help" => die(USAGE, "help requested"),
            _ if arg.starts_with("--") => die(USAGE, &format!("unknown flag {arg}")),
            _ => positional.push(arg.clone()),
        }
    }
    if positional.len() != 2 {
        die(
            USAGE,
            &format!("expected 2 arguments, got {}", positional.len()),
        );
    }
    let addr: SocketAddr = parse(USAGE, "addr:port", &positional[0]);
    let clients: usize = parse(USAGE, "clients", &positional[1]);
    if clients == 0 {
        die(USAGE, "clients must be at least 1");
    }

    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| std::thread::spawn(move || drain(addr)))
        .collect();
    let results: Vec<Result<u64, String>> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|_| Err("reader panicked".into())))
        .collect();
    let secs = started.elapsed().as_secs_f64();

    let mut total = 0u64;
    let mut failed = 0;
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(n) => {
                total += n;
                if let Some(want) = expect {
                    if *n != want {
                        eprintln!("file_client: connection {i} got {n} bytes, expected {want}");
                        failed += 1;
                    }
                }
            }
            Err(e) => {
                eprintln!("file_client: connection {i}: {e}");
                failed += 1;
            }
        }
    }
    let mib_per_s = total as f64 / (1024.0 * 1024.0) / secs.max(1e-9);
    println!("RESULT bytes={total} secs={secs:.6} mib_per_s={mib_per_s:.1} clients={clients}");
    if failed > 0 {
        eprintln!("file_client: {failed} of {clients} connection(s) failed");
        std::process::exit(1);
    }
}
