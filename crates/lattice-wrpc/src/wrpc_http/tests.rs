use super::*;

#[test]
fn a_request_round_trips_and_reports_truncation() {
    let req = Request {
        method: "PATCH".into(),
        path_with_query: Some("/a?b=c".into()),
        scheme: Some("https".into()),
        authority: Some("example.com".into()),
        headers: vec![
            ("x".into(), b"1".to_vec()),
            ("y".into(), b"2".to_vec()),
            ("x".into(), vec![0xff]),
        ],
        body: Some(b"hello".to_vec()),
    };
    let mut b = Vec::new();
    req.encode(&mut b);
    let back = Request::decode(&b).unwrap();
    // Values of one name travel together, in order.
    assert_eq!(
        back.headers,
        [
            ("x".to_string(), b"1".to_vec()),
            ("x".to_string(), vec![0xff]),
            ("y".to_string(), b"2".to_vec()),
        ]
    );
    assert_eq!(
        (back.method.as_str(), back.body.as_deref()),
        ("PATCH", Some(&b"hello"[..]))
    );
    for cut in 0..b.len() {
        assert_eq!(
            Request::decode(&b[..cut]),
            Err(DecodeError::Incomplete),
            "{cut}"
        );
    }
    let other = Request {
        method: "PROPFIND".into(),
        scheme: Some("gopher".into()),
        ..Default::default()
    };
    let mut b = Vec::new();
    other.encode(&mut b);
    let back = Request::decode(&b).unwrap();
    assert_eq!(
        (back.method.as_str(), back.scheme.as_deref(), back.body),
        ("PROPFIND", Some("gopher"), None)
    );
}

#[test]
fn a_request_decodes_as_upstream_encodes_it() {
    // wrpc-transport's encoding of a GET of `/` with a pending body and pending trailers
    // (what `wrpc-interface-http` clients send: streams and futures always pending), no
    // scheme, authority `a`, one header `h: v`.
    let wire = [
        0x00, // body: stream<u8>, pending
        0x00, // trailers: future, pending
        0x00, // method: get
        0x01, 0x01, b'/', // path-with-query: some("/")
        0x00, // scheme: none
        0x01, 0x01, b'a', // authority: some("a")
        0x01, 0x01, b'h', 0x01, 0x01, b'v', // headers: [("h", ["v"])]
    ];
    let r = Request::decode(&wire).unwrap();
    assert_eq!(
        r,
        Request {
            method: "GET".into(),
            path_with_query: Some("/".into()),
            scheme: None,
            authority: Some("a".into()),
            headers: vec![("h".into(), b"v".to_vec())],
            body: None,
        }
    );
}

#[test]
fn outcomes_round_trip_and_any_error_code_decodes() {
    let head = ResponseHead {
        status: 418,
        headers: vec![("content-type".into(), b"text/plain".to_vec())],
    };
    let mut b = Vec::new();
    encode_response(&head, &mut b);
    // ok, body pending, trailers ready with none, status as LEB128.
    assert_eq!(&b[..5], [0x00, 0x00, 0x01, 0x00, 0xa2]);
    assert_eq!(decode_outcome(&b), Ok(Ok((head, None))));
    for code in [
        ErrorCode::ResponseTimeout,
        ErrorCode::Internal(Some("boom".into())),
        ErrorCode::Internal(None),
    ] {
        let mut b = Vec::new();
        code.encode_err(&mut b);
        assert_eq!(decode_outcome(&b), Ok(Err(code)));
    }
    // connection-refused, and DNS-error with a payload: decoded by the generic codec.
    assert_eq!(
        decode_outcome(&[0x01, 0x06]),
        Ok(Err(ErrorCode::Other("connection-refused".into())))
    );
    let dns = [0x01, 0x01, 0x01, 0x02, b'n', b'x', 0x00];
    match decode_outcome(&dns) {
        Ok(Err(ErrorCode::Other(s))) => assert!(s.starts_with("DNS-error("), "{s}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        decode_outcome(&[0x01, 0x63]),
        Err(DecodeError::Invalid(_))
    ));
    assert!(matches!(
        decode_outcome(&[0x02]),
        Err(DecodeError::Invalid(_))
    ));
}

#[test]
fn byte_chunks_take_any_message_boundaries() {
    let mut wire = Vec::new();
    let big = vec![7u8; 300];
    encode_chunk(b"ab", &mut wire);
    encode_chunk(&big, &mut wire);
    encode_chunk(b"", &mut wire);
    // Every split into two messages gives the same data.
    for cut in 0..=wire.len() {
        let mut chunks = ByteChunks::default();
        let mut out = Vec::new();
        chunks.push(&wire[..cut], &mut out).unwrap();
        assert_eq!(chunks.is_done(), cut == wire.len());
        chunks.push(&wire[cut..], &mut out).unwrap();
        assert!(chunks.is_done());
        let data: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(data.len(), 302, "{cut}");
        assert_eq!(&data[..2], b"ab");
    }
    let mut chunks = ByteChunks::default();
    let mut out = Vec::new();
    assert!(
        chunks.push(&[0x00, 0x01], &mut out).is_err(),
        "bytes after the end"
    );
    let mut chunks = ByteChunks::default();
    assert!(
        chunks.push(&[0xff; 6], &mut out).is_err(),
        "an endless length"
    );
}
