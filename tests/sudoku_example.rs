//! The sudoku example: its solver and wire protocol as unit tests, and the
//! real `sudoku_server` binary under every model (answers correct, in
//! request order with ids kept, `NoSolution`, bad lines answered then
//! closed), plus `sudoku_loadtest` against it.
//!
//! Run `cargo build --examples` first (same profile as the tests).

mod support;

#[path = "../examples/sudoku_server/protocol.rs"]
#[allow(dead_code)]
mod protocol;
#[path = "../examples/sudoku_server/puzzles.rs"]
mod puzzles;
#[path = "../examples/sudoku_server/solver.rs"]
mod solver;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;
use support::example::{example_path, Example};
use support::with_timeout;
use support::{connect, read_to_eof, wait_closed, Closed};

const LIMIT: Duration = Duration::from_secs(120);
const MODELS: [&str; 5] = ["threads", "single", "pool", "multi", "multi-pool"];

fn grid(text: &str) -> solver::Grid {
    solver::parse(text.as_bytes()).expect("puzzle parses")
}

// ---- solver ----

#[test]
fn solver_solves_every_known_puzzle() {
    for p in puzzles::SOLVABLE {
        let g = grid(p);
        let s = solver::solve(&g).unwrap_or_else(|| panic!("no solution found for {p}"));
        assert!(solver::is_solution_of(&g, &s), "wrong solution for {p}");
    }
}

#[test]
fn solver_gives_the_unique_solution_of_a_classic() {
    let s = solver::solve(&grid(puzzles::SOLVABLE[0])).unwrap();
    assert_eq!(
        &solver::format(&s)[..],
        b"534678912672195348198342567859761423426853791713924856961537284287419635345286179"
    );
}

#[test]
fn solver_handles_a_hard_puzzle() {
    // Arto Inkala's "world's hardest sudoku".
    let hard = grid(puzzles::SOLVABLE[6]);
    let s = solver::solve(&hard).unwrap();
    assert!(solver::is_solution_of(&hard, &s));
    assert_eq!(
        &solver::format(&s)[..],
        b"812753649943682175675491283154237896369845721287169534521974368438526917796318452"
    );
}

#[test]
fn solver_reports_no_solution() {
    assert_eq!(solver::solve(&grid(puzzles::UNSOLVABLE)), None);
    // Conflicting givens: two 5s in the first row.
    let mut g = grid(puzzles::SOLVABLE[0]);
    g[2] = 5;
    assert_eq!(solver::solve(&g), None);
}

#[test]
fn solver_keeps_a_full_grid_and_rejects_a_broken_one() {
    let full = solver::solve(&grid(puzzles::SOLVABLE[1])).unwrap();
    assert_eq!(solver::solve(&full), Some(full));
    let mut broken = full;
    broken.swap(0, 1);
    assert!(!solver::is_solution_of(
        &grid(puzzles::SOLVABLE[1]),
        &broken
    ));
    assert_eq!(solver::solve(&broken), None);
}

#[test]
fn solver_parse_accepts_digits_zero_and_dot_only() {
    let dots = ".".repeat(81);
    let zeros = "0".repeat(81);
    assert_eq!(
        solver::parse(dots.as_bytes()),
        solver::parse(zeros.as_bytes())
    );
    assert!(solver::parse(&[b'x'; 81]).is_none());
    assert!(solver::parse(&[b'1'; 80]).is_none());
    // The empty grid has solutions too.
    let s = solver::solve(&[0; 81]).unwrap();
    assert!(solver::is_solution_of(&[0; 81], &s));
}

// ---- protocol ----

#[test]
fn protocol_frames_lines() {
    use protocol::Frame;
    assert_eq!(protocol::frame(b"abc"), Frame::Incomplete);
    assert_eq!(
        protocol::frame(b"ab\r\nx"),
        Frame::Line {
            len: 2,
            consumed: 4
        }
    );
    assert_eq!(
        protocol::frame(b"ab\nx"),
        Frame::Line {
            len: 2,
            consumed: 3
        }
    );
    assert_eq!(protocol::frame(&[b'1'; 101]), Frame::TooLong);
    assert_eq!(protocol::frame(&[b'1'; 100]), Frame::Incomplete);
}

