//! The inspector: live figures of every loop and connection, a Prometheus
//! endpoint and a dashboard page (muduo's `Inspector`).
//!
//! Every loop counts as it works, at almost no cost: plain per-thread and
//! per-connection cells, no atomics and no locks on the hot path. The
//! figures are read on each loop's own thread when someone asks
//! ([`gather`]), and [`Inspector`] serves them over HTTP:
//!
//! ```no_run
//! use muduo::{inspect::Inspector, EventLoop, TcpServer};
//! # fn main() -> std::io::Result<()> {
//! let lp = EventLoop::new()?;
//! let mut server = TcpServer::new(&lp, "127.0.0.1:8000".parse().unwrap(), "echo")?;
//! server.set_thread_num(2);
//! server.set_message_callback(|conn, buf, _| conn.send_buffer(buf));
//! server.start()?;
//! let inspector = Inspector::start("127.0.0.1:9000".parse().unwrap())?;
//! inspector.watch_server(&server);
//! // open http://127.0.0.1:9000/ ; scrape http://127.0.0.1:9000/metrics
//! lp.run()
//! # }
//! ```
//!
//! What is counted, per loop: connections accepted, established, closed
//! and open; accept errors (`EMFILE`); bytes read and written; message
//! callbacks; poll iterations and a histogram of their wait; closures
//! queued from other threads; timers; channels; output bytes queued and
//! high-water-mark crossings. Per connection: age, bytes in and out,
//! messages, output queued, and `TCP_INFO` (RTT, congestion window,
//! retransmits) on request.

pub(crate) mod counters;
mod inspector;
mod json;
mod metrics;
mod process;
mod snapshot;

pub use inspector::Inspector;
pub use metrics::{encode as encode_metrics, CONTENT_TYPE as METRICS_CONTENT_TYPE};
pub use process::ProcessSnapshot;
pub use snapshot::{gather, poll_wait_bounds, ConnSnapshot, Detail, LoopSnapshot};
