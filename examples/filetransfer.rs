//! muduo's filetransfer example: sends one file to every client that
//! connects, then closes that connection. Three ways to do it, to compare
//! what the seed's section 1.1 describes:
//!
//! * `read-write`: `read` 64 KiB chunks into user memory, `send` each when
//!   the previous one has been written (write-complete flow control):
//!   two copies per byte, two syscalls per chunk.
//! * `mmap-write`: map the file once, `send` 64 KiB slices of the mapping:
//!   the kernel copies straight from the page cache, no `read` calls.
//! * `sendfile`: `TcpConnection::send_file`, the page cache goes to the
//!   socket without entering user space.
//!
//! ```text
//! cargo run --release --example filetransfer -- --file PATH [--addr 127.0.0.1:2021] [--mode sendfile] [--threads 0]
//! ```

#[path = "common/args.rs"]
mod args;

use muduo::{EventLoop, TcpConnectionPtr, TcpServer};
use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

const USAGE: &str = "filetransfer: sends a file to every client, then closes the connection

usage: filetransfer --file PATH [--addr IP:PORT] [--mode MODE] [--threads N]
  --file     the file to send (required)
  --addr     listen address (default 127.0.0.1:2021)
  --mode     read-write | mmap-write | sendfile (default sendfile)
               read-write  read() 64 KiB chunks into user memory, then send them
               mmap-write  mmap() the file once, send() slices of the mapping
               sendfile    sendfile(2): no copy through user space
  --threads  I/O threads (default 0)";

const CHUNK: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    ReadWrite,
    MmapWrite,
    Sendfile,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "read-write" => Ok(Mode::ReadWrite),
            "mmap-write" => Ok(Mode::MmapWrite),
            "sendfile" => Ok(Mode::Sendfile),
            _ => Err(format!(
                "unknown mode {s:?}: expected read-write, mmap-write or sendfile"
            )),
        }
    }
}

/// read-write: the open file of one connection.
struct Reader(File);
/// mmap-write: how far into the mapping one connection is.
struct Offset(usize);

fn send_next_chunk(conn: &TcpConnectionPtr, mode: Mode, map: &Option<Arc<memmap2::Mmap>>) {
    let sent_all = match mode {
        Mode::ReadWrite => conn
            .with_context(|r: &mut Reader| {
                let mut chunk = vec![0u8; CHUNK];
                match r.0.read(&mut chunk) {
                    Ok(0) | Err(_) => true,
                    Ok(n) => {
                        chunk.truncate(n);
                        conn.send_vec(chunk);
                        false
                    }
                }
            })
            .unwrap_or(true),
        Mode::MmapWrite => {
            let map = map.as_ref().expect("mapped at start");
            conn.with_context(|o: &mut Offset| {
                if o.0 >= map.len() {
                    return true;
                }
                let end = (o.0 + CHUNK).min(map.len());
                conn.send(&map[o.0..end]);
                o.0 = end;
                false
            })
            .unwrap_or(true)
        }
        Mode::Sendfile => true,
    };
    if sent_all {
        conn.take_context::<Reader>();
        conn.shutdown();
    }
}

fn main() {
    args::main_with("filetransfer", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    if !args.has("file") {
        eprintln!("--file is required\n\n{USAGE}");
        std::process::exit(2);
    }
    let path: PathBuf = args.get("file", PathBuf::new());
    let addr: SocketAddr = args.get("addr", "127.0.0.1:2021".parse().unwrap());
    let mode: Mode = args.get("mode", Mode::Sendfile);
    let file = File::open(&path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let len = file.metadata()?.len();
    let map = if mode == Mode::MmapWrite {
        // SAFETY: the mapping is read-only; the example assumes nobody
        // truncates the file while it is served (a truncation would make
        // reads of the mapping fault, which is why send_file exists).
        Some(Arc::new(unsafe { memmap2::Mmap::map(&file)? }))
    } else {
        None
    };

    let lp = EventLoop::new()?;
    let mut server = TcpServer::new(&lp, addr, "FileServer")?;
    server.set_thread_num(args.get("threads", 0));
    let p = path.clone();
    let m = map.clone();
    server.set_connection_callback(move |conn| {
        if !conn.connected() {
            return;
        }
        tracing::info!(peer = %conn.peer_addr(), ?mode, bytes = len, "sending file");
        match mode {
            Mode::Sendfile => match File::open(&p) {
                Ok(f) => {
                    conn.send_file(f, 0, len);
                    conn.shutdown();
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot open the file");
                    conn.force_close();
                }
            },
            Mode::ReadWrite => match File::open(&p) {
                Ok(f) => {
                    conn.set_context(Reader(f));
                    send_next_chunk(conn, mode, &m);
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot open the file");
                    conn.force_close();
                }
            },
            Mode::MmapWrite => {
                conn.set_context(Offset(0));
                send_next_chunk(conn, mode, &m);
            }
        }
    });
    server.set_message_callback(|_conn, buf, _| buf.retrieve_all());
    server.set_write_complete_callback(move |conn| {
        if mode != Mode::Sendfile {
            send_next_chunk(conn, mode, &map);
        }
    });
    server.start()?;
    tracing::info!(addr = %server.local_addr(), ?mode, file = %path.display(), "file server listening");
    lp.run()
}
