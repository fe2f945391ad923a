//! The "Reading" paragraphs: the run's own figures, then what they mean in
//! the seed's terms.

use super::super::stats::fmt;
use super::pollers::{PollCell, PollResults};
use super::servers::{Cell, Results};

/// Puzzles `models_client` cycles through (the sudoku example's solvable set).
pub(super) const PUZZLE_COUNT: usize = 8;

pub(super) fn reading_intro() -> String {
    "The seed (sections 1.2-1.3) describes the models measured here:\n\n\
     - **one thread per connection** (多线程模型): blocking `read -> work -> send` in a thread of its own; \
     simple, but every connection is a thread, and at C10K that is ten thousand stacks and a context switch \
     per message;\n\
     - **single reactor** (单 Reactor 单线程): one thread multiplexes every socket; no locks and no hand-offs, \
     but one thread uses one core, and a slow handler delays every other connection on the loop;\n\
     - **reactor + worker pool** (单 Reactor 多线程): the loop only reads and writes; the work runs in a pool \
     and its answer is sent back from the worker; it uses the cores, at the cost of a hand-off (and here a \
     reorder step) per request;\n\
     - **main/sub reactors** (多 Reactor 多线程): the main reactor accepts, each sub-reactor owns its \
     connections and does read -> work -> send itself (muduo, Netty, memcached);\n\
     - **Proactor** (io_uring): the kernel completes the reads and writes and reports finished I/O, \
     instead of readiness.\n\n"
        .into()
}

/// The best model by throughput at `conns`, with its figure.
pub(super) fn best_at(results: &Results, conns: usize) -> Option<(&'static str, f64)> {
    results
        .iter()
        .filter_map(|(name, _, row)| {
            row.iter()
                .find(|(c, _)| *c == conns)
                .and_then(|(_, cell)| cell.as_ref().ok())
                .map(|cell| (*name, cell.per_sec))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

pub(super) fn cell_of<'a>(results: &'a Results, name: &str, conns: usize) -> Option<&'a Cell> {
    results
        .iter()
        .find(|(n, _, _)| *n == name)
        .and_then(|(_, _, row)| row.iter().find(|(c, _)| *c == conns))
        .and_then(|(_, cell)| cell.as_ref().ok())
}

pub(super) fn winners(results: &Results) -> String {
    let conns: Vec<usize> = results
        .first()
        .map(|(_, _, r)| r.iter().map(|(c, _)| *c).collect())
        .unwrap_or_default();
    let parts: Vec<String> = conns
        .iter()
        .filter_map(|&c| {
            best_at(results, c).map(|(n, v)| format!("{c} conn: **{n}** ({} req/s)", fmt(v)))
        })
        .collect();
    format!("Highest throughput in this run: {}.", parts.join("; "))
}

pub(super) fn compare(
    results: &Results,
    (a, b): (&str, &str),
    conns: usize,
    what: &str,
    f: fn(&Cell) -> f64,
) -> Option<String> {
    let (x, y) = (cell_of(results, a, conns)?, cell_of(results, b, conns)?);
    let show = |v: f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            fmt(v)
        }
    };
    Some(format!(
        "at {conns} connections {what} is {} for {a} and {} for {b}",
        show(f(x)),
        show(f(y))
    ))
}

fn max_conns(results: &Results) -> usize {
    results
        .first()
        .and_then(|(_, _, r)| r.iter().map(|(c, _)| *c).max())
        .unwrap_or(1)
}

/// When thread per connection wins somewhere from 10 connections up: why
/// (a shared machine's scheduler shares CPU per thread), `cost` saying what
/// it pays for it in this workload.
fn scheduler_share(results: &Results, cost: &str) -> String {
    let conns: Vec<usize> = results
        .first()
        .map(|(_, _, r)| r.iter().map(|(c, _)| *c).collect())
        .unwrap_or_default();
    let won: Vec<String> = conns
        .iter()
        .filter(|&&c| c >= 10 && best_at(results, c).is_some_and(|(n, _)| n == "threads"))
        .map(|c| c.to_string())
        .collect();
    if won.is_empty() {
        return String::new();
    }
    format!(
        "Thread per connection had the highest throughput at {} connections, although {cost}: \
         the *cores used* column says why. On a machine with more runnable threads than cores \
         (see the load average above) the scheduler shares CPU time per thread, not per process, \
         so a server with a runnable thread per connection simply gets a larger share than one \
         with 1-5 threads. On a machine of its own that advantage disappears and the extra \
         memory, context switches and CPU per request remain. ",
        won.join(", ")
    )
}