#[test]
fn protocol_answers_a_batch_and_stops_at_a_bad_line() {
    let input = format!(
        "7:{}\r\n{}\r\nnope\r\n{}\r\n",
        puzzles::UNSOLVABLE,
        puzzles::SOLVABLE[0],
        puzzles::SOLVABLE[0]
    );
    let mut out = Vec::new();
    let (used, close) = protocol::answer_all(input.as_bytes(), &mut out);
    assert!(close);
    assert_eq!(used, input.len());
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "7:NoSolution\r\n534678912672195348198342567859761423426853791713924856961537284287419635345286179\r\nBad Request!\r\n"
    );
    let mut out = Vec::new();
    assert_eq!(protocol::answer_all(b"1:12", &mut out), (0, false));
    assert!(out.is_empty());
}

// ---- the server binary, every model ----

fn start(model: &str) -> Example {
    Example::start(
        "sudoku_server",
        &["--addr", "127.0.0.1:0", "--model", model, "--threads", "3"],
    )
}

/// Reads `n` answer lines (CRLF kept off).
fn read_lines(s: &TcpStream, n: usize) -> Vec<String> {
    let mut r = BufReader::new(s.try_clone().unwrap());
    (0..n)
        .map(|i| {
            let mut line = String::new();
            let got = r
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("answer {i}: {e}"));
            assert!(got > 0, "server closed after {i} answers");
            line.strip_suffix("\r\n")
                .unwrap_or_else(|| panic!("answer {i} does not end in CRLF: {line:?}"))
                .to_string()
        })
        .collect()
}

/// Checks `answer` for request `id` of `puzzle`.
fn assert_answer(answer: &str, id: &str, puzzle: &str) {
    let body = if id.is_empty() {
        answer
    } else {
        answer
            .strip_prefix(&format!("{id}:"))
            .unwrap_or_else(|| panic!("answer {answer:?} lacks id {id}"))
    };
    let g = grid(puzzle);
    match solver::solve(&g) {
        None => assert_eq!(body, "NoSolution", "for {puzzle}"),
        Some(_) => {
            let s = solver::parse(body.as_bytes())
                .unwrap_or_else(|| panic!("answer {body:?} is not a grid"));
            assert!(
                solver::is_solution_of(&g, &s),
                "{body} does not solve {puzzle}"
            );
        }
    }
}

#[test]
fn every_model_answers_a_pipelined_batch_in_order() {
    with_timeout(LIMIT, || {
        for model in MODELS {
            let ex = start(model);
            let mut s = connect(ex.addr);
            // Hard puzzles first, easy ones after: a pool finishes the easy
            // ones first, so order is only kept if the server restores it.
            let mut batch = String::new();
            let mut expected = Vec::new();
            for round in 0..4 {
                for (i, p) in puzzles::SOLVABLE.iter().enumerate().rev() {
                    let id = if i == 1 {
                        String::new()
                    } else {
                        format!("r{round}p{i}")
                    };
                    if id.is_empty() {
                        batch.push_str(&format!("{p}\r\n"));
                    } else {
                        batch.push_str(&format!("{id}:{p}\r\n"));
                    }
                    expected.push((id, *p));
                }
                batch.push_str(&format!("u{round}:{}\r\n", puzzles::UNSOLVABLE));
                expected.push((format!("u{round}"), puzzles::UNSOLVABLE));
            }
            s.write_all(batch.as_bytes()).unwrap();
            let answers = read_lines(&s, expected.len());
            for (answer, (id, p)) in answers.iter().zip(&expected) {
                assert_answer(answer, id, p);
            }
        }
    });
}

#[test]
fn pool_models_pause_and_resume_a_client_that_pipelines_thousands() {
    // Far more than the per-connection limit of unanswered requests: the
    // server stops reading for a while, then must resume and answer all,
    // in order. Writes happen on their own thread so the test cannot
    // deadlock against the server's backpressure.
    const N: usize = 5000;
    with_timeout(LIMIT, || {
        for model in ["pool", "multi-pool"] {
            let ex = start(model);
            let s = connect(ex.addr);
            let mut w = s.try_clone().unwrap();
            let writer = std::thread::spawn(move || {
                let mut batch = String::new();
                for k in 0..N {
                    let p = puzzles::SOLVABLE[k % 2];
                    batch.push_str(&format!("{k}:{p}\r\n"));
                }
                w.write_all(batch.as_bytes()).unwrap();
            });
            let answers = read_lines(&s, N);
            writer.join().unwrap();
            for (k, a) in answers.iter().enumerate() {
                assert_answer(a, &k.to_string(), puzzles::SOLVABLE[k % 2]);
            }
        }
    });
}

