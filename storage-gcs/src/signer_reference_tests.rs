//! Signed URLs against Google's own Python client: for the run's
//! generated service-account key, the same object, method, time and
//! expiry must give the same URL, byte for byte, and the signature must
//! verify with the key's public half. No emulator is involved: the
//! emulators do not check signatures.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

use crate::credentials::SigningKey;
use crate::signer::{SignedUrlRequest, canonical, signed_url};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/google_client.py");

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: the GCS test servers are not running; use `cargo xtask test`")
    })
}

fn python(args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(var("STORAGE_TEST_GCS_PYTHON"))
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "google_client.py {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Names chosen independently of the conformance kit's: plain, spaces,
/// unicode, and the characters object_store's signer gets wrong.
const NAMES: [&str; 10] = [
    "plain.txt",
    "folder/sub/file.bin",
    "with space.txt",
    "ünïcödé/ключ/鍵.txt",
    "a+b=c.txt",
    "question?mark",
    "hash#tag",
    "percent%20literal",
    "tilde~and_underscore-dash.txt",
    "semi;colon,comma&amp@at'quote(paren)!*",
];

#[test]
fn signed_urls_equal_googles_python_client_and_verify_with_the_public_key() {
    let key_file = var("STORAGE_TEST_GCS_SERVICE_ACCOUNT");
    let key = SigningKey::from_json(&std::fs::read_to_string(&key_file).unwrap(), "test").unwrap();
    // 2026-11-23T12:00:00Z and 2031-02-03T04:05:06Z.
    let times = [1_795_435_200u64, 1_927_771_506];
    let mut requests = Vec::new();
    for name in NAMES {
        for (method, content_type) in [("GET", None), ("PUT", None), ("PUT", Some("image/png"))] {
            for (at, expires, endpoint) in [
                (times[0], 900, "https://storage.googleapis.com"),
                (times[1], 604_800, "http://127.0.0.1:4443"),
            ] {
                requests.push(SignedUrlRequest {
                    method,
                    endpoint,
                    bucket: "storage-test-bucket",
                    object: name,
                    expires_in: Duration::from_secs(expires),
                    content_type,
                    at: SystemTime::UNIX_EPOCH + Duration::from_secs(at),
                });
            }
        }
    }
    let cases: Vec<serde_json::Value> = requests
        .iter()
        .map(|r| {
            let at: chrono::DateTime<chrono::Utc> = r.at.into();
            serde_json::json!({
                "timestamp": at.format("%Y%m%dT%H%M%SZ").to_string(),
                "name": r.object,
                "bucket": r.bucket,
                "expires": r.expires_in.as_secs(),
                "method": r.method,
                "content_type": r.content_type,
                "endpoint": r.endpoint,
            })
        })
        .collect();
    let expected: Vec<String> = serde_json::from_str(&python(
        &["sign", &key_file],
        &serde_json::to_string(&cases).unwrap(),
    ))
    .unwrap();
    let public_key = python(&["public-key", &key_file], "");
    let public_key: Vec<u8> = (0..public_key.trim().len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&public_key.trim()[i..i + 2], 16).unwrap())
        .collect();
    let verifier = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key);
    assert_eq!(expected.len(), requests.len());
    for (request, expected) in requests.iter().zip(&expected) {
        let ours = signed_url(&key, request).unwrap();
        assert_eq!(&ours, expected, "for {request:?}");
        let signature_hex = ours.rsplit_once("X-Goog-Signature=").unwrap().1;
        let signature: Vec<u8> = (0..signature_hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&signature_hex[i..i + 2], 16).unwrap())
            .collect();
        let signed = canonical(&key.email, request).unwrap().string_to_sign;
        verifier
            .verify(signed.as_bytes(), &signature)
            .unwrap_or_else(|_| panic!("the signature does not verify for {request:?}"));
        // And it signs exactly this request: one more byte does not verify.
        assert!(
            verifier
                .verify(format!("{signed}x").as_bytes(), &signature)
                .is_err()
        );
    }
}

#[test]
fn expiry_outside_one_second_to_seven_days_is_refused() {
    let key_file = var("STORAGE_TEST_GCS_SERVICE_ACCOUNT");
    let key = SigningKey::from_json(&std::fs::read_to_string(&key_file).unwrap(), "test").unwrap();
    for expires in [0, 604_801] {
        let request = SignedUrlRequest {
            method: "GET",
            endpoint: "https://storage.googleapis.com",
            bucket: "b",
            object: "o",
            expires_in: Duration::from_secs(expires),
            content_type: None,
            at: SystemTime::now(),
        };
        let err = signed_url(&key, &request).unwrap_err();
        assert_eq!(err.kind(), storage_core::ErrorKind::InvalidInput, "{err}");
    }
}
