//! Tests of the decoder against the streams captured from a real PostgreSQL 15 server
//! (testdata/pgoutput, see capture.sql), text and binary: every message and value as the
//! server sent it, zero-copy slicing, and robustness (no strict prefix decodes, no mutation
//! panics).

use super::TupleValue::{Null, UnchangedToast};
use super::*;
use crate::source::pgoutput::testing::*;

#[test]
fn captured_text_stream() {
    let msgs = decoded(TEXT);
    check_structure(&msgs);

    let ts = "2024-05-06 07:08:09.123456+00";
    let first = insert(&msgs[3].1);
    assert_eq!(first.relation_id, ITEMS_OID);
    check_big(&first.new.0[8]);
    assert!(matches!(first.new.0[8], TupleValue::Text(_)));
    let mut row = vec![
        text(UUID_A),
        text("widget"),
        text("W-1"),
        text(PAYLOAD),
        text("\\xdeadbeef00ff"),
        text("42"),
        text(ts),
        Null,
        first.new.0[8].clone(),
        text("happy"),
    ];
    assert_eq!(first.new, TupleData(row.clone()));

    assert_eq!(
        msgs[7].1,
        Message::Insert(Insert {
            relation_id: OUTBOX_OID,
            new: TupleData(vec![
                text("1"),
                text("order"),
                text("o-1"),
                text(r#"{"total": 10}"#)
            ]),
        })
    );

    // Key unchanged: no old tuple; the TOASTed value was not rewritten, so it is not sent.
    row[5] = text("43");
    row[8] = UnchangedToast;
    assert_eq!(
        msgs[10].1,
        Message::Update(Update {
            relation_id: ITEMS_OID,
            old: None,
            new: TupleData(row.clone()),
        })
    );

    // Key changed: the old key is sent, non-key columns as NULL.
    let mut old_key = vec![Null; 10];
    old_key[0] = text(UUID_A);
    row[0] = text(UUID_B);
    row[5] = text("44");
    assert_eq!(
        msgs[13].1,
        Message::Update(Update {
            relation_id: ITEMS_OID,
            old: Some(OldTuple::Key(TupleData(old_key.clone()))),
            new: TupleData(row),
        })
    );

    // REPLICA IDENTITY FULL: the whole old row.
    assert_eq!(
        msgs[16].1,
        Message::Update(Update {
            relation_id: OUTBOX_OID,
            old: Some(OldTuple::Full(TupleData(vec![
                text("1"),
                text("order"),
                text("o-1"),
                text(r#"{"total": 10}"#)
            ]))),
            new: TupleData(vec![
                text("1"),
                text("order"),
                text("o-1"),
                text(r#"{"total": 11}"#)
            ]),
        })
    );

    let outbox2 = TupleData(vec![text("2"), text("order"), text("o-2"), Null]);
    assert_eq!(
        msgs[19].1,
        Message::Insert(Insert {
            relation_id: OUTBOX_OID,
            new: outbox2.clone()
        })
    );

    old_key[0] = text(UUID_B);
    assert_eq!(
        msgs[24].1,
        Message::Delete(Delete {
            relation_id: ITEMS_OID,
            old: OldTuple::Key(TupleData(old_key)),
        })
    );
    assert_eq!(
        msgs[27].1,
        Message::Delete(Delete {
            relation_id: OUTBOX_OID,
            old: OldTuple::Full(outbox2),
        })
    );

    assert_eq!(
        msgs[42].1,
        Message::Insert(Insert {
            relation_id: OUTBOX_OID,
            new: TupleData(vec![text("3"), text("user"), text("u-3"), text("[]")]),
        })
    );
}

#[test]
fn captured_binary_stream() {
    let msgs = decoded(BINARY);
    check_structure(&msgs);

    // Everything but the tuple values is identical to the text-mode capture.
    for ((_, b), (_, t)) in msgs.iter().zip(decoded(TEXT).iter()) {
        if !matches!(
            b,
            Message::Insert(_) | Message::Update(_) | Message::Delete(_)
        ) {
            assert_eq!(b, t);
        }
    }

    let first = insert(&msgs[3].1);
    assert_eq!(first.relation_id, ITEMS_OID);
    check_big(&first.new.0[8]);
    // text's binary send format is its text: the same bytes as in the text capture.
    assert_eq!(
        first.new.0[8].as_bytes(),
        insert(&decoded(TEXT)[3].1).new.0[8].as_bytes()
    );
    let mut row = vec![
        bin(&UUID_A_BIN),
        bin(b"widget"),
        bin(b"W-1"),
        jsonb(PAYLOAD), // jsonb binary format: version byte 1, then the text
        bin(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]),
        bin(&42i32.to_be_bytes()),
        bin(&CREATED_AT_US.to_be_bytes()),
        Null,
        first.new.0[8].clone(),
        bin(b"happy"), // enums are sent as their label
    ];
    assert_eq!(first.new, TupleData(row.clone()));

    assert_eq!(
        insert(&msgs[7].1).new,
        TupleData(vec![
            bin(&1i64.to_be_bytes()),
            bin(b"order"),
            bin(b"o-1"),
            jsonb(r#"{"total": 10}"#)
        ])
    );

    let mut old_key = vec![Null; 10];
    old_key[0] = bin(&UUID_A_BIN);
    row[0] = bin(&UUID_B_BIN);
    row[5] = bin(&44i32.to_be_bytes());
    row[8] = UnchangedToast;
    assert_eq!(
        msgs[13].1,
        Message::Update(Update {
            relation_id: ITEMS_OID,
            old: Some(OldTuple::Key(TupleData(old_key))),
            new: TupleData(row),
        })
    );

    assert_eq!(
        msgs[27].1,
        Message::Delete(Delete {
            relation_id: OUTBOX_OID,
            old: OldTuple::Full(TupleData(vec![
                bin(&2i64.to_be_bytes()),
                bin(b"order"),
                bin(b"o-2"),
                Null
            ])),
        })
    );
}

#[test]
fn values_are_zero_copy_slices_of_the_input() {
    let rows = fixture(TEXT);
    let within = |outer: &Bytes, inner: &Bytes| {
        let start = outer.as_ptr() as usize;
        let p = inner.as_ptr() as usize;
        p >= start && p + inner.len() <= start + outer.len()
    };
    let data = rows[3].1.clone();
    let msg = decode(data.clone()).unwrap();
    let values = &insert(&msg).new.0;
    for v in values {
        if let Some(b) = v.as_bytes() {
            assert!(within(&data, b));
        }
    }
    let data = rows[20].1.clone();
    match decode(data.clone()).unwrap() {
        Message::LogicalMessage(m) => assert!(within(&data, &m.content)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_strict_prefix_of_a_captured_message_is_an_error() {
    for data in all_captured() {
        assert!(decode(data.clone()).is_ok());
        for len in 0..data.len() {
            assert!(
                decode_no_panic(&data[..len]).is_err(),
                "prefix {len} of {} decoded",
                to_hex(&data)
            );
        }
    }
}

#[test]
fn mutated_messages_never_panic() {
    const TAGS: &[u8] = b"BCORYIUDTMSEcAbPKrpNnutb";
    const INTERESTING_BYTES: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, b'n', b'u', b't', b'b', b'N'];
    const INTERESTING_I32: &[i32] = &[0, 1, -1, 2, 7, 255, 4096, i32::MAX, i32::MIN];
    let messages = all_captured();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut err) = (0usize, 0usize);
    for _ in 0..20_000 {
        let mut data = messages[rng.below(messages.len())].to_vec();
        for _ in 0..1 + rng.below(4) {
            let len = data.len();
            match rng.below(9) {
                0 if len > 0 => {
                    let i = rng.below(len);
                    data[i] ^= 1 << rng.below(8);
                }
                1 if len > 0 => {
                    let i = rng.below(len);
                    data[i] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
                }
                2 => data.truncate(rng.below(len + 1)),
                3 => data.insert(rng.below(len + 1), rng.next() as u8),
                4 if len > 0 => {
                    data.remove(rng.below(len));
                }
                5 if len >= 4 => {
                    // Overwrite what may be a length, count or OID.
                    let i = rng.below(len - 3);
                    let v = INTERESTING_I32[rng.below(INTERESTING_I32.len())];
                    data[i..i + 4].copy_from_slice(&v.to_be_bytes());
                }
                6 => {
                    for _ in 0..1 + rng.below(8) {
                        data.push(rng.next() as u8);
                    }
                }
                7 if len > 0 => data[0] = TAGS[rng.below(TAGS.len())],
                8 => {
                    // Pure noise behind a valid tag.
                    data = vec![TAGS[rng.below(TAGS.len())]];
                    for _ in 0..rng.below(40) {
                        data.push(rng.next() as u8);
                    }
                }
                _ => {}
            }
        }
        match decode_no_panic(&data) {
            Ok(_) => ok += 1,
            Err(e) => {
                // Every error renders without panicking too.
                assert!(!e.to_string().is_empty());
                err += 1;
            }
        }
    }
    // The loop exercised both outcomes (mutating a value's bytes leaves a valid message).
    assert!(ok > 100 && err > 1000, "ok {ok}, err {err}");
}
