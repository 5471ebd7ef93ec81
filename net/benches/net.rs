//! Run with: `cargo bench -p wheelbeat-net --bench net`.
//!
//! Throughput of the decoders on 64-byte frames, and of the whole read path (socket read into
//! the scratch buffer, decode, callback) over loopback.

use std::hint::black_box;
use std::io::{self, Write};
use std::ops::ControlFlow;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wheelbeat_net::{Codec, Connection, LengthCodec, LineCodec, ListenConfig, ReadBuf, bind};

const FRAMES: usize = 1024;
const PAYLOAD: usize = 63; // 64 bytes on the wire with the line codec's newline

fn wire<C: Codec>(codec: &C) -> Vec<u8> {
    let payload = vec![b'a'; PAYLOAD];
    let mut wire = Vec::new();
    for _ in 0..FRAMES {
        codec.encode(&payload, &mut wire).unwrap();
    }
    wire
}

fn decode_all<C: Codec>(codec: &mut C, mut buf: &[u8]) -> usize {
    let mut n = 0;
    while let Some(d) = codec.decode(buf).unwrap() {
        n += d.frame.len();
        buf = &buf[d.consumed..];
    }
    n
}

fn codecs(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    let line = wire(&LineCodec::new());
    g.throughput(Throughput::Bytes(line.len() as u64));
    g.bench_function("line_64B", |b| {
        let mut codec = LineCodec::new();
        b.iter(|| decode_all(&mut codec, black_box(&line)))
    });
    let length = wire(&LengthCodec::new());
    g.throughput(Throughput::Bytes(length.len() as u64));
    g.bench_function("length_67B", |b| {
        let mut codec = LengthCodec::new();
        b.iter(|| decode_all(&mut codec, black_box(&length)))
    });
    g.finish();
}

fn read_path(c: &mut Criterion) {
    let listener = bind("127.0.0.1:0".parse().unwrap(), &ListenConfig::default()).unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let server = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    };
    let mut conn = Connection::new(server);
    let mut scratch = ReadBuf::new();
    let wire = wire(&LineCodec::new());
    let mut g = c.benchmark_group("read_path");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("loopback_64B_lines", |b| {
        b.iter(|| {
            // 64 KiB fits the loopback buffers, so the blocking write returns at once.
            client.write_all(&wire).unwrap();
            let mut frames = 0;
            while frames < FRAMES {
                conn.read_frames(&mut scratch, 1 << 20, |f, _| {
                    black_box(f);
                    frames += 1;
                    ControlFlow::Continue(())
                })
                .unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, codecs, read_path);
criterion_main!(benches);
