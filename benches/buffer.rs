//! Micro-benchmarks for `muduo::buffer::Buffer`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use muduo::buffer::Buffer;
use rustix::pipe::{pipe_with, PipeFlags};

fn append_retrieve(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_retrieve");
    for size in [16usize, 4096] {
        let data = vec![b'x'; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, data| {
            let mut buf = Buffer::new();
            b.iter(|| {
                buf.append(black_box(data));
                buf.retrieve(black_box(data.len()));
            });
        });
    }
    group.finish();
}

/// Each iteration writes `size` bytes into a pipe and reads them back with
/// `Buffer::read_fd`, so the time includes the `write(2)` as well.
fn read_fd(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_fd");
    for size in [4096usize, 64 * 1024] {
        let (r, w) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC).expect("pipe");
        // Make sure one chunk fits in the pipe.
        let _ = rustix::pipe::fcntl_setpipe_size(&w, 2 * size);
        let data = vec![b'y'; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            let mut buf = Buffer::new();
            b.iter(|| {
                let mut written = 0;
                while written < size {
                    written += rustix::io::write(&w, &data[written..]).expect("write");
                }
                let mut read = 0;
                while read < size {
                    read += buf.read_fd(&r).expect("read_fd");
                }
                buf.retrieve_all();
                black_box(read)
            });
        });
    }
    group.finish();
}

fn find_crlf(c: &mut Criterion) {
    let mut group = c.benchmark_group("find_crlf");
    // 4 KiB of header-like text with the only CRLF at the very end.
    let mut text = vec![b'a'; 4094];
    for i in (0..text.len()).step_by(61) {
        text[i] = b' ';
    }
    text.extend_from_slice(b"\r\n");
    let buf = Buffer::from(&text[..]);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("4KiB", |b| b.iter(|| black_box(&buf).find_crlf()));
    group.finish();
}

criterion_group!(benches, append_retrieve, read_fd, find_crlf);
criterion_main!(benches);