pub(super) fn reading_sudoku(results: &Results) -> String {
    let max_c = max_conns(results);
    let mut facts = vec![winners(results)];
    for (pair, what, f) in [
        (
            ("single", "multi-pool"),
            "p99 latency (µs)",
            (|c: &Cell| c.p99_us) as fn(&Cell) -> f64,
        ),
        (
            ("threads", "multi"),
            "the server's cores used",
            |c: &Cell| c.cores(),
        ),
        (("threads", "multi"), "the thread count", |c: &Cell| {
            c.threads
        }),
    ] {
        if let Some(s) = compare(results, pair, max_c, what, f) {
            facts.push(format!("{}{}.", s[..1].to_uppercase(), &s[1..]));
        }
    }
    let oversubscribed = scheduler_share(
        results,
        "the solving costs the same CPU per request in every model",
    );
    format!(
        "**Reading.** {}\n\n\
         Solving is pure CPU (about 150 µs per request on average, from 2 µs to 1.5 ms), so what \
         matters is how many cores solve and whether a long puzzle holds up the others. The single \
         reactor solves on its one loop thread: it cannot use the second core, and every connection \
         waits behind whatever puzzle is being solved (the seed: 单 Reactor 单进程 does not suit \
         计算密集型 work). The pool and the multi-reactor models use both cores; the pool also keeps \
         the loop free to read while workers solve, at the price of two thread hand-offs per request \
         (visible at 1 connection, where there is nothing to overlap). {oversubscribed}With one \
         request in flight per connection, latency at high connection counts is mostly queueing \
         (Little's law: connections / throughput), so p99 at 1000 connections follows throughput.\n\n",
        facts.join(" ")
    )
}

pub(super) fn reading_echo(results: &Results) -> String {
    let max_c = max_conns(results);
    let mut facts = vec![winners(results)];
    for (pair, what, f) in [
        (
            ("threads", "single"),
            "server CPU per request (µs)",
            (|c: &Cell| c.cpu_us) as fn(&Cell) -> f64,
        ),
        (("threads", "single"), "RSS (KiB)", |c: &Cell| c.rss_kib),
        (("threads", "single"), "the thread count", |c: &Cell| {
            c.threads
        }),
    ] {
        if let Some(s) = compare(results, pair, max_c, what, f) {
            facts.push(format!("{}{}.", s[..1].to_uppercase(), &s[1..]));
        }
    }

    let busiest = results
        .iter()
        .flat_map(|(_, _, row)| row.iter().filter_map(|(_, c)| c.as_ref().ok()))
        .map(Cell::cores)
        .fold(0.0f64, f64::max);
    // The scheduler-share explanation only applies to a server short of CPU.
    let oversubscribed = if busiest < 0.9 {
        String::new()
    } else {
        scheduler_share(
            results,
            "its CPU per request is the highest of all (the CPU µs/req column)",
        )
    };
    let saturation = if busiest < 0.9 {
        format!(
            "No echo server kept even one core busy (at most {} cores used): the client and the \
             kernel's loopback path set the pace, so compare CPU per request, threads and memory \
             rather than requests per second. ",
            fmt(busiest)
        )
    } else {
        String::new()
    };
    format!(
        "**Reading.** {}\n\n{saturation}\
         Echo does almost no work per message, so the cost is the I/O path itself: syscalls, wake-ups \
         and context switches. One thread per connection pays a blocking read, a wake-up and a context \
         switch per message on every connection, plus a stack and a kernel task per connection; a \
         reactor amortises one `epoll_wait` over every ready connection and never switches between \
         connections, which is why the seed recommends a single reactor (Redis-style) when the \
         handler is fast. Main/sub reactors add the second core, which on this 2-core machine the \
         client also needs. {oversubscribed}The Proactor row depends on the io_uring backend (see the \
         notes when it is not available).\n\n",
        facts.join(" ")
    )
}

pub(super) fn reading_pollers(results: &PollResults) -> String {
    let mut facts = Vec::new();
    for (name, row) in results {
        let ok: Vec<(usize, &PollCell)> = row
            .iter()
            .filter_map(|(n, c)| c.as_ref().ok().map(|c| (*n, c)))
            .collect();
        if let (Some(first), Some(last)) = (ok.first(), ok.last()) {
            if first.0 != last.0 {
                facts.push(format!(
                    "{name}: {} µs/msg with {} idle connections, {} µs/msg with {} ({:.1}x)",
                    fmt(first.1.cpu_us),
                    first.0,
                    fmt(last.1.cpu_us),
                    last.0,
                    last.1.cpu_us / first.1.cpu_us
                ));
            }
        }
    }
    let facts = if facts.is_empty() {
        "Only one size ran, so there is no trend to read".to_string()
    } else {
        facts.join("; ")
    };
    format!(
        "**Reading.** {}.\n\n\
         This is the seed's argument for epoll (为什么 epoll 能解决 C10K): select and poll hand the whole \
         interest set to the kernel on every call, the kernel walks all of it, and the program walks the \
         result again, so each wait costs O(N) in the number of connections *watched*, idle or not. With \
         100 active sessions and N idle ones, the work per echoed message grows with N. epoll keeps the \
         interest set in the kernel (`epoll_ctl` once per connection) and `epoll_wait` returns only ready \
         descriptors, so its cost per message stays flat as idle connections grow. select cannot even \
         watch a descriptor at or above FD_SETSIZE (1024), so it stops at about a thousand connections. \
         The syscall count per message is about the same for all three (a read and a write per \
         message, the wait amortised over the sessions that are ready together): the difference is \
         what each wait costs, not how many syscalls there are.\n\n",
        facts
    )
}