#[test]
fn every_model_serves_many_connections_at_once() {
    with_timeout(LIMIT, || {
        for model in MODELS {
            let ex = start(model);
            let clients: Vec<_> = (0..8)
                .map(|c| {
                    let addr = ex.addr;
                    std::thread::spawn(move || {
                        let mut s = connect(addr);
                        let mut batch = String::new();
                        for k in 0..20 {
                            let p = puzzles::SOLVABLE[(c + k) % puzzles::SOLVABLE.len()];
                            batch.push_str(&format!("c{c}-{k}:{p}\r\n"));
                        }
                        s.write_all(batch.as_bytes()).unwrap();
                        let answers = read_lines(&s, 20);
                        for (k, a) in answers.iter().enumerate() {
                            let p = puzzles::SOLVABLE[(c + k) % puzzles::SOLVABLE.len()];
                            assert_answer(a, &format!("c{c}-{k}"), p);
                        }
                    })
                })
                .collect();
            for c in clients {
                c.join()
                    .unwrap_or_else(|_| panic!("a client failed under model {model}"));
            }
        }
    });
}

#[test]
fn every_model_answers_a_bad_request_then_closes() {
    with_timeout(LIMIT, || {
        for model in MODELS {
            let ex = start(model);
            let mut s = connect(ex.addr);
            // A good request, a puzzle with a bad character (NoSolution, as
            // muduo), a line of the wrong length, then one never answered.
            let bad_char = format!("{}x", &puzzles::SOLVABLE[0][..80]);
            let req = format!(
                "a:{}\r\nb:{bad_char}\r\nc:123\r\nd:{}\r\n",
                puzzles::SOLVABLE[3],
                puzzles::SOLVABLE[0]
            );
            s.write_all(req.as_bytes()).unwrap();
            let rest = String::from_utf8(read_to_eof(&mut s)).unwrap();
            let lines: Vec<&str> = rest.split("\r\n").collect();
            assert_eq!(lines.len(), 4, "model {model}: {rest:?}");
            assert_answer(lines[0], "a", puzzles::SOLVABLE[3]);
            assert_eq!(lines[1], "b:NoSolution", "model {model}");
            assert_eq!(lines[2], "Bad Request!", "model {model}");
            assert_eq!(lines[3], "", "model {model}: nothing after the error");
        }
    });
}

#[test]
fn every_model_rejects_an_overlong_line() {
    with_timeout(LIMIT, || {
        for model in MODELS {
            let ex = start(model);
            let mut s = connect(ex.addr);
            s.write_all(&[b'7'; 150]).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert_eq!(line, "Id too long!\r\n", "model {model}");
            assert_eq!(
                wait_closed(&mut s, Duration::from_secs(20)),
                Some(Closed::Eof),
                "model {model}: the server must close after the error"
            );
        }
    });
}

#[test]
fn loadtest_checks_every_answer_against_the_pool_model() {
    with_timeout(LIMIT, || {
        let ex = start("multi-pool");
        let out = Command::new(example_path("sudoku_loadtest"))
            .args([
                "--addr",
                &ex.addr.to_string(),
                "--connections",
                "4",
                "--puzzles",
                "200",
                "--pipeline",
                "8",
            ])
            .env("NO_COLOR", "1")
            .output()
            .expect("run sudoku_loadtest");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "loadtest failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("RESULT answered=200 failed_connections=0"),
            "{stdout}"
        );
    });
}

#[test]
fn server_rejects_an_unknown_model() {
    let out = Command::new(example_path("sudoku_server"))
        .args(["--model", "fibers", "--addr", "127.0.0.1:0"])
        .output()
        .expect("run sudoku_server");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--model"));
}
