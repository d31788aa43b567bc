//! Decoding and encoding RESP: partial frames, inline commands, limits, both protocol versions.
use super::{Decoder, Reply, parse_i64, split_args};
use bytes::{Bytes, BytesMut};

fn decode_all(input: &[u8]) -> Vec<Vec<Bytes>> {
    let mut buf = BytesMut::from(input);
    let mut dec = Decoder::default();
    let mut out = Vec::new();
    while let Some(cmd) = dec.decode(&mut buf, true).expect("valid input") {
        out.push(cmd);
    }
    out
}

#[test]
fn multibulk_and_inline() {
    let cmds = decode_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n  set  a \"b c\"\r\n");
    assert_eq!(cmds.len(), 3);
    assert_eq!(cmds[0], vec![Bytes::from("GET"), Bytes::from("k")]);
    assert_eq!(cmds[1], vec![Bytes::from("PING")]);
    assert_eq!(cmds[2], vec![Bytes::from("set"), Bytes::from("a"), Bytes::from("b c")]);
}

#[test]
fn partial_frames_wait_for_more() {
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$5\r\nab"[..]);
    assert_eq!(dec.decode(&mut buf, true), Ok(None));
    buf.extend_from_slice(b"cde\r\n");
    assert_eq!(dec.decode(&mut buf, true), Ok(Some(vec![Bytes::from("GET"), Bytes::from("abcde")])));
}

#[test]
fn oversized_bulks_are_refused() {
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(&b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1073741824\r\n"[..]);
    let err = dec.decode(&mut buf, true).expect_err("over redis's limit");
    assert_eq!(err.0, "ERR Protocol error: invalid bulk length");
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(&b"*1\r\n$104857600\r\n"[..]);
    let err = dec.decode(&mut buf, true).expect_err("over our limit");
    assert!(err.0.contains("limit of 67108864 bytes"), "{}", err.0);
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(&b"*20\r\n"[..]);
    let err = dec.decode(&mut buf, false).expect_err("unauthenticated");
    assert_eq!(err.0, "ERR Protocol error: unauthenticated multibulk length");
}

#[test]
fn split_args_like_sdssplitargs() {
    let parts = split_args(b"a 'b c' \"d\\x41\\n\" e\"f g\"").expect("balanced");
    assert_eq!(parts, vec![Bytes::from("a"), Bytes::from("b c"), Bytes::from("dA\n"), Bytes::from("ef g")]);
    assert_eq!(split_args(b"\"unterminated"), None);
    assert_eq!(split_args(b"\"a\"b"), None);
}

#[test]
fn strict_integers() {
    assert_eq!(parse_i64(b"0"), Some(0));
    assert_eq!(parse_i64(b"-12"), Some(-12));
    assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
    assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    for bad in [&b"+1"[..], b"01", b"-0", b" 1", b"1 ", b"", b"9223372036854775808", b"1.5"] {
        assert_eq!(parse_i64(bad), None, "{bad:?}");
    }
}

#[test]
fn encodes_resp2_and_resp3() {
    let reply = Reply::Map(vec![(Reply::bulk_str("a"), Reply::Nil), (Reply::bulk_str("b"), Reply::Int(-3))]);
    let mut out = BytesMut::new();
    reply.encode(false, &mut out);
    assert_eq!(&out[..], b"*4\r\n$1\r\na\r\n$-1\r\n$1\r\nb\r\n:-3\r\n");
    out.clear();
    reply.encode(true, &mut out);
    assert_eq!(&out[..], b"%2\r\n$1\r\na\r\n_\r\n$1\r\nb\r\n:-3\r\n");
}
