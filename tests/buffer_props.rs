//! Property test: random operation sequences on `Buffer` against a
//! `VecDeque<u8>` model.

use std::collections::VecDeque;

use muduo::buffer::{Buffer, CHEAP_PREPEND, INITIAL_SIZE};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Retrieve(usize),
    RetrieveAsVec(usize),
    RetrieveAll,
    Prepend(Vec<u8>),
    AppendU32(u32),
    PrependU16(u16),
    ReadU32,
    PeekU64,
    EnsureWritable(usize),
    WriteInPlace(Vec<u8>),
    Unwrite(usize),
    Shrink(usize),
    FindCrlf(usize),
    FindEol(usize),
    Clone,
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    // Bias towards '\r' and '\n' (about 1 in 5 each) so find_crlf has
    // something to find; mapping a plain byte vector keeps generation cheap.
    prop::collection::vec(any::<u8>(), 0..max).prop_map(|mut v| {
        for x in &mut v {
            match *x % 5 {
                0 => *x = b'\r',
                1 => *x = b'\n',
                _ => {}
            }
        }
        v
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => bytes(300).prop_map(Op::Append),
        1 => bytes(3000).prop_map(Op::Append),
        4 => (0usize..400).prop_map(Op::Retrieve),
        1 => (0usize..100).prop_map(Op::RetrieveAsVec),
        1 => Just(Op::RetrieveAll),
        2 => bytes(40).prop_map(Op::Prepend),
        2 => any::<u32>().prop_map(Op::AppendU32),
        1 => any::<u16>().prop_map(Op::PrependU16),
        2 => Just(Op::ReadU32),
        1 => Just(Op::PeekU64),
        1 => (0usize..5000).prop_map(Op::EnsureWritable),
        1 => bytes(64).prop_map(Op::WriteInPlace),
        1 => (0usize..50).prop_map(Op::Unwrite),
        1 => (0usize..64).prop_map(Op::Shrink),
        2 => (0usize..64).prop_map(Op::FindCrlf),
        1 => (0usize..64).prop_map(Op::FindEol),
        1 => Just(Op::Clone),
    ]
}

fn model_find_crlf(m: &[u8], start: usize) -> Option<usize> {
    if start > m.len() {
        return None;
    }
    m[start..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| start + i)
}

fn model_find_eol(m: &[u8], start: usize) -> Option<usize> {
    if start > m.len() {
        return None;
    }
    m[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| start + i)
}

