//! Objects written by this backend are read back byte-identical by boto3,
//! AWS's own client, with content type and user metadata; and the
//! reverse. Runs against moto, with the boto3 that `cargo xtask test`
//! installs alongside it.

#![cfg(feature = "test-servers")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::process::Command;

use sha2::{Digest, Sha256};

use storage_core::conformance::pattern;
use storage_core::{GetOptions, Key, PutOptions, Storage};
use storage_s3::{S3Config, S3Storage};
use support::var;

/// Runs a boto3 script against moto; its stdout is returned.
fn boto3(script: &str, args: &[&str]) -> String {
    let prelude = format!(
        "import sys, boto3\n\
         s3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
         aws_access_key_id='k', aws_secret_access_key='s')\n\
         bucket = '{}'\n",
        var("STORAGE_TEST_MOTO_ENDPOINT"),
        var("STORAGE_TEST_S3_BUCKET")
    );
    let out = Command::new(var("STORAGE_TEST_BOTO3_PYTHON"))
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn moto() -> S3Storage {
    S3Storage::new(
        S3Config::new(var("STORAGE_TEST_S3_BUCKET"))
            .with_endpoint(var("STORAGE_TEST_MOTO_ENDPOINT"), true)
            .with_region("us-east-1")
            .with_credentials("k", "s"),
    )
    .unwrap()
}

fn sha256_hex_by_boto3(key: &str) -> String {
    boto3(
        "import hashlib\n\
         o = s3.get_object(Bucket=bucket, Key=sys.argv[1])\n\
         print(hashlib.sha256(o['Body'].read()).hexdigest())\n\
         print(o['ContentType'])\n\
         print(o['Metadata'].get('origin', ''))\n",
        &[key],
    )
}

#[tokio::test]
async fn boto3_reads_what_we_write_and_we_read_what_boto3_writes() {
    let store = moto();
    for (name, len) in [
        ("interop/small ü+.bin", 1000usize),
        ("interop/multipart.bin", (17 << 20) + 5),
    ] {
        let key = Key::new(name).unwrap();
        let data = pattern(len as u64, len);
        let body = if len > 1 << 20 {
            let chunks: Vec<storage_core::Result<storage_core::Bytes>> = data
                .chunks(1 << 20)
                .map(|c| Ok(storage_core::Bytes::copy_from_slice(c)))
                .collect();
            storage_core::Body::from_stream(futures::stream::iter(chunks))
        } else {
            data.clone().into()
        };
        let options = PutOptions::default()
            .with_content_type("application/x-test")
            .with_metadata("origin", "storage-s3");
        store.put(&key, body, options).await.unwrap();
        let report = sha256_hex_by_boto3(name);
        let lines: Vec<&str> = report.lines().collect();
        let expected: String = Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(lines[0], expected, "{name}: boto3 read other bytes");
        assert_eq!(lines[1], "application/x-test");
        assert_eq!(lines[2], "storage-s3");
    }

    // The reverse: boto3 writes, we read.
    boto3(
        "s3.put_object(Bucket=bucket, Key='interop/from boto3.txt', Body=b'written by boto3', \
         ContentType='text/plain', Metadata={'origin': 'boto3'})\n",
        &[],
    );
    let got = store
        .get(
            &Key::new("interop/from boto3.txt").unwrap(),
            GetOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(got.meta.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        got.meta.user_metadata.get("origin").map(String::as_str),
        Some("boto3")
    );
    assert_eq!(&got.bytes().await.unwrap()[..], b"written by boto3");
}
