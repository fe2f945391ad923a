//! `/metrics`: the Prometheus text exposition format (version 0.0.4),
//! encoded by the `prometheus-client` crate from one gathered snapshot.

use super::process::ProcessSnapshot;
use super::snapshot::{poll_wait_bounds, LoopSnapshot};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// One scrape's figures; encoded once, then dropped.
#[derive(Debug)]
struct Scrape {
    process: ProcessSnapshot,
    loops: Vec<LoopSnapshot>,
}

type Labels = [(&'static str, String); 2];

fn labels(l: &LoopSnapshot) -> Labels {
    [("loop", l.name.clone()), ("loop_id", l.id.to_string())]
}

/// A per-loop counter or gauge: name, help, type, value.
type PerLoop = (
    &'static str,
    &'static str,
    MetricType,
    fn(&LoopSnapshot) -> u64,
);

const PER_LOOP: &[PerLoop] = &[
    (
        "muduo_loop_iterations",
        "Times the loop returned from polling.",
        MetricType::Counter,
        |l| l.iterations,
    ),
    (
        "muduo_loop_connections_accepted",
        "Connections accepted by an acceptor on the loop.",
        MetricType::Counter,
        |l| l.accepted,
    ),
    (
        "muduo_loop_accept_errors",
        "Accepts that failed for lack of file descriptors (EMFILE/ENFILE).",
        MetricType::Counter,
        |l| l.accept_errors,
    ),
    (
        "muduo_loop_connections_opened",
        "Connections established on the loop.",
        MetricType::Counter,
        |l| l.opened,
    ),
    (
        "muduo_loop_connections_closed",
        "Connections closed on the loop.",
        MetricType::Counter,
        |l| l.closed,
    ),
    (
        "muduo_loop_connections",
        "Connections open on the loop.",
        MetricType::Gauge,
        |l| l.open as u64,
    ),
    (
        "muduo_loop_bytes_read",
        "Bytes read from the loop's connections.",
        MetricType::Counter,
        |l| l.bytes_read,
    ),
    (
        "muduo_loop_bytes_written",
        "Bytes written to the loop's connections.",
        MetricType::Counter,
        |l| l.bytes_written,
    ),
    (
        "muduo_loop_messages",
        "Message callbacks run (reads that delivered bytes).",
        MetricType::Counter,
        |l| l.messages,
    ),
    (
        "muduo_loop_output_queued_bytes",
        "Output bytes queued in user space, over the loop's connections.",
        MetricType::Gauge,
        |l| l.output_queued,
    ),
    (
        "muduo_loop_high_water_mark_events",
        "Times a connection's output queue crossed its high-water mark.",
        MetricType::Counter,
        |l| l.high_water_events,
    ),
    (
        "muduo_loop_pending_closures",
        "Closures queued to the loop from other threads and not yet run.",
        MetricType::Gauge,
        |l| l.pending as u64,
    ),
    (
        "muduo_loop_timers",
        "Live timers of the loop.",
        MetricType::Gauge,
        |l| l.timers as u64,
    ),
    (
        "muduo_loop_channels",
        "Channels (fds) registered with the loop.",
        MetricType::Gauge,
        |l| l.channels as u64,
    ),
];

type NoExemplar<'a> = Option<&'a Exemplar<NoLabelSet, u64>>;

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let p = &self.process;
        let cpu = (p.cpu_user + p.cpu_system).as_secs_f64();
        ConstCounter::new(cpu).encode(enc.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            MetricType::Counter,
        )?)?;
        let gauges: [(&str, &str, f64); 4] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                p.rss_bytes as f64,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                p.open_fds as f64,
            ),
            (
                "process_threads",
                "Number of OS threads in the process.",
                p.threads as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                p.start_time_unix,
            ),
        ];
        for (name, help, v) in gauges {
            ConstGauge::new(v).encode(enc.encode_descriptor(
                name,
                help,
                None,
                MetricType::Gauge,
            )?)?;
        }
        let all: Vec<Labels> = self.loops.iter().map(labels).collect();
        for &(name, help, kind, value) in PER_LOOP {
            let mut m = enc.encode_descriptor(name, help, None, kind)?;
            for (l, lab) in self.loops.iter().zip(&all) {
                let mut fam = m.encode_family(lab)?;
                match kind {
                    MetricType::Counter => fam.encode_counter(&value(l), NoExemplar::None)?,
                    _ => fam.encode_gauge(&value(l))?,
                }
            }
        }
        let mut m = enc.encode_descriptor(
            "muduo_loop_poll_wait_seconds",
            "Time the loop spent waiting in poll, per poll.",
            None,
            MetricType::Histogram,
        )?;
        for (l, lab) in self.loops.iter().zip(&all) {
            let bounds = poll_wait_bounds().iter().copied().chain([f64::INFINITY]);
            let buckets: Vec<(f64, u64)> = bounds.zip(l.poll_wait_buckets).collect();
            m.encode_family(lab)?.encode_histogram::<NoLabelSet>(
                l.poll_wait.as_secs_f64(),
                l.polls,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }
}

/// Encodes the process and loop figures in the Prometheus text format.
pub fn encode(process: ProcessSnapshot, loops: Vec<LoopSnapshot>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape { process, loops }));
    let mut out = String::with_capacity(8 * 1024);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}