fn check_invariants(b: &Buffer, model: &VecDeque<u8>) {
    assert!(
        b.peek().iter().eq(model.iter()),
        "peek() differs from model"
    );
    assert_eq!(b.readable_bytes(), model.len());
    assert_eq!(b.is_empty(), model.is_empty());
    assert_eq!(
        b.prependable_bytes() + b.readable_bytes() + b.writable_bytes(),
        b.capacity()
    );
    if b.capacity() == 0 {
        assert_eq!(b.prependable_bytes(), 0);
        assert_eq!(b.readable_bytes(), 0);
        assert_eq!(b.writable_bytes(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn buffer_matches_model(ops in prop::collection::vec(op(), 1..80)) {
        let mut b = Buffer::new();
        let mut model: VecDeque<u8> = VecDeque::new();
        for op in ops {
            match op {
                Op::Append(d) => {
                    b.append(&d);
                    model.extend(&d);
                }
                Op::Retrieve(n) => {
                    b.retrieve(n);
                    let n = n.min(model.len());
                    model.drain(..n);
                    if model.is_empty() && b.capacity() > 0 {
                        // retrieve_all semantics: indices reset.
                        prop_assert_eq!(b.prependable_bytes(), CHEAP_PREPEND);
                    }
                }
                Op::RetrieveAsVec(n) => {
                    let got = b.retrieve_as_vec(n);
                    let n = n.min(model.len());
                    let want: Vec<u8> = model.drain(..n).collect();
                    prop_assert_eq!(got, want);
                }
                Op::RetrieveAll => {
                    let cap = b.capacity();
                    b.retrieve_all();
                    model.clear();
                    prop_assert_eq!(b.capacity(), cap, "retrieve_all keeps memory");
                    prop_assert_eq!(b.prependable_bytes(), CHEAP_PREPEND.min(cap));
                }
                Op::Prepend(d) => {
                    b.prepend(&d);
                    for &x in d.iter().rev() {
                        model.push_front(x);
                    }
                }
                Op::AppendU32(x) => {
                    b.append_u32(x);
                    model.extend(x.to_be_bytes());
                }
                Op::PrependU16(x) => {
                    b.prepend_u16(x);
                    for &x in x.to_be_bytes().iter().rev() {
                        model.push_front(x);
                    }
                }
                Op::ReadU32 => {
                    let got = b.read_u32();
                    if model.len() >= 4 {
                        let v: Vec<u8> = model.drain(..4).collect();
                        prop_assert_eq!(got, Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]])));
                    } else {
                        prop_assert_eq!(got, None);
                    }
                }
                Op::PeekU64 => {
                    let got = b.peek_u64();
                    if model.len() >= 8 {
                        let mut a = [0u8; 8];
                        for (i, x) in model.iter().take(8).enumerate() {
                            a[i] = *x;
                        }
                        prop_assert_eq!(got, Some(u64::from_be_bytes(a)));
                    } else {
                        prop_assert_eq!(got, None);
                    }
                }
                Op::EnsureWritable(n) => {
                    let (cap, readable) = (b.capacity(), b.readable_bytes());
                    b.ensure_writable(n);
                    prop_assert!(b.writable_bytes() >= n);
                    if cap >= CHEAP_PREPEND + readable + n {
                        prop_assert_eq!(b.capacity(), cap, "makeSpace must move, not grow");
                    }
                    if cap == 0 && n > 0 {
                        prop_assert_eq!(b.capacity(), CHEAP_PREPEND + n.max(INITIAL_SIZE));
                    }
                }
                Op::WriteInPlace(d) => {
                    b.ensure_writable(d.len());
                    b.writable_slice()[..d.len()].copy_from_slice(&d);
                    b.has_written(d.len());
                    model.extend(&d);
                }
                Op::Unwrite(n) => {
                    b.unwrite(n);
                    let keep = model.len() - n.min(model.len());
                    model.truncate(keep);
                }
                Op::Shrink(reserve) => {
                    let cap = b.capacity();
                    b.shrink(reserve);
                    prop_assert!(b.capacity() <= cap, "shrink never grows");
                    if model.is_empty() && reserve == 0 {
                        prop_assert_eq!(b.capacity(), 0);
                    } else if CHEAP_PREPEND + model.len() + reserve < cap {
                        prop_assert_eq!(b.capacity(), CHEAP_PREPEND + model.len() + reserve);
                        prop_assert_eq!(b.writable_bytes(), reserve);
                    }
                }
                Op::FindCrlf(start) => {
                    let m: Vec<u8> = model.iter().copied().collect();
                    prop_assert_eq!(b.find_crlf(), model_find_crlf(&m, 0));
                    prop_assert_eq!(b.find_crlf_from(start), model_find_crlf(&m, start));
                    if let Some(i) = b.find_crlf() {
                        b.retrieve_until(i + 2);
                        model.drain(..i + 2);
                    }
                }
                Op::FindEol(start) => {
                    let m: Vec<u8> = model.iter().copied().collect();
                    prop_assert_eq!(b.find_eol(), model_find_eol(&m, 0));
                    prop_assert_eq!(b.find_eol_from(start), model_find_eol(&m, start));
                }
                Op::Clone => {
                    let c = b.clone();
                    prop_assert_eq!(&c, &b);
                    b = c;
                }
            }
            check_invariants(&b, &model);
        }
    }
}
