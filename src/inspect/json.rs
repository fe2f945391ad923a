//! JSON (and the HTML table) for `/loops`, `/connections` and `/snapshot`.

use super::process::ProcessSnapshot;
use super::snapshot::{ConnSnapshot, LoopSnapshot};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// One loop, without its connection list.
pub fn loop_json(l: &LoopSnapshot) -> Value {
    json!({
        "id": l.id,
        "name": l.name,
        "iterations": l.iterations,
        "polls": l.polls,
        "poll_wait_seconds": l.poll_wait.as_secs_f64(),
        "poll_wait_buckets": l.poll_wait_buckets,
        "channels": l.channels,
        "timers": l.timers,
        "pending_closures": l.pending,
        "accepted": l.accepted,
        "accept_errors": l.accept_errors,
        "opened": l.opened,
        "closed": l.closed,
        "open": l.open,
        "bytes_read": l.bytes_read,
        "bytes_written": l.bytes_written,
        "messages": l.messages,
        "output_queued": l.output_queued,
        "high_water_events": l.high_water_events,
    })
}

/// One connection.
pub fn conn_json(c: &ConnSnapshot) -> Value {
    let mut v = json!({
        "loop_id": c.loop_id,
        "name": c.name,
        "peer": c.peer.to_string(),
        "local": c.local.to_string(),
        "age_seconds": c.age.as_secs_f64(),
        "bytes_in": c.bytes_in,
        "bytes_out": c.bytes_out,
        "messages": c.messages,
        "output_queued": c.output_queued,
        "high_water_events": c.high_water_events,
    });
    if let Some(t) = &c.tcp_info {
        v["tcp_info"] = json!({
            "state": t.state,
            "rtt_us": t.rtt_us,
            "rtt_var_us": t.rtt_var_us,
            "snd_cwnd": t.snd_cwnd,
            "retransmits": t.retransmits,
            "total_retrans": t.total_retrans,
            "lost": t.lost,
            "unacked": t.unacked,
            "pmtu": t.pmtu,
        });
    }
    v
}

/// The process figures.
pub fn process_json(p: &ProcessSnapshot) -> Value {
    json!({
        "pid": p.pid,
        "rss_bytes": p.rss_bytes,
        "open_fds": p.open_fds,
        "threads": p.threads,
        "cpu_user_seconds": p.cpu_user.as_secs_f64(),
        "cpu_system_seconds": p.cpu_system.as_secs_f64(),
        "uptime_seconds": p.uptime.as_secs_f64(),
    })
}

/// `/loops`: `{"loops": [...]}`.
pub fn loops(loops: &[LoopSnapshot]) -> String {
    json!({ "loops": loops.iter().map(loop_json).collect::<Vec<_>>() }).to_string()
}

/// `/connections`: `{"count": N, "connections": [...]}` (the list capped at `limit`).
pub fn connections(loops: &[LoopSnapshot], limit: usize) -> String {
    let all: Vec<&ConnSnapshot> = loops.iter().flat_map(|l| &l.connections).collect();
    json!({
        "count": all.len(),
        "connections": all.iter().take(limit).map(|c| conn_json(c)).collect::<Vec<_>>(),
    })
    .to_string()
}

/// `/snapshot`, what the dashboard polls: process, loops, totals and the
/// first `limit` connections.
pub fn snapshot(process: &ProcessSnapshot, loops: &[LoopSnapshot], limit: usize) -> String {
    let sum = |f: fn(&LoopSnapshot) -> u64| loops.iter().map(f).sum::<u64>();
    let conns: Vec<Value> = loops
        .iter()
        .flat_map(|l| &l.connections)
        .take(limit)
        .map(conn_json)
        .collect();
    json!({
        "process": process_json(process),
        "totals": {
            "connections": sum(|l| l.open as u64),
            "accepted": sum(|l| l.accepted),
            "bytes_read": sum(|l| l.bytes_read),
            "bytes_written": sum(|l| l.bytes_written),
            "messages": sum(|l| l.messages),
            "output_queued": sum(|l| l.output_queued),
        },
        "loops": loops.iter().map(loop_json).collect::<Vec<_>>(),
        "connections": conns,
    })
    .to_string()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `/connections` for a browser: a plain HTML table.
pub fn connections_html(loops: &[LoopSnapshot], limit: usize) -> String {
    let all: Vec<&ConnSnapshot> = loops.iter().flat_map(|l| &l.connections).collect();
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>connections</title>\
         <style>body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}\
         td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}\
         td:first-child,th:first-child{text-align:left}</style></head><body>",
    );
    let _ = write!(
        h,
        "<h1>{} connections</h1><p><a href=\"/\">dashboard</a> · \
         <a href=\"/connections?format=json\">JSON</a> · \
         <a href=\"/connections?format=html&amp;tcp_info=1\">with TCP_INFO</a></p>\
         <table id=\"connections\"><tr><th>name</th><th>peer</th><th>loop</th><th>age s</th>\
         <th>bytes in</th><th>bytes out</th><th>messages</th><th>queued</th>\
         <th>rtt µs</th><th>cwnd</th><th>retrans</th></tr>",
        all.len()
    );
    for c in all.iter().take(limit) {
        let (rtt, cwnd, re) = match &c.tcp_info {
            Some(t) => (
                t.rtt_us.to_string(),
                t.snd_cwnd.to_string(),
                t.total_retrans.to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{rtt}</td><td>{cwnd}</td><td>{re}</td></tr>",
            escape(&c.name),
            c.peer,
            c.loop_id,
            c.age.as_secs_f64(),
            c.bytes_in,
            c.bytes_out,
            c.messages,
            c.output_queued,
        );
    }
    h.push_str("</table></body></html>");
    h
}
